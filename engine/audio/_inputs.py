"""What an extraction run reads (engine/audio/_batch.py): the files under its inputs, each with its
id, their tags, and an optional label table."""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from engine._errors import CatalogError

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


def find_files(inputs: Sequence[Path], exclude: Sequence[Path] = ()) -> list[Job]:
    """Every non-hidden entry under the inputs, sorted, with its id (a name that is not UTF-8 escaped:
    ``readable``). Entries that are not regular files (a FIFO, a link to nothing) are kept, so the run counts
    them as unreadable instead of leaving them out unsaid. Raises :class:`CatalogError` for a missing input,
    two files with one id, or no file at all (a run would only write a CSV header and report success)."""
    excluded = {p.resolve() for p in exclude}
    jobs: list[Job] = []
    dirs = [p for p in inputs if p.is_dir()]
    for item in inputs:
        if not item.exists():
            raise CatalogError(f"{item}: no such file or directory")
        if not item.is_dir():
            jobs.append(Job(item, readable(item.name)))
            continue
        prefix = f"{item.resolve().name}/" if len(dirs) > 1 else ""
        for root, subdirs, files in os.walk(item):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
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
    """``filename,label`` rows (the id or the bare file name) from a CSV."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the label table ({exc.strerror or exc})") from None
    if not rows or not {"filename", "label"} <= set(rows[0]):
        raise CatalogError(f"{path}: a label table needs the columns filename,label")
    return {r["filename"].strip(): r["label"].strip() for r in rows}
