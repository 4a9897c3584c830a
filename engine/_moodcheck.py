"""What a build checks of its ``[moods]`` against the catalog as soon as it has read it, before anything is fitted:
the features ``weights`` names are the schema's, and the co-association's k-means K and ``coassoc_share`` fit the
tracks the moods are fitted on, and the fewer the stability check refits (``stability_subsample``). MoodConfig
checks what a value alone decides (engine/_moodconfig.py); these depend on the catalog's size and columns, and
would otherwise stop in scikit-learn or HDBSCAN, a 1,000-track build's 90% refit half a minute in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._moodcoassoc import DENSITY_KS, OCTANT_AXES, check_k, check_share
from ._moodconfig import MoodConfig
from ._moods import MIN_TRACKS_TO_CLUSTER
from ._moodspace import mood_space


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
    check_k(k, fewest, asked=key, where=where)
    check_share(resolved.coassoc_share, fewest, least=k if ks else 1, where=where)
