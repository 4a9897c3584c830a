"""Moods from the co-association of k-means fits (``[moods] coassoc_bags``): HDBSCAN on how often many
k-means fits put two tracks together.

Why: where the mood space is a continuum, five or more density moods are cuts that move with the catalog (on
random Spotify subsets of 1,000-20,000 tracks a mean shift finds five or more modes only at bandwidths where
their number moves: benchmarks/mood_modes.py), and HDBSCAN on the smoothed points held ARI 0.30-0.78 against
a 90% refit on random 5,000-track Spotify subsets. A k-means cut is the optimum of a smooth objective and
moves little, but its K is a choice, and a choice flips on near-ties.
Here no K is chosen: ``bags`` random halves of the tracks are each fitted by k-means at every K in
``ks`` (5 to 8), and every track takes each fit's nearest centroid. Two tracks' co-association is the share of
fits that put them together; a track's one-hot labels side by side, scaled by 1/sqrt(fits), are a point
whose squared distance to another track's is 2 x (1 - co-association). A truncated SVD keeps COASSOC_DIMS
dimensions of those points, and HDBSCAN clusters them (engine/_moods.py): its clusters are the groups of
tracks the fits keep together, as many as there are, and its noise the tracks the fits pass back and forth.
Under 5,000 tracks (``[moods] coassoc_wide_from``), which by default is every catalog (a larger one is fitted on
4,999 of its tracks: ``fit_sample``, engine/_moodconfig.py), the fits are fewer, better and at one K: 20 random 90%
shares, each the best of 10 k-means starts, at K = the moods HDBSCAN finds in the mood space itself (the median of
its counts on the 20 shares: ``density_moods``; ``coassoc_ks = "density"``: six planted sounds get six), where it
finds at least ``fewest_moods`` (5); a continuum, where it finds fewer, is below. The moods are then the cells of
the *medoid* fit, the one that agrees most (mean adjusted Rand index) with the others (``coassoc_moods =
"medoid"``), all K of them (as the Voronoi cells of their centroids over all the tracks), and HDBSCAN on the co-
association says which tracks are core: those it does not call noise, the tracks the fits keep together. There,
HDBSCAN's own clusters of the co-association moved: where two K-cell cuts are nearly as good, fits on different
shares take different ones and their co-association holds six or seven groups for five cells; the medoid keeps one
of the two cuts, the one most fits take.
Where HDBSCAN finds fewer moods than ``fewest_moods`` in the mood space itself, the space is a continuum and any
K-cell cut of it is one of several nearly as good: on catalogs of 1,000-4,000 tracks the medoid's cut moved (ARI
under 0.8 against a 90% refit) on 15 of 207 draws; the variants tried (the fit nearest a principal-direction split,
deterministic starts, other K) each lost some draws too, and those run to a k-means optimum lost more. There
(``coassoc_continuum = "octants"``) each fit is instead the octants of the space's first OCTANT_AXES columns
(valence, energy, danceability; or level, brightness, pace) around their means over its share: eight regions a
listener can name, which move only as far as those means do (207 of 207 draws at 0.8 or more, the lowest 0.8896),
and the medoid, Voronoi cells and cores follow as for k-means fits. Between clusters and a continuum, where some
shares find fewest_moods and others fewer, a refit can take the other cut; the build says so and names the
``coassoc_ks`` that keeps its own (its K, or "octants": every fit octants whatever the count;
engine/_moodstability.py, ``boundary``). There a rebuild keeps the cut of the bundle it replaces (``KeptCut``:
``musicrec index --current``, engine/_moodcarry.py), as the build's own 90% refit keeps the build's: the count
decides only where its shares agree and so did the kept cut's. Measured against the alternatives:
benchmarks/RESULTS.md, "Moods from the co-association of k-means fits",
"Under 5,000 tracks", "Octants where the mood space is a continuum" and "At the boundary between clusters and a
continuum".
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._errors import ConfigError

COASSOC_DIMS = 5  # the co-association points are reduced to this many dimensions before HDBSCAN
DENSITY_SHARES = 20  # at most this many shares count the density moods (one HDBSCAN fit each)
# ... by their leaves: eom found fewer than five on 18 of the 20 shares of five planted moods where the leaves were
# five on every share (benchmarks/RESULTS.md, "At the boundary between clusters and a continuum")
DENSITY_SELECTION = "leaf"
OCTANT_AXES = 3  # a continuum's moods: the octants of the mood space's first three columns (2**3 regions)
DENSITY_KS = "density"  # [moods] coassoc_ks: one K, the moods HDBSCAN finds in the mood space itself (at least
# fewest_moods): random Spotify subsets of 1,000-4,000 tracks hold none, six planted sounds six
OCTANTS_KS = "octants"  # [moods] coassoc_ks: no K, every fit the octants whatever the count (a catalog at the
# boundary between clusters and a continuum keeps its cut across rebuilds: engine/_moodstability.py, ``boundary``)


@dataclasses.dataclass(frozen=True)
class KeptCut:
    """The cut a fit keeps at the boundary between clusters and a continuum instead of its count's median: OCTANTS_KS
    or a K (``cut``), whose cut it was (``source``: "the current bundle bundles/v3", "the build's own fit"), and
    whether that fit's own count split (``split``: some of its shares found fewest_moods or more, some fewer). It is
    kept where the new count splits, or where the kept cut's count did: a count that agrees one way right after
    one that split is weak evidence (a 90% refit of a catalog whose count split 13 to 7 took k-means cells, its own
    count agreeing: benchmarks/RESULTS.md, "A rebuild keeps its cut"). Where both agree, the new count decides."""

    cut: str | int
    source: str
    split: bool = False


def cut_of(coassoc: dict[str, Any]) -> str | int | None:
    """The one cut of a medoid fit (its ``facts["coassoc"]``, as the metrics keep it): OCTANTS_KS or its K; None
    for fits at several K or without a medoid (their moods are no one fit's cells)."""
    if coassoc.get("moods") != "medoid" or coassoc.get("medoid_fit") is None:  # no group: one mood, no cells
        return None
    if coassoc.get("cells") == "octants":
        return OCTANTS_KS
    first, last = (int(k) for k in coassoc.get("ks") or (0, 0))
    return first if first == last and first >= 2 else None


def parse_ks(text: str | int) -> range:
    """The K of every fit from ``[moods] coassoc_ks``: 5 or "5" (one K) or "5-8" (each K from 5 to 8);
    ValueError unless 2 <= first <= last."""
    first, dash, last = str(text).strip().partition("-")
    ks = range(int(first), int(last if dash else first) + 1)
    if not 2 <= ks.start < ks.stop:
        raise ValueError(text)
    return ks


def share_size(m: int, share: float, least: int = 1) -> int:
    """How many of ``m`` rows a fit's random ``share`` holds: at least ``least`` (a k-means fit's K), at most ``m``."""
    return min(m, max(least, int(share * m)))


LEAST_SHARE_TRACKS = 2  # a fit's share of the tracks: HDBSCAN's count of density moods on it needs two at least
K_ASKED = "the co-association's K (moods.coassoc_ks, or moods.fewest_moods for a continuum) asks for"


def check_k(k: int, m: int, *, asked: str = K_ASKED, where: str | None = None) -> None:
    """ConfigError where k-means at K ``k`` cannot cut ``m`` tracks (``where``: how to name them)."""
    if k >= m:
        raise ConfigError(f"{asked} k-means fits at K {k:,}, and K must be below the number of tracks they cluster: "
                          f"{where or f'the {m:,} tracks clustered'}; give a K of at most {m - 1:,}")


def check_share(share: float, m: int, *, least: int = 1, where: str | None = None) -> None:
    """ConfigError where a fit's ``share`` of ``m`` tracks holds fewer than LEAST_SHARE_TRACKS, with the smallest
    share that works (``least``: share_size's, a k-means fit's K)."""
    if share_size(m, share, least) >= LEAST_SHARE_TRACKS:
        return
    smallest = math.ceil(LEAST_SHARE_TRACKS / m * 10_000) / 10_000
    while int(smallest * m) < LEAST_SHARE_TRACKS:  # (the rounding of share x tracks)
        smallest += 1e-4
    raise ConfigError(f"moods.coassoc_share = {share:g} gives each fit {int(share * m)} of "
                      f"{where or f'the {m:,} tracks clustered'}, and a fit takes {LEAST_SHARE_TRACKS} at least: give "
                      f"coassoc_share >= {smallest:.4g}")


def share_rows(m: int, size: int, seed: int, bag: int) -> np.ndarray:
    """The rows of fit ``bag``'s random share: ``size`` of ``m``, drawn by ``seed`` (the same for every use of a
    bag: its k-means or octant fit, and its count of density moods)."""
    return np.random.default_rng([seed, bag]).choice(m, size=size, replace=False)


def kmeans_cells(points: np.ndarray, *, bags: int, share: float, seed: int, ks: range = range(5, 9),
                 starts: int = 1) -> np.ndarray:
    """The cell of every row of ``points`` (mood-space coordinates, (m, d)) in each of ``bags`` x len(``ks``)
    k-means fits, each on a random ``share`` of the rows and the best of ``starts`` starts: (m, fits), each
    fit's cells numbered from 0. Deterministic for a ``seed``, which draws the shares and the starts."""
    from sklearn.cluster import KMeans

    m = len(points)
    size = share_size(m, share, ks.stop - 1)
    columns = []
    for b in range(bags):
        part = share_rows(m, size, seed, b)
        for k in ks:
            start = (seed * 100_000 + b * 100 + k) % 2**32  # scikit-learn takes a random_state under 2**32
            columns.append(KMeans(k, n_init=starts, random_state=start).fit(points[part]).predict(points))
    return np.stack(columns, axis=1)


def octant_cells(points: np.ndarray, *, bags: int, share: float, seed: int, axes: int = OCTANT_AXES) -> np.ndarray:
    """The octant of every row of ``points`` (mood-space coordinates, (m, d), d >= ``axes``) in each of ``bags``
    fits: which side of its mean over a random ``share`` of the rows each of the first ``axes`` columns is on,
    (m, bags), each fit's octants numbered from 0 in the order of their sides. Deterministic for a ``seed``, which
    draws the shares."""
    m = len(points)
    size = share_size(m, share)
    sides = 2 ** np.arange(axes)
    columns = []
    for b in range(bags):
        part = share_rows(m, size, seed, b)
        code = (points[:, :axes] > points[part, :axes].mean(axis=0)) @ sides
        columns.append(np.unique(code, return_inverse=True)[1])
    return np.stack(columns, axis=1)


def coassociation(cells: np.ndarray, seed: int) -> np.ndarray:
    """Each row of ``cells`` (``kmeans_cells``) as a point of COASSOC_DIMS dimensions whose distances follow
    how often the fits part two rows: its one-hot cells side by side, scaled by 1/sqrt(fits), reduced by a
    truncated SVD (``seed``)."""
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    m, fits = cells.shape
    offsets = np.concatenate([[0], np.cumsum(cells.max(axis=0) + 1)])  # each fit's cells after the earlier fits'
    labels = sparse.csr_matrix((np.full(m * fits, 1 / np.sqrt(fits), dtype=np.float32),
                                (np.repeat(np.arange(m), fits), (cells + offsets[:-1]).ravel())),
                               shape=(m, int(offsets[-1])))
    dims = min(COASSOC_DIMS, int(offsets[-1]) - 1)
    # where every fit puts every row in one cell (a catalog of identical tracks) the SVD's explained-variance
    # ratio, not read here, is 0/0: numpy's warning reached the build's output
    with np.errstate(invalid="ignore", divide="ignore"):
        points = TruncatedSVD(dims, random_state=seed).fit_transform(labels)
    return np.ascontiguousarray(points, dtype=np.float32)


def agreement(cells: np.ndarray) -> np.ndarray:
    """The adjusted Rand index between every two fits (columns of ``cells``): (fits, fits), 1 on the diagonal."""
    from sklearn.metrics import adjusted_rand_score

    fits = cells.shape[1]
    agree = np.eye(fits)
    for a in range(fits):
        for b in range(a + 1, fits):
            agree[a, b] = agree[b, a] = adjusted_rand_score(cells[:, a], cells[:, b])
    return agree


def mean_agreement(agree: np.ndarray) -> float:
    """How much the fits agree: the mean adjusted Rand index between two different fits (``agreement`` without
    its diagonal). Under AGREED_FITS (engine/_moodstability.py) their cut is one of several nearly as good."""
    fits = len(agree)
    return float((agree.sum() - fits) / (fits * (fits - 1)))


def medoid(agree: np.ndarray) -> int:
    """The fit whose cells agree most with the others' (``agree``: the fits' ``agreement``): the highest mean
    adjusted Rand index against every other fit (the first on a tie)."""
    return int(agree.mean(axis=1).argmax())


def moods_from_fits(space: np.ndarray, config: Any, seed: int, facts: dict[str, Any], say: Callable[[str], None],
                    *, cluster: Callable[..., np.ndarray], keep: KeptCut | None = None,
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """The moods of ``space`` (mood-space points) by the co-association of k-means fits, as a resolved MoodConfig
    asks: (labels, -1 for the tracks outside every core; the medoid fit's cell of every track, or None).
    ``cluster(points, keep, selection=None)`` is the build's HDBSCAN (``keep``: its
    validity goes to the facts).

    With ``coassoc_ks = "density"`` the fits' one K is the number of moods ``cluster`` finds in ``space`` itself, at
    least ``fewest_moods``; where it finds fewer, with ``coassoc_continuum = "octants"``, a medoid and at least
    OCTANT_AXES columns, the fits are octants instead (``octant_cells``); where the shares' counts fall on both sides
    of ``fewest_moods``, or the ``keep`` cut's did, that cut is taken instead of the median's (a K no larger than a
    share); the fits are octants whatever the count with
    ``coassoc_ks = "octants"`` (ConfigError under OCTANT_AXES columns). With ``coassoc_moods = "medoid"`` a track
    HDBSCAN labels in the co-association is core, its mood its cell of the medoid fit, and every track's cell is
    returned too. With ``assign = "centroid"`` (engine/_moods.py) the moods are then the Voronoi cells of those
    cells' centroids over all the tracks, every one of them, even one whose tracks HDBSCAN all calls noise, and a
    track stays core when its Voronoi cell is its medoid cell; with the vote, a cell without cores is no mood. Where
    HDBSCAN finds no group at all in the co-association, one mood holds every track, as with every method."""
    octants = config.coassoc_ks == OCTANTS_KS  # given: octants whatever the count
    if octants:
        if space.shape[1] < OCTANT_AXES:
            raise ConfigError(f"moods.coassoc_ks = \"octants\" takes the octants of the mood space's first "
                              f"{OCTANT_AXES} columns, and it has {space.shape[1]}: leave it at \"auto\"")
        ks = range(2**OCTANT_AXES, 2**OCTANT_AXES + 1)  # an octant fit's cells, at most
        facts["coassoc"] = {"octants_given": True}
        say(f"the octants of the mood space's first {OCTANT_AXES} axes, as moods.coassoc_ks = \"octants\" asks")
    elif config.coassoc_ks == DENSITY_KS:  # as many as the mood space's own density moods, at least fewest_moods
        dense, counts = density_moods(space, config, seed, cluster)
        say(f"HDBSCAN on each fit's share of the mood space: {counts[0]}-{counts[-1]} moods, the median {dense}")
        k = max(dense, config.fewest_moods, 2)
        ks = range(k, k + 1)
        facts["coassoc"] = {"density_moods": dense, "density_counts": [counts[0], counts[-1]],
                            "density_selection": DENSITY_SELECTION}
        # a continuum: no K-cell cut is steady, the octants of its first axes are (coassoc_continuum is "octants"
        # only with the medoid: MoodConfig.resolved), where the space has their columns
        wanted, room = config.coassoc_continuum == "octants", space.shape[1] >= OCTANT_AXES
        continuum = dense < config.fewest_moods
        octants = wanted and room and continuum
        if wanted and room:
            # how many shares found fewer than fewest_moods (octants) and how many at least (k-means cells): both,
            # and the catalog sits at the boundary between the two, where a rebuild may take the other (``boundary``)
            fewer = sum(c < config.fewest_moods for c in counts)
            facts["coassoc"]["density_sides"] = [fewer, len(counts) - fewer]
            split = 0 < fewer < len(counts)
            # there, the cut kept rather than the median's (a K a fit's share can hold)
            fits = keep is not None and (keep.cut == OCTANTS_KS or 2 <= int(keep.cut) <= share_size(
                len(space), config.coassoc_share))
            if fits and (split or keep.split):
                counted = OCTANTS_KS if octants else k
                octants = keep.cut == OCTANTS_KS
                k = k if octants else int(keep.cut)
                ks = range(k, k + 1)
                facts["coassoc"]["kept"] = {"cut": keep.cut, "source": keep.source, "counted": counted,
                                            "split": "here" if split else "there"}
                why = (f"the shares split ({len(counts) - fewer} of {len(counts)} found {config.fewest_moods} moods or "
                       "more)" if split else f"the count of {keep.source} split")
                say(f"{why}: kept the cut of {keep.source}, {cut_text(keep.cut)}"
                    + ("" if counted == keep.cut else f" (the count alone would take {cut_text(counted)})"))
            elif keep is not None:  # why the build's count decides after all
                facts["coassoc"]["not_kept"] = ("both counts' shares agree" if fits else
                                                f"its K {keep.cut} is more than a fit's share of these tracks holds")
        elif wanted and continuum:
            facts["coassoc"]["no_octants"] = (f"the mood space has {space.shape[1]} column"
                                              f"{'s' if space.shape[1] > 1 else ''}, and octants take {OCTANT_AXES}")
            say(f"a continuum, but {facts['coassoc']['no_octants']}: k-means cells at K {k}")
    else:
        ks = parse_ks(config.coassoc_ks)
    points, cells = coassociate(space, config, ks, seed, facts, say, octants=octants)
    labels = cluster(points, True)
    if config.coassoc_moods != "medoid" or labels.max() < 0:
        return labels, None
    agree = agreement(cells)
    best = medoid(agree)
    facts["coassoc"].update(medoid_fit=best, fits_agree=round(mean_agreement(agree), 4))
    kept = labels >= 0  # numbered without gaps: with the vote, a cell without cores is no mood
    labels[kept] = np.unique(cells[kept, best], return_inverse=True)[1]
    return labels, cells[:, best]


def cut_text(cut: str | int) -> str:
    """A cut as the build says it: "the octants" or "k-means cells at K 5"."""
    return "the octants" if cut == OCTANTS_KS else f"k-means cells at K {cut}"


def density_moods(space: np.ndarray, config: Any, seed: int,
                  cluster: Callable[..., np.ndarray]) -> tuple[int, list[int]]:
    """How many moods HDBSCAN (``cluster``) finds in the mood space ``space``: the median of its counts of leaves
    (DENSITY_SELECTION) on the shares of the first DENSITY_SHARES of the ``coassoc_bags`` fits (the upper one of an
    even number), and those counts in order. One fit on every track flips between counts near a boundary (five
    planted moods of 2,000 tracks, overlapping: five on the catalog, two on some of its 90% shares), and with it
    k-means cells against octants; the median of 20 flips less (benchmarks/mood_borderline.py, spreads 0.10-0.13,
    with eom: 5 refits of 96 under 0.8, not 16; results/mood_borderline_eom.json and
    mood_borderline_one_fit_39ec12f.json). Leaves, not eom's choice: on five planted moods at spread 0.10 eom found
    fewer than five on 18 of one catalog's 20 shares (two on at least 11), which then took octants through them;
    the leaves were five on every share of 7 of the 9 catalogs at spreads 0.10-0.12 and on 14-15 of 20 of the other
    two (benchmarks/RESULTS.md, "At the boundary between clusters and a continuum")."""
    m = len(space)
    check_share(config.coassoc_share, m)  # (as engine/_moodcheck.py does before a build fits anything)
    size = share_size(m, config.coassoc_share)
    counts = sorted(int(cluster(space[share_rows(m, size, seed, b)], False, DENSITY_SELECTION).max()) + 1
                    for b in range(min(config.coassoc_bags, DENSITY_SHARES)))
    return counts[len(counts) // 2], counts


def coassociate(space: np.ndarray, config: Any, ks: range, seed: int, facts: dict[str, Any],
                say: Callable[[str], None], *, octants: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The fits of ``space`` a resolved MoodConfig asks for (its coassoc_bags, coassoc_share and coassoc_starts):
    k-means at ``ks``, or with ``octants`` the octants of its first OCTANT_AXES columns (``octant_cells``), one a
    bag; (their co-association points, their cells); what was done goes to ``facts["coassoc"]``."""
    t0 = time.perf_counter()
    bags, share, starts = config.coassoc_bags, config.coassoc_share, config.coassoc_starts
    if octants:
        fits = bags
        say(f"co-association of {fits} octant fits (the mood space is a continuum: the octants of its first "
            f"{OCTANT_AXES} axes around their means), each on a random {share:.0%} of the {len(space):,} tracks")
        cells = octant_cells(space, bags=bags, share=share, seed=seed)
    else:
        check_k(ks.stop - 1, len(space))  # (as engine/_moodcheck.py does before a build fits anything)
        fits = bags * len(ks)
        k_text = f"K {ks.start}" if len(ks) == 1 else f"K {ks.start}-{ks.stop - 1}"
        say(f"co-association of {fits} k-means fits ({bags} bags, {k_text}, the best of {starts} "
            f"start{'s' if starts > 1 else ''} each), each on a random {share:.0%} of the {len(space):,} tracks")
        cells = kmeans_cells(space, bags=bags, share=share, seed=seed, ks=ks, starts=starts)
    points = coassociation(cells, seed)
    facts["coassoc"] = {**facts.get("coassoc", {}), "bags": bags, "ks": [ks.start, ks.stop - 1],
                        "fits": fits, "share": share, "starts": starts, "dims": points.shape[1],
                        "moods": config.coassoc_moods, "assign": config.assign,
                        "cells": "octants" if octants else "k-means",
                        **({"octant_axes": OCTANT_AXES} if octants else {}),
                        "seconds": round(time.perf_counter() - t0, 2)}
    return points, cells
