"""The indexer's subcommands of ``musicrec``, each defined beside its work: ``index`` and ``synth`` in
``_build.py``, ``extract`` (audio files -> features CSV) in ``_extract.py``, ``report`` in ``_report.py``,
``publish`` and ``add`` in ``_scale.py``.

The ``musicrec`` command itself (``main``, the error handling and exit codes every subcommand shares) and ``demo``
are in the ``musicrec`` package, which adds these beside the server's: the indexer never imports the server.
"""

from __future__ import annotations

from typing import Any

from . import _build, _extract, _report, _scale

__all__ = ["add_build_parsers", "add_parsers"]


def add_build_parsers(sub: Any) -> None:
    """Add ``index`` and ``synth`` to the ``musicrec`` subcommands ``sub``."""
    _build.add_parsers(sub)


def add_parsers(sub: Any) -> None:
    """Add ``extract``, ``report``, ``publish`` and ``add`` to the ``musicrec`` subcommands ``sub``.

    Apart from ``add_build_parsers`` so that ``musicrec --help`` can list ``demo`` beside the builds."""
    _extract.add_parser(sub)  # audio files -> features CSV (the audio extra)
    _report.add_parser(sub)  # musicrec report BUNDLE [--html FILE]
    _scale.add_parsers(sub)  # musicrec publish (Qdrant), musicrec add (new tracks)
