"""The ``[moods]`` configuration: HDBSCAN mood clustering (engine/_moods.py), and what its "auto" keys take
by catalog size. Split from engine/_config.py, which reads it with the rest of a build's configuration."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

from ._confcheck import Span, check_spans, check_value
from ._errors import ConfigError
from ._moodcoassoc import DENSITY_KS, OCTANTS_KS, parse_ks

MOOD_WEIGHTS = {"valence": 1.0, "energy": 1.0, "danceability": 1.0, "acousticness": 1.0,
                "instrumentalness": 1.0, "tempo": 1.0}

# What the [moods] keys set to "auto" (the defaults) take (MoodConfig.resolved), measured in benchmarks/RESULTS.md
# ("Moods on any catalog", "Moods from the co-association of k-means fits", "One mood method at every size"):
# - by default, at every size: FEW_TRACKS_COASSOC on at most fit_sample "auto" tracks (4,999, the tracks whose ids
#   hash lowest; every other track assigned): no smoothing; 20 k-means fits, each the best of 10 starts on a random
#   90% of the tracks clustered, at one K (the moods HDBSCAN finds in the mood space itself, at least fewest_moods),
#   the moods the cells of the fit that agrees most with the others and HDBSCAN's noise in their co-association
#   (eom, min_samples COASSOC_SAMPLES of the tracks) the tracks that are not core; where HDBSCAN finds fewer than
#   fewest_moods (a continuum), the fits are the octants of the mood space's first three columns around their means
#   instead (engine/_moodcoassoc.py). (The blur's consensus, the default under 2,000 until then, and the 40 x 4
#   quick fits moved with the catalog there.)
# - with a larger fit_sample, from moods.coassoc_wide_from (5,000) tracks clustered: COASSOC_MOODS, 40 x 4 fits, one
#   start at each K from 5 to 8 on a random half, the moods the Voronoi cells of HDBSCAN's clusters' centroids (the
#   default from 5,000 to 50,000 tracks until 2026-12-06);
# - with a smoothing key given, or from moods.coassoc_until tracks where it is set (50,000 until 2026-12-06), no
#   co-association: the blur under moods.small_catalog (20,000) and from there on the mean-shift field, whose k is
#   a share of the tracks (403 of the 89,583 Spotify tracks), epsilon 0.16 and a consensus of 10 HDBSCAN
#   fits, on up to LARGE_FIT_SAMPLE tracks (the co-association's min_samples, and HDBSCAN's cost, grow with the
#   tracks; on all 89,583 Spotify tracks, with min_samples 1,000, it held less across seeds than the field).
# without the co-association its keys are not used: None (a config file cannot say None)
_COASSOC_OFF = {"coassoc_bags": 0, "coassoc_ks": None, "coassoc_share": None, "coassoc_starts": None,
                "coassoc_moods": None, "coassoc_continuum": None}
_HDBSCAN_ON_SMOOTHED = {**_COASSOC_OFF, "selection": "leaf", "min_samples": 30, "min_cluster_fraction": 0.01,
                        "assign": "vote"}
SMALL_CATALOG_MOODS: dict[str, Any] = {"smoother": "blur", "smoothing_neighbours": 100, "smoothing_iterations": 5,
                                       "epsilon": 0.0, "bags": 20, **_HDBSCAN_ON_SMOOTHED}
# (its min_samples, None here, is COASSOC_SAMPLES of the tracks; the smoothing keys are not used)
COASSOC_MOODS: dict[str, Any] = {"smoother": "blur", "smoothing_neighbours": 100, "smoothing_iterations": 0,
                                 "epsilon": 0.0, "bags": 0, "coassoc_bags": 40, "coassoc_ks": "5-8",
                                 "coassoc_share": 0.5, "coassoc_starts": 1, "coassoc_moods": "clusters",
                                 "coassoc_continuum": None, "selection": "eom",
                                 "min_samples": None, "min_cluster_fraction": 0.05, "assign": "centroid"}
FEW_TRACKS_COASSOC: dict[str, Any] = {**COASSOC_MOODS, "coassoc_bags": 20, "coassoc_ks": DENSITY_KS,
                                      "coassoc_share": 0.9, "coassoc_starts": 10, "coassoc_moods": "medoid",
                                      "coassoc_continuum": "octants"}
# A rebuild whose catalog crossed one of the sizes the method changes at keeps its current bundle's method while it
# lies within this share of that size (0.9: 4,500 to 5,555 around coassoc_wide_from); a 90% refit of a catalog just
# past a seam stays within it (MoodConfig.keeping_regime).
SEAM_BAND = 0.9
REGIMES = {"few": "the medoid of 20 fits at one K, or octants", "wide": "HDBSCAN on 40 x 4 quick k-means fits",
           "small": "HDBSCAN on blurred points", "large": "HDBSCAN on the mean-shift field"}
COASSOC_SAMPLES = 0.05  # ... of the tracks clustered (250 of fit_sample "auto"'s 4,999), at most:
MAX_COASSOC_SAMPLES = 2_500  # (5% of 50,000, the most the co-association clustered until 2026-12-06)
SMOOTHING_KEYS = ("smoother", "smoothing_neighbours", "smoothing_iterations", "epsilon", "bags")
# they shape the co-association
COASSOC_KEYS = ("coassoc_ks", "coassoc_share", "coassoc_starts", "coassoc_moods", "coassoc_continuum")
# (its smoothing_neighbours, None here, is LARGE_CATALOG_NEIGHBOURS of the tracks: MoodConfig.resolved)
LARGE_CATALOG_MOODS: dict[str, Any] = {"smoother": "field", "smoothing_neighbours": None, "smoothing_iterations": 8,
                                       "epsilon": 0.16, "bags": 10, **_HDBSCAN_ON_SMOOTHED}
LARGE_CATALOG_NEIGHBOURS = 0.0045  # the field's k ("auto", from small_catalog on): this share of the tracks clustered
LARGE_FIT_SAMPLE = 100_000  # fit_sample "auto" where the co-association does not run (MoodConfig.sample_size)
MIN_AUTO_SAMPLE = 1_000  # ... or where coassoc_wide_from - 1 is fewer tracks than this
AUTO_KEYS = tuple(SMALL_CATALOG_MOODS)  # the keys "auto" resolves: the same in each method (tests/engine/test_moods.py)
MAX_WEIGHT = 1e6  # a mood weight's most: the mood space is 32-bit (1e300 overflowed it); a million times another's
# is the other left out
# The numeric keys' ranges (engine/_confcheck.py); None: not used by the method resolved (a file cannot say None)
_AUTO, _FRACTION = ("auto",), Span(0.0, 1.0, open_high=True)
MOOD_SPANS = {"fit_sample": Span(2, also=_AUTO), "smoothing_neighbours": Span(1, also=_AUTO),
              "smoothing_iterations": Span(0, also=_AUTO), "min_cluster_size": Span(2),
              "fewest_moods": Span(1, also=(0,), say="0 (never rerun)"),
              "min_cluster_fraction": Span(0.0, 1.0, open_high=True, also=_AUTO),
              "min_samples": Span(2, also=_AUTO), "max_cluster_fraction": _FRACTION, "epsilon": Span(0.0, also=_AUTO),
              "bags": Span(2, also=("auto", 0), say="'auto', 0 (one fit)"),
              "coassoc_bags": Span(2, also=("auto", 0), say="'auto', 0 (off)"),
              "coassoc_share": Span(0.0, 1.0, open_low=True, also=("auto", None)),
              "coassoc_starts": Span(1, also=("auto", None)), "coassoc_until": Span(0, also=(None,)),
              "coassoc_wide_from": Span(0), "small_catalog": Span(0), "bag_share": Span(0.0, 1.0, open_low=True),
              "consensus_cut": Span(0.0, 1.0, open_low=True, open_high=True), "validity_sample": Span(2),
              "stability_subsample": Span(0.5, 1.0, open_high=True, also=(0,), say="0 (no check)"),
              "refine_iterations": Span(0)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MoodConfig:
    """HDBSCAN mood clustering (engine/_moods.py; why these defaults and what was measured: benchmarks/RESULTS.md).

    Default method (``coassoc_bags``): HDBSCAN on the co-association of k-means (or octant) fits of up to
    ``fit_sample`` tracks, the moods the cells of the fit the others agree with most (engine/_moodcoassoc.py).
    Or, with a smoothing key given: the mood space is denoised by a mean shift (``smoother``,
    ``smoothing_neighbours``, ``smoothing_iterations``), then HDBSCAN runs on the smoothed points (up to
    ``fit_sample`` tracks), or a consensus of ``bags`` fits on random subsets of them. Each track that
    HDBSCAN labels is a core member of its mood; every other track is assigned by its nearest cores.
    The keys left at "auto" take FEW_TRACKS_COASSOC, COASSOC_MOODS, SMALL_CATALOG_MOODS or LARGE_CATALOG_MOODS
    by the tracks clustered (the defaults: FEW_TRACKS_COASSOC at every size).

    The first method (HDBSCAN on a 30k random sample of the raw mood space: 7% of all tracks
    labelled by HDBSCAN, one mood of ~48%) is still available with ``smoothing_iterations = 0,
    bags = 0, fit_sample = 30000, min_cluster_size = 60, min_cluster_fraction = 0, min_samples = 2,
    selection = "leaf", epsilon = 0.25``. Same clusters as before; two details now follow the new
    rules: a sampled core track keeps the label HDBSCAN gave it (it used to take its neighbours'
    vote), and a sampled track HDBSCAN called noise is no longer flagged core by the radius test.
    """

    # Mood-space weights by transformed feature name (engine/_moodspace.py), finite, >= 0 (0 leaves a feature out),
    # one at least above 0. The defaults say: choose from what the schema has; weights of one's own name features of
    # the schema (another name is refused: engine/_moodspace.py, check_weights).
    weights: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(MOOD_WEIGHTS))
    # Tracks the mood method fits; a larger catalog is fitted on a sample of this many, the tracks whose ids hash
    # lowest (engine/_moodsample.py: a catalog that grows or shrinks keeps most of its sample; a caller without ids
    # draws it at random by the seed), and every other track is assigned as a new track would be. "auto"
    # (sample_size): where the co-association runs, the most its fewer, better fits take (coassoc_wide_from - 1:
    # 4,999), so that every catalog gets one method, whatever its size (until 2026-12-06 the
    # method changed at 5,000 and 50,000 tracks, and the methods either side agreed at ARI 0.33-0.41:
    # benchmarks/RESULTS.md, "One mood method at every size"); otherwise LARGE_FIT_SAMPLE. Measured with the blur
    # and one fit (the large-catalog default until 2026-12-04), on a quiet machine: the blur 57 s at 200k, 20 s at
    # 100k, HDBSCAN 41 s and 26 s (benchmarks/build_scale.py).
    fit_sample: int | Literal["auto"] = "auto"
    # Mean shift before HDBSCAN: k (its bandwidth, capped at 3% of the tracks) and passes; 0 passes = off.
    # Every key that says "auto" takes one of the methods above by the tracks clustered.
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
    # a mood holds at least this share of the tracks clustered ("auto": 1%, 5% with the co-association)
    min_cluster_fraction: float | Literal["auto"] = "auto"
    min_samples: int | Literal["auto"] = "auto"  # "auto": 30, COASSOC_SAMPLES of the tracks with the co-association
    # "auto": leaf, eom with the co-association (whose count of density moods takes leaves whatever this says:
    # engine/_moodcoassoc.py, DENSITY_SELECTION)
    selection: Literal["auto", "eom", "leaf"] = "auto"
    # eom only: clusters above this share of the tracks are not selected (0 = no limit). Beware: an
    # oversized cluster without children then becomes noise (hdbscan's max_cluster_size).
    max_cluster_fraction: float = 0.0
    epsilon: float | Literal["auto"] = "auto"  # cluster_selection_epsilon, in mood-space units: leaves closer merge
    # Consensus of this many HDBSCAN fits, each on a random bag_share of the smoothed points, grouped by how
    # often they part two tracks (average linkage cut at consensus_cut); 0 = one fit.
    bags: int | Literal["auto"] = "auto"
    # HDBSCAN on the co-association of this many bags of k-means fits (engine/_moodcoassoc.py) instead of on
    # smoothed points: each bag a random coassoc_share of the tracks, fitted at every K of coassoc_ks ("5",
    # "5-8", or "density": the moods HDBSCAN finds in the mood space itself, at least fewest_moods), each fit
    # the best of coassoc_starts starts, or "octants": each fit the octants below, whatever that count; 0 = off.
    # The moods: HDBSCAN's clusters of the co-association ("clusters"), or the cells of the fit that agrees most
    # with the others ("medoid", one K), HDBSCAN's noise in the co-association then the tracks that are not core.
    coassoc_bags: int | Literal["auto"] = "auto"
    coassoc_ks: str | int = "auto"
    coassoc_share: float | Literal["auto"] = "auto"
    coassoc_starts: int | Literal["auto"] = "auto"
    coassoc_moods: Literal["auto", "clusters", "medoid"] = "auto"
    # With the medoid and K from the density ("density"), where HDBSCAN finds fewer moods than fewest_moods in the
    # mood space (a continuum): "octants", each fit the octants of the space's first three columns around their
    # means over its share ("auto" under coassoc_wide_from), or "kmeans" at K fewest_moods (the default until
    # 2026-12-06, whose cut moved on 15 of 207 draws of 1,000-4,000 tracks; engine/_moodcoassoc.py).
    coassoc_continuum: Literal["auto", "octants", "kmeans"] = "auto"
    # "auto": the co-association for catalogs under this many tracks; none (the default): at every size (until
    # 2026-12-06 it stopped at 50,000 tracks, where the mean-shift field took over)
    coassoc_until: int | None = None
    coassoc_wide_from: int = 5_000  # "auto": FEW_TRACKS_COASSOC under this many tracks, COASSOC_MOODS from it
    small_catalog: int = 20_000  # "auto" without the co-association: the blur under this, the field from it
    bag_share: float = 0.5
    consensus_cut: float = 0.6
    validity_sample: int = 10_000
    # Every build refits on this share of the tracks and reports the adjusted Rand index against the
    # full fit (and across seeds when a seed plays a part); 0 skips the check.
    stability_subsample: float = 0.9
    # How tracks outside HDBSCAN's cores get a mood: "vote" of the 10 nearest core tracks, or "centroid":
    # the nearest mood centroid after ``refine_iterations`` Lloyd steps (moods as Voronoi cells); "auto":
    # vote, centroid with the co-association.
    assign: Literal["auto", "vote", "centroid"] = "auto"
    refine_iterations: int = 0

    def __post_init__(self) -> None:
        if self.smoother not in ("auto", "blur", "shift", "field"):
            raise ConfigError(f"moods.smoother must be 'auto', 'blur', 'shift' or 'field', got {self.smoother!r}")
        if self.selection not in ("auto", "eom", "leaf"):
            raise ConfigError(f"moods.selection must be 'auto', 'eom' or 'leaf', got {self.selection!r}")
        check_spans(self, "moods", MOOD_SPANS)
        for name, weight in self.weights.items():
            check_value(weight, f"moods.weights.{name}", Span(0.0, MAX_WEIGHT))
        if not any(self.weights.values()):  # (a feature's 0 leaves it out; nothing left would cluster nothing)
            raise ConfigError(f"moods.weights must give at least one feature a weight above 0, got "
                              f"{dict(self.weights)}: leave [moods.weights] out for the default mood space")
        if not self.coassoc_wide_from <= self.until():
            raise ConfigError(f"moods.coassoc_wide_from must be <= moods.coassoc_until, got {self.coassoc_wide_from} "
                              f"and {self.coassoc_until}")
        try:
            several = len(self.given_ks()) > 1
        except (TypeError, ValueError):
            raise ConfigError(f"moods.coassoc_ks must be 'auto', 'density', 'octants', a K such as 5 or a range "
                              f"such as \"5-8\" (K >= 2), got {self.coassoc_ks!r}") from None
        if self.coassoc_moods not in ("auto", "clusters", "medoid", None):
            raise ConfigError(f"moods.coassoc_moods must be 'auto', 'clusters' or 'medoid', got {self.coassoc_moods!r}")
        if self.coassoc_continuum not in ("auto", "octants", "kmeans", None):
            raise ConfigError(f"moods.coassoc_continuum must be 'auto', 'octants' or 'kmeans', got "
                              f"{self.coassoc_continuum!r}")
        if self.coassoc_continuum not in ("auto", None) and self.fewest_moods == 0:
            raise ConfigError(f"moods.coassoc_continuum = {self.coassoc_continuum!r} applies where HDBSCAN finds fewer "
                              "moods than moods.fewest_moods, which 0 never is: give fewest_moods >= 1, or leave it "
                              "at \"auto\"")
        if self.coassoc_ks == OCTANTS_KS and self.coassoc_moods == "clusters":
            raise ConfigError("moods.coassoc_ks = 'octants' takes the cells of the medoid fit: leave coassoc_moods at "
                              "\"auto\" or set it to \"medoid\"")
        if self.coassoc_moods == "medoid" and several:
            raise ConfigError(f"moods.coassoc_moods = 'medoid' takes the cells of one fit, so one K: coassoc_ks "
                              f"{self.coassoc_ks!r} holds several")
        # with the co-association there is no smoothing and no HDBSCAN bags: a smoothing key given beside it
        # would be ignored, so it is refused (smoothing_iterations = 0, bags = 0 and epsilon = 0 say what it
        # does anyway, and with 0 passes the smoother and its k are moot, as they are without it)
        coassoc = self.coassoc_bags
        moot = ("smoother", "smoothing_neighbours") if self.smoothing_iterations == 0 else ()
        smoothing = [key for key in SMOOTHING_KEYS if getattr(self, key) not in ("auto", 0) and key not in moot]
        if coassoc not in ("auto", 0) and smoothing:
            raise ConfigError(f"moods.coassoc_bags = {coassoc} replaces the smoothing and the HDBSCAN bags: leave "
                              f"{', '.join(smoothing)} at \"auto\", or set coassoc_bags = 0")
        # the co-association's own keys would be ignored where it does not run
        shaping = self.coassoc_keys_given()
        given = [key for key in SMOOTHING_KEYS if getattr(self, key) != "auto"]
        off = "coassoc_bags = 0" if coassoc == 0 else f"{', '.join(given)} given" if coassoc == "auto" and given else ""
        if shaping and off:
            raise ConfigError(f"moods.{', moods.'.join(shaping)} shape the co-association, which {off} turns off: "
                              "leave them at \"auto\"")
        if self.assign not in ("auto", "vote", "centroid"):
            raise ConfigError(f"moods.assign must be 'auto', 'vote' or 'centroid', got {self.assign!r}")

    def method(self, tracks: int) -> tuple[dict[str, Any], str]:
        """What the "auto" keys take for ``tracks`` tracks clustered, and why: the co-association under
        ``coassoc_until`` unless a smoothing key is given (the smoothing is then what was asked for), or wherever
        ``coassoc_bags`` is given > 0, its fits FEW_TRACKS_COASSOC under ``coassoc_wide_from`` and COASSOC_MOODS
        from there; otherwise SMALL_CATALOG_MOODS under ``small_catalog`` and LARGE_CATALOG_MOODS from there on."""
        given = [key for key in SMOOTHING_KEYS if getattr(self, key) != "auto"]
        few = tracks < self.coassoc_wide_from
        # the tracks clustered are named: a catalog of 89,583 fitted on 4,999 read "under ... 5,000" as a contradiction
        fits = (f"{tracks:,} tracks clustered, " + (f"under moods.coassoc_until = {self.coassoc_until:,} and "
                                                    if self.coassoc_until is not None and tracks < self.coassoc_until
                                                    else "")
                + f"{'under' if few else 'from'} moods.coassoc_wide_from = {self.coassoc_wide_from:,}: "
                + ("fewer, better fits at one K" if few else "quick fits at K 5 to 8"))
        coassoc = self.regime(tracks) in ("few", "wide")
        if self.coassoc_bags not in ("auto", 0):
            why = f"moods.coassoc_bags = {self.coassoc_bags} given; {fits}"
        elif coassoc:
            why = fits if self.coassoc_until is not None else f"the co-association at every size; {fits}"
        else:
            why = (f"{tracks:,} tracks clustered, {'under' if tracks < self.small_catalog else 'at least'} "
                   f"moods.small_catalog = {self.small_catalog:,}"
                   + (f" ({', '.join(given)} given: no co-association)" if given else ""))
        if coassoc:  # min_samples a share of the tracks, at most what the default range reaches
            samples = min(round(COASSOC_SAMPLES * tracks), MAX_COASSOC_SAMPLES)
            method = FEW_TRACKS_COASSOC if few else COASSOC_MOODS
            bags = method["coassoc_bags"] if self.coassoc_bags == "auto" else self.coassoc_bags
            method = {**method, "coassoc_bags": bags, "min_samples": max(2, samples)}
        elif shaping := self.coassoc_keys_given():
            raise ConfigError(f"moods.{', moods.'.join(shaping)} given, but {tracks:,} tracks clustered are at least "
                              f"moods.coassoc_until = {self.coassoc_until:,}: no co-association there (set "
                              "moods.coassoc_bags to run it at any size, or raise moods.coassoc_until)")
        elif tracks < self.small_catalog:
            method = SMALL_CATALOG_MOODS
        else:
            method = {**LARGE_CATALOG_MOODS, "smoothing_neighbours": max(1, round(LARGE_CATALOG_NEIGHBOURS * tracks))}
        # a medoid takes one fit's cells, so one K: the K and the moods given win over what "auto" would pair them with
        if self.coassoc_moods == "medoid" and self.coassoc_ks == "auto":
            method = {**method, "coassoc_ks": DENSITY_KS}
        elif self.coassoc_ks == OCTANTS_KS:  # octants are taken by the medoid
            method = {**method, "coassoc_moods": "medoid"}
        elif self.coassoc_moods == "auto" and len(self.given_ks()) > 1:
            method = {**method, "coassoc_moods": "clusters"}
        return method, why

    def sample_size(self, tracks: int) -> int:
        """The most tracks the mood method fits in a catalog of ``tracks`` (``fit_sample``): as given, or for "auto"
        the most the co-association's fewer, better fits take (``coassoc_wide_from`` - 1) where the co-association
        runs for a catalog that size and that is at least MIN_AUTO_SAMPLE tracks, else LARGE_FIT_SAMPLE."""
        if self.fit_sample != "auto":
            return self.fit_sample
        few = self.coassoc_wide_from - 1  # (the co-association judged at the most a smoothing would cluster)
        coassoc = self.regime(min(tracks, LARGE_FIT_SAMPLE)) in ("few", "wide")
        return few if coassoc and few >= MIN_AUTO_SAMPLE else LARGE_FIT_SAMPLE

    def clustered(self, tracks: int) -> int:
        """How many of a catalog's ``tracks`` the mood method fits: all of them, up to ``sample_size``."""
        return min(tracks, self.sample_size(tracks))

    def until(self) -> float:
        """``coassoc_until``, infinite where it is not set."""
        return math.inf if self.coassoc_until is None else self.coassoc_until

    def regime(self, tracks: int) -> str:
        """Which of the four methods the "auto" keys take for ``tracks`` tracks clustered: "few" (FEW_TRACKS_COASSOC),
        "wide" (COASSOC_MOODS), "small" (SMALL_CATALOG_MOODS) or "large" (LARGE_CATALOG_MOODS)."""
        given = any(getattr(self, key) != "auto" for key in SMOOTHING_KEYS)
        if self.coassoc_bags not in ("auto", 0) or (self.coassoc_bags == "auto" and not given
                                                    and tracks < self.until()):
            return "few" if tracks < self.coassoc_wide_from else "wide"
        return "small" if tracks < self.small_catalog else "large"

    def keeping_regime(self, tracks: int, theirs: str, current_tracks: int) -> tuple[MoodConfig, dict[str, Any] | None]:
        """This configuration for a rebuild of a catalog of ``tracks`` tracks whose current bundle took the method
        ``theirs`` (a ``regime``) on ``current_tracks``: where this build's size would take another method, and lies
        within ``SEAM_BAND`` of a size the method changes at (a seam: ``coassoc_wide_from``, ``coassoc_until`` or
        ``small_catalog``) whose move gives it ``theirs``, the seam moves past the rebuild, so it keeps the current
        bundle's method (and facts saying so); else as it is. With the defaults (``fit_sample`` "auto", no
        ``coassoc_until``) the method is the same at every size, and none is kept. The methods on either side do not
        agree (ARI 0.33-0.41 just either side of 5,000 tracks: benchmarks/RESULTS.md, "Where the mood method
        changes"), so a catalog that moves a little across a seam keeps what it has, for as long as it stays within
        the band."""
        ours = self.regime(self.clustered(tracks))
        if ours == theirs:
            return self, None
        for key in ("coassoc_wide_from", "coassoc_until", "small_catalog"):
            seam = getattr(self, key)
            if seam is None or not SEAM_BAND * seam <= tracks < seam / SEAM_BAND:
                continue
            moved = dataclasses.replace(self, **{key: tracks + 1 if tracks >= seam else tracks})
            if moved.regime(moved.clustered(tracks)) == theirs:
                return moved, {"regime": theirs, "instead_of": ours, "seam": key, "at": seam,
                               "current_tracks": current_tracks,
                               "says": f"kept the current bundle's mood method ({REGIMES[theirs]}, on its "
                                       f"{current_tracks:,} tracks): these {tracks:,} lie within {1 - SEAM_BAND:.0%} "
                                       f"of moods.{key} = {seam:,}, where the method changes"}
        return self, None

    def seams_between(self, tracks: int, other: int) -> list[str]:
        """The keys of the sizes the method may change at (``coassoc_wide_from``, ``coassoc_until``,
        ``small_catalog``) that lie between ``tracks`` and ``other`` tracks clustered."""
        return [key for key in ("coassoc_wide_from", "coassoc_until", "small_catalog") if getattr(self, key) is not None
                and (tracks < getattr(self, key)) != (other < getattr(self, key))]

    def given_ks(self) -> range:
        """The K of the co-association's fits when ``coassoc_ks`` gives them (empty for "auto", "density",
        "octants" or None); ValueError or TypeError when it is not a K or a range."""
        return range(0) if self.coassoc_ks in ("auto", DENSITY_KS, OCTANTS_KS, None) else parse_ks(self.coassoc_ks)

    def coassoc_keys_given(self) -> list[str]:
        """The co-association's own keys (COASSOC_KEYS) given a value: not "auto", and not None (not used)."""
        return [key for key in COASSOC_KEYS if getattr(self, key) not in ("auto", None)]

    def resolved(self, tracks: int) -> MoodConfig:
        """This configuration with every "auto" key set for ``tracks`` tracks clustered (``method``); keys
        set to a value keep it."""
        method, _ = self.method(tracks)
        values = {key: value for key, value in method.items() if getattr(self, key) == "auto"}
        values["fit_sample"] = self.sample_size(tracks)  # as this configuration takes it, whatever the keys resolved
        ks, moods = values.get("coassoc_ks", self.coassoc_ks), values.get("coassoc_moods", self.coassoc_moods)
        medoid_by_density = ks == DENSITY_KS and moods == "medoid"
        if self.coassoc_continuum in ("auto", None):  # octants only where they apply: a resolved config resolves again
            values["coassoc_continuum"] = "octants" if medoid_by_density and self.fewest_moods > 0 else None
        elif not medoid_by_density:
            raise ConfigError(f"moods.coassoc_continuum = {self.coassoc_continuum!r} given, but at {tracks:,} tracks "
                              f"clustered the co-association's K is {ks!r} and its moods {moods!r}: it applies only to "
                              "the medoid with K from the density (coassoc_ks = \"density\", coassoc_moods = "
                              "\"medoid\"); leave it at \"auto\"")
        return dataclasses.replace(self, **values)

    def auto_keys(self) -> list[str]:
        """The keys this configuration leaves to ``resolved``."""
        return [key for key in AUTO_KEYS if getattr(self, key) == "auto"]
