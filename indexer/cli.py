"""The ``musicrec`` command.

Subcommands: ``index`` (CSV -> bundle), ``extract`` (audio files -> features CSV), ``synth`` (write a
synthetic catalog CSV), ``demo`` (the main job: build a bundle from a CSV, or from a synthetic
catalog when none is given, print its report, serve it and answer sample queries), and
``serve``/``query`` from ``server.cli``. Errors in the input end with a message naming the file,
row or column and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 70
MAX_SYNTH = 10_000_000  # synthetic tracks: ~1 GB of catalog; 1e11 was a 745 GiB allocation's traceback


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"musicrec {args.command}: interrupted; no bundle was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left early (`musicrec query moods | head`): nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return EXIT_OK
    except Exception as exc:
        code = _engine_error_exit_code(exc)
        if code is None:
            traceback.print_exc()
            print(f"musicrec {args.command}: internal error (a bug: please report it with the traceback above)",
                  file=sys.stderr)
            return EXIT_INTERNAL
        print(f"musicrec {args.command}: error: {exc}", file=sys.stderr)
        return code


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
    from ._args import Parser

    parser = Parser(prog="musicrec", description="Music recommendation engine on vector search.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="build a bundle from a catalog CSV",
                       description="Build a verified bundle from a catalog CSV (default schema: the Spotify "
                                   "Tracks Dataset). Column flags override the schema, field by field.")
    p.add_argument("csv", type=Path, help="catalog CSV")
    p.add_argument("--out", type=Path, required=True,
                   help="new bundle directory (must not exist; missing parent directories are created)")
    _add_build_options(p)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("synth", help="write a deterministic synthetic catalog CSV (Spotify schema)")
    p.add_argument("--out", type=Path, required=True,
                   help="CSV file to write (must not exist; missing parent directories are created); - for stdout")
    p.add_argument("--tracks", type=int, default=20_000, help=f"number of tracks, 1 to {MAX_SYNTH:,} (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("demo", help="the main job: build a bundle, print its report, serve it, query it",
                       description="Build a bundle from CSV (or, when no CSV is given, from a synthetic "
                                   "catalog), point bundles/current at it, print the report, then serve it "
                                   "on a free local port and answer one query of each kind over gRPC.")
    p.add_argument("csv", type=Path, nargs="?", help="catalog CSV (default: a synthetic catalog)")
    p.add_argument("--bundles", type=Path, default=Path("bundles"), help="where bundles go (default ./bundles)")
    p.add_argument("--tracks", type=int, default=None,
                   help=f"synthetic catalog size, 1 to {MAX_SYNTH:,} (default 20000; not with a CSV)")
    _add_build_options(p)
    p.set_defaults(func=_cmd_demo)

    from ._extract import add_parser as add_extract  # audio files -> features CSV (the audio extra)

    add_extract(sub)

    from ._report import add_parser as add_report  # musicrec report BUNDLE [--html FILE]

    add_report(sub)

    from ._scale import add_parsers as add_scale  # musicrec publish (Qdrant), musicrec add (new tracks)

    add_scale(sub)

    # serve/query/bench are defined beside their commands. Importing server.cli loads argument
    # definitions only (server/__init__ loads grpc on first use): `musicrec index` never needs grpc.
    from server.cli import add_parsers

    add_parsers(sub)
    return parser


def _add_build_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (flags override the --config file)")
    g.add_argument("--config", type=Path, help="TOML or JSON file with [schema] [preprocess] [index] [moods] [genre] "
                                               "[similar] and seed (README: Any other feature set)")
    g.add_argument("--schema", choices=["auto", "spotify", "audio"], default="auto",
                   help="column preset: spotify (the Spotify Tracks Dataset), audio (GTZAN-layout tables, e.g. from "
                        "musicrec extract); auto (default) picks audio when the header has that layout and no "
                        "column is named (by a column flag or a config's [schema]); --schema audio keeps the preset "
                        "under column flags")
    g.add_argument("--id-column")
    g.add_argument("--label-column", help="genre column ('' for none)")
    g.add_argument("--feature-columns", help="comma-separated feature columns")
    g.add_argument("--name-column", help="track name column ('' for none)")
    g.add_argument("--artists-column", help="artists column ('' for none)")
    g.add_argument("--metadata-columns", help="comma-separated extra columns kept for filters and display")
    g.add_argument("--transform", action="append", default=[], metavar="COL=SPEC",
                   help="per-feature transform: none, log1p or cyclic:<period> (repeatable)")
    g.add_argument("--missing", choices=["drop", "impute"], help="rows with missing features: drop or impute")
    g.add_argument("--index", dest="index_kind", choices=["flat", "hnsw", "ivf", "ivfpq"],
                   help="FAISS index type")
    pca = g.add_mutually_exclusive_group()
    pca.add_argument("--pca-variance", type=float, help="keep components explaining this share of variance")
    pca.add_argument("--pca-components", type=int, help="keep exactly this many components")
    g.add_argument("--no-genre", action="store_true", help="skip the genre classifier")
    g.add_argument("--seed", type=int)
    o = p.add_argument_group("output")
    o.add_argument("--json", dest="json_out", help="also write the report as JSON to this file ('-': stdout, and the "
                                                   "text report to stderr)")
    o.add_argument("--current", type=Path, help="after a successful build, point this symlink at the bundle (a "
                   "rebuild of the bundle it points at keeps its moods' cut where this build's count of density "
                   "moods splits or that bundle's did)")
    o.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _config_from_args(args: argparse.Namespace) -> Any:
    from engine import BuildConfig, read_config_file

    data = read_config_file(args.config) if args.config else {}
    config = _apply_preset(args, BuildConfig.from_mapping(data), set(data.get("preprocess") or {}))
    schema: dict[str, Any] = {}

    def columns(text: str) -> list[str]:
        return [c.strip() for c in text.split(",") if c.strip()]

    for flag in ("id_column", "label_column", "name_column", "artists_column", "missing"):
        if getattr(args, flag) is not None:
            schema[flag] = getattr(args, flag)
    if args.feature_columns is not None:
        schema["feature_columns"] = columns(args.feature_columns)
        # New features: the transforms and rules of the old ones no longer apply.
        schema["transforms"] = {c: t for c, t in (config.schema.transforms or {}).items()
                                if c in schema["feature_columns"]}
        schema["rules"] = {c: r for c, r in (config.schema.rules or {}).items() if c in schema["feature_columns"]}
    if args.metadata_columns is not None:
        schema["metadata_columns"] = columns(args.metadata_columns)
    given: dict[str, str] = {}
    for item in args.transform:
        col, sep, spec = item.partition("=")
        if not sep:
            from engine import ConfigError
            raise ConfigError(f"--transform expects COLUMN=SPEC, got {item!r}")
        if col.strip() in given:  # the last would win silently, over a transform the user also typed
            from engine import ConfigError
            raise ConfigError(f"--transform given twice for column {col.strip()!r} ({given[col.strip()]!r} and "
                              f"{item!r}); give each column one transform")
        given[col.strip()] = item
        schema.setdefault("transforms", dict(config.schema.transforms or {}))[col.strip()] = spec.strip()
    sections: dict[str, Any] = {}
    if schema:
        sections["schema"] = schema
    if args.index_kind:
        sections["index"] = {"kind": args.index_kind}
    pre: dict[str, Any] = {}
    if args.pca_variance is not None:  # a flag replaces the file's choice whole: a file's count would win
        pre = {"pca_variance": args.pca_variance, "pca_components": None}
    elif args.pca_components is not None:
        pre = {"pca_components": args.pca_components}
    if pre:
        sections["preprocess"] = pre
    if args.no_genre:
        sections["genre"] = {"enabled": False}
    if args.seed is not None:
        sections["seed"] = args.seed
    return config.replace(**sections) if sections else config


def _apply_preset(args: argparse.Namespace, config: Any, preprocess_keys: set[str]) -> Any:
    """``--schema audio`` (or a GTZAN-layout header under ``auto`` with no column flags and no columns in a
    config file's ``[schema]``): the audio preset's columns, transforms and mood space (engine/_schema.py); a config
    file's own ``[preprocess]``, mood weights and ``[schema]`` ``missing`` and ``artist_separator`` win."""
    import csv
    import dataclasses

    from engine import (
        AUDIO_MOOD_WEIGHTS,
        AUDIO_PREPROCESS,
        MOOD_WEIGHTS,
        ConfigError,
        FeatureSchema,
        audio_schema,
        detect_preset,
    )

    source = getattr(args, "csv", None)
    if args.schema == "spotify" or source is None:
        return config
    flags = ("id_column", "label_column", "feature_columns", "name_column", "artists_column", "metadata_columns")
    # [schema] keys that say how to read rows, not which columns are which: they apply to a detected preset too
    reading = {"missing": config.schema.missing, "artist_separator": config.schema.artist_separator}
    columns_given = dataclasses.replace(config.schema, missing=FeatureSchema.missing,
                                        artist_separator=FeatureSchema.artist_separator) != FeatureSchema()
    if args.schema == "auto" and (columns_given or any(getattr(args, f) is not None for f in flags)):
        return config  # the columns are given: a config file's [schema] or the column flags
    try:
        if not Path(source).is_file():  # a pipe would block this read: the build reports what it is
            raise FileNotFoundError(source)
        with Path(source).open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        if args.schema == "audio":
            raise ConfigError(f"--schema audio: cannot read the header of {source}") from None
        return config  # the build reports the unreadable file
    if args.schema == "auto" and detect_preset(header) != "audio":
        return config
    schema = dataclasses.replace(audio_schema(header), **reading)
    if not args.quiet:
        how = "detected from the header" if args.schema == "auto" else "--schema audio"
        print(f"schema: audio preset ({how}): {len(schema.feature_columns)} descriptor columns as features",
              file=sys.stderr)
    # the Spotify mood space has only tempo in common with audio tables; a config's own weights win
    moods = AUDIO_MOOD_WEIGHTS if dict(config.moods.weights) == MOOD_WEIGHTS else config.moods.weights
    # and its retrieval space: every component, whitened unless its labels say otherwise (PreprocessConfig.whiten), but
    # for the keys ``preprocess_keys`` a config file's [preprocess] gives itself
    preset = {k: v for k, v in AUDIO_PREPROCESS.items() if k not in preprocess_keys}
    return config.replace(schema=schema, moods={"weights": dict(moods)}, preprocess=preset)


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


def _build_and_report(args: argparse.Namespace, csv: Path, out: Path, *, source_label: str | None = None,
                      serve: bool = False) -> int:
    from engine import build_bundle, check_current_link, format_report, publish
    from server._table import output_width

    from ._outputs import check_output_file, write_output

    config = _config_from_args(args)
    # where the build's results go after it, checked before it: a bad path must not cost a whole build
    if args.current:
        check_current_link(args.current)
        if Path(args.current).absolute() == Path(out).absolute():
            from engine import BundleError

            raise BundleError(f"--current {args.current} is the --out directory: --current names the link to point at "
                              "the new bundle, beside it (bundles/current)")
    # exit 1, as for an --out or --current that cannot be written
    check_output_file("--json", args.json_out, inputs=[csv, getattr(args, "config", None)],
                      bundles=[out, *([Path(args.current).resolve()] if args.current else [])])
    progress = None if args.quiet else _Progress()
    try:
        manifest = build_bundle(csv, out, config, progress=progress, source_label=source_label, current=args.current)
    finally:
        if progress is not None:
            progress.close()
    try:
        if args.current:
            publish(out, args.current)
        if args.json_out and args.json_out != "-":
            write_output(args.json_out, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:  # the bundle is complete and verified: keep it, say what did not happen
        print(f"musicrec {args.command}: error: the bundle was written to {out}, but "
              f"{exc.filename2 or exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    moods = json.loads((out / "moods.json").read_text(encoding="utf-8"))
    text = sys.stderr if args.json_out == "-" else sys.stdout  # with --json -, stdout holds the JSON alone
    print(format_report(manifest, moods=moods, width=output_width()), file=text)
    print(f"\nbundle written to {out}" + (f"; {args.current} -> {out}" if args.current else ""), file=text)
    if args.json_out == "-":
        print(json.dumps(manifest, indent=2))
    if serve:
        from server.cli import demo_queries

        print("\n== serving the bundle over gRPC and asking it ==\n", file=text)
        print(demo_queries(out), file=text)
    return EXIT_OK


def _cmd_index(args: argparse.Namespace) -> int:
    return _build_and_report(args, args.csv, args.out)


def _cmd_synth(args: argparse.Namespace) -> int:
    from engine import synthetic_catalog

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
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
    except OSError as exc:
        print(f"musicrec synth: error: --out {out!r}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {args.out} ({args.tracks} tracks, seed {args.seed})")
    return EXIT_OK


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
        return _build_and_report(args, args.csv, args.bundles / f"{args.csv.stem}-{stamp}", serve=True)
    print(f"demo: no CSV given, so a synthetic catalog of {args.tracks} tracks (seed 0) is used; "
          "pass a CSV (e.g. ../shared/data/spotify_tracks.csv) to index real data", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "synthetic.csv"
        synthetic_catalog(args.tracks, seed=0).to_csv(csv, index=False)
        return _build_and_report(args, csv, args.bundles / f"synthetic-{stamp}",
                                 source_label=f"synthetic catalog ({args.tracks} tracks, seed 0)", serve=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
