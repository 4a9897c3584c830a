"""Bagged (consensus) HDBSCAN moods: how much steadier than the build's one fit, and what still moves.

Not the build's method: a measurement for issue 17's stability goal (ARI >= 0.8 over all tracks between a
fit on the whole catalog and one on a random 90%). The build's mood stage (engine/_moods.py) blurs the
mood space and fits HDBSCAN once; here, after the same blur, HDBSCAN is fitted ``--bags`` times on
random ``--bag-share`` subsets of the blurred points, every track takes each fit's label (a vote of the
fit's 10 nearest core tracks, in the blurred space), tracks with the same labels in every fit form
atoms, and average linkage over the atoms' co-association (the share of fits that put two atoms
together) cut at ``--cut`` gives the moods; groups under ``--min-cluster-fraction`` of the tracks are
dropped. A track is core when it is in a mood and HDBSCAN called it core in at least half the fits that
saw it; every track is then assigned as the build assigns (a vote of its 10 nearest core tracks at
their own coordinates), so the 10% left out of a subsample fit are assigned as new tracks would be.

Three comparisons, each an adjusted Rand index over all tracks:

- ``subsample``: the whole catalog against a random 90% (its own blur), per ``--draws``;
- ``same_blur``: the same, but the 90% fit clusters the whole catalog's blurred points of its tracks
  (what the blur of a changed catalog costs);
- ``bag_seeds``: the whole catalog twice with different bag seeds (what bagging's own noise costs).

Each subsample row also holds its ``contingency`` table: tracks of each whole-catalog mood (rows) by the
mood the subsample's fit gives them (columns), so a split or a merge shows as such.

``--smoother shift`` replaces the blurring mean shift (the catalog's points move, pass after pass; the
build's default here until 2026-12-04) by a non-blurring one (each point climbs toward the
k-nearest-neighbour means of the fixed catalog; engine/_moodgeometry.py's ``shift``, the build's
``[moods] smoother = "shift"``).
``--epsilon`` is each bag's HDBSCAN ``cluster_selection_epsilon`` (the build's ``[moods] epsilon``; with
``bags`` the build runs this consensus itself: engine/_moodconsensus.py).
``--assign centroid`` gives the tracks outside the cores (and the 10% a subsample left out) the nearest
mood centroid (the mean of its core tracks) instead of the vote of their nearest cores.

Usage::

    .venv/bin/python benchmarks/mood_consensus.py ../shared/data/spotify_tracks.csv --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import BuildConfig, MoodConfig, Preprocessor, read_catalog  # noqa: E402
from engine._moodconsensus import vote  # noqa: E402
from engine._moodgeometry import blur, shift  # noqa: E402
from engine._moods import CLUMP_MULTIPLE, SMOOTHING_CAP, mood_space  # noqa: E402

CACHE = Path(os.environ.get("MUSICREC_BENCH_CACHE", "/tmp/musicrec-catalogs"))  # smoothed points, by digest


def assign(how: str, exemplars: np.ndarray, labels: np.ndarray, centroids: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Mood of each row of ``at`` outside the cores: the ``vote`` of its nearest core tracks (the build's rule),
    or its nearest mood centroid (``centroid``: the mean of the mood's core tracks, so moods end at the
    perpendicular bisectors between centroids rather than where the nearest cores change)."""
    if how == "vote":
        return vote(exemplars, labels, at)
    d = (at.astype(np.float64) ** 2).sum(axis=1)[:, None] - 2 * at @ centroids.T.astype(np.float64) \
        + (centroids.astype(np.float64) ** 2).sum(axis=1)[None, :]
    return d.argmin(axis=1)


def smoothed(points: np.ndarray, smoother: str, k: int, iterations: int) -> np.ndarray:
    """``shift`` or the build's ``blur`` of ``points``; both are deterministic, so a result is kept in
    CACHE under a digest of the points and the settings (the k-400 shift of the whole catalog: minutes)."""
    import hashlib

    key = hashlib.sha256(np.ascontiguousarray(points, dtype=np.float32).tobytes()).hexdigest()[:16]
    path = CACHE / f"smoothed-{smoother}-k{k}-i{iterations}-{key}.npy"
    if path.is_file():
        return np.load(path)
    out = shift(points, k, iterations) if smoother == "shift" else blur(points, k, iterations)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def track_average_groups(distance: np.ndarray, weights: np.ndarray, cut: float) -> np.ndarray:
    """Average linkage over *tracks* rather than atoms: two groups' distance is the mean of ``distance``
    over every pair of their tracks (an atom of ``weights[a]`` tracks weighs that much), merged closest
    first while it is at most ``cut``. Returns a group per atom (0..). With atoms as the units
    (scipy's average linkage), an atom of 5 tracks sways a merge as much as one of 10,000."""
    n = len(weights)
    total = distance * np.outer(weights, weights)  # sum of pair distances between two groups
    size = weights.copy()
    alive = np.ones(n, dtype=bool)
    owner = np.arange(n)
    while alive.sum() > 1:
        idx = np.flatnonzero(alive)
        mean = total[np.ix_(idx, idx)] / np.outer(size[idx], size[idx])
        np.fill_diagonal(mean, np.inf)
        flat = int(np.argmin(mean))
        i, j = idx[flat // len(idx)], idx[flat % len(idx)]
        if mean.flat[flat] > cut:
            break
        total[i, :] += total[j, :]
        total[:, i] += total[:, j]
        size[i] += size[j]
        alive[j] = False
        owner[owner == j] = i
    return np.unique(owner, return_inverse=True)[1].ravel()


def lifetime_cut(tree: np.ndarray, sizes: np.ndarray, floor: float) -> tuple[float, float]:
    """Where to cut the consensus dendrogram by the lifetime criterion (Fred & Jain's evidence
    accumulation): in the middle of the widest gap between consecutive merge heights, among the cuts
    that leave 5 to 60 groups of at least ``floor`` tracks (``sizes``: tracks per leaf). A cut held by a
    wide gap does not move when the co-associations move a little; a fixed height can fall between two
    merges that trade places from one catalog to the next."""
    from scipy.cluster.hierarchy import fcluster

    heights = np.sort(tree[:, 2])
    best: tuple[float, float] | None = None
    for i in range(len(heights) - 1):
        gap = float(heights[i + 1] - heights[i])
        if gap <= 0 or (best is not None and gap <= best[1]):
            continue
        t = float(heights[i] + heights[i + 1]) / 2
        groups = fcluster(tree, t=t, criterion="distance") - 1
        if 5 <= int((np.bincount(groups, weights=sizes) >= floor).sum()) <= 60:
            best = (t, gap)
    if best is None:
        raise SystemExit("no cut of the consensus dendrogram leaves 5 to 60 moods")
    return best


def consensus(points: np.ndarray, config: MoodConfig, args: argparse.Namespace, seed: int,
              blurred: np.ndarray | None = None) -> dict[str, Any]:
    """Moods of ``points`` (mood-space coordinates) by consensus of bagged HDBSCAN fits."""
    import hdbscan
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    m = len(points)
    t0 = time.perf_counter()
    k = min(args.neighbours or config.smoothing_neighbours, max(1, int(m * SMOOTHING_CAP)))
    if blurred is not None:
        smooth = blurred
    else:
        smooth = smoothed(points, args.smoother, k, args.iterations or config.smoothing_iterations)
    t1 = time.perf_counter()
    labels = np.empty((m, args.bags), dtype=np.int32)
    core = np.zeros((m, args.bags), dtype=bool)
    seen = np.zeros((m, args.bags), dtype=bool)
    for b in range(args.bags):
        idx = np.sort(np.random.default_rng([seed, b]).choice(m, size=int(args.bag_share * m), replace=False))
        size = max(config.min_cluster_size, math.ceil(args.min_cluster_fraction * len(idx)), CLUMP_MULTIPLE * k)
        fit = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=config.min_samples, cluster_selection_method="leaf",
                              cluster_selection_epsilon=args.epsilon, core_dist_n_jobs=2).fit(smooth[idx]).labels_
        labelled = fit >= 0
        labels[:, b] = vote(smooth[idx][labelled], fit[labelled], smooth)
        core[idx[labelled], b] = True
        seen[idx, b] = True
    t2 = time.perf_counter()
    atoms, inverse, counts = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    kept = np.flatnonzero(counts >= args.min_atom)
    together = np.zeros((len(kept), len(kept)), dtype=np.float32)
    for b in range(args.bags):
        column = atoms[kept, b]
        together += column[:, None] == column[None, :]
    distance = 1.0 - together / args.bags
    np.fill_diagonal(distance, 0.0)
    floor = max(CLUMP_MULTIPLE * k, args.min_cluster_fraction * m)
    if args.linkage == "tracks":
        cut, gap = float(args.cut), None
        groups = track_average_groups(distance, counts[kept].astype(np.float64), cut)
    else:
        tree = linkage(squareform(distance, checks=False), method="average")
        cut, gap = (float(args.cut), None) if args.cut != "lifetime" else lifetime_cut(tree, counts[kept], floor)
        groups = fcluster(tree, t=cut, criterion="distance") - 1
    atom_group = np.full(len(atoms), -1)
    atom_group[kept] = groups
    group = atom_group[inverse]
    sizes = np.bincount(group[group >= 0])
    moods = np.flatnonzero(sizes >= floor)
    renumber = np.full(len(sizes), -1)
    renumber[moods] = np.arange(len(moods))
    group = np.where(group >= 0, renumber[np.maximum(group, 0)], -1)
    is_core = (group >= 0) & (core.sum(axis=1) >= 0.5 * np.maximum(seen.sum(axis=1), 1))
    centroids = np.stack([points[is_core & (group == g)].mean(axis=0) for g in range(len(moods))]) \
        if len(moods) else np.zeros((0, points.shape[1]), dtype=np.float32)
    final = assign(args.assign, points[is_core], group[is_core], centroids, points)
    final[is_core] = group[is_core]
    return {
        "labels": final, "is_core": is_core, "exemplars": points[is_core], "exemplar_labels": group[is_core],
        "centroids": centroids,
        "blurred": smooth,
        "facts": {"moods": len(moods), "core_share": round(float(is_core.mean()), 4),
                  "largest_share": round(float(np.bincount(final).max() / m), 4),
                  "moods_per_bag": [int(labels[:, b].max()) + 1 for b in range(args.bags)],
                  "atoms": len(atoms), "atoms_clustered": len(kept), "cut": round(cut, 4),
                  **({"cut_gap": round(gap, 4)} if gap is not None else {}),
                  "blur_seconds": round(t1 - t0, 1), "bags_seconds": round(t2 - t1, 1),
                  "consensus_seconds": round(time.perf_counter() - t2, 1)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    from sklearn.metrics import adjusted_rand_score
    from sklearn.metrics.cluster import contingency_matrix

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--bags", type=int, default=10)
    parser.add_argument("--bag-share", type=float, default=0.5)
    parser.add_argument("--cut", default="0.6", help="average-linkage cut on 1 - co-association, or 'lifetime': "
                        "the middle of the dendrogram's widest gap that leaves 5 to 60 moods")
    parser.add_argument("--linkage", choices=("atoms", "tracks"), default="atoms",
                        help="average linkage with atoms as the units (scipy) or weighted by their tracks")
    parser.add_argument("--assign", choices=("vote", "centroid"), default="vote",
                        help="tracks outside the cores: the nearest cores' vote (the build's) or the nearest centroid")
    parser.add_argument("--min-atom", type=int, default=5, help="atoms smaller than this are assigned, not clustered")
    parser.add_argument("--min-cluster-fraction", type=float, default=0.02)
    parser.add_argument("--smoother", choices=("blur", "shift"), default="blur",
                        help="the build's blurring mean shift, or a non-blurring one (the catalog stays put)")
    parser.add_argument("--neighbours", type=int, default=0, help="smoothing neighbours k (0: the build's)")
    parser.add_argument("--iterations", type=int, default=0, help="smoothing passes (0: the build's)")
    parser.add_argument("--draws", type=int, default=2, help="90%% subsamples, each with its own blur")
    parser.add_argument("--first-draw", type=int, default=1, help="the first subsample's draw (its random seed)")
    parser.add_argument("--epsilon", type=float, default=0.0, help="each bag's HDBSCAN cluster_selection_epsilon")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.linkage == "tracks" and args.cut == "lifetime":  # before minutes of smoothing, not after
        parser.error("--linkage tracks cuts at a fixed height only: give --cut a number")

    schema = BuildConfig().schema
    catalog = read_catalog(args.csv, schema)
    raw = catalog.features
    prep = Preprocessor(feature_names=list(catalog.feature_names), transforms=schema.transforms).fit(raw)
    # the blur at k 100 x 5 unless --smoother/--neighbours/--iterations say otherwise: the build's default on
    # catalogs this size when these figures were measured (2026-12-02/03; engine/_moodconfig.py has today's)
    config = MoodConfig(smoother="blur", smoothing_neighbours=100, smoothing_iterations=5)
    space = mood_space(prep.transformed_names, config.weights)
    points = np.ascontiguousarray(space.project(prep.standardize(raw)), dtype=np.float32)
    n = len(points)
    print(f"{args.csv}: {n:,} tracks; mood space {', '.join(space.names)}", flush=True)

    full = consensus(points, config, args, seed=0)
    print("whole catalog:", full["facts"], flush=True)
    out: dict[str, Any] = {"whole": full["facts"], "subsample": [], "same_blur": None, "bag_seeds": None}

    def against_full(fit: dict[str, Any], sub: np.ndarray) -> dict[str, Any]:
        labels = assign(args.assign, fit["exemplars"], fit["exemplar_labels"], fit["centroids"], points)  # the 10% too
        labels[sub[fit["is_core"]]] = fit["exemplar_labels"]
        both = full["is_core"][sub] & fit["is_core"]
        return {**fit["facts"], "ari_all_tracks": round(float(adjusted_rand_score(full["labels"], labels)), 4),
                "ari_core_in_both": round(float(adjusted_rand_score(full["labels"][sub][both],
                                                                    fit["labels"][both])), 4),
                "core_in_both_share": round(float(both.mean()), 4),
                # tracks of each whole-catalog mood (row) by the mood this fit gives them (column): what moved
                "contingency": contingency_matrix(full["labels"], labels).tolist()}

    for draw in range(args.first_draw, args.first_draw + args.draws):
        sub = np.sort(np.random.default_rng(draw).choice(n, size=round(0.9 * n), replace=False))
        row = against_full(consensus(points[sub], config, args, seed=0), sub)
        out["subsample"].append(row)
        print(f"90% draw {draw} (own blur):", row, flush=True)
        if draw == args.first_draw:
            row = against_full(consensus(points[sub], config, args, seed=0, blurred=full["blurred"][sub]), sub)
            out["same_blur"] = row
            print(f"90% draw {draw}, the whole catalog's blurred points:", row, flush=True)
    again = consensus(points, config, args, seed=1, blurred=full["blurred"])
    out["bag_seeds"] = {**again["facts"],
                        "ari_all_tracks": round(float(adjusted_rand_score(full["labels"], again["labels"])), 4)}
    print("whole catalog, bag seed 1:", out["bag_seeds"], flush=True)
    out.update({
        "command": "python benchmarks/mood_consensus.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "tracks": n,
        "settings": {k: v for k, v in vars(args).items() if k not in ("csv", "json")},
    })
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
