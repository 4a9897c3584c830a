"""Build configuration: every tunable of the pipeline, one section per stage.

All configuration is frozen, keyword-only dataclasses with defaults as named constants. A config
file (TOML or JSON) has one table per dataclass (``[schema]``, engine/_schema.py; ``[preprocess]``,
``[index]``, ``[moods]``, ``[genre]``, ``[similar]``) plus top-level ``seed``; unknown keys are errors,
not ignored, so a typo never silently falls back to a default. The resolved config is written into
the bundle manifest.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ._confcheck import FLOAT32_MAX, Span, check_spans
from ._errors import ConfigError
from ._inputfile import read_regular_file
from ._moodconfig import MoodConfig
from ._oldconfig import RETIRED_KEYS
from ._schema import FeatureSchema

# Every component: a rotation of the standardized features, so cosine ranks as on them. Measured against
# 0.90 (the notebook method's choice), 0.95 and 0.99 on held-out artists, audio-only genre-precision@10
# only fell as variance was cut (benchmarks/retrieval_defaults.py; benchmarks/RESULTS.md, "Retrieval defaults").
DEFAULT_PCA_VARIANCE = 1.0
DEFAULT_SEED = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class PreprocessConfig:
    """Standardize, then PCA to a variance target (or a fixed component count). The default keeps
    every component: the stage stays standardize -> PCA -> cosine, and loses nothing (see
    ``DEFAULT_PCA_VARIANCE``); a lower target trades retrieval quality for fewer dimensions."""

    pca_variance: float = DEFAULT_PCA_VARIANCE
    pca_components: int | None = None
    # Each kept component divided by its standard deviation (engine/_preprocess.py). Off for Spotify-style
    # tables, where it lowered audio-only retrieval; the audio preset asks for "auto" (AUDIO_PREPROCESS):
    # whitened, as it raised retrieval on every split of the librosa tables measured (benchmarks/RESULTS.md,
    # "Retrieval defaults"), unless the catalog's own labels score the plain vectors higher (engine/_whitening.py).
    whiten: bool | Literal["auto"] = False

    def __post_init__(self) -> None:
        check_spans(self, "preprocess", {"pca_variance": Span(0.0, 1.0, open_low=True),
                                         "pca_components": Span(1, also=(None,))})
        if self.whiten not in (True, False, "auto"):
            raise ConfigError(f'preprocess.whiten must be true, false or "auto", got {self.whiten!r}')
        # the default variance beside a count is what a bundle's own config holds; any other variance is ignored
        if self.pca_components is not None and self.pca_variance != DEFAULT_PCA_VARIANCE:
            raise ConfigError("preprocess gives both pca_variance and pca_components; give one (pca_components "
                              "wins otherwise, and pca_variance would be ignored)")


IndexKind = Literal["auto", "flat", "hnsw", "ivf", "ivfpq"]
# "auto": exact flat search while it stays cheap next to a gRPC call, IVF above (see choose_index_kind).
AUTO_FLAT_MAX_TRACKS = 250_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """FAISS index type. ``flat`` is exact; ``hnsw``, ``ivf`` and ``ivfpq`` (product-quantized codes, for
    catalogs beyond memory) are approximate and get their recall@10 against exact search measured
    into the build report."""

    kind: IndexKind = "auto"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64
    ivf_nlist: int | None = None  # None: 4 * sqrt(n_tracks), the FAISS rule of thumb
    ivf_nprobe: int = 16
    pq_bytes: int | None = None  # ivfpq: bytes per vector code; None: one per dimension
    recall_queries: int = 1000
    # Each track's nearest neighbours, precomputed with this index at build time (0: none). A query
    # seeded by one catalog track reads its list instead of searching (the common "more like this"
    # call); a query with filters searches the index, and so does one whose artist cap runs past the list.
    neighbours: int = 64
    # Catalogs above this many tracks get no table (0: no limit); by-id queries then search the index
    # (465 us in-process at 1M against 14 us from a table: benchmarks/table_or_search.py). On 2 quiet
    # cores the table took 189 s of a 1M-track build (IVF search of each track's first fetch, a chunk
    # at a time, beside the walk); past 250k the index is approximate, so it grows with n, not n^2.
    neighbours_max_tracks: int = 1_000_000
    # A second, approximate index for queries whose seeds are not catalog tracks and that carry no
    # filter (new tracks by features, vectors or audio), which pay a search per request: IVF-flat
    # with sqrt(n) lists, searched with ``ivf_nprobe``. Measured at the first fetch (264 rows) on the
    # Spotify vectors: recall 0.993 in 120 us where exact search took 632 us and HNSW (ef 128) 0.969
    # in 197 us (benchmarks/RESULTS.md). "auto": built beside a flat index from
    # NEW_TRACK_INDEX_MIN_TRACKS tracks; its recall is in the build report. Catalog seeds and
    # filtered queries always use ``kind``.
    new_track_index: Literal["auto", "ivf", "none"] = "auto"

    def __post_init__(self) -> None:
        if self.new_track_index not in ("auto", "ivf", "none"):
            raise ConfigError(f"index.new_track_index must be 'auto', 'ivf' or 'none', got {self.new_track_index!r}")
        if self.kind not in ("auto", "flat", "hnsw", "ivf", "ivfpq"):
            raise ConfigError(f"index.kind must be 'auto', 'flat', 'hnsw', 'ivf' or 'ivfpq', got {self.kind!r}")
        check_spans(self, "index", INDEX_SPANS)


# (an HNSW graph of 1 link per node crashes FAISS; "auto" ivf_nlist and pq_bytes are None, which a file cannot say)
INDEX_SPANS = {"hnsw_m": Span(2), "hnsw_ef_construction": Span(1), "hnsw_ef_search": Span(1), "ivf_nprobe": Span(1),
               "ivf_nlist": Span(1, also=(None,)), "pq_bytes": Span(1, also=(None,)), "recall_queries": Span(1),
               "neighbours": Span(0, 1000), "neighbours_max_tracks": Span(1, also=(0,), say="0 (no limit)")}
NEW_TRACK_INDEX_MIN_TRACKS = 20_000  # below this an exact search costs a few tens of microseconds


def wants_new_track_index(config: IndexConfig, n_tracks: int) -> bool:
    """Whether a build adds the approximate new-track index (``config.kind`` already resolved)."""
    if config.new_track_index == "auto":
        return config.kind == "flat" and n_tracks >= NEW_TRACK_INDEX_MIN_TRACKS
    return config.new_track_index == "ivf"


def new_track_index_config(config: IndexConfig, n_tracks: int) -> IndexConfig:
    """The new-track index's own settings: IVF-flat with sqrt(n) lists."""
    return dataclasses.replace(config, kind="ivf", ivf_nlist=max(1, round(n_tracks ** 0.5)))


def choose_index_kind(config: IndexConfig, n_tracks: int) -> IndexConfig:
    """Resolve ``kind="auto"`` by catalog size. Measured on 2 cores (benchmarks/RESULTS.md, scale):
    exact flat search costs ~1.9 us per 1,000 tracks (0.19 ms at 100k, 1.9 ms at 1M, 9.5 ms at 5M),
    so past ~250k tracks it exceeds the whole gRPC floor (~0.4 ms); the exact neighbour table stops
    being affordable at the same size. Above it, IVF (nprobe 16) answered in 0.04 ms at 1M with
    recall@10 0.999, built faster and 6x smaller than HNSW at equal or better recall."""
    if config.kind != "auto":
        return config
    return dataclasses.replace(config, kind="flat" if n_tracks <= AUTO_FLAT_MAX_TRACKS else "ivf")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GenreConfig:
    """XGBoost genre classifier (see engine/_genre.py for why these defaults)."""

    enabled: bool = True
    max_rounds: int = 250
    early_stopping_rounds: int = 10
    learning_rate: float = 0.3
    max_depth: int = 4
    max_bin: int = 64
    min_child_weight: float = 1.0
    subsample: float = 1.0
    colsample_bytree: float = 0.8
    colsample_bynode: float = 1.0  # features sampled again at each split (random-forest style)
    num_parallel_tree: int = 1  # trees per class and round, averaged: a boosted random forest above 1
    multi_strategy: Literal["multi_output_tree", "one_output_per_tree"] = "multi_output_tree"
    threads: int = 2
    # Cross-fitting (engine/_crossfit.py): 0 = 2 folds on large catalogs (build budget), 5 (3 above 5,000
    # labelled tracks) when a small catalog's capacity is tuned.
    folds: int = 0
    # Below this many labelled tracks, ``tune`` cross-validates a few capacities (engine/_crossfit.py
    # CANDIDATES, each with its own rounds cap) and keeps the best; above it, or with tune off, the
    # configured capacity is used as it is.
    tune: bool = True
    small_catalog: int = 20_000
    # With ``tune``, under ``small_catalog``: a logistic regression blended into the trees' margin at the weight
    # the folds score best, 0 (the trees alone) included (engine/_linear.py).
    blend: bool = True
    # Labelled tracks the classifier trains on (folds and shipped model); a larger catalog is sampled at
    # random and its other tracks scored by the shipped model (engine/_crossfit.py). 0: every track.
    fit_sample: int = 200_000

    def __post_init__(self) -> None:
        check_spans(self, "genre", GENRE_SPANS)
        if self.multi_strategy not in ("multi_output_tree", "one_output_per_tree"):
            raise ConfigError(f"genre.multi_strategy unknown: {self.multi_strategy!r}")
        # without the classifier its other keys would be ignored: refused, as [moods] refuses keys its method ignores
        if not self.enabled and (given := [f.name for f in dataclasses.fields(self) if f.name != "enabled"
                                           and getattr(self, f.name) != f.default]):
            raise ConfigError(f"genre.{', genre.'.join(given)} given, but genre.enabled = false trains no classifier: "
                              "leave them out, or set enabled = true")


# What XGBoost takes (a rate of 0 or a sample of nothing learns nothing: a NaN rate trained NaN probabilities; its
# max_depth 0, no limit, is not one of these models; its floats are 32-bit), and what the cross-fitting does with
# the rest.
_SHARE = Span(0.0, 1.0, open_low=True)
GENRE_SPANS = {"max_rounds": Span(1), "early_stopping_rounds": Span(1), "learning_rate": _SHARE, "max_depth": Span(1),
               "max_bin": Span(2), "min_child_weight": Span(0.0, FLOAT32_MAX), "subsample": _SHARE,
               "colsample_bytree": _SHARE, "colsample_bynode": _SHARE, "num_parallel_tree": Span(1), "threads": Span(1),
               "folds": Span(2, 20, also=(0,), say="0 (automatic)"), "small_catalog": Span(0),
               "fit_sample": Span(1000, also=(0,), say="0 (every track)")}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SimilarConfig:
    """How similar tracks are ranked (see engine/_rerank.py).

    The ``candidates`` nearest tracks by cosine are re-ranked by
    ``(1 - genre_weight) * cosine + genre_weight * agreement``, where agreement is the probability
    the classifier gives the query's audio features of being in any of the candidate's genres.
    The query's own genre is never an input. ``genre_weight = 0`` is pure cosine (the design's
    retrieval stage alone); clients may choose another weight per request. Measured on held-out
    artists (benchmarks/quality.py): genre-precision@10 0.119 at weight 0, 0.25-0.27 at 0.35-0.5.
    """

    genre_weight: float = 0.4
    candidates: int = 200

    def __post_init__(self) -> None:
        check_spans(self, "similar", {"genre_weight": Span(0.0, 1.0), "candidates": Span(1, 5000)})


# numpy, scikit-learn, XGBoost and FAISS all take a build's seed (and seed + 1 for the stability refits):
# FAISS's k-means seed is a C int, so the largest they all take is 2**31 - 2
LARGEST_SEED = 2**31 - 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Everything the indexer needs besides the input file."""

    schema: FeatureSchema = dataclasses.field(default_factory=FeatureSchema)
    preprocess: PreprocessConfig = dataclasses.field(default_factory=PreprocessConfig)
    index: IndexConfig = dataclasses.field(default_factory=IndexConfig)
    moods: MoodConfig = dataclasses.field(default_factory=MoodConfig)
    genre: GenreConfig = dataclasses.field(default_factory=GenreConfig)
    similar: SimilarConfig = dataclasses.field(default_factory=SimilarConfig)
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if type(self.seed) is not int or not 0 <= self.seed <= LARGEST_SEED:
            raise ConfigError(f"seed must be a whole number from 0 to {LARGEST_SEED:,}, got {self.seed!r}")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists) for the manifest."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BuildConfig:
        """Build from a parsed config file; unknown sections or keys raise :class:`ConfigError`."""
        return _from_mapping(cls, data, "config")

    @classmethod
    def from_file(cls, path: str | Path) -> BuildConfig:
        """Read a ``.toml`` or ``.json`` config file."""
        return cls.from_mapping(read_config_file(path))

    def replace(self, **sections: Any) -> BuildConfig:
        """A copy with whole sections replaced, or with section fields overridden by a dict. ``genre={"enabled":
        False}`` (``--no-genre``) turns the classifier off whatever the section held: its other keys go to their
        defaults (GenreConfig refuses them beside enabled = false, as they would be ignored)."""
        updates: dict[str, Any] = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, dict) and dataclasses.is_dataclass(current):
                off = name == "genre" and value.get("enabled") is False
                updates[name] = _from_mapping(type(current), {**({} if off else _shallow(current)), **value}, name)
            else:
                updates[name] = value
        return dataclasses.replace(self, **updates)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A ``.toml`` or ``.json`` config file's sections, checked as far as the file alone can be (the
    values are checked by ``BuildConfig.from_mapping``)."""
    path = Path(path)
    try:
        raw = read_regular_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is read past, as in a CSV
        data = json.loads(text, object_pairs_hook=_unique_keys) if path.suffix.lower() == ".json" \
            else tomllib.loads(text)
    except ConfigError as exc:  # a key given twice: TOML refuses it itself, JSON would keep the last silently
        raise ConfigError(f"config file {path}: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/object at the top level")
    return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key it gives twice."""
    keys = [key for key, _ in pairs]
    twice = next((key for i, key in enumerate(keys) if key in keys[:i]), None)
    if twice is not None:
        raise ConfigError(f"key {twice!r} is given twice in one object; give it once")
    return dict(pairs)


def _shallow(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _from_mapping(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table/object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        section = where.rsplit(".", 1)[-1]
        retired = "".join(f"; {key}: {RETIRED_KEYS[section, key]}" for key in sorted(unknown)
                          if (section, key) in RETIRED_KEYS)
        raise ConfigError(f"unknown key(s) in {where}: {sorted(unknown)}{retired}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check a parsed TOML/JSON value against a field's type hint, converting lists to tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        wanted = [e.split(" must be ", 1)[1].rsplit(", got ", 1)[0] for e in errors if " must be " in e]
        if len(wanted) == len(errors) > 1:  # "must be true or false, or one of ['auto'], got 'yes'"
            raise ConfigError(f"{where} must be {', or '.join(wanted)}, got {value!r}")
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else _from_mapping(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{where}[]") for v in value)
    if origin in (Mapping, dict) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a table/object, got {value!r}")
        vtype = args[1] if args else Any
        return {str(k): _coerce(vtype, v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {hint!r}")  # a bug in this module, not the file
