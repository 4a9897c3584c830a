"""Report files a command writes beside its main work (``index``/``demo``/``add``/``publish --json FILE``,
``report --html FILE``): one check, before any work, and one way to write them (missing parent directories
created), for every command."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Sequence
from pathlib import Path


def unwritable(path: str | Path | None, *, inputs: Sequence[str | Path | None] = (),
               bundles: Sequence[str | Path | None] = ()) -> str | None:
    """Why a report file could not be written at ``path`` (None: it can, or there is none, or '-'): a directory, a
    parent that cannot hold it, one of the command's ``inputs`` (it would be replaced: ``--json`` on the catalog
    CSV did that), or a path inside one of its ``bundles`` (a file there that the manifest does not list makes
    the bundle fail its check; ``--html bundle/manifest.json`` replaced the manifest)."""
    from engine import parent_problem

    if not path or str(path) == "-":
        return None
    try:
        if Path(path).is_dir():
            return "is a directory"
        target = Path(path).resolve()
        for given in inputs:
            if given and str(given) != "-" and Path(given).exists() and target == Path(given).resolve():
                return f"is the input {given}: the report would replace it; write it to another file"
        for bundle in bundles:
            if bundle and target.is_relative_to(Path(bundle).resolve()):
                return (f"is inside the bundle {bundle}: a file there that its manifest does not list breaks the "
                        "bundle's check (and one it lists would be replaced); write it beside the bundle")
    except OSError as exc:  # a folder on the way that cannot be entered
        return exc.strerror or str(exc)
    return parent_problem(path)


def check_output_file(flag: str, path: str | Path | None, *, inputs: Sequence[str | Path | None] = (),
                      bundles: Sequence[str | Path | None] = ()) -> None:
    """Refuse, before any work, a report file ``path`` given with ``flag`` that could not be written, or that would
    replace an input or land in a bundle (``unwritable``): a :class:`engine.BundleError` (exit 1, as for an
    ``--out`` or ``--current`` that cannot be written)."""
    problem = unwritable(path, inputs=inputs, bundles=bundles)
    if problem:
        from engine import BundleError

        raise BundleError(f"{flag} {path}: {problem}")


def new_csv_problem(path: Path) -> str | None:
    """Why a CSV that must be new (``synth --out``) could not be written at ``path``: a directory, an existing file
    (it may be a catalog: never replaced), a Parquet name, a parent that cannot hold it; None when it can."""
    from engine import parent_problem

    try:
        if path.is_dir():
            return "is a directory: name the CSV file to write"
        if path.exists() or path.is_symlink():
            return "exists: synth does not replace a file (it may be a catalog); remove it or give another name"
    except OSError as exc:  # a name too long, a folder on the way that cannot be entered
        return exc.strerror or str(exc)
    if path.suffix.lower() in (".parquet", ".pq"):
        return f"names a {path.suffix} file, but synth writes CSV: give a .csv name"
    return parent_problem(path)


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
