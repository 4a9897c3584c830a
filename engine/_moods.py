"""Mood clusters: ``MoodModel`` fits the moods of a catalog and assigns every track, and any new one, to them.

How it works
- The mood space (engine/_moodspace.py) is chosen from what the schema has: Spotify's perceptual features when
  present, otherwise one audio descriptor per aspect a listener hears (level, brightness, pace, activity,
  texture); the build report says which and why.
- Above ``fit_sample`` tracks (4,999 by default; 100k with a smoothing) the moods are fitted on the tracks whose
  ids hash lowest (engine/_moodsample.py: a catalog that grows keeps most of its sample; without ids, at random).
- The default at every size, ``coassoc_bags`` (engine/_moodcoassoc.py; what "auto" takes: engine/_moodconfig.py):
  no smoothing; 20 k-means fits at HDBSCAN's count of density moods (or, on a continuum, the octants of the
  mood space's first three axes), each on a random 90%; the moods are the cells of the fit that agrees most
  with the others (``coassoc_moods = "medoid"``), and HDBSCAN on how often the fits put two tracks together
  says which tracks are core. The seed draws the fits.
- With a smoothing key (``smoother``: engine/_moodgeometry.py) the older methods run instead: the points are
  contracted toward local density modes (``blur``, ``shift`` or ``field``) and HDBSCAN clusters them, once or
  as the consensus of ``bags`` fits (engine/_moodconsensus.py). A mood must outweigh ``CLUMP_MULTIPLE`` (3)
  smoothing clumps of k tracks; where that leaves fewer than ``fewest_moods`` moods, HDBSCAN is rerun with that
  floor lowered in steps (never below the configured floors), and the report says so.
- The tracks HDBSCAN labels are the *core* members of their mood and become the *exemplars*, kept at their own
  coordinates. Every track (and any new track) is assigned without pickle from its features alone: with
  ``assign = "centroid"`` (the co-association's) moods are the Voronoi cells of their centroids; with
  ``"vote"`` a track takes the majority mood of its 10 nearest exemplars. Membership strength: the agreeing
  share of the 10 nearest exemplars, scaled down outside the nearest exemplar's core distance.
  ``assign_points`` reproduces the catalog's labels exactly. A track HDBSCAN did not see (a new track, or one
  beyond ``fit_sample``) is core when the nearest track it saw is an exemplar and it lies within that
  exemplar's core distance (bundles without the noise points ``others_`` use the distance alone).
- Stability is measured in every build (engine/_moodstability.py); names come from each mood's mean on
  absolute scales (engine/_moodnames.py).
- Why these defaults, and the alternatives measured against them: benchmarks/RESULTS.md, "Moods" and "Moods on
  any catalog".
"""


from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._errors import NotFittedError
from ._moodcoassoc import KeptCut, moods_from_fits
from ._moodconfig import MoodConfig
from ._moodconsensus import VOTE_NEIGHBOURS, consensus, hdbscan_labels
from ._mooddescribe import describe_clusters, mood_spread, silhouette
from ._moodgeometry import SMOOTHERS, blur, field, kth_neighbour_distance, nearest_centroid, query, shift, voronoi
from ._moodnames import vocabulary
from ._moodsample import sample_rows
from ._moodspace import MoodSpace, mood_space
from ._progress import Progress

__all__ = ["MoodModel", "MoodSpace", "blur", "describe_clusters", "mood_space"]

CLUMP_MULTIPLE = 3  # with smoothing, a mood holds at least this many times the blurring neighbours
# ... or fewer, down to twice, when three leave fewer than ``fewest_moods`` moods and the tracks could hold
# that many (issue 17: 5 to 60 moods on any feature set of 1,000 tracks or more); the configured floors hold.
LOWER_CLUMP_MULTIPLES = (2.75, 2.5, 2.25, 2.0)
SMOOTHING_CAP = 0.03  # the blurring neighbours are at most this share of the tracks clustered (5% before)
MIN_TRACKS_TO_CLUSTER = 10
RADIUS_SAMPLES = 30  # with the co-association: an exemplar's core radius is its 30th nearest exemplar's distance


class MoodModel:
    """HDBSCAN mood clusters with pickle-free assignment of any track."""

    def __init__(self, *, config: MoodConfig, space: MoodSpace, seed: int = 0) -> None:
        self.config = config
        self.space = space
        self.seed = seed

    def fit(
        self, points: np.ndarray, raw: np.ndarray | None, feature_names: Sequence[str], *,
        genre_matrix: np.ndarray | None = None, genre_names: Sequence[str] = (), progress: Progress | None = None,
        smoothed: np.ndarray | None = None, keep: KeptCut | None = None, keys: np.ndarray | None = None,
    ) -> MoodModel:
        """Cluster ``points`` (mood-space coordinates, shape (n_tracks, d)) and describe each
        cluster from ``raw`` (original feature values, shape (n_tracks, n_features)); with ``raw``
        None, only the labels (what a stability check needs): no names, no metrics beyond counts.
        ``smoothed``: another fit's ``smoothed_`` of the same points, reused instead of smoothing them
        again (the smoothing is deterministic; with bags, a second seed redraws only the bags). ``keep``: the cut
        kept where the count of density moods splits (engine/_moodcoassoc.py, ``KeptCut``). ``keys``: each track's
        ``id_keys`` (engine/_moodsample.py), which draw the sample of a catalog above ``fit_sample`` (without them
        the seed draws it)."""
        say = progress or (lambda _msg: None)
        n = len(points)
        self.keys_ = keys  # (kept for the stability check's refits: engine/_moodstability.py)
        points = np.ascontiguousarray(points, dtype=np.float32)
        t0 = time.perf_counter()
        fitted, labels, hdbscan_core, cells, facts = self._cluster(points, say, smoothed, keep)
        self.centroids_ = None
        if self.resolved_.assign == "centroid" and labels.max() >= 0:
            labels, self.centroids_ = voronoi(points[fitted], labels if cells is None else cells,
                                              self.config.refine_iterations)
            hdbscan_core = hdbscan_core & (labels >= 0)
            if cells is not None:  # the exemplars are the cores
                labels = np.where(hdbscan_core, labels, -1)
        fit_seconds = time.perf_counter() - t0
        core = labels >= 0
        # Exemplars are the core tracks at their own (not smoothed) coordinates: any track, new or
        # not, is assigned from its features alone, and a core track keeps the label HDBSCAN gave it.
        self.exemplars_ = np.ascontiguousarray(points[fitted][core], dtype=np.float32)
        self.exemplar_labels_ = labels[core].astype(np.int32)
        self.exemplar_radius_ = kth_neighbour_distance(self.exemplars_, facts["radius_samples"])
        # the tracks HDBSCAN saw and called noise: a new track is core when its nearest such track is an exemplar
        self.others_ = np.ascontiguousarray(points[fitted][~core], dtype=np.float32)
        self._exemplar_tree = self._others_tree = None  # built on first use from the new points

        t0 = time.perf_counter()
        self.labels_, self.strength_, self.is_core_ = self.assign_points(points)
        # Tracks HDBSCAN saw are core exactly when it labelled them; the others (catalogs above
        # fit_sample) as assign_points estimates its verdict.
        self.is_core_[fitted] = hdbscan_core
        assign_seconds = time.perf_counter() - t0
        n_clusters = self._n_clusters()
        self.metrics_ = {
            "space": {"kind": self.space.kind, "features": list(self.space.names), "why": self.space.why},
            "space_columns": len(self.space.columns),
            "fit_tracks": len(fitted),
            **({"sampled": "by id" if keys is not None else "at random"} if len(fitted) < n else {}),
            "seeded": facts["seeded"],
            "smoothing_neighbours": facts["k"],
            "smoother": facts["method"]["smoother"],
            "smoothing_neighbours_requested": self.resolved_.smoothing_neighbours
            if self.resolved_.smoothing_iterations else 0,
            "method": facts["method"],
            "smoothing_cap_share": SMOOTHING_CAP,
            "min_cluster_size": facts["min_cluster_size"],
            "clump_multiple": facts["clump_multiple"],
            **({"floor_lowered": facts["floor_lowered"]} if "floor_lowered" in facts else {}),
            "bags": facts["bags"],
            **({"consensus": facts["consensus"]} if "consensus" in facts else {}),
            **({"coassoc": facts["coassoc"]} if "coassoc" in facts else {}),
            "clusters": n_clusters,
            "sample_noise_fraction": round(float(1 - hdbscan_core.mean()), 4),
            "core_coverage": round(float(self.is_core_.mean()), 4),
            "hdbscan_core_coverage": round(float(hdbscan_core.mean()), 4),  # of the tracks it saw
            "largest_cluster_share": round(float(np.bincount(self.labels_).max() / n), 4),
            "smooth_seconds": round(facts["smooth_seconds"], 2),
            "fit_seconds": round(fit_seconds, 2),
            "assign_seconds": round(assign_seconds, 2),
            **({"too_few_tracks": too_few} if (too_few := self._too_few(len(fitted))) else {}),
        }
        if raw is None:
            self.clusters_ = []
            return self
        self.clusters_ = describe_clusters(
            self.labels_, self.is_core_, self.strength_, raw, feature_names, n_clusters,
            genre_matrix=genre_matrix, genre_names=genre_names,
            relative_features=[f for f in self.space.names if f in feature_names])
        self.metrics_.update({
            "dbcv_sample": round(facts["dbcv"], 4) if np.isfinite(facts["dbcv"]) else None,
            "silhouette": silhouette(points, self.labels_, self.config.validity_sample, self.seed),
            "spread": mood_spread(self.clusters_, raw, feature_names),
            "vocabulary": vocabulary([c["name"] for c in self.clusters_], feature_names),
        })
        return self

    def _cluster(self, points: np.ndarray, say: Progress, smoothed: np.ndarray | None = None,
                 keep: KeptCut | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
        """HDBSCAN on the (smoothed) points of the tracks it sees: (their indices, their labels with
        -1 for noise, which of them HDBSCAN labelled, the medoid fit's cell of each or None (every cell
        a mood, with cores or not), facts for the metrics)."""
        cfg = self.config
        n = len(points)
        fitted = self.fitted_ = sample_rows(np.arange(n), cfg.sample_size(n), np.random.default_rng(self.seed),
                                            self.keys_)
        m = len(fitted)
        # the "auto" keys for this many tracks; a stability refit takes the same (engine/_moodstability.py)
        cfg = self.resolved_ = self.config.resolved(m)
        self.bags_ = cfg.bags
        auto = self.config.auto_keys()
        why = f'{", ".join(auto)} "auto": {self.config.method(m)[1]}' if auto else "as configured"
        # below fit_sample every track is clustered: the seed plays no part, unless it draws the bags (of
        # HDBSCAN fits, or of the co-association's k-means fits)
        seeded = (n > m and self.keys_ is None) or self.bags_ > 0 or cfg.coassoc_bags > 0
        # Blurring bandwidth, at most 3% of the tracks so that a small catalog keeps some resolution; the
        # co-association replaces the smoothing.
        smooths = cfg.smoothing_iterations and not cfg.coassoc_bags
        k = min(cfg.smoothing_neighbours, max(1, int(m * SMOOTHING_CAP))) if smooths else 0
        if 0 < k < cfg.smoothing_neighbours:
            say(f"smoothing_neighbours {cfg.smoothing_neighbours} capped to {k}: at most {SMOOTHING_CAP:.0%} of the "
                f"{m:,} tracks "
                "clustered, so a small catalog keeps some resolution")
        # k-NN blurring collapses any region into clumps of about k tracks: a mood must outweigh a few
        # of them, or one planted cluster comes back as several clumps (tests/engine/test_moods.py).
        min_cluster_size = self._min_cluster_size(m, k, CLUMP_MULTIPLE)
        min_samples = max(1, min(cfg.min_samples, min_cluster_size))
        max_cluster_size = int(cfg.max_cluster_fraction * m) if cfg.selection == "eom" else 0
        facts: dict[str, Any] = {"seeded": seeded, "k": k, "min_cluster_size": min_cluster_size,
                                 "min_samples": min_samples, "smooth_seconds": 0.0, "dbcv": float("nan"),
                                 # an exemplar's core radius (mood space): its distance to the min_samples-th
                                 # nearest exemplar; the co-association's min_samples counts in its own space
                                 "radius_samples": min(min_samples, RADIUS_SAMPLES) if cfg.coassoc_bags
                                 else min_samples,
                                 "clump_multiple": CLUMP_MULTIPLE, "bags": {"fits": self.bags_},
                                 "method": {"smoother": "none" if cfg.coassoc_bags else cfg.smoother,
                                            "passes": cfg.smoothing_iterations, "epsilon": cfg.epsilon, "why": why}}
        cells = None  # the medoid fit's, with the co-association's medoid
        if m < max(min_samples + 2, MIN_TRACKS_TO_CLUSTER):
            say(f"only {m} tracks: too few to find density clusters; one mood holds them all")
            labels = np.full(m, -1, dtype=np.int64)
        else:
            space = points[fitted]
            self.smoothed_ = None  # the smoothed points, which a second seed reuses (the co-association is its own)
            if cfg.coassoc_bags:
                labels, cells = moods_from_fits(
                    space, cfg, self.seed, facts, say, keep=keep,
                    cluster=lambda part, keep, selection=None: self._hdbscan(
                        part, min_cluster_size, min_samples, max_cluster_size, n, facts if keep else None,
                        say if keep else None, selection=selection))
            else:
                if k and smoothed is not None:
                    space = smoothed
                elif k:
                    t0 = time.perf_counter()
                    say(f"denoising the {points.shape[1]}-d mood space of {m} tracks: {SMOOTHERS[cfg.smoother]}, "
                        f"{cfg.smoothing_iterations} x mean of {k} nearest")
                    smooth = {"blur": blur, "shift": shift, "field": field}[cfg.smoother]
                    space = smooth(space, k, cfg.smoothing_iterations, progress=say)
                    facts["smooth_seconds"] = time.perf_counter() - t0
                self.smoothed_ = space
                labels = self._fit(space, min_cluster_size, min_samples, max_cluster_size, n, facts, say)
            found = int(labels.max()) + 1
            if self.bags_ and found < cfg.fewest_moods and cfg.fewest_moods * min_cluster_size <= m:
                # Each bag holds about bag_share of every mood: at the whole catalog's floor a bag keeps only
                # moods that clear it with a share of their tracks (the 1,000-clip tables: 3 moods of 5 asked).
                say(f"{found} moods, fewer than {cfg.fewest_moods}: each bag's floor scaled to its share of the "
                    "tracks")
                facts["bag_floor_scaled"] = found
                labels = self._fit(space, min_cluster_size, min_samples, max_cluster_size, n, facts, say)
                found = int(labels.max()) + 1
            # Too few moods: lower the clump floor step by step (never below the configured floors), and
            # keep the first fit that finds enough; the steps keep it from splitting more than it must.
            for multiple in LOWER_CLUMP_MULTIPLES:
                lower = self._min_cluster_size(m, k, multiple)
                if found >= cfg.fewest_moods or cfg.fewest_moods * lower > m:
                    break
                if lower >= facts["min_cluster_size"]:
                    continue
                say(f"{found} moods, fewer than {cfg.fewest_moods}: a mood may outweigh {multiple} smoothing clumps "
                    f"instead of {CLUMP_MULTIPLE} (min_cluster_size {lower})")
                facts.setdefault("floor_lowered", {"from": min_cluster_size, "moods_before": found,
                                                   "fewest_moods": cfg.fewest_moods})
                facts.update(min_cluster_size=lower, clump_multiple=multiple)
                labels = self._fit(space, lower, min(min_samples, lower), max_cluster_size, n, facts, say)
                found = int(labels.max()) + 1
        if labels.max() < 0:
            # No density core at all (tiny or uniform catalogs): one mood holding everything is the
            # honest answer, reported as zero cores rather than invented structure.
            say("HDBSCAN found no cluster; every track goes to a single mood")
            return fitted, np.zeros(m, dtype=np.int64), np.zeros(m, dtype=bool), None, facts
        return fitted, labels, labels >= 0, cells, facts

    def _too_few(self, m: int) -> str | None:
        """What a build says when ``m`` tracks cannot hold ``fewest_moods`` moods of the configured
        smallest size (the 60-clip demo corpus: at most 2), or None."""
        cfg = self.config
        size = self._min_cluster_size(m, 0, 0.0)  # the configured floors alone, capped at half the tracks
        if not cfg.fewest_moods or max(1, m // size) >= cfg.fewest_moods:
            return None
        return (f"{m:,} tracks are too few for moods: a mood holds at least {size:,} of them "
                f"(moods.min_cluster_size {cfg.min_cluster_size}, at most half the tracks), so at most "
                f"{max(1, m // size)} can be found where {cfg.fewest_moods} are sought; "
                f"the defaults are measured on catalogs of 1,000 tracks and more (benchmarks/RESULTS.md, "
                f"\"Moods on any catalog\")")

    def _min_cluster_size(self, m: int, k: int, clump_multiple: float) -> int:
        """The smallest mood HDBSCAN may find among ``m`` tracks smoothed with ``k`` neighbours: the
        configured floors (``min_cluster_size``, ``min_cluster_fraction``) and ``clump_multiple`` clumps."""
        cfg = self.resolved_
        floor = max(cfg.min_cluster_size, math.ceil(cfg.min_cluster_fraction * m), math.ceil(clump_multiple * k))
        return max(2, min(floor, m // 2))

    def _fit(self, space: np.ndarray, min_cluster_size: int, min_samples: int, max_cluster_size: int,
             n: int, facts: dict[str, Any], say: Progress) -> np.ndarray:
        """Moods of ``space`` (-1 for tracks outside every core): one HDBSCAN fit, or with ``bags`` the
        consensus of that many fits on random subsets (engine/_moodconsensus.py), each with the whole
        catalog's floor, or that floor scaled to the subset's share once ``facts["bag_floor_scaled"]`` is
        set (too few moods at the whole floor); a mood of the consensus holds at least ``min_cluster_size``."""
        cfg = self.resolved_
        bags = self.bags_
        if not bags:
            return self._hdbscan(space, min_cluster_size, min_samples, max_cluster_size, n, facts, say)
        m = len(space)
        if "bag_floor_scaled" in facts:  # the whole catalog's floor scaled to a bag's share of the tracks
            bag_size = max(2, math.ceil(cfg.bag_share * min_cluster_size))
        else:  # the whole catalog's clump and configured floors, its fraction taken of the bag's tracks
            bag_size = self._min_cluster_size(max(2, int(cfg.bag_share * m)), facts["k"], facts["clump_multiple"])
        bag_samples = min(min_samples, bag_size)
        say(f"consensus of {bags} HDBSCAN fits, each on a random {cfg.bag_share:.0%} of the {m:,} smoothed "
            f"points (min_cluster_size {bag_size}, min_samples {bag_samples}), cut at {cfg.consensus_cut}")
        t0 = time.perf_counter()
        labels, facts["consensus"] = consensus(
            space, bags=bags, share=cfg.bag_share, cut=cfg.consensus_cut, floor=min_cluster_size,
            seed=self.seed, fit=lambda part: self._hdbscan(part, bag_size, bag_samples,
                                                           int(cfg.bag_share * max_cluster_size), n, None, None))
        facts["consensus"].update(seconds=round(time.perf_counter() - t0, 2), bag_min_cluster_size=bag_size,
                                  **({"bag_floor_scaled": facts["bag_floor_scaled"]}
                                     if "bag_floor_scaled" in facts else {}))
        return labels

    def _hdbscan(self, space: np.ndarray, min_cluster_size: int, min_samples: int, max_cluster_size: int,
                 n: int, facts: dict[str, Any] | None, say: Progress | None, *,
                 selection: str | None = None) -> np.ndarray:
        """``hdbscan_labels`` with this model's epsilon and (unless ``selection`` is given) cluster selection."""
        return hdbscan_labels(space, min_cluster_size, min_samples, max_cluster_size,
                              selection=selection or self.resolved_.selection, epsilon=self.resolved_.epsilon,
                              n=n, facts=facts, say=say)

    def assign_points(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mood of each point in mood space: (labels int32, strength float32 in [0, 1], is_core bool).

        Label: a point that is an exemplar (a core track) keeps its own label; any other point takes
        the majority of its nearest exemplars. Strength: the share of them that agree with the
        label, scaled down by how far the point lies outside the nearest exemplar's core radius.
        Core: within the nearest exemplar's core radius, and (where the model keeps ``others_``, the tracks
        HDBSCAN called noise) the nearest track HDBSCAN saw is an exemplar: for tracks it did not see, an estimate
        of its verdict.
        """
        self._check_fitted()
        points = np.ascontiguousarray(points, dtype=np.float32)
        k = min(VOTE_NEIGHBOURS, len(self.exemplars_))
        dist, nearest = query(self._tree(), points, k)
        votes = self.exemplar_labels_[nearest]
        n_clusters = self._n_clusters()
        counts = np.zeros((len(points), n_clusters), dtype=np.int32)
        np.add.at(counts, (np.repeat(np.arange(len(points)), k), votes.ravel()), 1)
        if getattr(self, "centroids_", None) is not None:
            labels = nearest_centroid(points, self.centroids_)  # exemplars agree with theirs by construction
        else:
            labels = counts.argmax(axis=1).astype(np.int32)
            own = dist[:, 0] == 0
            labels[own] = votes[own, 0]
        share = counts[np.arange(len(points)), labels] / k
        radius = self.exemplar_radius_[nearest[:, 0]]
        others = getattr(self, "others_", None)
        if others is None:  # bundles before 2026-12-06: within the nearest exemplar's core distance
            is_core = dist[:, 0] <= radius
        elif len(others):  # HDBSCAN's verdict on the nearest track it saw, and never far outside every core
            is_core = (dist[:, 0] <= query(self._tree(others), points, 1)[0][:, 0]) & (dist[:, 0] <= radius)
        else:  # HDBSCAN called no track noise
            is_core = dist[:, 0] <= radius
        closeness = np.minimum(1.0, radius / np.maximum(dist[:, 0], 1e-12))
        return labels, (share * closeness).astype(np.float32), is_core

    def _n_clusters(self) -> int:
        """The moods: one per centroid (a medoid cell may hold no core), or per exemplar label."""
        centroids = getattr(self, "centroids_", None)
        return len(centroids) if centroids is not None else int(self.exemplar_labels_.max()) + 1

    def _tree(self, others: np.ndarray | None = None) -> Any:
        """The KD-tree of the exemplars (or, given ``others_``, of those), built once."""
        from scipy.spatial import cKDTree

        name = "_exemplar_tree" if others is None else "_others_tree"
        if getattr(self, name, None) is None:
            setattr(self, name, cKDTree((self.exemplars_ if others is None else others).astype(np.float64)))
        return getattr(self, name)

    def _check_fitted(self) -> None:
        if not hasattr(self, "exemplars_"):
            raise NotFittedError("MoodModel is not fitted; call fit() or from_arrays() first")

    def to_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            "labels": self.labels_, "strength": self.strength_, "is_core": self.is_core_,
            "exemplars": self.exemplars_, "exemplar_labels": self.exemplar_labels_,
            "exemplar_radius": self.exemplar_radius_,
            "space_columns": np.asarray(self.space.columns, dtype=np.int64),
            "space_weights": np.asarray(self.space.weights, dtype=np.float64),
            **({"centroids": self.centroids_} if getattr(self, "centroids_", None) is not None else {}),
            **({"others": self.others_} if getattr(self, "others_", None) is not None else {}),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], clusters: list[dict[str, Any]],
                    config: MoodConfig, metrics: dict[str, Any] | None = None) -> MoodModel:
        space = MoodSpace(columns=tuple(int(c) for c in arrays["space_columns"]),
                          weights=tuple(float(w) for w in arrays["space_weights"]))
        self = cls(config=config, space=space)
        self.labels_ = arrays["labels"]
        self.strength_ = arrays["strength"]
        self.is_core_ = arrays["is_core"]
        self.exemplars_ = np.ascontiguousarray(arrays["exemplars"], dtype=np.float32)
        self.exemplar_labels_ = arrays["exemplar_labels"]
        self.exemplar_radius_ = arrays["exemplar_radius"]
        self.centroids_ = np.asarray(arrays["centroids"], dtype=np.float32) if "centroids" in arrays else None
        self.others_ = np.ascontiguousarray(arrays["others"], dtype=np.float32) if "others" in arrays else None
        self.clusters_ = clusters
        self.metrics_ = metrics or {}
        return self

