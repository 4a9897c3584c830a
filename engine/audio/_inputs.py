"""What an extraction run reads (engine/audio/_batch.py): the files under its inputs, each with its
id, their tags, and an optional label table."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Sequence
from pathlib import Path

from engine._errors import CatalogError
from engine._inputfile import read_regular_file

from ._decode import SUPPORTED_FORMATS

LABEL_SOURCES = ("folder", "tag", "none")


@dataclasses.dataclass(frozen=True)
class Job:
    path: Path
    id: str


def readable(text: str) -> str:
    """``text`` as UTF-8 can hold it: a file name's bytes that are not UTF-8 (Python keeps them as lone
    surrogates) written as ``\\xe9`` escapes, so a CSV id or label can always be written and read back."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def find_files(inputs: Sequence[Path], exclude: Sequence[Path] = (),
               folders_skipped: list[dict[str, str]] | None = None) -> list[Job]:
    """Every non-hidden entry under the inputs, sorted, with its id (a name that is not UTF-8 escaped:
    ``readable``). Entries that are not regular files (a FIFO, a link to nothing) are kept, so the run counts
    them as unreadable instead of leaving them out unsaid. Links to folders are followed, each folder walked
    once per input: a link back into a folder above it (a loop) or to a folder already walked, and a folder that
    cannot be listed, are left out and appended to ``folders_skipped`` (path, reason). Raises :class:`CatalogError` for
    a missing input, two files with one id, or no file at all (a run would only write a CSV header and report
    success)."""
    excluded = {p.resolve() for p in exclude}
    skipped = folders_skipped if folders_skipped is not None else []
    jobs: list[Job] = []
    dirs = [p for p in inputs if p.is_dir()]
    for item in inputs:
        if not item.exists():
            raise CatalogError(f"{item}: no such file or directory")
        if not item.is_dir():
            jobs.append(Job(item, readable(item.name)))
            continue
        prefix = f"{item.resolve().name}/" if len(dirs) > 1 else ""
        walked = {os.path.realpath(item)}  # the real paths of the folders walked: no link makes one walked twice
        for root, subdirs, files in os.walk(item, onerror=lambda exc: skipped.append({
                "path": readable(str(exc.filename)), "reason": f"cannot be listed ({exc.strerror or exc})"}),
                followlinks=True):
            subdirs[:] = _new_folders(root, sorted(d for d in subdirs if not d.startswith(".")), walked, skipped)
            for name in sorted(files):
                path = Path(root) / name
                if name.startswith(".") or path.resolve() in excluded:
                    continue
                jobs.append(Job(path, readable(prefix + path.relative_to(item).as_posix())))
    if not jobs:
        raise CatalogError(_nothing_found(inputs))
    seen: dict[str, Path] = {}
    for job in jobs:
        if job.id in seen:
            raise CatalogError(f"{seen[job.id]} and {job.path} would both get the id {job.id!r}; "
                               "give their folders separately or rename one")
        seen[job.id] = job.path
    return jobs


def _new_folders(root: str, names: list[str], walked: set[str], skipped: list[dict[str, str]]) -> list[str]:
    """Of the folders ``names`` in ``root``, those not walked yet (by real path), now marked walked (a folder before
    a link beside it to the same place); one walked already (through a link: a loop, or a second way to a folder)
    is appended to ``skipped``."""
    paths = {name: os.path.join(root, name) for name in names}
    keep = set()
    for name in sorted(names, key=lambda n: os.path.islink(paths[n])):  # (a stable sort: links last)
        real = os.path.realpath(paths[name])
        if real in walked:
            here = os.path.realpath(root)
            loop = here == real or here.startswith(real.rstrip(os.sep) + os.sep)
            skipped.append({"path": readable(paths[name]), "reason": (
                f"a link to {readable(real)}, a folder above it: a loop" if loop else
                f"{readable(real)} was walked already, by another path")})
            continue
        walked.add(real)
        keep.add(name)
    return [name for name in names if name in keep]


def _nothing_found(inputs: Sequence[Path]) -> str:
    if not inputs:
        return "no inputs given: name audio files or folders holding them"
    # files are recognised by their first bytes (engine/audio/_decode.py), so the extensions are a hint
    extensions = [f".{name.lower()}" for name in SUPPORTED_FORMATS]
    looked_for = f"{', '.join(extensions[:-1])} and {extensions[-1]}"
    where = "it" if len(inputs) == 1 else "them"
    return (f"no audio files in {', '.join(str(p) for p in inputs)} (looked for {looked_for} files in {where} and "
            "every folder below, recognised by their content whatever their names; hidden files and folders are "
            "left out)")


def read_tags(path: Path) -> dict[str, str]:
    """title/artist/album/genre from the file's tags (ID3, Vorbis comments, RIFF-ID3), '' if absent."""
    out = {"title": "", "artist": "", "album": "", "genre": ""}
    try:
        import mutagen

        f = mutagen.File(path, easy=True)
    except Exception:  # mutagen raises many types for odd files; tags are optional
        return out
    tags = getattr(f, "tags", None)
    if not tags:
        return out
    id3 = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "genre": "TCON"}
    for key in out:
        value = None
        try:
            value = tags.get(key) or tags.get(id3[key])
        except (KeyError, ValueError, TypeError):
            value = None
        if value is not None:
            text = getattr(value, "text", value)
            items = text if isinstance(text, list) else [text]
            out[key] = "; ".join(str(v).strip() for v in items if str(v).strip())
    return out


def read_label_table(path: Path) -> dict[str, str]:
    """``filename,label`` rows (the id or the bare file name) from a CSV. Raises :class:`CatalogError`, naming the
    file and row, for a file that cannot be read or is not UTF-8, a row without its label (or with a field more
    than the header), or a file given two different labels."""
    try:
        raw = read_regular_file(path)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the label table ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise CatalogError(f"{path}: not UTF-8 text (line {line}, byte {exc.start}: {exc.reason}); re-save the "
                           "label table as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
        if not {"filename", "label"} <= set(header):
            raise CatalogError(f"{path}: a label table needs the columns filename,label; its header is "
                               f"{','.join(header)[:120]!r}")
        where = {"filename": header.index("filename"), "label": header.index("label")}
        labels: dict[str, str] = {}
        rows: dict[str, int] = {}
        number = 0
        for row in reader:
            if not row:  # a blank line is no row (as in a catalog, engine/_readers.py)
                continue
            number += 1
            if len(row) > len(header):  # an unquoted comma in a label: "rock, pop" would lose " pop"
                raise CatalogError(f"{path}: data row {number} has {len(row)} fields, the header {len(header)} "
                                   "(quote a label that holds a comma)")
            missing = [column for column, i in where.items() if i >= len(row)]
            if missing:
                raise CatalogError(f"{path}: data row {number} has no {' or '.join(missing)} (it has {len(row)} "
                                   f"field(s), the header {len(header)})")
            name, label = row[where["filename"]].strip(), row[where["label"]].strip()
            if name in labels and labels[name] != label:
                raise CatalogError(f"{path}: {name!r} is labelled {labels[name]!r} in data row {rows[name]} and "
                                   f"{label!r} in data row {number}; give it one label")
            labels[name], rows[name] = label, rows.get(name, number)
    except csv.Error as exc:
        raise CatalogError(f"{path}: malformed CSV (line {reader.line_num}: {exc})") from None
    if not labels:
        raise CatalogError(f"{path}: the label table has no rows")
    return labels
