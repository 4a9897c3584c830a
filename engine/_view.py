"""A loaded bundle seen as a catalog: display columns, lookups, and the validation every query shares.

Built once per bundle. Display columns are plain Python lists (responses read single items, and
lists do that without numpy scalar boxing); the columns queries compute on stay numpy arrays.
Everything that turns client input (feature values, genre names, column names, vectors) into
arrays lives here, so every query that takes such input refuses it with the same message.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _compiled
from ._catalog import UNKNOWN_FLAG, catalog_songs
from ._confcheck import FLOAT32_MAX
from ._errors import InvalidQuery, shown
from ._loaded import Bundle
from ._preprocess import l2_normalize


class CatalogView:
    """The track table of one :class:`Bundle`, indexed by row (row ``i`` is index vector ``i``)."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        tracks = bundle.tracks
        self.n = len(tracks)
        self.vectors = bundle.vectors
        self.feature_names = tuple(bundle.preprocessor.feature_names)
        self.feature_index = {n: i for i, n in enumerate(self.feature_names)}
        self._feature_set = frozenset(self.feature_names)
        self.genre_names = tracks.genre_names
        self._genre_code = {g: i for i, g in enumerate(self.genre_names)}
        self.genre_matrix = tracks.genre_matrix()
        # Numeric columns usable in ranges and targets: the raw features and numeric metadata.
        self.numeric: dict[str, np.ndarray] = {n: tracks.features[:, i] for i, n in enumerate(self.feature_names)}
        for col, values in tracks.metadata.items():
            # flags (int8: 1, 0, -1 unknown) are filtered as flags, never as numbers
            if values.dtype.kind in "fiu" and values.dtype != np.int8 and col not in self.numeric:
                self.numeric[col] = values.astype(np.float64)
        # A target's distance is measured in units of the column's 1st-99th percentile spread.
        self.spread: dict[str, float] = {}
        self.value_range: dict[str, tuple[float, float]] = {}  # a target beyond it by a spread moves nothing
        for name, values in self.numeric.items():
            finite = values[np.isfinite(values)]
            lo, hi = np.percentile(finite, [1, 99]) if len(finite) else (0.0, 1.0)
            self.spread[name] = max(float(hi - lo), 1e-9)
            self.value_range[name] = (float(finite.min()), float(finite.max())) if len(finite) else (-np.inf, np.inf)
        # A feature seed meets the catalog's own value rules (schema.rules), as its tracks did when it was indexed:
        # a value a "drop" rule forbids is refused (a tempo of 0, a key of 99: the transforms would clamp or wrap
        # it into an answer), one an "impute" rule forbids takes the median of the bundle's values of that feature
        # (the indexer imputes with the median of the rows it kept; for Spotify's time_signature both are 4).
        rules = [(self.feature_index[col], col, rule) for col, rule in (bundle.config.schema.rules or {}).items()
                 if col in self.feature_index]
        self._rules = [(j, col, rule, float(np.median(tracks.features[:, j])) if rule.action == "impute" else None)
                       for j, col, rule in rules]
        self.flag_explicit = _flag(tracks.metadata.get("explicit"))
        artists = tracks.metadata.get(tracks.artists_column) if tracks.artists_column else None
        sep = tracks.artist_separator
        self.artists: list[tuple[str, ...]] = (
            [tuple(a.strip() for a in str(s).split(sep) if a.strip()) for s in artists]
            if artists is not None else [() for _ in range(self.n)])
        # The dataset re-lists one song under several ids (single, album, compilation). A song key
        # (name + artists) keeps a seed's other listings out of its results and duplicates out of
        # playlists. Without a name column every track is its own song.
        names = tracks.metadata.get(bundle.config.schema.name_column or "")
        self.song = catalog_songs(tracks, bundle.config.schema.name_column)
        self.song_list: list[int] = self.song.tolist()
        moods = bundle.moods
        self.mood_labels = moods.labels_
        self.n_moods = len(moods.clusters_)
        self.ids: list[str] = [str(t) for t in tracks.ids]
        self.names: list[str] = [str(x) for x in names] if names is not None else [""] * self.n
        album = tracks.metadata.get("album_name")
        self.albums: list[str] = [str(x) for x in album] if album is not None and album.dtype == object \
            else [""] * self.n
        self.genres: list[tuple[str, ...]] = [tracks.genres_of(i) for i in range(self.n)]
        self.mood_ids: list[int] = moods.labels_.astype(int).tolist()
        mood_names = [c["name"] for c in moods.clusters_]
        self.mood_names: list[str] = [mood_names[m] for m in self.mood_ids]
        self.mood_core: list[bool] = moods.is_core_.astype(bool).tolist()
        self.mood_strength: list[float] = moods.strength_.astype(float).tolist()
        # None per track whose flag is blank in the source: a client sees "unknown", never a guess.
        self.explicit: list[bool | None] | None = (
            [None if v == UNKNOWN_FLAG else bool(v) for v in self.flag_explicit.tolist()]
            if self.flag_explicit is not None else None)

    # -- lookups -------------------------------------------------------------------------------
    def row(self, track_id: str) -> int:
        return self.bundle.row(track_id)

    def features_of(self, row: int) -> dict[str, float]:
        """Raw feature values and numeric metadata of one track."""
        return {name: float(values[row]) for name, values in self.numeric.items()}

    def track_record(self, row: int) -> dict[str, Any]:
        """JSON-able description of one track (what a client shows)."""
        return {
            "track_id": self.ids[row], "name": self.names[row], "artists": list(self.artists[row]),
            "album": self.albums[row], "genres": list(self.genres[row]), "mood_id": self.mood_ids[row],
            "mood_name": self.mood_names[row], "mood_core": self.mood_core[row],
            "mood_strength": self.mood_strength[row],
            "explicit": self.explicit[row] if self.explicit is not None else None,
            "features": self.features_of(row),
        }

    # -- client input -> arrays ----------------------------------------------------------------
    def raw_features(self, values: Mapping[str, float], where: str = "features") -> np.ndarray:
        """Validate a feature-name -> value mapping into a raw row of shape (1, n_features)."""
        return self.feature_seed(values, where)[0]

    def feature_seed(self, values: Mapping[str, float], where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A feature-name -> value mapping validated and transformed once: the raw row (1,
        n_features), the classifier's float32 inputs (1, n_transformed) and the unit vector (dim,).

        Values that overflow once transformed are refused here, so a seed the classifier cannot
        read is refused by every query, not only by ClassifyGenre.
        """
        raw = self.validated_row(values, where)
        inputs, vectors, problems = self.feature_seeds(raw)
        if problems[0] is not None:
            raise InvalidQuery(f"{where}: {problems[0]}")
        return raw, inputs, vectors[0]

    def feature_seeds(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """``feature_seed`` for validated raw rows (n, n_features) at once, the same operations row by
        row (engine/_similar_many.py ranks concurrent queries together): the classifier's inputs (n,
        n_transformed), the unit vectors (n, dim), and per row None or why it is refused."""
        if len(raw) == 1 and _compiled.active():
            return self._compiled_seed(raw)
        inputs, transformed = self._inputs(raw)
        vectors = self.bundle.preprocessor.embed_transformed(transformed)
        problems: list[str | None] = [None] * len(raw)
        # l2_normalize leaves a row with no direction (at the mean, or not finite once standardized) zero
        if len(raw) == 1:  # a query's one seed: the same checks as below, fewer array operations
            if not (np.isfinite(inputs).all() and vectors.any()):
                problems[0] = _seed_problem(inputs[0])
            return inputs, vectors, problems
        for i in np.flatnonzero(~np.isfinite(inputs).all(axis=1) | ~vectors.any(axis=1)).tolist():
            problems[i] = _seed_problem(inputs[i])
        return inputs, vectors, problems

    def _compiled_seed(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """``feature_seeds`` of one row by the compiled kernels (engine/_compiled.py): the same bits in
        three calls (transform and standardize, numpy's PCA product, unit vector) instead of about twenty."""
        pre = self.bundle.preprocessor
        kernels = _compiled.kernels()
        inputs, standardized, finite = kernels.seed_row(raw[0], *pre.seed_row_arrays(raw[0]), pre.mean_, pre.scale_)
        with np.errstate(over="ignore", invalid="ignore"):
            projected = standardized[None, :] @ pre.components_.T
        vector, nonzero = kernels.unit_vector(projected[0])
        return inputs[None, :], vector[None, :], [None if finite and nonzero else _seed_problem(inputs)]

    def model_seed(self, values: Mapping[str, float], where: str) -> np.ndarray:
        """The classifier's float32 inputs (1, n_transformed) for a feature-name -> value mapping, validated
        as ``feature_seed`` validates it, without placing it in the vector space: ClassifyGenre searches
        nothing (in-process 82 -> 61 us per call; benchmarks/RESULTS.md, "Where a served request's CPU goes")."""
        inputs = self._inputs(self.validated_row(values, where))[0]
        if not np.isfinite(inputs).all():
            raise InvalidQuery(f"{where}: {_TOO_LARGE_FOR_MODEL}")
        return inputs

    def _inputs(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):
            transformed = self.bundle.preprocessor.transform_features(raw)
            return transformed.astype(np.float32), transformed

    def validated_row(self, values: Mapping[str, float], where: str) -> np.ndarray:
        """A feature-name -> value mapping as a raw row (1, n_features): every feature, finite, within the
        catalog's value rules (a value an impute rule forbids replaced by the catalog's median)."""
        names = self.feature_names
        if len(values) != len(names) or not self._feature_set.issuperset(values.keys()):  # every name, no other
            unknown = sorted(set(values) - set(names))
            if unknown:
                raise InvalidQuery(f"{where}: unknown feature(s) {', '.join(shown(u) for u in unknown[:5])}; "
                                   f"the bundle's features are {list(names)}")
            missing = [n for n in names if n not in values]
            raise InvalidQuery(f"{where}: missing feature(s) {missing}; every feature of the bundle is required")
        floats = [float(values[n]) for n in names]
        if not all(map(math.isfinite, floats)) or max(map(abs, floats)) > FLOAT32_MAX:
            bad = [n for n, v in zip(names, floats, strict=True) if not (math.isfinite(v) and abs(v) <= FLOAT32_MAX)]
            # the indexing drops a track with such a value (engine/_ingest.py), which a log transform made finite here
            raise InvalidQuery(f"{where}: {bad} must be finite numbers within float32's range (no NaN or infinity, "
                               f"at most {FLOAT32_MAX:.4g} either way), as the catalog's tracks are")
        for j, col, rule, median in self._rules:
            if rule.breaks(floats[j]):
                if median is None:
                    raise InvalidQuery(f"{where}: {col} {floats[j]:g} is not {rule.describe()} (the catalog's rule: "
                                       "its tracks with such a value were dropped when it was indexed)")
                floats[j] = median
        return np.array([floats])

    def model_inputs(self, raw: np.ndarray) -> np.ndarray:
        """The classifier's inputs for raw rows, float32 (non-finite where a value overflows)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self.bundle.preprocessor.transform_features(raw).astype(np.float32)

    def check_vector(self, values: Sequence[float], where: str) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        dim = self.vectors.shape[1]
        if v.ndim != 1 or len(v) != dim:
            raise InvalidQuery(f"{where}: has {v.size} values, but the bundle's vectors have {dim}")
        if not np.isfinite(v).all():
            raise InvalidQuery(f"{where}: values must be finite numbers (no NaN or infinity)")
        unit = l2_normalize(v[None, :])[0]
        if not np.any(unit):
            raise InvalidQuery(f"{where}: is a zero vector (or too small to normalize)")
        return unit

    def numeric_column(self, name: str, where: str) -> np.ndarray:
        try:
            return self.numeric[name]
        except KeyError:
            raise InvalidQuery(f"{where}: unknown column {shown(name)}; numeric columns are "
                               f"{sorted(self.numeric)}") from None

    def genre_codes(self, names: Sequence[str], where: str) -> np.ndarray:
        if not names:
            return _NO_ROWS
        unknown = [g for g in names if g not in self._genre_code]
        if unknown:
            # the nearest by spelling first ('ROCK': 'rock'), then the catalog's first genres
            near = [m for u in unknown[:5] for m in difflib.get_close_matches(
                u.casefold(), [g.casefold() for g in self.genre_names], n=1, cutoff=0.6)]
            near = [g for g in self.genre_names if g.casefold() in near]
            hint = f"did you mean {', '.join(shown(g) for g in near)}? " if near else ""
            raise InvalidQuery(f"{where}: unknown genre(s) {', '.join(shown(u) for u in unknown[:5])}; {hint}"
                               f"the catalog has {len(self.genre_names)} genres, e.g. {list(self.genre_names[:5])}")
        return np.asarray(sorted({self._genre_code[g] for g in names}), dtype=np.int64)

    def check_mood_ids(self, ids: Sequence[int], where: str) -> np.ndarray:
        moods = np.asarray(list(ids), dtype=np.int64)
        bad = [int(m) for m in moods if not 0 <= m < self.n_moods]
        if bad:
            raise InvalidQuery(f"{where}: unknown mood id(s) {bad}; ids are 0..{self.n_moods - 1}")
        return moods


_NO_ROWS = np.empty(0, dtype=np.int64)
_NO_ROWS.setflags(write=False)


_TOO_LARGE_FOR_MODEL = ("values too large for the model (beyond float32 after transforms; "
                        "each feature's plausible range is in ServerInfo metrics)")


def _seed_problem(inputs: np.ndarray) -> str:
    """Why a seed is refused: its model inputs overflow float32, or its vector has no direction."""
    if not np.isfinite(inputs).all():
        return _TOO_LARGE_FOR_MODEL
    return "these values sit exactly at the catalog's mean and have no direction to search in"


def _flag(values: np.ndarray | None) -> np.ndarray | None:
    """A flag column as int8 (1 true, 0 false, -1 unknown); None when the bundle has none.
    Bundles store it as int8; a bool column (no blanks) reads the same."""
    if values is None:
        return None
    if values.dtype == bool:
        return values.astype(np.int8)
    if values.dtype.kind in "iu":
        return values.astype(np.int8)
    return None  # not a flag: filtering on it is refused, not skipped
