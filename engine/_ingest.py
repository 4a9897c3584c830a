"""Ingest and clean a catalog (CSV or Parquet) into one row per track: the policy that makes a Catalog.

The files themselves are read in engine/_readers.py (a typed CSV read that falls back to the all-text one, so
a bad cell is named here by row and column; Parquet); the Catalog it produces is engine/_catalog.py.

Policy, in the order it is applied (every removed row is counted under exactly one reason, so
``rows_read == exact_duplicates + sum(dropped) + id_duplicates_merged + tracks``):

1. A feature cell that is not a number at all (``"abc"``) is an error naming the row and column:
   that is a broken file or a wrong column mapping, not a missing measurement.
2. Rows identical in every column but the unnamed index column collapse into one (``exact_duplicates``);
   features compare as parsed numbers, every other column as text.
3. Rows without an id are dropped (the report names the first data rows of each reason). Missing or
   non-finite features are dropped, or imputed with the
   column median, per ``schema.missing``; so is a finite value beyond float32's range (|x| > ~3.4e38,
   ``FEATURE_LIMIT``), which the index, the classifier and the bundle's float32 arrays cannot hold
   (counted under the same reason). Impossible values (``schema.rules``, e.g. tempo 0) are
   dropped or imputed per rule.
4. Rows sharing an id merge into one track carrying every genre of every row (multi-label); the
   first row's features are kept and rows whose features disagree are counted (``id_conflicts``).

A CSV's feature columns are read as numbers by the C parser when every cell parses (missing-value
tokens become NaN); a cell that does not parse sends the file through the all-text read, where the
error names its row and column. A Parquet file's columns come typed; its text columns and its
numeric metadata are cleaned as their text, so a CSV and its Parquet copy give the same catalog.

Metadata columns (each track's values come from its first row) are typed for filters. A *flag*
column is one with at least one non-blank cell and every non-blank cell ``true``/``false``/``1``/``0``
(any case, surrounding spaces ignored); so a column of only 0s and 1s is a flag too. It is stored as
int8: 1 true, 0 false, -1 unknown. Unknown is a blank cell or a missing-value token (``nan``, ``na``, ``n/a``,
``null``, ``none``): nothing is invented, and a filter on the flag never matches an unknown. Blanks are
counted per flag column (``flag_blanks``). Otherwise a column whose non-blank cells are all numbers is
float64 (blank or a missing-value token: NaN), and anything else is text. A column whose non-blank cells
are at least nine in ten flags, or numbers, but not all, is an error naming the file, the data row, the
column and the value: one ``maybe`` among ``true``/``false`` would otherwise turn the column into text,
and its filters (explicit, popularity ranges) would silently go away.

A column given a type (``metadata_types``: ``musicrec add`` passes the bundle's, so a file's column is read as the
bundle's whatever its own cells look like) is parsed as that type instead: a flag column's blanks and missing-value
tokens are unknown and any other cell that is not a flag is an error; a number column's blanks are NaN and a cell
that is not a number is an error (each naming the file, the data row, the column and the value); a text column
keeps each cell's text as written.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._catalog import UNKNOWN_FLAG, Catalog, IngestReport
from ._confcheck import FLOAT32_MAX
from ._errors import CatalogError
from ._readers import MISSING_TOKENS, read_frame
from ._schema import FeatureSchema

_FLAG_TOKENS = {"true": 1, "false": 0, "1": 1, "0": 0}
TYPED_SHARE = 0.9  # a column this share of whose values are flags (or numbers) is meant to hold only those
# The largest feature magnitude kept: float32's, what FAISS, XGBoost and a bundle's float32 arrays hold. A larger
# finite value (-1e200) is treated as a non-finite one; below it float64's squares cannot overflow (3.4e38² ~ 1e77).
FEATURE_LIMIT = FLOAT32_MAX
DROPPED_ROWS_SHOWN = 5  # per reason a row was dropped, the data rows the report names


def rows_named(rows: Sequence[int], n: int) -> str:
    """``rows`` (the first data rows of ``n``) as a report names them: "data row 5", "data rows 5, 9, ..."."""
    if not rows:
        return ""
    return f"data row{'s' if n > 1 else ''} {', '.join(str(r) for r in rows)}{', ...' if n > len(rows) else ''}"


def read_catalog(path: str | os.PathLike[str], schema: FeatureSchema, *,
                 metadata_types: Mapping[str, np.dtype] | None = None) -> Catalog:
    """Read and clean a catalog CSV or Parquet file (engine/_readers.py: by its suffix, ``.parquet``/
    ``.pq``; Parquet needs pyarrow, the ``parquet`` extra). Raises :class:`CatalogError` with the file,
    row or column. ``metadata_types``: as in :func:`clean_catalog`."""
    path = Path(path)
    return clean_catalog(read_frame(path, numeric=schema.feature_columns), schema, source=str(path),
                         metadata_types=metadata_types)


def clean_catalog(frame: pd.DataFrame, schema: FeatureSchema, *, source: str = "<frame>",
                  metadata_types: Mapping[str, np.dtype] | None = None) -> Catalog:
    """Apply the module's cleaning policy to a frame as :func:`read_catalog` reads it: feature
    columns as numbers (float or int, NaN for missing) or as text, every other column as text or
    anything whose ``str`` is its text (a Parquet file's typed columns). ``metadata_types`` (column -> the
    dtype of a catalog's metadata array, e.g. a bundle's) parses those metadata columns as that type rather
    than typing them from their cells (module docstring)."""
    _check_columns(frame, schema, source)
    rows_read = len(frame)
    if rows_read == 0:
        raise CatalogError(f"{source}: has a header but no track rows")

    # 1. Parse features; a non-numeric cell is a hard error naming its data row (1-based) and column.
    row_numbers = np.arange(1, rows_read + 1)
    values = np.empty((rows_read, len(schema.feature_columns)), dtype=np.float64)
    for j, col in enumerate(schema.feature_columns):
        column = frame[col]
        if pd.api.types.is_numeric_dtype(column.dtype):
            values[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values[:, j] = _parse_numeric(column.fillna("").astype(str), col, row_numbers, source)
    features = set(schema.feature_columns)
    # a frame from a caller or a Parquet file may hold NA and typed columns; a CSV's text columns never do
    frame = frame.copy()
    for c in frame.columns:
        if c not in features:
            frame[c] = frame[c].fillna("").astype(str)

    present_metadata = tuple(c for c in schema.metadata if c in frame.columns)
    skipped = tuple(c for c in schema.metadata if c not in frame.columns)
    artists_column = schema.artists_column if schema.artists_column in present_metadata else None

    # 2. Exact duplicates, ignoring pandas' unnamed index column (it differs on every row): the same
    # text in every other column and the same parsed feature values (so "0.5" and "0.50" are one value,
    # as they are when a Parquet file stores the number).
    content = frame[[c for c in frame.columns if not _is_index_column(c) and c not in features]]
    parsed = pd.DataFrame(values, index=content.index, columns=[f"\0feature{j}" for j in range(values.shape[1])])
    content = pd.concat([content, parsed], axis=1)  # one block: assign() of 100+ columns fragments the frame
    dup = content.duplicated(keep="first").to_numpy()
    exact_duplicates = int(dup.sum())
    frame, values = frame.loc[~dup], values[~dup]

    # 3. Drop or impute bad rows; each row counted under its first reason only.
    ids = frame[schema.id_column].str.strip().to_numpy(dtype=object)
    keep = np.ones(len(frame), dtype=bool)
    dropped: dict[str, int] = {}
    dropped_rows: dict[str, list[int]] = {}  # the first data rows of each reason, as a parse error names them
    imputed: dict[str, int] = {}
    kept_row_numbers = row_numbers[~dup]

    def drop(mask: np.ndarray, reason: str) -> None:
        hit = mask & keep
        if hit.any():
            dropped[reason] = dropped.get(reason, 0) + int(hit.sum())
            shown = dropped_rows.setdefault(reason, [])
            shown += kept_row_numbers[hit][:DROPPED_ROWS_SHOWN - len(shown)].tolist()
            keep[hit] = False

    drop(ids == "", f"missing {schema.id_column}")
    impute_masks: list[tuple[int, np.ndarray, str]] = []
    usable = _usable(values)
    for j, col in enumerate(schema.feature_columns):
        bad = ~usable[:, j]
        if schema.missing == "drop":
            drop(bad, f"missing or non-finite {col}")
        else:
            impute_masks.append((j, bad, f"missing or non-finite {col}"))
    for col, rule in schema.rules.items():
        j = schema.feature_columns.index(col)
        bad = rule.broken_by(values[:, j])
        reason = f"{col} not {rule.describe()}"
        if rule.action == "drop":
            drop(bad, reason)
        else:
            impute_masks.append((j, bad, reason))
    for j, bad, reason in impute_masks:
        bad = bad & keep
        if bad.any():
            good = keep & ~bad & _usable(values[:, j])
            if not good.any():
                raise CatalogError(f"{source}: column {schema.feature_columns[j]!r} has no valid value "
                                   "to impute from")
            values[bad, j] = float(np.median(values[good, j]))
            imputed[reason] = imputed.get(reason, 0) + int(bad.sum())
    if not keep.any():
        detail = ", ".join(f"{n} {reason}" for reason, n in dropped.items())
        raise CatalogError(f"{source}: every one of the {rows_read} rows is bad ({detail}); nothing to index")

    frame, values, ids = frame.loc[keep], values[keep], ids[keep]

    # 4. Merge rows sharing an id.
    id_codes, unique_ids = pd.factorize(ids)
    n_tracks = len(unique_ids)
    first_row = np.full(n_tracks, -1, dtype=np.int64)
    # reversed assignment leaves the first occurrence in place
    first_row[id_codes[::-1]] = np.arange(len(id_codes))[::-1]
    merged_rows = np.ones(len(id_codes), dtype=bool)
    merged_rows[first_row] = False
    conflicts = int((values[merged_rows] != values[first_row[id_codes[merged_rows]]]).any(axis=1).sum())

    genre_names, indptr, codes = _merge_labels(frame, schema, id_codes, n_tracks)
    first_rows = kept_row_numbers[keep][first_row]
    types = metadata_types or {}
    metadata = {col: _parse_metadata(frame[col].to_numpy(dtype=object)[first_row], col, first_rows, source,
                                     types.get(col))
                for col in present_metadata}
    flag_blanks = {col: int((v == UNKNOWN_FLAG).sum()) for col, v in metadata.items() if v.dtype == np.int8}
    missing_meta, blank_cells = 0, {}
    if present_metadata:
        blank = {c: np.char.str_len(frame[c].to_numpy(dtype=object)[first_row].astype(str)) == 0
                 for c in present_metadata}
        missing_meta = int(np.any(list(blank.values()), axis=0).sum())
        blank_cells = {c: int(b.sum()) for c, b in blank.items() if b.any()}

    report = IngestReport(
        rows_read=rows_read,
        exact_duplicates=exact_duplicates,
        dropped=dropped,
        dropped_rows=dropped_rows,
        imputed=imputed,
        id_duplicates_merged=int(merged_rows.sum()),
        id_conflicts=conflicts,
        multi_genre_tracks=int((np.diff(indptr) > 1).sum()),
        missing_metadata=missing_meta,
        blank_cells=blank_cells,
        tracks=n_tracks,
        skipped_columns=skipped,
        flag_blanks=flag_blanks,
        unlabelled=int((np.diff(indptr) == 0).sum()) if schema.label_column else 0,
    )
    assert rows_read == exact_duplicates + sum(dropped.values()) + report.id_duplicates_merged + n_tracks
    return Catalog(
        ids=np.asarray(unique_ids, dtype=object),
        feature_names=tuple(schema.feature_columns),
        features=values[first_row],
        genre_names=genre_names,
        genre_indptr=indptr,
        genre_codes=codes,
        metadata=metadata,
        report=report,
        artists_column=artists_column,
        artist_separator=schema.artist_separator,
    )


def _usable(values: np.ndarray) -> np.ndarray:
    """Where a feature value is finite and within ``FEATURE_LIMIT``."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) <= FEATURE_LIMIT)


def _is_index_column(name: str) -> bool:
    return name == "" or name.startswith("Unnamed:")


def _check_columns(frame: pd.DataFrame, schema: FeatureSchema, source: str) -> None:
    needed = [schema.id_column, *schema.feature_columns]
    if schema.label_column:
        needed.append(schema.label_column)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        hints = []
        columns = [str(x) for x in frame.columns]
        for c in missing:
            # a column the name holds, or that holds it, first: 'genre' for 'track_genre' (difflib says 'track_name')
            a = c.casefold()
            held = sorted((x for x in columns if len(x) >= 3 and (x.casefold() in a or a in x.casefold())),
                          key=lambda x: abs(len(x) - len(c)))
            close = held[:1] or difflib.get_close_matches(c, columns, n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise CatalogError(
            f"{source}: missing column(s) {', '.join(hints)}; the file has columns {list(frame.columns)}")


def _parse_numeric(column: pd.Series, name: str, row_numbers: np.ndarray, source: str) -> np.ndarray:
    text = column.str.strip()
    lowered = text.str.lower()
    missing = lowered.isin(MISSING_TOKENS).to_numpy()
    parsed = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
    broken = np.isnan(parsed) & ~missing
    if broken.any():
        where = np.flatnonzero(broken)
        examples = ", ".join(f"data row {row_numbers[i]}: {text.iloc[i][:40]!r}" for i in where[:3])
        raise CatalogError(
            f"{source}: column {name!r} has {len(where)} non-numeric value(s) ({examples}); "
            f"a feature column must hold numbers")
    return parsed


def _merge_labels(
    frame: pd.DataFrame, schema: FeatureSchema, id_codes: np.ndarray, n_tracks: int
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    if not schema.label_column:
        return (), np.zeros(n_tracks + 1, dtype=np.int32), np.zeros(0, dtype=np.int32)
    labels = frame[schema.label_column].str.strip().to_numpy(dtype=object)
    has = labels != ""
    genre_names = tuple(sorted(set(labels[has])))
    label_codes = np.searchsorted(np.asarray(genre_names, dtype=object), labels[has]).astype(np.int32)
    pairs = pd.DataFrame({"t": id_codes[has], "g": label_codes}).drop_duplicates()
    pairs = pairs.sort_values("t", kind="stable")  # stable: each track keeps its first-seen genre first
    counts = np.bincount(pairs["t"].to_numpy(), minlength=n_tracks)
    indptr = np.zeros(n_tracks + 1, dtype=np.int32)
    np.cumsum(counts, out=indptr[1:])
    return genre_names, indptr, pairs["g"].to_numpy(dtype=np.int32)


def _parse_metadata(values: np.ndarray, name: str, row_numbers: np.ndarray, source: str,
                    as_type: np.dtype | None = None) -> np.ndarray:
    """Flags (int8) and numbers (float64) become typed arrays for filters; everything else stays
    text. See the module docstring for the rule; ``row_numbers`` (1-based data rows, one per value)
    name a bad cell of a nearly typed column. ``as_type`` (a metadata array's dtype: int8 a flag, another
    number a number, anything else text) parses the column as that type whatever its cells look like."""
    text = np.array([str(v).strip() for v in values], dtype=object)
    kind = None if as_type is None else "flag" if np.dtype(as_type) in (np.int8, np.bool_) else \
        "number" if np.dtype(as_type).kind in "iuf" else "text"
    if kind == "text":
        return text  # each cell as written, never re-read as a number
    lowered = pd.Series(text, dtype=object).str.lower()
    given = ~lowered.isin(MISSING_TOKENS).to_numpy()
    if kind is None and not given.any():
        return text  # no value at all says nothing about the column
    flags = lowered.isin(_FLAG_TOKENS.keys()).to_numpy()
    if kind == "flag" or (kind is None and flags[given].all()):
        _refuse_others(given & ~flags, text, "flags (true/false, 1/0)", "a flag", name, row_numbers, source, kind)
        return np.array([_FLAG_TOKENS.get(v, UNKNOWN_FLAG) for v in lowered], dtype=np.int8)
    numbers = pd.to_numeric(pd.Series(np.where(given, text, "")), errors="coerce").to_numpy(dtype=np.float64)
    is_number = ~np.isnan(numbers)
    if kind == "number" or is_number[given].all():
        _refuse_others(given & ~is_number, text, "numbers", "a number", name, row_numbers, source, kind)
        return numbers
    # numbers first: a number column mostly of 0 and 1 with one bad cell is a number column
    for ok, what, one in ((is_number, "numbers", "a number"), (flags, "flags (true/false, 1/0)", "a flag")):
        if ok[given].mean() >= TYPED_SHARE:
            _refuse_others(given & ~ok, text, what, one, name, row_numbers, source, kind)
    return text


def _refuse_others(bad: np.ndarray, text: np.ndarray, what: str, one: str, name: str, row_numbers: np.ndarray,
                   source: str, given_type: str | None) -> None:
    """A :class:`CatalogError` naming the first ``bad`` cells of metadata column ``name`` (which holds ``what``,
    by its own cells or, with ``given_type``, as the catalog it joins types it) by data row and value, if any."""
    if not bad.any():
        return
    where = np.flatnonzero(bad)
    examples = ", ".join(f"data row {row_numbers[i]}: {text[i][:40]!r}" for i in where[:3])
    holds = f"holds {what} in the bundle" if given_type else f"holds {what}"
    # a bundle's column keeps its type: leaving it out of an added file is no way out
    out = "" if given_type else ", or leave the column out of the metadata columns"
    raise CatalogError(f"{source}: metadata column {name!r} {holds} but has {len(where):,} other value(s) "
                       f"({examples}); write each as {one} or leave it blank (unknown){out}")
