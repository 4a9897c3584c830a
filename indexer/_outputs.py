"""The CLI's checks of the files a command writes beside its main work (``index``/``demo``/``add``/``publish
--json FILE``, ``report --html FILE``, ``synth --out``), before any work; the writing itself, and what makes a
report file unwritable, are the engine's (engine/_files.py ``write_output``, ``output_file_problem``), which
``bench`` shares."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def check_output_file(flag: str, path: str | Path | None, *, inputs: Sequence[str | Path | None] = (),
                      bundles: Sequence[str | Path | None] = ()) -> None:
    """Refuse, before any work, a report file ``path`` given with ``flag`` that could not be written, or that would
    replace an input or land in a bundle (``engine.output_file_problem``): a :class:`engine.BundleError` (exit 1,
    as for an ``--out`` or ``--current`` that cannot be written)."""
    from engine import BundleError, output_file_problem

    if path is not None and not str(path).strip():  # else no file at all, and the option ignored
        raise BundleError(f"{flag}: the file name is empty; give a file name, or '-' for standard output")
    problem = output_file_problem(path, inputs=inputs, bundles=bundles)
    if problem:
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
