"""The ``musicrec`` command: its parser, ``main``, and the error handling every subcommand shares.

The subcommands are defined beside their work: the indexer's (index, synth, extract, report, publish, add) in
``indexer.cli``, the server's (serve, query, bench, health) in ``server.cli``, and ``demo`` (the main job, which
uses both) in ``_demo.py``. Errors in the input end with a message naming the file, row or column and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import traceback
from collections.abc import Sequence

import indexer.cli
import server.cli
from indexer._args import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, Parser
from server.cli import output_width

from . import _demo


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    args.width = output_width()  # the terminal's, for a build's report: the indexer does not import the server
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"musicrec {args.command}: interrupted{_written(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left early (`musicrec query moods | head`): nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return EXIT_OK
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS or exc.filename is not None:
            return _failed(args, exc)
        # a write with no file named: standard output (`> full-disk`, /dev/full); a file's own writes name it
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush would fail again
        print(f"musicrec {args.command}: error: cannot write standard output: {exc.strerror or exc}"
              f"{_written(args) if getattr(args, 'bundle_written', None) is not None else ''}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        return _failed(args, exc)


# the commands that write a bundle, and the errors of a write that are the file system's (a full disk); the
# engine's _bundle.py holds the same set, written twice because `musicrec query` must not import the engine
_BUILDS = frozenset({"index", "demo", "add"})
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})  # (EIO: a read's too)


def _failed(args: argparse.Namespace, exc: Exception) -> int:
    code = _engine_error_exit_code(exc)
    if code is None:
        traceback.print_exc()
        print(f"musicrec {args.command}: internal error (a bug: please report it with the traceback above)",
              file=sys.stderr)
        return EXIT_INTERNAL
    print(f"musicrec {args.command}: error: {exc}", file=sys.stderr)
    return code


def _written(args: argparse.Namespace) -> str:
    """What a stopped command had written: its bundle, once complete (``args.bundle_written``, set by index, demo
    and add), or for those commands before it was, that none was (a bundle is renamed into place whole or never)."""
    written = getattr(args, "bundle_written", None)
    if written is not None:
        return f"; the bundle {written} was written"
    return "; no bundle was written" if args.command in _BUILDS else ""


def _engine_error_exit_code(exc: Exception) -> int | None:
    """EXIT_BAD_INPUT for bad input, EXIT_FAILED for another engine error, None for anything else (a bug)."""
    # Looked up, not imported: importing the engine costs ~1.6 s (xgboost, faiss, sklearn), which
    # `musicrec query` never needs, and an engine error can only exist if a command loaded the engine.
    engine = sys.modules.get("engine")
    if engine is None or not isinstance(exc, getattr(engine, "EngineError", ())):
        return None
    return EXIT_BAD_INPUT if isinstance(exc, engine.CatalogError | engine.ConfigError | engine.BundleNotFound) \
        else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="musicrec", description="Music recommendation engine on vector search.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Argument definitions only: server/__init__ loads grpc on first use and no parser module imports the
    # engine, so `musicrec index` never needs grpc and `musicrec query` never loads the engine.
    indexer.cli.add_build_parsers(sub)  # index, synth
    _demo.add_parser(sub)  # demo, listed beside the builds: it is one, then it serves and queries the bundle
    indexer.cli.add_parsers(sub)  # extract, report, publish, add
    server.cli.add_parsers(sub)  # serve, query, bench, health
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
