"""Moods by consensus of bagged HDBSCAN fits (``[moods] bags``): steadier than one fit when the catalog changes;
and one HDBSCAN fit (``hdbscan_labels``), which a consensus takes many of.

One HDBSCAN fit settles each merge of its density tree once, so a region whose parts merge near the
selection threshold comes out whole in one catalog and cut in another (benchmarks/RESULTS.md, "Moods
on any catalog": that is most of what moves the Spotify moods). Here HDBSCAN is fitted ``bags`` times
on random ``bag_share`` subsets of the smoothed points; every track takes each fit's label (the vote of
that fit's nearest core tracks); tracks labelled alike by every fit form *atoms*; average linkage over
the atoms' distance (the share of fits that part two atoms), cut at ``cut``, groups them; groups
smaller than the mood floor are dropped.
A track is core when it is in a mood and HDBSCAN called it core in at least half the fits that saw it.
The bags are drawn from ``seed``, so the seed plays a part (the build reports ARI across seeds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._moodgeometry import query

VOTE_NEIGHBOURS = 10  # a track's mood: the majority of its 10 nearest core tracks (here and in engine/_moods.py)
MIN_ATOM = 5  # atoms of fewer tracks are not clustered; their tracks are not core (the vote assigns them)


def consensus(space: np.ndarray, *, bags: int, share: float, cut: float, floor: int, seed: int,
              fit: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, dict[str, object]]:
    """Mood of each row of ``space`` (smoothed mood-space points, (m, d)): 0.. for a core track, -1
    otherwise; and facts for the metrics. ``fit`` is one HDBSCAN fit: points -> labels, -1 for noise."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    m = len(space)
    labels = np.zeros((m, bags), dtype=np.int32)
    core = np.zeros((m, bags), dtype=bool)
    seen = np.zeros((m, bags), dtype=bool)
    found = []
    # A wide shift collapses tracks onto shared points (the Spotify data: 89,583 tracks onto ~26k): each bag's
    # vote is a function of the point, so it runs once per distinct point.
    distinct, back = np.unique(space, axis=0, return_inverse=True)
    back = back.ravel()
    for b in range(bags):
        idx = np.sort(np.random.default_rng([seed, b]).choice(m, size=max(2, int(share * m)), replace=False))
        fitted = fit(space[idx])
        labelled = fitted >= 0
        found.append(int(fitted.max()) + 1)
        if labelled.any():  # a fit without clusters puts every track together
            labels[:, b] = vote(space[idx][labelled], fitted[labelled], distinct)[back]
        core[idx[labelled], b] = True
        seen[idx, b] = True
    atoms, inverse, counts = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    kept = np.flatnonzero(counts >= MIN_ATOM)
    together = np.zeros((len(kept), len(kept)), dtype=np.float32)
    for b in range(bags):
        column = atoms[kept, b]
        together += column[:, None] == column[None, :]
    if len(kept) > 1:
        distance = 1.0 - together / bags
        np.fill_diagonal(distance, 0.0)
        groups = fcluster(linkage(squareform(distance, checks=False), method="average"), t=cut,
                          criterion="distance") - 1
    else:
        groups = np.zeros(len(kept), dtype=np.int64)
    atom_group = np.full(len(atoms), -1)
    atom_group[kept] = groups
    group = atom_group[inverse]
    sizes = np.bincount(group[group >= 0], minlength=1)
    moods = np.flatnonzero(sizes >= floor)
    renumber = np.full(len(sizes), -1)
    renumber[moods] = np.arange(len(moods))
    group = np.where(group >= 0, renumber[np.maximum(group, 0)], -1)
    is_core = (group >= 0) & (core.sum(axis=1) >= 0.5 * np.maximum(seen.sum(axis=1), 1))
    facts = {"bags": bags, "bag_share": share, "cut": cut, "moods_per_bag": found, "atoms": len(atoms),
             "atoms_clustered": len(kept)}
    return np.where(is_core, group, -1), facts


def vote(points: np.ndarray, labels: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Label of each row of ``at``: the majority of its nearest labelled ``points``."""
    from scipy.spatial import cKDTree

    k = min(VOTE_NEIGHBOURS, len(points))
    _, nearest = query(cKDTree(points.astype(np.float64)), at, k)
    votes = labels[nearest]
    counts = np.zeros((len(at), int(labels.max()) + 1), dtype=np.int32)
    np.add.at(counts, (np.repeat(np.arange(len(at)), k), votes.ravel()), 1)
    return counts.argmax(axis=1)


def hdbscan_labels(space: np.ndarray, min_cluster_size: int, min_samples: int, max_cluster_size: int, *,
                   selection: str, epsilon: float, n: int, facts: dict[str, Any] | None,
                   say: Callable[[str], None] | None) -> np.ndarray:
    """HDBSCAN's labels of ``space`` (-1 for noise), one of ``n`` tracks' points; its DBCV goes to ``facts`` (None:
    not computed)."""
    import hdbscan  # imported here: only builds need it, and it is slow to import

    say = say or (lambda _msg: None)
    say(f"HDBSCAN on {len(space):,} of {n:,} tracks (min_cluster_size {min_cluster_size}, min_samples {min_samples}, "
        f"{selection} selection{f', max_cluster_size {max_cluster_size}' if max_cluster_size else ''})")
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=min_samples,
        cluster_selection_method=selection, cluster_selection_epsilon=epsilon,
        max_cluster_size=max_cluster_size, core_dist_n_jobs=2, gen_min_span_tree=facts is not None,
    ).fit(space)
    if facts is not None and clusterer.labels_.max() >= 0:
        facts["dbcv"] = float(clusterer.relative_validity_)
    return clusterer.labels_
