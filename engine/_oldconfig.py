"""Stored configs of bundles built by earlier releases: the keys a release removed, and values a release now refuses
that an older build took, read as what they did then, so that every older bundle still loads (engine/_loaded.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigError
from ._schema import parse_transform

# Keys a release removed: a bundle built before still loads (its build is done: the key is dropped), and a config
# file naming one is told what replaced it.
RETIRED_KEYS = {("moods", "coassoc_from"): "replaced by moods.coassoc_wide_from on 2026-12-05: the co-association "
                "now runs under moods.coassoc_until, its fits at one K under coassoc_wide_from",
                ("genre", "test_fraction"): "removed on 2026-12-08: builds never read it (they cross-fit over "
                "genre.folds); the benchmarks' single held-out split is engine/_genre.py's HELD_OUT_FRACTION"}


def without_retired_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """A bundle's stored config without the keys later releases removed (RETIRED_KEYS), nor, where its genre
    classifier was off, the [genre] keys it did not use (built before GenreConfig refused them, --no-genre kept a
    file's), with the values later releases refuse read as what they did then (``_as_built``)."""
    return {section: _as_built(section, {key: v for key, v in value.items() if (section, key) not in RETIRED_KEYS
                                         and not (section == "genre" and value.get("enabled") is False
                                                  and key != "enabled")})
            if isinstance(value, Mapping) else value for section, value in data.items()}


def _as_built(section: str, keys: dict[str, Any]) -> dict[str, Any]:
    """Values an older bundle may hold that its build took, and that a config file may no longer give, as what they
    did: (before 2026-12-06) ``ivf_nlist`` 0 was automatic (4 sqrt(n)), ``threads`` 0 or less XGBoost's own choice
    (the default serves: a loaded bundle never trains), ``coassoc_continuum`` beside ``fewest_moods`` 0 was never
    read; (later) ``cyclic:inf`` made its feature one constant, an empty ``artist_separator`` built only without
    an artists column, and a ``pca_variance`` beside ``pca_components`` (a file's variance, the flag's count) was
    ignored."""
    if section == "preprocess" and keys.get("pca_components") is not None and "pca_variance" in keys:
        del keys["pca_variance"]  # the count won
    if section == "index" and keys.get("ivf_nlist") == 0:
        keys["ivf_nlist"] = None
    if section == "genre" and isinstance(keys.get("threads"), int) and keys["threads"] < 1:
        del keys["threads"]
    if section == "moods" and keys.get("fewest_moods") == 0 and "coassoc_continuum" in keys:
        keys["coassoc_continuum"] = "auto"
    if section == "schema" and isinstance(keys.get("transforms"), dict):  # as none: preprocess.npz keeps its own
        keys["transforms"] = {c: "none" if _infinite_cycle(t) else t for c, t in keys["transforms"].items()}
    if section == "schema" and keys.get("artist_separator") == "":  # never used
        keys["artist_separator"] = ";"
    return keys


def _infinite_cycle(spec: Any) -> bool:
    try:
        return parse_transform(spec)[1] == math.inf
    except (ConfigError, AttributeError):  # not a transform: FeatureSchema says so
        return False
