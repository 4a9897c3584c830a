"""What a build checks of its ``[moods]`` against the catalog as soon as it has read it, before anything is fitted:
the features ``weights`` names are the schema's, and the co-association's k-means K and ``coassoc_share`` fit the
tracks the moods are fitted on, and the fewer the stability check refits (``stability_subsample``). MoodConfig
checks what a value alone decides (engine/_moodconfig.py); these depend on the catalog's size and columns, and
would otherwise stop in scikit-learn or HDBSCAN, a 1,000-track build's 90% refit half a minute in."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ._errors import ConfigError
from ._moodcoassoc import DENSITY_KS, OCTANT_AXES, share_size
from ._moodconfig import MoodConfig
from ._moods import MIN_TRACKS_TO_CLUSTER
from ._moodspace import mood_space

LEAST_SHARE_TRACKS = 2  # a fit's share of the tracks: HDBSCAN's count of density moods on it needs two at least


def check_moods(config: MoodConfig, tracks: int, feature_names: Sequence[str], transforms: Mapping[str, str]) -> None:
    """ConfigError where ``config`` cannot fit the moods of a catalog of ``tracks`` tracks with these features."""
    from ._preprocess import Preprocessor

    names = Preprocessor(feature_names=feature_names, transforms=transforms).transformed_names
    space = mood_space(names, config.weights)  # (refuses a weight naming no feature of the schema)
    clustered = config.clustered(tracks)
    fits = {clustered: f"the {clustered:,} tracks the moods are fitted on"
                       + (f" (a sample of the catalog's {tracks:,}: moods.fit_sample)" if clustered < tracks else "")}
    if config.stability_subsample:  # the stability check's refit: its share of the catalog, as sampled
        refit = min(max(1, round(config.stability_subsample * tracks)), config.sample_size(tracks))
        fits.setdefault(refit, f"the {refit:,} tracks the stability check refits (moods.stability_subsample = "
                               f"{config.stability_subsample:g} of {tracks:,}; 0 skips the check)")
    resolved = config.resolved(clustered)  # (a refit takes the build's resolved keys)
    fewest = min((m for m in fits if m >= MIN_TRACKS_TO_CLUSTER), default=None)  # (fewer: no fit, one mood)
    if not resolved.coassoc_bags or fewest is None:
        return
    where = fits[fewest]
    ks = resolved.given_ks()  # (none for "density" or "octants")
    k, key = max(ks, default=0), f"moods.coassoc_ks = {config.coassoc_ks!r} asks for"
    if not ks and resolved.coassoc_ks == DENSITY_KS and not (resolved.coassoc_continuum == "octants"
                                                              and len(space.columns) >= OCTANT_AXES):
        # where HDBSCAN finds fewer than fewest_moods moods, the fits are k-means at K fewest_moods
        k, key = (config.fewest_moods, f"moods.fewest_moods = {config.fewest_moods} is the K of the k-means fits "
                  "of a continuum (where HDBSCAN finds fewer moods), so it asks for")
    if k >= fewest:
        raise ConfigError(f"{key} k-means fits at K {k:,}, and K must be below the number of tracks they cluster: "
                          f"{where}; give a K of at most {fewest - 1:,}")
    share = resolved.coassoc_share
    if share_size(fewest, share, k if ks else 1) < LEAST_SHARE_TRACKS:
        least = math.ceil(LEAST_SHARE_TRACKS / fewest * 10_000) / 10_000
        while int(least * fewest) < LEAST_SHARE_TRACKS:  # (the rounding of share x tracks)
            least += 1e-4
        raise ConfigError(f"moods.coassoc_share = {share:g} gives each fit {int(share * fewest)} of {where}, and a "
                          f"fit takes {LEAST_SHARE_TRACKS} at least: give coassoc_share >= {least:.4g}")
