"""The catalog: one row per track, as engine/_ingest.py cleans it and a bundle's ``tracks.npz`` stores it.

A Catalog holds each track's id, its raw feature values, its genres (multi-label) and its metadata columns
typed for filters (text, numbers, or flags: int8 1 true, 0 false, ``UNKNOWN_FLAG`` for a blank), with the
IngestReport of what happened to every row read. Songs (the same name and artists under several ids) are
keyed here too, so that evaluations and answers can leave a query's own song out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ._arrays import pack_strings, unpack_strings

UNKNOWN_FLAG = -1  # a blank cell of a flag column (engine/_ingest.py)


@dataclasses.dataclass(frozen=True)
class IngestReport:
    """What happened to every row read."""

    rows_read: int
    exact_duplicates: int
    dropped: dict[str, int]
    imputed: dict[str, int]
    id_duplicates_merged: int
    id_conflicts: int
    multi_genre_tracks: int
    missing_metadata: int
    tracks: int
    skipped_columns: tuple[str, ...] = ()
    # per flag column (int8 metadata), how many tracks have it blank, i.e. unknown
    flag_blanks: dict[str, int] = dataclasses.field(default_factory=dict)
    # tracks whose every row has a blank label: kept (similar tracks serve them; the genre model
    # trains without them), and counted so that a file of blank labels does not go unsaid
    unlabelled: int = 0
    # per name, artists or metadata column, how many tracks have it blank (``missing_metadata`` counts the tracks
    # with any): so that a column the file leaves empty by design (an extract's ``segment``) is named as the cause
    blank_cells: dict[str, int] = dataclasses.field(default_factory=dict)
    # per reason in ``dropped``, its first data rows (1-based, the header not counted; at most DROPPED_ROWS_SHOWN)
    dropped_rows: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class Catalog:
    """One row per track: ids, raw feature values, genres (multi-label, CSR), metadata columns.

    Attributes
    ----------
    ids : ndarray of str, shape (n_tracks,)
    features : ndarray of float64, shape (n_tracks, n_features)
        Raw values in ``feature_names`` order, after imputation.
    genre_names : tuple of str
        The genre vocabulary, sorted.
    genre_indptr, genre_codes : ndarray of int32
        Track ``i`` has genres ``genre_codes[genre_indptr[i]:genre_indptr[i+1]]`` (first-seen order).
    metadata : dict of column name -> ndarray, each shape (n_tracks,)
        Strings (object), numbers (float64, NaN when blank) or flags (int8: 1 true, 0 false,
        -1 unknown), as parsed (see the module docstring).
    """

    ids: np.ndarray
    feature_names: tuple[str, ...]
    features: np.ndarray
    genre_names: tuple[str, ...]
    genre_indptr: np.ndarray
    genre_codes: np.ndarray
    metadata: dict[str, np.ndarray]
    report: IngestReport
    artists_column: str | None = None
    artist_separator: str = ";"

    def __len__(self) -> int:
        return len(self.ids)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Pickle-free arrays for ``tracks.npz`` (strings packed as UTF-8 blobs)."""
        arrays: dict[str, np.ndarray] = {}
        _put_strings(arrays, "ids", self.ids)
        arrays["feature_names"] = np.array(self.feature_names, dtype=str)
        arrays["features"] = self.features
        arrays["genre_names"] = np.array(self.genre_names, dtype=str)
        arrays["genre_indptr"] = self.genre_indptr
        arrays["genre_codes"] = self.genre_codes
        arrays["metadata_columns"] = np.array(list(self.metadata), dtype=str)
        for i, (_col, values) in enumerate(self.metadata.items()):
            if values.dtype == object:
                _put_strings(arrays, f"meta{i}", values)
            else:
                arrays[f"meta{i}"] = values
        arrays["artists_column"] = np.array(self.artists_column or "", dtype=str)
        arrays["artist_separator"] = np.array(self.artist_separator, dtype=str)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], report: IngestReport) -> Catalog:
        metadata = {}
        for i, col in enumerate(str(c) for c in arrays["metadata_columns"]):
            values = stored_strings(arrays, f"meta{i}") if f"meta{i}_blob" in arrays else arrays[f"meta{i}"]
            # bundles written before flags were int8 stored them as bool (and never had blanks)
            metadata[col] = values.astype(np.int8) if values.dtype == bool else values
        return cls(
            ids=stored_strings(arrays, "ids"),
            feature_names=tuple(str(n) for n in arrays["feature_names"]),
            features=arrays["features"],
            genre_names=tuple(str(n) for n in arrays["genre_names"]),
            genre_indptr=arrays["genre_indptr"],
            genre_codes=arrays["genre_codes"],
            metadata=metadata,
            report=report,
            artists_column=str(arrays["artists_column"]) or None,
            artist_separator=str(arrays["artist_separator"]),
        )

    def genres_of(self, i: int) -> tuple[str, ...]:
        codes = self.genre_codes[self.genre_indptr[i]:self.genre_indptr[i + 1]]
        return tuple(self.genre_names[c] for c in codes)

    def genre_matrix(self) -> np.ndarray:
        """Multi-hot bool matrix of shape (n_tracks, n_genres)."""
        out = np.zeros((len(self), len(self.genre_names)), dtype=bool)
        rows = np.repeat(np.arange(len(self)), np.diff(self.genre_indptr))
        out[rows, self.genre_codes] = True
        return out

    def primary_genre(self) -> np.ndarray:
        """The first-seen genre code of each track, -1 when it has none; shape (n_tracks,)."""
        has = np.diff(self.genre_indptr) > 0
        out = np.full(len(self), -1, dtype=np.int32)
        out[has] = self.genre_codes[self.genre_indptr[:-1][has]]
        return out

    def primary_artists(self) -> np.ndarray:
        """First listed artist per track (the grouping key for honest splits); tracks without an
        artist get a key of their own, so they never tie unrelated tracks together."""
        if self.artists_column is None:
            return np.array([f"\0track:{i}" for i in self.ids], dtype=object)
        artists = self.metadata[self.artists_column]
        sep = self.artist_separator  # the first artist named (";Artist" names Artist, as the server reads it)
        first = [next((p.strip() for p in str(a).split(sep) if p.strip()), "") for a in artists]
        keys = [a if a else f"\0track:{i}" for a, i in zip(first, self.ids, strict=True)]
        return np.array(keys, dtype=object)


def song_keys(names: np.ndarray | None, artists: np.ndarray | None) -> np.ndarray:
    """One integer per track naming its song: the same (name, artists), compared without case or
    surrounding spaces, is the same song, however many ids list it (single, album, compilation).
    A track without a name, or a catalog without names or artists, is a song of its own."""
    if names is None or artists is None:
        return np.arange(len(names) if names is not None else len(artists) if artists is not None else 0)
    keys = [f"{str(n).strip().casefold()}\0{str(a).strip().casefold()}" if str(n).strip() else f"\0row{i}"
            for i, (n, a) in enumerate(zip(names, artists, strict=True))]
    return pd.factorize(np.asarray(keys, dtype=object))[0].astype(np.int64)


def case_only_genres(genre_names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Groups of genre names that differ only in case ("Rock", "rock"): the catalog keeps them apart, and the build
    says so."""
    groups: dict[str, list[str]] = {}
    for g in genre_names:
        groups.setdefault(g.casefold(), []).append(g)
    return [tuple(names) for names in groups.values() if len(names) > 1]


def catalog_songs(catalog: Catalog, name_column: str | None) -> np.ndarray:
    """The song key of every track of ``catalog`` (``song_keys`` over its name and artists columns)."""
    names = catalog.metadata.get(name_column or "")
    artists = catalog.metadata.get(catalog.artists_column or "")
    return song_keys(names, artists) if names is not None and artists is not None else np.arange(len(catalog))


def _put_strings(arrays: dict[str, np.ndarray], name: str, values: np.ndarray) -> None:
    arrays[f"{name}_blob"], arrays[f"{name}_offsets"] = pack_strings(values)


def stored_strings(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The strings stored under ``name`` in a ``tracks.npz`` (``ids``, or a text metadata column)."""
    return unpack_strings(arrays[f"{name}_blob"], arrays[f"{name}_offsets"])
