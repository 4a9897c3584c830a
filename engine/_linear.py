"""A multinomial logistic regression beside the genre trees, for small catalogs.

On the generated 1,000-clip librosa tables (benchmarks/catalogs.py) a logistic regression on the standardized
inputs scored above the trees, and the two blended at or above either; on Spotify subsets it barely moved top-1
(benchmarks/RESULTS.md, "A linear model beside the trees"). Trees cut each feature into steps; descriptors such
as MFCC means move a genre's odds smoothly, which a linear margin follows with far fewer parameters than a few
hundred clips can fit trees to.

The blend is in margin space: ``(1 - w) * trees + w * linear``, then the softmax. So a prediction's explanation
stays exact: each feature's part is ``(1 - w)`` times its part in the trees' margin (engine/_explain.py) plus
``w * coef[class, j] * z_j``, and the parts plus the bias still add up to the blended margin. ``w`` is chosen
by the small catalog's own cross-validation folds (engine/_crossfit.py), from ``BLEND_WEIGHTS`` or 0 (trees
alone); a large catalog, or ``genre.blend = false``, keeps the trees alone.

Stored as plain arrays (``genre_linear.npz``): nothing executable, as with every bundle file.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import numpy as np

LINEAR_FILE = "genre_linear.npz"
BLEND_WEIGHTS = (0.25, 0.5, 0.75)  # the trees keep at least a quarter of the margin
LINEAR_C = 1.0  # scikit-learn's default inverse regularization, on standardized inputs
ABSENT_MARGIN = -50.0  # a genre a fold's training part lacks: e^-50 against the genres it has
_MAX_ITER = 2000
_SCALE_RANGE = (1e-30, 1e30)  # a feature's standard deviation that fit_linear uses and a bundle may hold
_CHUNK_VALUES = 1 << 22  # per margin chunk, the (rows, genres, features) product's values: 32 MiB of float64


@dataclasses.dataclass(frozen=True)
class LinearPart:
    """``margin(x)`` of shape (n, n_genres): ``((x - mean) / scale) @ coef.T + intercept``, in float64."""

    mean: np.ndarray  # (n_features,)
    scale: np.ndarray  # (n_features,), no zeros
    coef: np.ndarray  # (n_genres, n_features)
    intercept: np.ndarray  # (n_genres,)
    weight: float  # the blend's share of the margin, in (0, 1)

    def standardized(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        if np.isnan(z).any():  # a feature the trees send down their default branch: the linear part reads the mean
            z = np.where(np.isnan(z), 0.0, z)
        return z

    def margin(self, x: np.ndarray) -> np.ndarray:
        # per row and genre a sum over the features in one order, whatever the number of rows (a matmul would
        # round by batch size): one track's margin is the same bits alone or in a batch
        x = np.atleast_2d(x)
        out = np.empty((len(x), len(self.intercept)))
        chunk = max(1, _CHUNK_VALUES // max(1, self.coef.size))
        for start in range(0, len(x), chunk):
            z = self.standardized(x[start:start + chunk])
            out[start:start + chunk] = (z[:, None, :] * self.coef[None, :, :]).sum(axis=2) + self.intercept
        return out

    def contributions(self, row: np.ndarray, cls: int) -> tuple[float, np.ndarray]:
        """(bias, per-feature parts) of one row's margin for genre ``cls``."""
        z = self.standardized(row[None, :])[0]
        return float(self.intercept[cls]), self.coef[cls] * z

    def with_weight(self, weight: float) -> LinearPart:
        return dataclasses.replace(self, weight=float(weight))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept,
                "weight": np.float64(self.weight)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], n_genres: int, n_features: int) -> LinearPart:
        """Raises ValueError naming what does not fit the bundle's genres and features."""
        need = {"mean": (n_features,), "scale": (n_features,), "coef": (n_genres, n_features),
                "intercept": (n_genres,), "weight": ()}
        for name, shape in need.items():
            if name not in arrays:
                raise ValueError(f"no array {name!r}")
            arr = arrays[name]
            if arr.shape != shape or arr.dtype.kind != "f" or not np.isfinite(arr).all():
                raise ValueError(f"{name!r} is {arr.dtype} of shape {arr.shape}, expected finite floats of "
                                 f"shape {shape}")
        weight = float(arrays["weight"])
        if not 0.0 < weight < 1.0 or not (arrays["scale"] > 0).all():
            raise ValueError(f"weight {weight} outside (0, 1), or a scale that is not positive")
        # a fitted regression on standardized inputs stays far inside these; values near float64's range would
        # load and then answer NaN
        for name, limit in (("mean", 1e30), ("coef", 1e6), ("intercept", 1e6)):
            if np.abs(arrays[name]).max(initial=0.0) > limit:
                raise ValueError(f"{name!r} holds values beyond {limit:g}: not a fitted regression")
        if (arrays["scale"] < _SCALE_RANGE[0]).any() or (arrays["scale"] > _SCALE_RANGE[1]).any():
            raise ValueError(f"'scale' holds values outside {_SCALE_RANGE[0]:g}..{_SCALE_RANGE[1]:g}: not a fitted "
                             "regression")
        return cls(mean=arrays["mean"].astype(np.float64), scale=arrays["scale"].astype(np.float64),
                   coef=arrays["coef"].astype(np.float64), intercept=arrays["intercept"].astype(np.float64),
                   weight=weight)


def fit_linear(x: np.ndarray, indptr: np.ndarray, codes: np.ndarray, n_genres: int, *, seed: int = 0) -> LinearPart:
    """Fit on tracks ``x`` (n, n_features) with genre codes ``codes[indptr[i]:indptr[i+1]]``.

    As for the trees (engine/_genre.py), a track of several genres gives one row per genre, each weighted
    1/n_genres. ``weight`` is left at 0.5; the caller sets the chosen one (``with_weight``).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    # a constant feature (or one whose spread is below what a bundle accepts: ``from_arrays``) is left unscaled
    scale = np.where(np.isfinite(scale) & (scale >= _SCALE_RANGE[0]) & (scale <= _SCALE_RANGE[1]), scale, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    part = LinearPart(mean=mean, scale=scale, coef=np.zeros((n_genres, x.shape[1])),
                      intercept=np.full(n_genres, ABSENT_MARGIN), weight=0.5)
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(len(x)), counts)
    labels = np.asarray(codes, dtype=np.int64)
    present = np.unique(labels)
    if len(present) < 2:  # one genre in the training part: the linear part has nothing to tell apart
        part.intercept[present] = 0.0
        return part
    model = LogisticRegression(C=LINEAR_C, max_iter=_MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        # lbfgs stopping at max_iter still gives a usable fit; the folds score whatever it gives
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(part.standardized(x[rows]), labels, sample_weight=1.0 / counts[rows])
    classes = model.classes_.astype(np.int64)
    if len(classes) == 2:  # scikit-learn's binary form: one row for the second class against the first
        part.coef[classes[1]] = model.coef_[0]
        part.intercept[classes] = (0.0, float(model.intercept_[0]))
    else:
        part.coef[classes] = model.coef_
        part.intercept[classes] = model.intercept_
    return part


def blend_proba(tree_proba: np.ndarray, linear_margin: np.ndarray, weight: float) -> np.ndarray:
    """The blend's probabilities from the trees' probabilities (their log is their margin up to a per-row
    constant, which the softmax drops; a probability that underflowed float32 is read as 1e-30) and the linear
    margins; float32 like the trees' own."""
    margin = (1.0 - weight) * np.log(np.clip(tree_proba.astype(np.float64), 1e-30, None)) + weight * linear_margin
    return softmax(margin).astype(np.float32)


def softmax(margin: np.ndarray) -> np.ndarray:
    e = np.exp(margin - margin.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
