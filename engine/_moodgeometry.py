"""Geometry of the mood space: blurring and non-blurring mean shift, exact neighbour search, moods as Voronoi cells.

Split from engine/_moods.py (the model); everything here is a function of arrays of mood-space points,
shape (n, d), with exact k-d tree search on 2 threads (low-dimensional spaces are where k-d trees
beat brute force by orders of magnitude).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._progress import Progress, Ticker

SMOOTHERS = {"blur": "blurring mean shift", "shift": "non-blurring mean shift", "field": "mean-shift field"}


def blur(points: np.ndarray, neighbours: int, iterations: int, chunk: int = 8_192,
         progress: Progress | None = None) -> np.ndarray:
    """Blurring mean shift with a k-nearest-neighbour kernel: each iteration replaces every point by
    the mean of its ``neighbours`` nearest points (itself included) among the current points. Points
    contract toward the density modes, so HDBSCAN finds dense cores where the raw space is a
    continuum. Deterministic (exact k-d tree search); memory is the points plus one chunk of
    neighbour lists."""
    return _mean_shift(points, neighbours, iterations, chunk=chunk, progress=progress)


def shift(points: np.ndarray, neighbours: int, iterations: int, chunk: int = 8_192,
          progress: Progress | None = None) -> np.ndarray:
    """Non-blurring mean shift with a k-nearest-neighbour kernel: each point moves, ``iterations``
    times, to the mean of its ``neighbours`` nearest points *of the catalog*, which stays put (``blur``
    moves the catalog itself, pass after pass). A steadier function of the catalog: 10% fewer tracks
    move the smoothed points less (benchmarks/RESULTS.md, "Moods on any catalog"); a wide kernel costs
    more than the blur's (k 400 over 89,583 tracks: 2-3.5 minutes a fit on 2 cores)."""
    return _over_the_catalog(points, neighbours, iterations, follow=False, chunk=chunk, progress=progress)


INTERPOLATE = 8  # the tracks whose first-pass means a ``field`` pass after the first averages


def field(points: np.ndarray, neighbours: int, iterations: int, chunk: int = 8_192,
          progress: Progress | None = None) -> np.ndarray:
    """``shift`` at a fraction of its cost: the first pass is the same (every track to m(x), the mean of
    its k nearest tracks); later passes do not search k nearest again but follow that field, a point y
    moving to the mean of m(x) over its ``INTERPOLATE`` nearest tracks (k / INTERPOLATE times less
    search). Not the same points as ``shift``: 8 passes over 5,000 Gaussian points at k 100 differ by
    about half the points' spread, the field adding a little blur each pass; it is a smoother of its own,
    measured on its own. On the Spotify data (k 400, 8 passes) 10-13 s a fit against 2-3.5 minutes,
    and steadier moods than the blur (benchmarks/RESULTS.md, "Moods on any catalog"). Deterministic."""
    return _over_the_catalog(points, neighbours, iterations, follow=True, chunk=chunk, progress=progress)


def _over_the_catalog(points: np.ndarray, neighbours: int, iterations: int, *, follow: bool, chunk: int,
                      progress: Progress | None) -> np.ndarray:
    """Every point toward the catalog's k-nearest means, ``iterations`` times, one k-d tree of the catalog
    for every pass: the mean of its k nearest tracks (``shift``, and the first pass of ``field``), or with
    ``follow`` after the first pass the mean of those first-pass means over its INTERPOLATE nearest tracks."""
    from scipy.spatial import cKDTree

    x = np.asarray(points, dtype=np.float64)
    n, k = len(x), min(neighbours, len(x))
    tree = cKDTree(x)
    tick = Ticker(progress, "denoising", iterations * n, unit="points")
    first = y = x
    for iteration in range(iterations):
        support, kk = (first, min(INTERPOLATE, n)) if follow and iteration else (x, k)
        y = _means(tree, support, y, kk, chunk,
                   lambda done, i=iteration: tick(i * n + done, f", pass {i + 1} of {iterations}"))
        if iteration == 0:
            first = y
    return y.astype(np.float32)


def _mean_shift(points: np.ndarray, neighbours: int, iterations: int, *, chunk: int,
                progress: Progress | None) -> np.ndarray:
    """Every point to the mean of its nearest current points, ``iterations`` times (a new k-d tree
    for every pass: the support moves with the points)."""
    from scipy.spatial import cKDTree

    y = np.asarray(points, dtype=np.float64)
    n, k = len(y), min(neighbours, len(y))
    tick = Ticker(progress, "denoising", iterations * n, unit="points")
    for iteration in range(iterations):
        y = _means(cKDTree(y), y, y, k, chunk,
                   lambda done, i=iteration: tick(i * n + done, f", pass {i + 1} of {iterations}"))
    return y.astype(np.float32)


def _means(tree: Any, support: np.ndarray, at: np.ndarray, k: int, chunk: int,
           tick: Callable[[int], None]) -> np.ndarray:
    """For each row of ``at``: the mean of ``support``'s rows at its k nearest points of ``tree``."""
    out = np.empty_like(at)
    for start in range(0, len(at), chunk):
        _, nearest = tree.query(at[start:start + chunk], k=k, workers=2)
        nearest = nearest.reshape(len(nearest), k)
        acc = np.zeros((len(nearest), at.shape[1]))
        for j in range(k):  # column by column: the (chunk, k, d) gather would cost k times more
            acc += support[nearest[:, j]]
        out[start:start + chunk] = acc / k
        tick(min(start + chunk, len(at)))
    return out


def query(tree: Any, points: np.ndarray, k: int, chunk: int = 16_384) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours from a scipy k-d tree, in chunks (bounded memory), on 2 threads.
    Low-dimensional mood spaces are where k-d trees beat brute force by orders of magnitude."""
    dist = np.empty((len(points), k), dtype=np.float64)
    nearest = np.empty((len(points), k), dtype=np.int64)
    for start in range(0, len(points), chunk):
        d, i = tree.query(points[start:start + chunk], k=k, workers=2)
        dist[start:start + chunk] = d.reshape(-1, k)
        nearest[start:start + chunk] = i.reshape(-1, k)
    return dist, nearest


def kth_neighbour_distance(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of each point to its k-th nearest other point (HDBSCAN's core distance)."""
    from scipy.spatial import cKDTree

    kk = min(k + 1, len(points))  # +1: the point itself comes back first
    dist, _ = query(cKDTree(points.astype(np.float64)), points, kk)
    return dist[:, -1].astype(np.float32)


def nearest_centroid(points: np.ndarray, centroids: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    out = np.empty(len(points), dtype=np.int32)
    c2 = (centroids.astype(np.float64) ** 2).sum(axis=1)
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk].astype(np.float64)
        out[start:start + chunk] = np.argmin(c2[None, :] - 2 * p @ centroids.T.astype(np.float64), axis=1)
    return out


def voronoi(points: np.ndarray, labels: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Moods as Voronoi cells: the centroids of the labelled groups (HDBSCAN's clusters, or a medoid k-means
    or octant fit's cells; in mood space), moved by ``iterations`` Lloyd (k-means) steps over all ``points``; a
    labelled track stays labelled when its own cell is its group's. Returns (labels with -1 for tracks
    no longer core, centroids); moods left empty are dropped and the rest renumbered."""
    k = int(labels.max()) + 1
    centroids = np.stack([points[labels == c].mean(axis=0) for c in range(k)]).astype(np.float32)
    for _ in range(iterations):
        cell = nearest_centroid(points, centroids)
        counts = np.bincount(cell, minlength=k)
        sums = np.zeros_like(centroids, dtype=np.float64)
        np.add.at(sums, cell, points)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids).astype(np.float32)
        if np.allclose(moved, centroids, atol=1e-5):
            break
        centroids = moved
    cell = nearest_centroid(points, centroids)
    kept = np.where(labels == cell, labels, -1)
    alive = np.unique(kept[kept >= 0])
    renumber = np.full(k, -1, dtype=np.int64)
    renumber[alive] = np.arange(len(alive))
    return np.where(kept >= 0, renumber[np.maximum(kept, 0)], -1), centroids[alive]
