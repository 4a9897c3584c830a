"""The mood map: a 2-D projection of the catalog, computed at build time and stored in the bundle
(``moodmap.npz``), so the web console and the HTML report draw the same map.

Method: Fisher's linear discriminant (LDA) of the mood space (the standardized, weighted features
the moods are clustered in, engine/_moods.py) with the moods as classes: the 2-D linear view in
which the moods lie furthest apart relative to their own spread. A linear map has readable axes
(each is a weighted sum of mood features; the bundle keeps the weights, so the report can say
"more energy, less acousticness") and places any new track exactly. t-SNE was tried first and
dropped: sklearn's took 55-105 s for 1,000-3,000 tracks on this shared 2-core machine (a build of
89,583 tracks would need a sample and an interpolation, and a map whose distances mean nothing
between clusters). Fewer than three moods (LDA gives at most moods - 1 axes): PCA of the mood space.
LDA is fitted on at most ``FIT_SAMPLE`` tracks (deterministic from the build seed) and applied to all.

Stored arrays (``allow_pickle=False``): ``xy`` (n_tracks, 2) float32, row i = track i; ``mean`` (d,)
and ``axes`` (d, 2), so ``xy = (points - mean) @ axes``; ``columns`` the mood-space feature names
(packed strings); ``method`` (packed string). Bundles built before maps existed have no such file:
the map is optional and everything else works without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._arrays import load_npz, pack_strings, save_npz, unpack_strings
from ._errors import BundleIntegrityError

FILE = "moodmap.npz"
FIT_SAMPLE = 20_000


@dataclasses.dataclass(frozen=True)
class MoodMap:
    xy: np.ndarray  # (n_tracks, 2) float32
    mean: np.ndarray  # (d,)
    axes: np.ndarray  # (d, 2)
    columns: tuple[str, ...]  # mood-space feature names, d of them
    method: str

    def place(self, points: np.ndarray) -> np.ndarray:
        """Map coordinates of mood-space ``points`` of shape (n, d)."""
        return ((np.asarray(points, dtype=np.float64) - self.mean) @ self.axes).astype(np.float32)

    def axis_labels(self, terms: int = 3) -> list[str]:
        """Each axis as its strongest features with signs, e.g. "+energy -acousticness"."""
        out = []
        for j in range(2):
            weights = self.axes[:, j]
            order = np.argsort(-np.abs(weights))[:terms]
            out.append(" ".join(f"{'+' if weights[i] > 0 else '-'}{self.columns[i]}" for i in order
                                if abs(weights[i]) >= 0.15 * np.abs(weights).max()))
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        cols, col_offsets = pack_strings(self.columns)
        method, method_offsets = pack_strings([self.method])
        return {"xy": self.xy, "mean": self.mean, "axes": self.axes, "columns": cols, "columns_offsets": col_offsets,
                "method": method, "method_offsets": method_offsets}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MoodMap:
        columns = tuple(str(c) for c in unpack_strings(arrays["columns"], arrays["columns_offsets"]))
        method = str(unpack_strings(arrays["method"], arrays["method_offsets"])[0])
        return cls(xy=arrays["xy"], mean=arrays["mean"], axes=arrays["axes"], columns=columns, method=method)


def fit_mood_map(points: np.ndarray, labels: np.ndarray, columns: Sequence[str], *, seed: int = 0) -> MoodMap:
    """The map of mood-space ``points`` (n, d) whose moods are ``labels`` (n,)."""
    points = np.asarray(points, dtype=np.float64)
    n, d = points.shape
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.choice(n, size=FIT_SAMPLE, replace=False)) if n > FIT_SAMPLE else np.arange(n)
    classes = np.unique(labels[fit])
    if len(classes) >= 3 and d >= 2:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        lda = LinearDiscriminantAnalysis(n_components=2, solver="svd").fit(points[fit], labels[fit])
        mean, axes = lda.xbar_, lda.scalings_[:, :2]
        method = ("linear discriminant analysis of the mood space (the moods as classes), fitted on "
                  f"{len(fit):,} tracks")
    else:
        mean = points[fit].mean(axis=0)
        _, _, vt = np.linalg.svd(points[fit] - mean, full_matrices=False)
        axes = np.zeros((d, 2))
        axes[:, :min(2, len(vt))] = vt[:2].T
        method = f"principal components of the mood space (only {len(classes)} mood(s): no discriminant)"
    axes = np.asarray(axes, dtype=np.float64).reshape(d, 2)
    # a sign convention, so rebuilding the same catalog never mirrors the map
    for j in range(2):
        if axes[np.argmax(np.abs(axes[:, j])), j] < 0:
            axes[:, j] = -axes[:, j]
    mean = np.asarray(mean, dtype=np.float64)
    xy = ((points - mean) @ axes).astype(np.float32)
    return MoodMap(xy=xy, mean=mean, axes=axes, columns=tuple(columns), method=method)


def save_mood_map(directory: Path, mood_map: MoodMap) -> None:
    save_npz(directory / FILE, mood_map.to_arrays())


def load_mood_map(path: Path, n_tracks: int, dims: int) -> MoodMap:
    mood_map = MoodMap.from_arrays(load_npz(path))
    if mood_map.xy.shape != (n_tracks, 2) or mood_map.axes.shape != (dims, 2) or mood_map.mean.shape != (dims,) \
            or len(mood_map.columns) != dims:
        raise BundleIntegrityError(f"{path}: the mood map does not match the tracks ({mood_map.xy.shape} points, "
                                   f"axes {mood_map.axes.shape}, expected ({n_tracks}, 2) and ({dims}, 2))")
    if bad := int((~np.isfinite(mood_map.xy).all(axis=1)).sum()):
        raise BundleIntegrityError(f"{path}: the mood map places {bad:,} of its {n_tracks:,} tracks at a non-finite "
                                   "position")
    return mood_map
