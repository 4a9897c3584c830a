"""``musicrec index`` (a catalog CSV -> a verified bundle and its report) and ``musicrec synth`` (a synthetic catalog
CSV). ``build_and_report`` is also the first half of ``musicrec demo`` (musicrec/_demo.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ._args import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from ._buildconfig import add_build_options, config_from_args

MAX_SYNTH = 10_000_000  # synthetic tracks: ~1 GB of catalog; 1e11 was a 745 GiB allocation's traceback


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("index", help="build a bundle from a catalog CSV",
                       description="Build a verified bundle from a catalog CSV (default schema: the Spotify "
                                   "Tracks Dataset). Column flags override the schema, field by field.")
    p.add_argument("csv", type=Path, help="catalog CSV (or Parquet)")
    p.add_argument("--out", type=Path, required=True,
                   help="new bundle directory (must not exist; missing parent directories are created)")
    add_build_options(p)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("synth", help="write a deterministic synthetic catalog CSV (Spotify schema)")
    p.add_argument("--out", type=Path, required=True,
                   help="CSV file to write (must not exist; missing parent directories are created); - for stdout")
    p.add_argument("--tracks", type=int, default=20_000, help=f"number of tracks, 1 to {MAX_SYNTH:,} (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same CSV (default 0)")
    p.set_defaults(func=_cmd_synth)


class _Progress:
    """Build progress on stderr, each line stamped with the time since the start.

    On a terminal: every message, and a line after each HEARTBEAT_SECONDS of silence (a step that
    cannot count its work, such as HDBSCAN). Elsewhere (a log file, CI): no ticks, only what a log
    should keep (stages, what they found, warnings)."""

    HEARTBEAT_SECONDS = 15.0

    def __init__(self) -> None:
        import threading

        from engine import Tick, duration

        self.tick_type, self.duration = Tick, duration
        self.terminal = sys.stderr.isatty()
        self.t0 = self.last = time.perf_counter()
        self.last_message, self.last_message_at = "", self.t0
        self.done = threading.Event()
        self.lock = threading.Lock()  # the genre stage reports from its own thread, beside the moods
        if self.terminal:
            threading.Thread(target=self._heartbeat, name="progress-heartbeat", daemon=True).start()

    def __call__(self, message: str) -> None:
        if isinstance(message, self.tick_type) and not self.terminal:
            return
        with self.lock:
            self._print(message)
            if not isinstance(message, self.tick_type):
                self.last_message, self.last_message_at = message, self.last

    def _print(self, message: str) -> None:
        self.last = time.perf_counter()
        print(f"[{self.last - self.t0:7.1f}s] {message}", file=sys.stderr, flush=True)

    def _heartbeat(self) -> None:
        while not self.done.wait(1.0):
            with self.lock:
                if time.perf_counter() - self.last >= self.HEARTBEAT_SECONDS and self.last_message:
                    self._print(f"... still at: {self.last_message} "
                                f"({self.duration(time.perf_counter() - self.last_message_at)} so far)")

    def close(self) -> None:
        self.done.set()


def build_and_report(args: argparse.Namespace, csv: Path, out: Path, *, source_label: str | None = None) -> int:
    """Build ``out`` from ``csv`` and print its report, narrowed to ``args.width`` (the terminal's, or None)."""
    from engine import build_bundle, check_current_link, format_report, publish, write_output

    from ._outputs import check_output_file

    config = config_from_args(args)
    # where the build's results go after it, checked before it: a bad path must not cost a whole build
    if args.current:
        check_current_link(args.current)
        if Path(args.current).absolute() == Path(out).absolute():
            from engine import BundleError

            raise BundleError(f"--current {args.current} is the --out directory: --current names the link to point at "
                              "the new bundle, beside it (bundles/current)")
    # exit 1, as for an --out or --current that cannot be written
    check_output_file("--json", args.json_out, inputs=[csv, getattr(args, "config", None)],
                      bundles=[out, *([Path(os.path.realpath(args.current))] if args.current else [])])
    progress = None if args.quiet else _Progress()
    try:
        manifest = build_bundle(csv, out, config, progress=progress, source_label=source_label, current=args.current)
        args.bundle_written = out  # what an interrupt or a failed print says was done (musicrec/cli.py)
    finally:
        if progress is not None:
            progress.close()
    flag = "--current"
    try:
        if args.current:
            publish(out, args.current)
        flag = "--json"
        if args.json_out and args.json_out != "-":
            write_output(args.json_out, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:  # the bundle is complete and verified: keep it, say what did not happen
        print(f"musicrec {args.command}: error: the bundle was written to {out}, but {flag} "
              f"{exc.filename2 or exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    moods = json.loads((out / "moods.json").read_text(encoding="utf-8"))
    text = sys.stderr if args.json_out == "-" else sys.stdout  # with --json -, stdout holds the JSON alone
    print(format_report(manifest, moods=moods, width=args.width), file=text)
    print(f"\nbundle written to {out}" + (f"; {args.current} -> {out}" if args.current else ""), file=text)
    if args.json_out == "-":
        print(json.dumps(manifest, indent=2))
    return EXIT_OK


def _cmd_index(args: argparse.Namespace) -> int:
    return build_and_report(args, args.csv, args.out)


def _cmd_synth(args: argparse.Namespace) -> int:
    from engine import synthetic_catalog, write_output

    from ._outputs import new_csv_problem

    if not 1 <= args.tracks <= MAX_SYNTH:
        print(f"musicrec synth: error: --tracks must be 1 to {MAX_SYNTH:,}, got {args.tracks}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.seed < 0:  # numpy's generator takes any whole number from 0
        print(f"musicrec synth: error: --seed must be 0 or more, got {args.seed}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = str(args.out)
    problem = new_csv_problem(args.out) if out != "-" else None
    if problem:
        print(f"musicrec synth: error: --out {out!r}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    frame = synthetic_catalog(args.tracks, seed=args.seed)
    if out == "-":
        frame.to_csv(sys.stdout, index=False)
        print(f"wrote {args.tracks} tracks (seed {args.seed}) to stdout", file=sys.stderr)
        return EXIT_OK
    try:
        write_output(args.out, frame.to_csv(index=False))  # whole or not at all: a cut CSV indexes as a good one
    except OSError as exc:
        print(f"musicrec synth: error: --out {out!r}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {args.out} ({args.tracks} tracks, seed {args.seed})")
    return EXIT_OK
