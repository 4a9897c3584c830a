"""The feature schema: which columns of a catalog are ids, features, labels and metadata, how
each feature is transformed, which values are impossible, and the built-in presets (``spotify``,
the default; ``audio``, a GTZAN-layout table from `musicrec extract` or a published one).

The ``[schema]`` table of a config file; read and checked with every other section by
``BuildConfig.from_mapping`` (engine/_config.py), which rejects unknown keys.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Literal

import numpy as np

from ._confcheck import check_finite
from ._errors import ConfigError

SPOTIFY_FEATURES = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "time_signature", "duration_ms",
)  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class ValueRule:
    """Which values of one feature are possible, and what to do with a row that breaks the rule.

    ``action`` is ``"drop"`` (the row is removed and counted) or ``"impute"`` (the value is
    replaced by the median of the valid values and counted).
    """

    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    action: Literal["drop", "impute"] = "drop"

    def __post_init__(self) -> None:
        if self.action not in ("drop", "impute"):
            raise ConfigError(f"rule action must be 'drop' or 'impute', got {self.action!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(f"rule min {self.min} is above max {self.max}")

    def broken_by(self, values: np.ndarray) -> np.ndarray:
        """Per value, whether it breaks the rule (NaN breaks none: missing values have their own policy)."""
        bad = np.zeros(np.shape(values), dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.min is not None:
                bad |= (values <= self.min) if self.exclusive_min else (values < self.min)
            if self.max is not None:
                bad |= values > self.max
        return bad

    def breaks(self, value: float) -> bool:
        """``broken_by`` of one value, in plain Python: a feature query checks every rule of its bundle per call
        (engine/_view.py), where numpy's per-call overhead cost ~66 us for the Spotify schema's 12 rules."""
        if self.min is not None and (value <= self.min if self.exclusive_min else value < self.min):
            return True
        return self.max is not None and value > self.max

    def describe(self) -> str:
        lo = "" if self.min is None else (f"> {self.min:g}" if self.exclusive_min else f">= {self.min:g}")
        hi = "" if self.max is None else f"<= {self.max:g}"
        return " and ".join(p for p in (lo, hi) if p) or "any finite value"


# The Spotify Web API documents tempo > 0, time_signature 3..7, duration > 0. A tempo of 0 means
# the beat tracker failed: imputing a tempo would invent a musical fact, so the row is dropped.
# time_signature 0/1 (1,136 rows) is an unknown meter on otherwise good tracks: imputed.
SPOTIFY_RULES: dict[str, ValueRule] = {
    "tempo": ValueRule(min=0.0, exclusive_min=True, action="drop"),
    "duration_ms": ValueRule(min=0.0, exclusive_min=True, action="drop"),
    "time_signature": ValueRule(min=3.0, max=7.0, action="impute"),
    "key": ValueRule(min=0.0, max=11.0, action="drop"),
    "mode": ValueRule(min=0.0, max=1.0, action="drop"),
    **{f: ValueRule(min=0.0, max=1.0, action="drop") for f in (
        "danceability", "energy", "speechiness", "acousticness", "instrumentalness", "liveness", "valence")},
}  # fmt: skip

# key is a pitch class on a circle (B is next to C); duration is heavy-tailed (a few 80-minute tracks).
SPOTIFY_TRANSFORMS: dict[str, str] = {"key": "cyclic:12", "duration_ms": "log1p"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureSchema:
    """Which CSV columns are the id, the features, the labels and the metadata.

    The default is the Spotify Tracks Dataset. Any other numeric feature set works by naming its
    columns (``FeatureSchema(id_column="filename", label_column="label", feature_columns=(...))``).
    Columns that are not named here are never read as features (the leading unnamed index column
    of pandas-written CSVs, for one, leaks the row order and therefore the genre).
    """

    id_column: str = "track_id"
    feature_columns: tuple[str, ...] = SPOTIFY_FEATURES
    label_column: str | None = "track_genre"
    name_column: str | None = "track_name"
    artists_column: str | None = "artists"
    artist_separator: str = ";"
    # Kept in the track table for filters and display; never features (popularity leaks). Name,
    # artists and these columns are optional: a file without them is indexed and the report says so.
    metadata_columns: tuple[str, ...] = ("album_name", "popularity", "explicit")
    # None: the Spotify defaults for whichever of those features this schema has.
    transforms: Mapping[str, str] | None = None
    rules: Mapping[str, ValueRule] | None = None
    # Missing or non-finite feature values: drop the row, or impute the column median.
    missing: Literal["drop", "impute"] = "drop"
    # Rows sharing a value are pieces (segments) of one recording: the genre evaluation keeps them
    # on one side of its split and also scores one vote per recording (engine/_genre.py).
    song_column: str | None = None

    def __post_init__(self) -> None:
        # "" means "no such column" (TOML has no null); normalize so the rest sees None.
        for name in ("label_column", "name_column", "artists_column", "song_column"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)
        object.__setattr__(self, "metadata_columns", tuple(c for c in self.metadata_columns if c))
        if self.transforms is None:
            object.__setattr__(self, "transforms", {
                c: t for c, t in SPOTIFY_TRANSFORMS.items() if c in self.feature_columns})
        if self.rules is None:
            object.__setattr__(self, "rules", {c: r for c, r in SPOTIFY_RULES.items() if c in self.feature_columns})
        if not self.id_column:
            raise ConfigError("schema.id_column must be a column name")
        if not isinstance(self.artist_separator, str) or not self.artist_separator:
            raise ConfigError(f"schema.artist_separator must be a non-empty string (the text between two artists "
                              f"of one track, such as ';'), got {self.artist_separator!r}")
        if not self.feature_columns:
            raise ConfigError("schema.feature_columns must name at least one column")
        if len(set(self.feature_columns)) != len(self.feature_columns):
            raise ConfigError(f"schema.feature_columns repeats a column: {list(self.feature_columns)}")
        for col in self.feature_columns:
            if not col or col.startswith("Unnamed:"):
                raise ConfigError(f"schema.feature_columns may not use the unnamed index column ({col!r})")
        if self.id_column == self.label_column:  # every genre would become one track (12 tracks from 114,000 rows)
            raise ConfigError(f"schema.id_column and schema.label_column are both {self.id_column!r}: the id names a "
                              "track, the label its genre")
        roles = [self.id_column, self.label_column, self.name_column, self.artists_column, self.song_column]
        clash = set(self.feature_columns) & ({r for r in roles if r} | set(self.metadata_columns))
        if clash:
            raise ConfigError(f"columns {sorted(clash)} cannot be both features and id/label/metadata")
        for name, table in (("transforms", self.transforms), ("rules", self.rules)):
            unknown = set(table or {}) - set(self.feature_columns)
            if unknown:
                raise ConfigError(f"schema.{name} names columns that are not features: {sorted(unknown)}")
        for col, spec in (self.transforms or {}).items():
            kind, period = parse_transform(spec, col)
            if kind == "cyclic" and not math.isfinite(period):  # its sine and cosine would be one constant
                raise ConfigError(f"schema.transforms.{col}: the period of a cyclic transform must be a finite number "
                                  f"> 0, got {spec!r} (an infinite period turns every value into the same point)")
        for col, rule in (self.rules or {}).items():  # (NaN would compare false: every value would pass)
            check_finite(rule.min, f"schema.rules.{col}.min")
            check_finite(rule.max, f"schema.rules.{col}.max")
        if self.missing not in ("drop", "impute"):
            raise ConfigError(f"schema.missing must be 'drop' or 'impute', got {self.missing!r}")

    @property
    def metadata(self) -> tuple[str, ...]:
        """Every non-feature column the track table keeps (name, artists, then the rest)."""
        named = tuple(c for c in (self.name_column, self.artists_column, self.song_column) if c)
        return named + tuple(c for c in self.metadata_columns if c not in named)

    @classmethod
    def generic(
        cls, *, id_column: str, feature_columns: tuple[str, ...], label_column: str | None = None,
        name_column: str | None = None, artists_column: str | None = None,
        metadata_columns: tuple[str, ...] = (),
    ) -> FeatureSchema:
        """A schema for a non-Spotify feature set: no transforms or rules unless given."""
        return cls(id_column=id_column, feature_columns=feature_columns, label_column=label_column,
                   name_column=name_column, artists_column=artists_column,
                   metadata_columns=metadata_columns, transforms={}, rules={})


# Mood space of an audio catalog (there is no valence or energy): pace, level, brightness, texture.
AUDIO_MOOD_WEIGHTS = {"tempo": 1.0, "rms_mean": 1.0, "loudness": 1.0, "spectral_centroid_mean": 1.0,
                      "harmonic_ratio_mean": 1.0, "onset_rate": 1.0, "beat_strength": 1.0}


# The audio preset's preprocessing: every component, whitened unless the catalog's labels say otherwise
# (PreprocessConfig.whiten, engine/_whitening.py).
AUDIO_PREPROCESS = {"whiten": "auto"}


def audio_schema(columns: tuple[str, ...] | list[str]) -> FeatureSchema:
    """The built-in ``audio`` preset for a table with these columns: id ``filename``, label
    ``label``, every descriptor of engine/audio/_columns.py the table has as a feature (so a
    published GTZAN table's 57 and `musicrec extract`'s 108 alike), tags and song as metadata.

    Transforms: ``key`` is a pitch class on a circle; every ``*_var`` is a non-negative spread
    with a long right tail (log1p). ``length`` (the sample count) is metadata, never a feature:
    it tells the file's cut, not the music. A tempo of 0 (no beat found) is imputed."""
    from .audio._columns import DESCRIPTORS, ID_COLUMN, LABEL_COLUMN

    present = set(columns)
    features = tuple(c for c in DESCRIPTORS if c in present)
    if ID_COLUMN not in present or not features:
        raise ConfigError(f"the audio schema needs a {ID_COLUMN!r} column and descriptor columns "
                          f"({', '.join(DESCRIPTORS[:4])}, ...); the file has {sorted(present)[:12]}")
    optional = [c for c in ("album", "length", "duration", "segment", "start_seconds", "clipped_fraction")
                if c in present]
    transforms = {c: "log1p" for c in features if c.endswith("_var")}
    if "key" in features:
        transforms["key"] = "cyclic:12"
    rules = {"tempo": ValueRule(min=0.0, exclusive_min=True, action="impute")} if "tempo" in features else {}
    return FeatureSchema(
        id_column=ID_COLUMN, feature_columns=features,
        label_column=LABEL_COLUMN if LABEL_COLUMN in present else None,
        name_column="title" if "title" in present else None,
        artists_column="artist" if "artist" in present else None,
        song_column="song" if "song" in present else None,
        metadata_columns=tuple(optional), transforms=transforms, rules=rules)


def detect_preset(columns: tuple[str, ...] | list[str]) -> str | None:
    """``"audio"`` for a GTZAN-layout header (a filename column and at least 10 of its
    descriptors), ``"spotify"`` for the Spotify Tracks header, else None."""
    from .audio._columns import GTZAN_FEATURES, ID_COLUMN

    present = set(columns)
    if ID_COLUMN in present and len(present & set(GTZAN_FEATURES)) >= 10:
        return "audio"
    if {"track_id", *SPOTIFY_FEATURES} <= present:
        return "spotify"
    return None


def parse_transform(spec: str, column: str = "?") -> tuple[str, float]:
    """Parse ``"none"``, ``"log1p"`` or ``"cyclic:<period>"`` into ``(kind, period)``. An infinite period parses (a
    bundle built before the schema refused it holds one, and its preprocessing does what it did then); a new schema
    refuses it (``FeatureSchema``)."""
    if spec in ("none", "log1p"):
        return spec, 0.0
    if spec.startswith("cyclic:"):
        try:
            period = float(spec.split(":", 1)[1])
        except ValueError:
            period = 0.0
        if period > 0:
            return "cyclic", period
    raise ConfigError(f"schema.transforms.{column}: the transform for column {column!r} must be 'none', 'log1p' or "
                      f"'cyclic:<period>' with a period > 0, got {spec!r}")
