"""The audio preset applied to a build configuration: one definition for ``musicrec index`` (which decides
from a table's header when to apply it, indexer/_buildconfig.py), the benchmarks and a notebook calling
:func:`engine.build_bundle` on a GTZAN-layout table, which would otherwise get the Spotify mood space and
preprocessing."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from ._config import BuildConfig
from ._moodconfig import MOOD_WEIGHTS
from ._schema import AUDIO_MOOD_WEIGHTS, AUDIO_PREPROCESS, audio_schema


def with_audio_preset(config: BuildConfig, columns: Sequence[str], *, keep_preprocess: Collection[str] = (),
                      keep_moods: bool = False) -> BuildConfig:
    """``config`` with the audio preset for a table with these ``columns`` (its header): the columns, transforms
    and rules of :func:`engine.audio_schema` (``config``'s ``missing`` and ``artist_separator`` kept: they say how
    to read rows, not which columns are which), the audio mood space and the audio retrieval space.

    The mood weights become ``AUDIO_MOOD_WEIGHTS`` only while ``config`` holds the Spotify defaults (the Spotify
    mood space has only tempo in common with audio tables), and never with ``keep_moods``; the other mood settings
    are kept. ``AUDIO_PREPROCESS`` is applied but for the keys in ``keep_preprocess`` (those a config file gives
    itself); the other preprocessing settings are kept. Raises :class:`ConfigError` when the columns are no audio
    table (:func:`engine.audio_schema`)."""
    schema = dataclasses.replace(audio_schema(list(columns)), missing=config.schema.missing,
                                 artist_separator=config.schema.artist_separator)
    own = keep_moods or dict(config.moods.weights) != MOOD_WEIGHTS
    preprocess = {k: v for k, v in AUDIO_PREPROCESS.items() if k not in keep_preprocess}
    return config.replace(schema=schema, moods={"weights": dict(config.moods.weights if own else AUDIO_MOOD_WEIGHTS)},
                          preprocess=preprocess)
