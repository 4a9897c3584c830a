"""The features CSV and its extraction report on disk (engine/audio/_batch.py runs the extraction): checked
before anything is written, created or resumed (a half-written last line cut), rows appended whole or not at all,
the report replaced whole."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine._bundle import fitting_name, name_max, parent_problem
from engine._errors import CatalogError
from engine._files import write_output

from ._columns import csv_columns
from ._extract import sidecar_path

if TYPE_CHECKING:
    from ._batch import ExtractionReport


def _prepare_output(out: Path, report: ExtractionReport) -> tuple[dict[str, str], dict[str, set[str]], int]:
    """Create the CSV with its header, or check an existing one and return what it holds: each content hash with
    the first file it was extracted from, each file's content hashes (more than one: the file changed between runs,
    and a run killed before it took the old rows out), and its row count (after cutting a half-written last line)."""
    header = list(csv_columns())
    side = sidecar_path(out)
    if not out.exists() or out.stat().st_size == 0:
        out.write_text(",".join(header) + "\n", encoding="utf-8")
        return {}, {}, 0
    if not side.is_file():
        raise CatalogError(f"{out} exists but {side.name} (its extraction report) does not, so which extractor "
                           "wrote it is unknown; write to a new file")
    try:
        previous = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{side}: unreadable ({exc}); write to a new file") from None
    if previous.get("extractor") != report.extractor:
        raise CatalogError(f"{out} was written by {previous.get('extractor')}, not {report.extractor}; "
                           "write to a new file")
    if previous.get("segment_seconds") != report.segment_seconds:
        raise CatalogError(f"{out} holds rows with segment_seconds={previous.get('segment_seconds')}, not "
                           f"{report.segment_seconds}; write to a new file")
    raw = out.read_bytes()
    if not raw.endswith(b"\n"):  # a run killed mid-write: its last line is incomplete
        with out.open("r+b") as fh:
            fh.truncate(raw.rfind(b"\n") + 1)
        raw = raw[:raw.rfind(b"\n") + 1]
    reader = csv.reader(io.StringIO(raw.decode("utf-8")))
    found = next(reader, [])
    if found != header:
        raise CatalogError(f"{out}: its header is not this extractor's; write to a new file")
    sha_col, song_col = header.index("sha256"), header.index("song")
    done: dict[str, str] = {}
    files: dict[str, set[str]] = {}
    rows = 0
    for row in reader:
        if len(row) == len(header):
            done.setdefault(row[sha_col], row[song_col])
            files.setdefault(row[song_col], set()).add(row[sha_col])
            rows += 1
    if sorted(previous.get("inputs") or []) != sorted(report.inputs):
        # ids are paths under the inputs given: under others, an id may name another folder's file (both runs'
        # "01.wav"), whose rows are not this file's to replace, nor a copy of it
        return {sha: "" for sha in done}, {}, rows
    return done, files, rows


def drop_rows(out: Path, stale: dict[str, set[str]]) -> int:
    """Take out of the CSV the rows of each file's ``stale`` contents (file id -> hashes), replacing the file whole
    (written beside it and renamed over it, so a run killed here leaves it as it was, and the next run takes the
    rows out). Returns how many rows went."""
    header = list(csv_columns())
    sha_col, song_col = header.index("sha256"), header.index("song")
    kept, dropped = io.StringIO(), 0
    writer = csv.writer(kept, lineterminator="\n")
    with out.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) == len(header) and row[sha_col] in stale.get(row[song_col], ()):
                dropped += 1
            else:
                writer.writerow(row)
    if dropped:
        write_output(out, kept.getvalue())  # whole or not at all, with the CSV's permissions
    return dropped


def write_report(out: Path, report: ExtractionReport) -> None:
    side = sidecar_path(out)
    tmp = side.with_name(fitting_name("", side.name, ".tmp", side.parent))
    try:
        tmp.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, side)
    except OSError as exc:  # the previous report stays whole; no half-written temporary file is left
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(side)) from None


def append_rows(fd: int, data: bytes, out: Path) -> None:
    """One file's rows, whole or not at all. ``os.write`` may write part of them (a disk that fills): the rest is
    written, and a write that fails is cut back to where it began, so that a resumed run, which takes a file whose
    rows it finds as done, never finds some of its rows only (its last segments were lost that way)."""
    start = os.fstat(fd).st_size
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise OSError(exc.errno, exc.strerror, str(out)) from None


def check_output(out: Path) -> None:
    """Refuse, before anything is written, a CSV path the run could not write, or whose extraction report could
    not be written beside it."""
    try:
        if not out.parent.is_dir():
            problem = parent_problem(out)
            raise CatalogError(f"cannot write {out}: {problem}" if problem else
                               f"cannot write {out}: directory {out.parent} does not exist")
        if out.exists() and not out.is_file():
            raise CatalogError(f"cannot write {out}: it is a directory; --out names the CSV file to write "
                               f"(for example {out / 'features.csv'})" if out.is_dir() else
                               f"cannot write {out}: it is not a regular file")
    except OSError as exc:  # a name too long for the file system, a folder on the way that cannot be entered
        raise CatalogError(f"cannot write {out}: {exc.strerror or exc}") from None
    side, limit = sidecar_path(out), name_max(out.parent)
    if len(os.fsencode(side.name)) > limit:
        raise CatalogError(f"cannot write {out}: the name of its extraction report (the name with .extraction.json "
                           f"for {out.suffix or 'its end'}) would be {len(os.fsencode(side.name))} bytes, over the "
                           f"{limit} this file system takes; choose a shorter --out name")


def start_output(out: Path, report: ExtractionReport) -> tuple[dict[str, str], dict[str, set[str]], int]:
    """``_prepare_output`` and the report's first write, with a file system's refusal said as bad input (nothing
    is left behind: a CSV this call created is removed)."""
    new = not out.exists()
    try:
        done = _prepare_output(out, report)
        write_report(out, report)
    except OSError as exc:  # a folder that takes no new files (/proc, read-only), no space left
        if new:
            with contextlib.suppress(OSError):  # a read-only folder refuses the removal of what it never created
                out.unlink(missing_ok=True)
        what = out if exc.filename in (None, str(out)) else sidecar_path(out)
        raise CatalogError(f"cannot write {what}: {exc.strerror or exc}") from None
    return done
