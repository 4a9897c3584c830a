"""Moods from the co-association of k-means fits (``[moods] coassoc_bags``): HDBSCAN on how often many
k-means fits put two tracks together.

Why: where the mood space is a continuum, five or more density moods are cuts that move with the catalog (on
random Spotify subsets of 1,000-20,000 tracks a mean shift finds five or more modes only at bandwidths where
their number moves: benchmarks/mood_modes.py), and HDBSCAN on the smoothed points held ARI 0.30-0.78 against
a 90% refit on random 5,000-track Spotify subsets. A k-means cut is the optimum of a smooth objective and
moves little, but its K is a choice, and a choice flips on near-ties.
Here no K is chosen: ``bags`` random halves of the tracks are each fitted by k-means at every K in
COASSOC_KS, and every track takes each fit's nearest centroid. Two tracks' co-association is the share of
fits that put them together; a track's one-hot labels side by side, scaled by 1/sqrt(fits), are a point
whose squared distance to another track's is 2 x (1 - co-association). A truncated SVD keeps COASSOC_DIMS
dimensions of those points, and HDBSCAN clusters them (engine/_moods.py): its clusters are the groups of
tracks the fits keep together, as many as there are, and its noise the tracks the fits pass back and forth.
Measured against the alternatives: benchmarks/RESULTS.md, "Moods from the co-association of k-means fits".
"""

from __future__ import annotations

import numpy as np

COASSOC_KS = range(5, 9)  # every bag is fitted by k-means at each of these K
COASSOC_DIMS = 5  # the co-association points are reduced to this many dimensions before HDBSCAN


def coassociation(points: np.ndarray, *, bags: int, share: float, seed: int) -> np.ndarray:
    """Each row of ``points`` (mood-space coordinates, (m, d)) as a point of COASSOC_DIMS dimensions whose
    distances follow how often ``bags`` x len(COASSOC_KS) k-means fits, each on a random ``share`` of the
    rows, part two rows (above). Deterministic for a ``seed``, which draws the halves and the fits' starts."""
    from scipy import sparse
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD

    m = len(points)
    size = max(max(COASSOC_KS), int(share * m))
    columns, offset = [], 0  # each fit's cell of every row, numbered after the earlier fits' cells
    for b in range(bags):
        half = np.random.default_rng([seed, b]).choice(m, size=size, replace=False)
        for k in COASSOC_KS:
            start = (seed * 100_000 + b * 100 + k) % 2**32  # scikit-learn takes a random_state under 2**32
            cells = KMeans(k, n_init=1, random_state=start).fit(points[half]).predict(points)
            columns.append(offset + cells)
            offset += k
    fits = len(columns)
    rows = np.repeat(np.arange(m), fits)
    labels = sparse.csr_matrix((np.full(m * fits, 1 / np.sqrt(fits), dtype=np.float32),
                                (rows, np.stack(columns, axis=1).ravel())), shape=(m, offset))
    dims = min(COASSOC_DIMS, offset - 1)
    return np.ascontiguousarray(TruncatedSVD(dims, random_state=seed).fit_transform(labels), dtype=np.float32)
