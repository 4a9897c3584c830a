"""Catalog files as frames: a CSV (typed where the schema says numeric, else all text) or a Parquet file.

What engine/_ingest.py cleans: a CSV's feature columns come as float64 when every cell parses; one that
does not sends the whole file through the all-text read, so the cleaning can name the bad cell's row and
column. A Parquet file's columns come typed. Errors name the file.
"""

from __future__ import annotations

import codecs
import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import CatalogError, install_hint

# Cells that mean "no value" (compared lower-cased, spaces stripped, by the cleaning; as exact spellings by
# the typed CSV read below).
MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_frame(path: str | os.PathLike[str], numeric: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """The file at ``path`` as a frame (Parquet by its suffix, else CSV with ``numeric`` columns typed
    when they parse)."""
    path = Path(path)
    try:
        if not path.exists():
            raise CatalogError(f"{path}: no such file")
        if path.is_dir():
            raise CatalogError(f"{path}: is a directory, expected a CSV or Parquet file")
        if not path.is_file():  # a pipe or a device: reading could wait forever
            raise CatalogError(f"{path}: not a regular file, expected a CSV or Parquet file")
        path.open("rb").close()
    except OSError as exc:  # permissions on the file or a folder on the way
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if path.stat().st_size == 0:
        raise CatalogError(f"{path}: the file is empty (expected a header row and track rows)")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return read_parquet_frame(path)
    return read_csv_frame(path, numeric=numeric)


def read_parquet_frame(path: Path) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CatalogError(f"{path}: reading Parquet needs pyarrow ({install_hint('parquet')})") from None
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow's ArrowInvalid/OSError for a file that is not Parquet or is cut short
        raise CatalogError(f"{path}: not a readable Parquet file ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]})") from None
    names = [str(c) for c in frame.columns]
    repeated = sorted({h for h in names if names.count(h) > 1})
    if repeated:
        raise CatalogError(f"{path}: column(s) {repeated} appear more than once; every column needs a unique name")
    frame.columns = names
    return frame


# Missing-value tokens as a typed read matches them (exact strings); any other spelling of one (``" NA"``,
# ``"nUlL"``) fails the typed read, and the text read below handles it as it always did.
_TYPED_MISSING = sorted({t for token in MISSING_TOKENS for t in (token, token.upper(), token.title())}
                        | {"NaN", "N/a"})


def read_csv_frame(path: Path, numeric: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """The file as a frame: the ``numeric`` columns as float64 when every cell parses (NaN for a
    missing-value token), every other column as text. A cell that does not parse sends the whole
    file through the all-text read, so the cleaning (engine/_ingest.py) names its row and column."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = csv.reader(fh)
            header = next(rows, [])
            try:
                first = next((row for row in rows if row), None)
            except csv.Error:  # a field over csv's size limit: pandas reads it, and says what else is wrong
                first = None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    if len(header) == 1:  # one column: another separator? (pandas would say "Expected 1 fields in line 3, saw 2")
        sep = next((c for c in (";", "\t", "|") if c in header[0]), None)
        if sep is not None:
            raise CatalogError(f"{path}: the header row reads as one column ({header[0][:60]!r}...): the file looks "
                               f"separated by {sep!r}, and musicrec reads comma-separated CSV; re-save it with "
                               "commas (and '.' as the decimal point)")
    if first is not None and len(first) > len(header):
        # pandas would take the first column for the row index and shift every column left by one, so that the
        # cleaning blamed the wrong column (a later row with a field too many is its "Expected 22 fields" error)
        extra = first[len(header):]
        hint = " (a comma at the end of the row?)" if not any(cell.strip() for cell in extra) else ""
        raise CatalogError(f"{path}: malformed CSV: data row 1 has {len(first)} fields, the header {len(header)}"
                           f"{hint}; every row needs one field per column")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise CatalogError(f"{path}: column header(s) {repeated} appear more than once; "
                           "every column needs a unique name")
    try:
        if numeric:
            # Typed where the schema says numeric: the C parser makes the floats (5x faster than text
            # then pd.to_numeric). It cannot say which row broke it, so a failure re-reads as text.
            present = set(header)
            typed = [c for c in numeric if c in present]
            try:
                return pd.read_csv(path, dtype={c: (np.float64 if c in typed else str) for c in header},
                                   keep_default_na=False, na_values={c: _TYPED_MISSING for c in typed},
                                   encoding="utf-8-sig", skipinitialspace=False)
            except (ValueError, TypeError) as exc:
                if isinstance(exc, UnicodeDecodeError | pd.errors.ParserError | pd.errors.EmptyDataError):
                    raise
        # Everything as text: numbers are parsed per column in clean_catalog so that a bad cell can be
        # reported with its row and column instead of silently turning a column into strings.
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                           encoding="utf-8-sig", skipinitialspace=False)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except pd.errors.EmptyDataError:
        raise CatalogError(f"{path}: the file has no header row") from None
    except pd.errors.ParserError as exc:
        raise CatalogError(f"{path}: malformed CSV: {exc}") from None


# What a file that is not text at all is, by its first bytes, and what to do instead
_ARCHIVES = ((b"\x1f\x8b", "a gzip-compressed file: decompress it first (gunzip), musicrec reads plain CSV"),
             (b"PK\x03\x04", "a zip archive (an .xlsx workbook?): export or extract the CSV first"))


def _not_utf8(path: Path) -> CatalogError:
    """The error for a catalog that is not UTF-8: where its first bad byte is, by line and by byte from the file's
    start (a decoder's own offset counts from the chunk it was decoding), or what the file is instead. Read in
    chunks: a catalog may be larger than the memory three copies of it would take."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    start = lines = 0
    with path.open("rb") as fh:
        head = fh.read(max(len(magic) for magic, _ in _ARCHIVES))
        for magic, what in _ARCHIVES:
            if head.startswith(magic):
                return CatalogError(f"{path}: {what}")
        chunk = head[len(codecs.BOM_UTF8):] if head.startswith(codecs.BOM_UTF8) else head
        start = len(head) - len(chunk)
        while True:
            pending = len(decoder.getstate()[0])  # a character's first bytes, from the end of the chunk before
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:  # its offsets count from the pending bytes
                at = start - pending + exc.start
                lines += chunk[:max(exc.start - pending, 0)].count(b"\n")
                return CatalogError(f"{path}: not UTF-8 text (line {lines + 1}, byte {at}: {exc.reason}); re-save the "
                                    "file as UTF-8")
            if not chunk:
                return CatalogError(f"{path}: not UTF-8 text; re-save the file as UTF-8")
            lines += chunk.count(b"\n")
            start += len(chunk)
            chunk = fh.read(1 << 20)
