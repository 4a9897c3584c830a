"""Raw features -> transformed -> standardized -> PCA -> L2-normalized vectors.

Every fitted parameter is a plain array (``to_arrays``/``from_arrays``), so a bundle stores them
in an ``.npz`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._config import DEFAULT_PCA_VARIANCE
from ._errors import ConfigError, InvalidQuery, NotFittedError
from ._schema import parse_transform

_NONE = np.empty(0)  # no log1p or cyclic column: seed_row's arrays of their values are empty


# The transforms' arithmetic, one copy for the rows of transform_features and the seed of the compiled kernels
# (seed_row_arrays), whose answers must be the same bits.
def _log1p(values: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(values, 0))  # np.clip's own ufunc


def check_log_columns(catalog: Any, transforms: Mapping[str, str]) -> None:
    """ConfigError for a log1p column of the catalog with values below 0. ``_log1p`` takes them as 0, so that a
    new track's value never fails a query; a catalog's whole column of them (loudness in dB) became zeros,
    and what told its tracks apart was lost without a word."""
    for name, spec in transforms.items():
        if name not in catalog.feature_names or parse_transform(spec, name)[0] != "log1p":
            continue
        values = catalog.features[:, list(catalog.feature_names).index(name)]
        below = values < 0
        if below.any():
            first = int(np.argmax(below))
            raise ConfigError(f"schema.transforms.{name} = 'log1p', but {int(below.sum()):,} of the catalog's "
                              f"{len(values):,} tracks have {name} below 0 (the lowest {values.min():g}; the first, "
                              f"track {catalog.ids[first]!r}, {values[first]:g}), which log1p would take as 0: give "
                              f"{name} = 'none', or a column that starts at 0")


def _sin_cos(values: np.ndarray, periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    angle = 2 * np.pi * values / periods
    return np.sin(angle), np.cos(angle)


class Preprocessor:
    """Feature pipeline of the index space.

    Parameters
    ----------
    feature_names : sequence of str
        Raw feature columns, in the order of the input matrices.
    transforms : mapping of str to str
        ``"log1p"`` or ``"cyclic:<period>"`` per feature (others pass through). A cyclic feature
        becomes two columns, ``<name>_sin`` and ``<name>_cos``, so that 11 is next to 0.
    pca_variance : float
        Keep the fewest components explaining at least this share of variance (1.0, the default:
        every component, a rotation of the standardized features)...
    pca_components : int or None
        ...unless a fixed count is given.
    whiten : bool
        Divide each kept component by its standard deviation, so every direction of the catalog's
        spread counts alike in cosine (the audio preset's default: measured on librosa-style tables
        in benchmarks/RESULTS.md, "Retrieval defaults"). The variances are first shrunk toward their
        mean by ``whiten_shrinkage(dims, tracks)`` = dims / tracks (at most 1): a catalog with few
        tracks per dimension cannot estimate its small variances, and whitening them blows noise up
        (n tracks in n - 1 dimensions, fully whitened, sit at one equal cosine from each other). At
        1 (as many dimensions as tracks, or more) whitening is a plain rotation. Folded into
        ``components_``, so a bundle stores no extra array and embeds the same way either way.
    """

    def __init__(
        self, *, feature_names: Sequence[str], transforms: Mapping[str, str] | None = None,
        pca_variance: float = DEFAULT_PCA_VARIANCE, pca_components: int | None = None, whiten: bool = False,
    ) -> None:
        self.feature_names = tuple(feature_names)
        self.transforms = dict(transforms or {})
        self.pca_variance = pca_variance
        self.pca_components = pca_components
        self.whiten = whiten

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, raw: np.ndarray) -> Preprocessor:
        """Fit scaling and PCA on raw features of shape (n_tracks, n_features)."""
        x = self.transform_features(raw)
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        # A constant column (every value the same) carries no information: its mean is that value and its spread
        # exactly 0. Computed, a value such as 0.1 gave a spread of ~1e-17, a direction of its own that PCA kept,
        # and every added track that differed there pointed along it (cosine 1 to each other; an audit, 2026-12-07)
        constant = np.ptp(x, axis=0) == 0 if len(x) else np.zeros(x.shape[1], dtype=bool)
        mean[constant], std[constant] = (x[0, constant] if len(x) else 0.0), 0.0
        # A cyclic feature is two columns (sin, cos): scaled one by one it would weigh as two features
        # in every distance. The pair shares one scale, so together it carries one feature's variance
        # (what that buys audio-only retrieval: benchmarks/RESULTS.md, "Retrieval defaults").
        plan = self._transform_plan()
        for s, c in zip(plan["sin_dst"].tolist(), plan["cos_dst"].tolist(), strict=True):
            std[s] = std[c] = np.sqrt(std[s] ** 2 + std[c] ** 2)
        std[std == 0] = 1.0  # a constant column stays at 0 (not NaN), in the catalog and for any track added
        z = (x - mean) / std
        # PCA through the covariance eigendecomposition: the feature count is small (tens), so
        # this costs one pass over the data at any catalog size and no randomness.
        cov = (z.T @ z) / max(len(z) - 1, 1)
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.clip(eigval[order], 0, None), eigvec[:, order]
        # Deterministic signs: the largest loading of each component is positive.
        signs = np.sign(eigvec[np.abs(eigvec).argmax(axis=0), np.arange(eigvec.shape[1])])
        eigvec *= np.where(signs == 0, 1, signs)
        ratio = eigval / eigval.sum() if eigval.sum() > 0 else np.full_like(eigval, 1 / len(eigval))
        if self.pca_components is not None:
            if self.pca_components > len(ratio):  # never cut silently to what there is
                raise ConfigError(f"preprocess.pca_components = {self.pca_components}, but there are only "
                                  f"{len(ratio)} features after transforms; give at most {len(ratio)}")
            k = self.pca_components
        else:
            k = int(np.searchsorted(np.cumsum(ratio), self.pca_variance - 1e-12) + 1)
            k = min(k, len(ratio))
        self.mean_ = mean
        self.scale_ = std
        self.components_ = eigvec[:, :k].T.copy()  # (k, n_transformed)
        self.whiten_shrinkage_ = whiten_shrinkage(len(eigval), len(z)) if self.whiten else 0.0
        if self.whiten:  # a direction with (numerically) no spread is not blown up into noise
            a = self.whiten_shrinkage_
            shrunk = (1 - a) * eigval[:k] + a * eigval.mean()
            floor = max(float(eigval.sum()) * 1e-12, 1e-300)
            self.components_ /= np.sqrt(np.maximum(shrunk, floor))[:, None]
        self.explained_variance_ratio_ = ratio  # full spectrum, for the report
        return self

    # -- transforms ----------------------------------------------------------------------------
    @property
    def transformed_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for col in self.feature_names:
            kind, _ = parse_transform(self.transforms.get(col, "none"), col)
            names += [f"{col}_sin", f"{col}_cos"] if kind == "cyclic" else \
                [f"{col}_log1p" if kind == "log1p" else col]
        return tuple(names)

    def transform_features(self, raw: np.ndarray) -> np.ndarray:
        """Stateless per-feature transforms; shape (n, n_features) -> (n, n_transformed)."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.feature_names):
            got = raw.shape[1] if raw.ndim == 2 else raw.shape
            raise InvalidQuery(f"features have {got} columns, but the pipeline expects "
                               f"{len(self.feature_names)}: {list(self.feature_names)}")
        plan = self._transform_plan()
        out = np.empty((len(raw), plan["width"]))
        out[:, plan["same_dst"]] = raw[:, plan["same_src"]]
        if len(plan["log_src"]):
            out[:, plan["log_dst"]] = _log1p(raw[:, plan["log_src"]])
        if len(plan["cyc_src"]):
            out[:, plan["sin_dst"]], out[:, plan["cos_dst"]] = _sin_cos(raw[:, plan["cyc_src"]], plan["periods"])
        return out

    def _transform_plan(self) -> dict[str, Any]:
        """Which raw column goes where under which transform, worked out once: queries transform
        one row at a time, and a handful of array operations beat a loop over the columns."""
        plan = self.__dict__.get("_plan")
        if plan is None:
            lists: dict[str, list[Any]] = {k: [] for k in ("same_src", "same_dst", "log_src", "log_dst", "cyc_src",
                                                            "periods", "sin_dst", "cos_dst")}
            width = 0
            for j, col in enumerate(self.feature_names):
                kind, period = parse_transform(self.transforms.get(col, "none"), col)
                if kind == "cyclic":
                    lists["cyc_src"].append(j)
                    lists["periods"].append(period)
                    lists["sin_dst"].append(width)
                    lists["cos_dst"].append(width + 1)
                    width += 2
                else:
                    lists["log_src" if kind == "log1p" else "same_src"].append(j)
                    lists["log_dst" if kind == "log1p" else "same_dst"].append(width)
                    width += 1
            plan = self.__dict__["_plan"] = {k: np.asarray(v, dtype=np.float64 if k == "periods" else np.int64)
                                             for k, v in lists.items()} | {"width": width}
        return plan

    def seed_row_arrays(self, row: np.ndarray) -> tuple[Any, ...]:
        """What engine/_compiled_kernels.py's ``seed_row`` takes after one finite raw ``row`` (n_features,): the
        plan, with the row's log1p, sin and cos worked out here by numpy as ``transform_features`` does (with
        AVX-512 numpy's log1p is its own loop, not the C library's that numba calls)."""
        p = self._transform_plan()
        logs = _log1p(row[p["log_src"]]) if len(p["log_src"]) else _NONE
        sines = cosines = _NONE
        if len(p["cyc_src"]):
            with np.errstate(over="ignore", invalid="ignore"):  # a huge finite value: inf, then NaN, as numpy's
                sines, cosines = _sin_cos(row[p["cyc_src"]], p["periods"])
        return (p["same_src"], p["same_dst"], logs, p["log_dst"], sines, p["sin_dst"], cosines, p["cos_dst"],
                p["width"])

    def embed_transformed(self, transformed: np.ndarray) -> np.ndarray:
        """``embed`` for rows already through ``transform_features`` (the same operations)."""
        self._check_fitted()
        with np.errstate(over="ignore", invalid="ignore"):
            return l2_normalize(((transformed - self.mean_) / self.scale_) @ self.components_.T)

    def standardize(self, raw: np.ndarray) -> np.ndarray:
        """Transformed and standardized features, shape (n, n_transformed). Values too large for
        float64 become inf here rather than a warning; callers that take untrusted input check."""
        self._check_fitted()
        with np.errstate(over="ignore", invalid="ignore"):
            return (self.transform_features(raw) - self.mean_) / self.scale_

    def embed(self, raw: np.ndarray) -> np.ndarray:
        """L2-normalized PCA vectors, float32 of shape (n, n_components). A track exactly at the
        catalog mean has no direction: its vector stays zero (callers may reject it). Inputs that
        overflow once transformed give zero rows too (``l2_normalize``): callers with untrusted input
        check the transformed values first (engine/_view.py) to say which it was."""
        with np.errstate(over="ignore", invalid="ignore"):
            return l2_normalize(self.standardize(raw) @ self.components_.T)

    def residual_share(self, raw: np.ndarray) -> float:
        """Share of the standardized variance of ``raw`` (n, n_features) that the kept components
        do not span (0 when every component is kept); whitening does not change it."""
        z = self.standardize(raw)
        top = float(np.abs(z).max()) if z.size else 0.0
        if 0 < top < np.inf:  # a ratio: scaled first, the squares of huge finite values cannot overflow
            z = z / top
        unit = self.components_ / np.linalg.norm(self.components_, axis=1, keepdims=True)
        total = float((z ** 2).sum())
        return float(1 - ((z @ unit.T) ** 2).sum() / total) if total > 0 else 0.0

    @property
    def n_components(self) -> int:
        self._check_fitted()
        return int(self.components_.shape[0])

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError("Preprocessor is not fitted; call fit() or from_arrays() first")

    # -- persistence ---------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            "feature_names": np.array(self.feature_names, dtype=str),
            "transform_specs": np.array([self.transforms.get(c, "none") for c in self.feature_names], dtype=str),
            "pca_variance": np.array(self.pca_variance),
            "whiten": np.array(self.whiten),
            "mean": self.mean_,
            "scale": self.scale_,
            "components": self.components_,
            "explained_variance_ratio": self.explained_variance_ratio_,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Preprocessor:
        names = [str(n) for n in arrays["feature_names"]]
        specs = [str(s) for s in arrays["transform_specs"]]
        self = cls(feature_names=names, transforms={n: s for n, s in zip(names, specs, strict=True) if s != "none"},
                   pca_variance=float(arrays["pca_variance"]), pca_components=int(arrays["components"].shape[0]),
                   whiten=bool(arrays["whiten"]) if "whiten" in arrays else False)
        self.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        self.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        self.components_ = np.asarray(arrays["components"], dtype=np.float64)
        self.explained_variance_ratio_ = np.asarray(arrays["explained_variance_ratio"], dtype=np.float64)
        return self


def whiten_shrinkage(dims: int, tracks: int) -> float:
    """How far whitening pulls each component's variance toward their mean: dims / tracks, at
    most 1. Chosen by measurement over the rules tried (none, Ledoit-Wolf's estimate, c x dims /
    tracks for c in 0.5..4) on generated librosa-style catalogs of 60-1,000 tracks: at or above
    plain standardization at every size, and above full whitening at every size
    (benchmarks/RESULTS.md, "Whitening that a small catalog can afford")."""
    return min(1.0, dims / max(tracks, 1))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32; all-zero rows stay zero. Each row is first divided
    by its largest magnitude, so rows of huge or tiny (subnormal) finite values normalize exactly
    instead of overflowing or underflowing. Rows holding inf or NaN come out as zero rows, like
    all-zero ones (tests/engine/test_preprocess.py)."""
    return unit_rows(np.asarray(x, dtype=np.float64)).astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``l2_normalize`` before its float32 cast: float64 rows of shape (n, d) -> float64 unit rows."""
    if len(x) == 1 and x.size:  # a query's one row, the common call: the same operations, fewer of them
        scale = np.abs(x).max()
        if 0 < scale < np.inf:  # else (zero, inf or NaN) the general path below says what comes out
            y = x / scale
            return y / np.sqrt(np.add.reduce(y * y, axis=1, keepdims=True))
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.max(np.abs(x), axis=1, keepdims=True) if x.size else np.zeros((len(x), 1))
        y = np.divide(x, scale, out=np.zeros_like(x), where=scale > 0)
        norms = np.sqrt(np.add.reduce(y * y, axis=1, keepdims=True))  # np.linalg.norm's own arithmetic
        return np.divide(y, norms, out=np.zeros_like(y), where=norms > 0)
