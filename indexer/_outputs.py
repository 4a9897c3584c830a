"""Report files a command writes beside its main work (``index``/``demo``/``add``/``publish --json FILE``,
``report --html FILE``): one check, before any work, and one way to write them (missing parent directories
created), for every command."""

from __future__ import annotations

import sys
from pathlib import Path


def unwritable(path: str | Path | None) -> str | None:
    """Why a report file could not be written at ``path`` (None: it can, or there is none, or '-')."""
    from engine import parent_problem

    if not path or str(path) == "-":
        return None
    try:
        if Path(path).is_dir():
            return "is a directory"
    except OSError as exc:  # a folder on the way that cannot be entered
        return exc.strerror or str(exc)
    return parent_problem(path)


def check_output_file(flag: str, path: str | Path | None) -> None:
    """Refuse, before any work, a report file ``path`` given with ``flag`` that could not be written: a
    :class:`engine.BundleError` (exit 1, as for an ``--out`` or ``--current`` that cannot be written)."""
    problem = unwritable(path)
    if problem:
        from engine import BundleError

        raise BundleError(f"{flag} {path}: {problem}")


def write_output(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8), creating missing parent directories; '-' is standard output, as
    ``musicrec index --json -`` takes it."""
    if str(path) == "-":
        sys.stdout.write(text)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
