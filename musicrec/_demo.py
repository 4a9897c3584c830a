"""``musicrec demo``, the main job: either catalog built and reported by the indexer, then served and asked one
query of each kind over gRPC by the server."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from indexer._args import EXIT_BAD_INPUT, EXIT_OK
from indexer._build import MAX_SYNTH, build_and_report
from indexer._buildconfig import add_build_options
from server.cli import demo_queries


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job: build a bundle, print its report, serve it, query it",
                       description="Build a bundle from CSV (or, when no CSV is given, from a synthetic "
                                   "catalog), point bundles/current at it, print the report, then serve it "
                                   "on a free local port and answer one query of each kind over gRPC.")
    p.add_argument("csv", type=Path, nargs="?", help="catalog CSV (default: a synthetic catalog)")
    p.add_argument("--bundles", type=Path, default=Path("bundles"), help="where bundles go (default ./bundles)")
    p.add_argument("--tracks", type=int, default=None,
                   help=f"synthetic catalog size, 1 to {MAX_SYNTH:,} (default 20000; not with a CSV). A smaller one "
                        "is not always quicker: under 20,000 labelled tracks the build cross-validates several genre "
                        "classifier capacities")
    add_build_options(p)
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine import synthetic_catalog

    if args.csv is not None and args.tracks is not None:  # it would be ignored: the CSV's tracks are indexed
        print("musicrec demo: error: --tracks sizes the synthetic catalog; with a CSV its tracks are indexed: "
              "leave --tracks out", file=sys.stderr)
        return EXIT_BAD_INPUT
    args.tracks = 20_000 if args.tracks is None else args.tracks
    if args.csv is None and not 1 <= args.tracks <= MAX_SYNTH:
        print(f"musicrec demo: error: --tracks must be 1 to {MAX_SYNTH:,}, got {args.tracks}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        args.bundles.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file there, a folder on the way that cannot be entered
        why = "is a file, not a directory" if args.bundles.is_file() else exc.strerror or str(exc)
        print(f"musicrec demo: error: --bundles {args.bundles}: {why}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    if args.current is None:
        args.current = args.bundles / "current"
    if args.csv is not None:
        print(f"demo: catalog {args.csv}", file=sys.stderr)
        out = args.bundles / f"{args.csv.stem}-{stamp}"
        code = build_and_report(args, args.csv, out)
    else:
        print(f"demo: no CSV given, so a synthetic catalog of {args.tracks} tracks (seed 0) is used; "
              "pass a CSV (e.g. ../shared/data/spotify_tracks.csv) to index real data", file=sys.stderr)
        out = args.bundles / f"synthetic-{stamp}"
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "synthetic.csv"
            synthetic_catalog(args.tracks, seed=0).to_csv(csv, index=False)
            code = build_and_report(args, csv, out, source_label=f"synthetic catalog ({args.tracks} tracks, seed 0)")
    if code != EXIT_OK:  # the bundle was written, but its --current link or --json file was not
        return code
    text = sys.stderr if args.json_out == "-" else sys.stdout  # as the report: with --json -, stdout holds the JSON
    print("\n== serving the bundle over gRPC and asking it ==\n", file=text)
    print(demo_queries(out), file=text)
    return EXIT_OK
