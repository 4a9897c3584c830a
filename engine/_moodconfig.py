"""The ``[moods]`` configuration: HDBSCAN mood clustering (engine/_moods.py), and what its "auto" keys take
by catalog size. Split from engine/_config.py, which reads it with the rest of a build's configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from ._errors import ConfigError

MOOD_WEIGHTS = {"valence": 1.0, "energy": 1.0, "danceability": 1.0, "acousticness": 1.0,
                "instrumentalness": 1.0, "tempo": 1.0}

# What the [moods] keys set to "auto" (the defaults) take, by the tracks clustered (MoodConfig.resolved). Below
# moods.small_catalog: the blur and a consensus of 20 fits (seconds there). From there on: the mean-shift field,
# whose k is a share of the tracks (403 of the 89,583 Spotify tracks), epsilon 0.16 and a consensus of 10 fits:
# steadier on the Spotify data at about the blur's cost (benchmarks/RESULTS.md, "Moods on any catalog").
SMALL_CATALOG_MOODS: dict[str, Any] = {"smoother": "blur", "smoothing_neighbours": 100, "smoothing_iterations": 5,
                                       "epsilon": 0.0, "bags": 20}
# (its smoothing_neighbours, None here, is LARGE_CATALOG_NEIGHBOURS of the tracks: MoodConfig.resolved)
LARGE_CATALOG_MOODS: dict[str, Any] = {"smoother": "field", "smoothing_neighbours": None, "smoothing_iterations": 8,
                                       "epsilon": 0.16, "bags": 10}
LARGE_CATALOG_NEIGHBOURS = 0.0045  # the field's k ("auto", from small_catalog on): this share of the tracks clustered


@dataclasses.dataclass(frozen=True, kw_only=True)
class MoodConfig:
    """HDBSCAN mood clustering (engine/_moods.py; why these defaults and what was measured: benchmarks/RESULTS.md).

    Default method: the mood space is denoised by a mean shift (``smoother``, ``smoothing_neighbours``,
    ``smoothing_iterations``), then HDBSCAN runs on the smoothed points of the whole catalog (up to
    ``fit_sample`` tracks), or a consensus of ``bags`` fits on random subsets of them. Each track that
    HDBSCAN labels is a core member of its mood; every other track is assigned by its nearest cores.
    The keys left at "auto" take SMALL_CATALOG_MOODS or LARGE_CATALOG_MOODS by the tracks clustered.

    The first method (HDBSCAN on a 30k random sample of the raw mood space: 7% of all tracks
    labelled by HDBSCAN, one mood of ~48%) is still available with ``smoothing_iterations = 0,
    bags = 0, fit_sample = 30000, min_cluster_size = 60, min_cluster_fraction = 0, min_samples = 2,
    selection = "leaf", epsilon = 0.25``. Same clusters as before; two details now follow the new
    rules: a sampled core track keeps the label HDBSCAN gave it (it used to take its neighbours'
    vote), and a sampled track HDBSCAN called noise is no longer flagged core by the radius test.
    """

    # Mood-space weights by transformed feature name (see engine/_moods.py); features a schema
    # lacks are skipped, and a schema with none of them clusters on all its features.
    weights: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(MOOD_WEIGHTS))
    # Tracks HDBSCAN sees; larger catalogs are clustered on a random sample (the seed draws it) and the
    # rest assigned to the nearest cores. Measured with the blur and one fit (the large-catalog default
    # until 2026-12-04), on a quiet machine: the blur 57 s at 200k, 20 s at 100k, HDBSCAN 41 s and 26 s
    # (benchmarks/build_scale.py).
    fit_sample: int = 100_000
    # Mean shift before HDBSCAN: k (its bandwidth, capped at 3% of the tracks) and passes; 0 passes = off.
    # Every key that says "auto" takes SMALL_CATALOG_MOODS or LARGE_CATALOG_MOODS by the tracks clustered.
    smoothing_neighbours: int | Literal["auto"] = "auto"
    smoothing_iterations: int | Literal["auto"] = "auto"
    # "blur" moves the catalog itself pass after pass; "shift" moves each track toward the means of its
    # nearest catalog tracks, which stay put: steadier, and slow at a wide kernel (k 400: 2-3.5 min a fit on
    # the Spotify data); "field" is the shift's first pass followed as a field, at the blur's cost
    # (engine/_moodgeometry.py).
    smoother: Literal["auto", "blur", "shift", "field"] = "auto"
    # A floor: the size used is max(this, min_cluster_fraction * tracks clustered, 3 * smoothing neighbours).
    min_cluster_size: int = 60
    # When HDBSCAN finds fewer moods than this, it is rerun with that floor's 3 x smoothing neighbours
    # lowered in steps to 2 x (if the tracks could hold that many such moods); 0 = never.
    fewest_moods: int = 5
    min_cluster_fraction: float = 0.01  # a mood holds at least 1% of the tracks clustered
    min_samples: int = 30
    selection: Literal["eom", "leaf"] = "leaf"
    # eom only: clusters above this share of the tracks are not selected (0 = no limit). Beware: an
    # oversized cluster without children then becomes noise (hdbscan's max_cluster_size).
    max_cluster_fraction: float = 0.0
    epsilon: float | Literal["auto"] = "auto"  # cluster_selection_epsilon, in mood-space units: leaves closer merge
    # Consensus of this many HDBSCAN fits, each on a random bag_share of the smoothed points, grouped by how
    # often they part two tracks (average linkage cut at consensus_cut); 0 = one fit.
    bags: int | Literal["auto"] = "auto"
    small_catalog: int = 20_000
    bag_share: float = 0.5
    consensus_cut: float = 0.6
    validity_sample: int = 10_000
    # Every build refits on this share of the tracks and reports the adjusted Rand index against the
    # full fit (and across seeds when a seed plays a part); 0 skips the check.
    stability_subsample: float = 0.9
    # How tracks outside HDBSCAN's cores get a mood: "vote" of the 10 nearest core tracks, or "centroid":
    # the nearest mood centroid after ``refine_iterations`` Lloyd steps (moods as Voronoi cells).
    assign: Literal["vote", "centroid"] = "vote"
    refine_iterations: int = 0

    def __post_init__(self) -> None:
        if self.smoother not in ("auto", "blur", "shift", "field"):
            raise ConfigError(f"moods.smoother must be 'auto', 'blur', 'shift' or 'field', got {self.smoother!r}")
        if self.selection not in ("eom", "leaf"):
            raise ConfigError(f"moods.selection must be 'eom' or 'leaf', got {self.selection!r}")
        for name in ("fit_sample", "min_cluster_size", "min_samples", "validity_sample"):
            if getattr(self, name) < 2:
                raise ConfigError(f"moods.{name} must be >= 2, got {getattr(self, name)}")
        if any(w < 0 for w in self.weights.values()):
            raise ConfigError(f"moods.weights must be >= 0, got {dict(self.weights)}")
        if self.epsilon != "auto" and (isinstance(self.epsilon, str) or self.epsilon < 0):
            raise ConfigError(f"moods.epsilon must be 'auto' or >= 0, got {self.epsilon!r}")
        valid_bags = self.bags == "auto" or (type(self.bags) is int and (self.bags == 0 or self.bags >= 2))
        if (not valid_bags or not 0.0 < self.bag_share <= 1.0 or not 0.0 < self.consensus_cut < 1.0
                or self.small_catalog < 0):
            raise ConfigError(f"moods.bags must be 'auto', 0 (one fit) or >= 2, moods.small_catalog >= 0, "
                              f"moods.bag_share in (0, 1] and moods.consensus_cut in (0, 1), got {self.bags!r}, "
                              f"{self.small_catalog}, {self.bag_share} and {self.consensus_cut}")
        if self.fewest_moods < 0:
            raise ConfigError(f"moods.fewest_moods must be >= 0 (0 = never rerun), got {self.fewest_moods}")
        passes, k = self.smoothing_iterations, self.smoothing_neighbours
        if (passes != "auto" and (type(passes) is not int or passes < 0)) or (k != "auto" and (type(k) is not int
                                                                                               or k < 1)):
            raise ConfigError("moods.smoothing_iterations must be 'auto' or >= 0 and moods.smoothing_neighbours "
                              f"'auto' or >= 1, got {passes!r} and {k!r}")
        if self.assign not in ("vote", "centroid") or self.refine_iterations < 0:
            raise ConfigError(f"moods.assign must be 'vote' or 'centroid' and moods.refine_iterations >= 0, got "
                              f"{self.assign!r} and {self.refine_iterations}")
        if self.stability_subsample and not 0.5 <= self.stability_subsample < 1.0:
            raise ConfigError(f"moods.stability_subsample must be 0 (no check) or in [0.5, 1), got "
                              f"{self.stability_subsample}")
        for name in ("min_cluster_fraction", "max_cluster_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"moods.{name} must be in [0, 1), got {getattr(self, name)}")

    def resolved(self, tracks: int) -> MoodConfig:
        """This configuration with every "auto" key set for ``tracks`` tracks clustered: SMALL_CATALOG_MOODS
        below ``small_catalog``, LARGE_CATALOG_MOODS from there on; keys set to a value keep it."""
        method = SMALL_CATALOG_MOODS if tracks < self.small_catalog else {
            **LARGE_CATALOG_MOODS, "smoothing_neighbours": max(1, round(LARGE_CATALOG_NEIGHBOURS * tracks))}
        return dataclasses.replace(self, **{key: value for key, value in method.items()
                                            if getattr(self, key) == "auto"})

    def auto_keys(self) -> list[str]:
        """The keys this configuration leaves to ``resolved``."""
        return [key for key in SMALL_CATALOG_MOODS if getattr(self, key) == "auto"]
