"""Report files written beside a command's main work (``index --json``, ``report --html``, ``synth --out``,
``bench --json/--html``): whether one can be written where it is asked for, checked before any work, and one way
to write it, whole or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from ._bundle import parent_problem


def output_file_problem(path: str | Path | None, *, inputs: Sequence[str | Path | None] = (),
                        bundles: Sequence[str | Path | None] = ()) -> str | None:
    """Why a report file could not be written at ``path`` (None: it can, or there is none, or '-'): a directory, a
    parent that cannot hold it, one of the command's ``inputs`` (it would be replaced: ``--json`` on the catalog
    CSV did that), or a path inside one of its ``bundles`` or any other bundle (a file there that the manifest
    does not list makes the bundle fail its check; ``--html bundle/manifest.json`` replaced the manifest)."""
    if not path or str(path) == "-":
        return None
    if isinstance(path, str) and path.endswith(os.sep):  # Path() would drop it, and write a file of that name
        return f"ends in {os.sep!r}, which names a directory; give a file name"
    try:
        if Path(path).is_dir():
            return "is a directory"
        target = Path(os.path.realpath(path))
        for given in inputs:
            if given and str(given) != "-" and Path(given).exists() and target == Path(os.path.realpath(given)):
                return f"is the input {given}: the report would replace it; write it to another file"
        inside = next((b for b in bundles if b and target.is_relative_to(os.path.realpath(b))), None) \
            or next((p for p in target.parents if _is_bundle(p)), None)  # any other bundle's too
        if inside is not None:
            return (f"is inside the bundle {inside}: a file there that its manifest does not list breaks the "
                    "bundle's check (and one it lists would be replaced); write it beside the bundle")
    except OSError as exc:  # a folder on the way that cannot be entered
        return exc.strerror or str(exc)
    problem = parent_problem(path)
    if problem is None and not _can_write(Path(path)):
        return "not writable here (permissions)"
    return problem


def _is_bundle(folder: Path) -> bool:
    """Whether ``folder`` holds a bundle: its manifest and track table (what every format version wrote)."""
    return (folder / "manifest.json").is_file() and (folder / "tracks.npz").is_file()


def _can_write(path: Path) -> bool:
    """Whether :func:`write_output` may write ``path``: a link or a special file is written through, so it must
    take a write; a regular file is replaced by a rename, and a new one created, in the nearest folder above that
    exists (missing ones are created), so that folder must."""
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            return os.access(path, os.W_OK)
        return next((os.access(p, os.W_OK) for p in path.parents if p.exists()), True)
    except OSError:  # a name too long on the way: the write says so
        return True


def write_output(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8), creating missing parent directories; '-' is standard output, as
    ``musicrec index --json -`` takes it. A new or regular file is written whole or not at all: written beside it
    and renamed over it (with the old file's permissions), so a disk that fills leaves a report that was there as it
    was (it was cut short in place) and no part of a new one. A link or a special file (a FIFO, /dev/stdout) is
    written through, as it was. An OSError names ``path``."""
    if str(path) == "-":
        sys.stdout.write(text)
        return
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.lstat() if path.is_symlink() or path.exists() else None
        if old is not None and not stat.S_ISREG(old.st_mode):  # a link, a FIFO, a device: the write goes to it
            path.write_text(text, encoding="utf-8")
            return
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    tmp = path.with_name(f".musicrec-{secrets.token_hex(4)}.tmp")  # short: a name the file system takes for path
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # a new file: the mode a plain write gives
        with open(fd, "w", encoding="utf-8") as fh:
            if old is not None:
                os.chmod(fh.fileno(), stat.S_IMODE(old.st_mode))
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as exc:  # a full disk, or Ctrl-C: no temporary file is left (a synth CSV can be a GB)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
