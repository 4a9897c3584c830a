"""``musicrec publish`` (a bundle into Qdrant) and ``musicrec add`` (a new bundle version with
tracks added or removed, without a refit): their parsers, the checks of their Qdrant options and the client
they open; the work is in the engine."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

KEEP, BATCH, TIMEOUT = 2, 512, 30.0  # the alias's default is engine.qdrant.DEFAULT_ALIAS, filled in by qdrant_target
# add's options that only say how to carry the update to Qdrant: (flag, dest, default)
QDRANT_ONLY = (("--alias", "alias", None), ("--keep", "keep", KEEP), ("--batch", "batch", BATCH),
               ("--api-key-env", "api_key_env", None), ("--timeout", "timeout", None))
# how publish and add spell the Qdrant target's options (engine.qdrant.QdrantTarget.problem names them)
FLAGS = {"url": "--qdrant", "path": "--qdrant-path", "alias": "--alias", "api_key_env": "--api-key-env",
         "timeout": "--timeout"}


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "publish", help="write a bundle into a Qdrant collection and swap an alias to it",
        description="Write the bundle's vectors and payloads into a collection named after the bundle, create "
                    "the payload indexes, verify the count and a sample of vectors, then swap ALIAS to it in one "
                    "atomic call; the alias keeps --keep collections (the live one, the one it named before, then the "
                    "newest others) and the rest are deleted. Killed midway, the "
                    "alias still names the previous complete collection. Needs the qdrant extra.")
    p.add_argument("bundle", type=Path, help="bundle directory (or a current symlink)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--qdrant", metavar="URL", help="Qdrant server, e.g. http://qdrant:6333")
    where.add_argument("--qdrant-path", type=Path, metavar="DIR",
                       help="Qdrant local mode on disk (for tests; one process at a time per DIR)")
    p.add_argument("--alias", help="alias servers read (default musicrec); also the collection name prefix")
    p.add_argument("--keep", type=int, default=KEEP, help="collections of this alias kept, the live one included "
                                                       "(default 2: the live one and the previous)")
    p.add_argument("--batch", type=int, default=BATCH, help="points per upsert (default 512)")
    p.add_argument("--api-key-env", metavar="VAR", help="read the Qdrant API key from this environment variable")
    p.add_argument("--timeout", type=float,
                   help="seconds per Qdrant request, whole seconds rounded up (default 30)")
    p.add_argument("--json", dest="json_out",
                   help="also write the publish report as JSON to this file ('-': stdout, and the text to stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser(
        "add", help="a new bundle version with tracks added or removed, without a refit",
        description="Write a new immutable bundle: the --to bundle's tracks, minus --remove-ids, plus the CSV's tracks "
                    "cleaned with its schema, embedded with its fitted preprocessing, given moods by its exemplars and "
                    "scored by its classifier; the index and the affected neighbour-table rows are updated. The report "
                    "counts what was added, removed and refused, and a drift check says when a full rebuild is due.")
    p.add_argument("csv", type=Path, nargs="?",
                   help="CSV (or Parquet) of tracks to add (same columns as the bundle's source)")
    p.add_argument("--to", dest="base", type=Path, required=True, help="the bundle to start from")
    p.add_argument("--out", type=Path, required=True, help="new bundle directory (must not exist)")
    p.add_argument("--remove-ids", type=Path, metavar="FILE", help="track ids to remove, one per line")
    p.add_argument("--current", type=Path, help="after success, point this symlink at the new bundle")
    p.add_argument("--json", dest="json_out",
                   help="also write the update report as JSON to this file ('-': stdout, and the text to stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--qdrant", metavar="URL", help="also carry the update to this Qdrant server: the new "
                       "version's collection made from the --to bundle's (kept points copied, removed ones left out, "
                       "added ones upserted), verified, then ALIAS swapped to it; before --current moves")
    where.add_argument("--qdrant-path", type=Path, metavar="DIR", help="the same into Qdrant local mode on disk")
    # no defaults here: a flag given at its default value is still refused without a Qdrant target (_cmd_add)
    p.add_argument("--alias", help="Qdrant alias (default musicrec; with --qdrant or --qdrant-path)")
    p.add_argument("--keep", type=int, help="Qdrant collections of this alias kept (default 2)")
    p.add_argument("--batch", type=int, help="points per Qdrant request (default 512)")
    p.add_argument("--api-key-env", metavar="VAR", help="read the Qdrant API key from this environment variable")
    p.add_argument("--timeout", type=float,
                   help="seconds per Qdrant request, whole seconds rounded up (default 30)")
    p.set_defaults(func=_cmd_add)


def qdrant_target(args: argparse.Namespace) -> Any:
    """The Qdrant target of publish or add (an ``engine.qdrant.QdrantTarget``, its alias filled in), checked by the
    rules serve follows too, before any work and before a file is written (``--qdrant-path`` is created later, by
    :func:`qdrant_client`); ``args.alias`` is set to the target's."""
    from engine import ConfigError

    try:
        from engine.qdrant import DEFAULT_ALIAS, QdrantTarget
    except ImportError as exc:
        from engine import install_hint
        raise ConfigError(f"Qdrant needs the qdrant extra ({install_hint('qdrant')}): {exc}") from None
    target = QdrantTarget(url=args.qdrant, path=args.qdrant_path, api_key_env=args.api_key_env, timeout=args.timeout,
                          alias=DEFAULT_ALIAS if args.alias is None else args.alias)
    if (problem := target.problem(FLAGS)) is not None:
        raise ConfigError(problem)
    if target.path is not None:
        _make_qdrant_dir(target.path, create=False)
    args.alias = target.alias
    return target


def qdrant_client(target: Any) -> Any:
    """A client for the target :func:`qdrant_target` passed (creating ``--qdrant-path``); a local store that cannot
    be opened is a :class:`engine.ConfigError` naming it."""
    from engine import ConfigError

    path = target.path
    if path is not None:
        _make_qdrant_dir(path)
    import gc
    import warnings

    # a local-mode client that fails to open leaves its lock file open: closed here, quietly, not at some later GC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return target.connect(default_timeout=TIMEOUT)
        except (RuntimeError, OSError) as exc:  # local mode: a store another process holds, or one it cannot write
            text = " ".join(str(exc).split())
            if "already accessed by another instance" in text:
                text = ("in use by another process (a musicrec serve --qdrant-path, or another publish or add): "
                        "local mode is one process at a time; stop it, or use a Qdrant server (--qdrant URL)")
            elif isinstance(exc, OSError):
                text = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        gc.collect()
    raise ConfigError(f"--qdrant-path {path}: {text[:300]}")


def _check_base_published(client: Any, base: Path, alias: str) -> None:
    """The ``--to`` bundle's collection is in Qdrant, asked before the update's work from its manifest alone (the
    update loads and verifies the bundle itself); a transport failure is a one-line error, as in the update."""
    import types

    from engine import BackendUnavailable, BundleError
    from engine.qdrant import check_base_collection, client_address, collection_name

    try:
        manifest = json.loads((base / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not a readable bundle: the update itself says why, naming it
    base_bundle = types.SimpleNamespace(manifest=manifest)
    try:
        collection_name(base_bundle, alias)
    except (KeyError, TypeError, ValueError, AttributeError):
        return  # not a bundle's manifest: the update itself says why, naming it
    try:
        check_base_collection(client, base_bundle, alias)
    except BundleError:
        raise
    except Exception as exc:  # the client's own transport errors, whatever the transport
        raise BackendUnavailable(f"Qdrant at {client_address(client)} failed while the base collection was looked up "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); nothing was written"
                                 ) from None


def _make_qdrant_dir(path: Path, *, create: bool = True) -> None:
    """The ``--qdrant-path`` directory, created with its missing parents (unless not ``create``: checked only); a
    file there (or on the way) is a :class:`engine.ConfigError` naming it, before any work."""
    from engine import ConfigError, parent_problem

    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--qdrant-path {path}: is a file, not a directory")
        # local mode writes meta.json and .lock into it: a bundle (a mistyped path) would no longer verify
        if (path / "manifest.json").exists():
            raise ConfigError(f"--qdrant-path {path}: is a musicrec bundle, not a Qdrant store; give the store's "
                              "own directory (an empty or new one the first time)")
        if path.is_dir() and any(p.name != "lost+found" for p in path.iterdir()) and not (path / "meta.json").exists():
            raise ConfigError(f"--qdrant-path {path}: holds files but no Qdrant local store (no meta.json); give "
                              "an empty or new directory, or one a publish wrote")
        problem = parent_problem(path)
        if problem:
            raise ConfigError(f"--qdrant-path {path}: {problem}")
        if create:
            path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # permissions on the way
        raise ConfigError(f"--qdrant-path {path}: {exc.strerror or exc}") from None


def _cmd_publish(args: argparse.Namespace) -> int:
    from engine import ConfigError, load_bundle, write_output

    from ._outputs import check_output_file

    if args.keep < 1:
        raise ConfigError(f"--keep must be at least 1 (the live collection), got {args.keep}")
    if args.batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {args.batch}")
    check_output_file("--json", args.json_out, bundles=[Path(os.path.realpath(args.bundle))])
    target = qdrant_target(args)
    # the bundle before the client: local mode writes its store into --qdrant-path when it opens it
    bundle = load_bundle(args.bundle)
    client = qdrant_client(target)
    from engine.qdrant import publish_bundle

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        report = publish_bundle(bundle, client, alias=args.alias, keep=args.keep, batch=args.batch, progress=say)
    finally:
        client.close()
    with contextlib.redirect_stdout(sys.stderr if args.json_out == "-" else sys.stdout):  # '-': the JSON alone
        _print_published(args, report)
    if args.json_out:
        try:
            write_output(args.json_out, json.dumps(report.to_json(), indent=2) + "\n")
        except OSError as exc:  # checked before the work; something changed since (a full disk)
            print(f"musicrec publish: error: published {report.collection} (alias {report.alias} moved), but "
                  f"--json {args.json_out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


def _print_published(args: argparse.Namespace, report: Any) -> None:
    where = args.qdrant or f"local mode at {args.qdrant_path}"
    print(f"published {args.bundle} ({report.points:,} points) to {where}: collection {report.collection}"
          f"{' (already complete, not rewritten)' if report.reused else ''}")
    print(f"alias {report.alias} -> {report.collection} (was {report.previous or 'unset'})")
    if report.removed:
        print(f"retention (keep {args.keep}): deleted {', '.join(report.removed)}")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in report.seconds.items()))


def _cmd_add(args: argparse.Namespace) -> int:
    from engine import (
        CatalogError,
        ConfigError,
        add_tracks,
        check_current_link,
        check_new_bundle_dir,
        load_bundle,
        publish,
        read_remove_ids,
        write_output,
    )

    from ._outputs import check_output_file

    to_qdrant = args.qdrant is not None or args.qdrant_path is not None
    if not to_qdrant:  # else they would be ignored: the bundle is written all the same, and nothing goes to Qdrant
        given = [flag for flag, dest, _ in QDRANT_ONLY if getattr(args, dest) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} with --qdrant URL or "
                              "--qdrant-path DIR only (how the update is carried to Qdrant); add one, or leave "
                              f"{'it' if len(given) == 1 else 'them'} out")
    target = qdrant_target(args) if to_qdrant else None
    for _, dest, default in QDRANT_ONLY:
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    if args.csv is None and args.remove_ids is None:
        raise CatalogError("give a CSV of tracks to add, --remove-ids FILE, or both")
    remove = read_remove_ids(args.remove_ids) if args.remove_ids is not None else []
    try:
        if args.csv is not None and args.csv.is_dir():
            raise CatalogError(f"{args.csv}: is a directory, not a CSV file of tracks to add")
        if args.csv is not None and not args.csv.is_file():
            raise CatalogError(f"{args.csv}: no such file")
    except OSError as exc:  # a name too long, a folder on the way that cannot be entered
        raise CatalogError(f"{str(args.csv)[:200]}: {exc.strerror or exc}") from None
    # where the results go, checked before the work, as musicrec index does: a bad path must not cost the update
    check_new_bundle_dir(args.out)
    if args.current:
        check_current_link(args.current)
    live = [Path(os.path.realpath(args.current))] if args.current else []  # the bundle --current points at now
    check_output_file("--json", args.json_out, inputs=[args.csv, args.remove_ids],
                      bundles=[args.out, Path(os.path.realpath(args.base)), *live])

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    client = None
    if target is not None:
        if args.keep < 1 or args.batch < 1:
            raise CatalogError(f"--keep and --batch must be at least 1, got {args.keep} and {args.batch}")
        if not (args.base / "manifest.json").is_file():
            load_bundle(args.base)  # says why it is no bundle, before local mode writes its store into --qdrant-path
        client = qdrant_client(target)
    try:
        if client is not None:
            _check_base_published(client, args.base, args.alias)  # before the update's work, as the paths are
        manifest = add_tracks(args.base, args.out, csv=args.csv, remove_ids=remove, progress=say)
        args.bundle_written = args.out  # what an interrupt or a failed print says was done (musicrec/cli.py)
        qdrant = None
        if client is not None:
            from engine import EngineError
            from engine.qdrant import publish_update

            # Qdrant before --current: a server that reloads the new bundle finds its collection there
            try:
                qdrant = publish_update(args.base, args.out, client, alias=args.alias, keep=args.keep,
                                        batch=args.batch, progress=say)
            except EngineError as exc:  # the bundle is written and verified: say so, and how to finish
                where = f"--qdrant {args.qdrant}" if args.qdrant is not None else f"--qdrant-path {args.qdrant_path}"
                print(f"musicrec add: error: the bundle was written to {args.out}, but {exc}; to finish, run "
                      f"musicrec publish {args.out} {where} --alias {args.alias}"
                      + (f", then point {args.current} at it" if args.current else ""), file=sys.stderr)
                return 1
    finally:
        if client is not None:
            client.close()
    if args.current:
        from engine import BundleError

        try:  # an add builds on what the link named: one finished meanwhile would be lost under this one
            publish(args.out, args.current, expected=live[0])
        except OSError as exc:  # the new bundle is complete and verified: keep it, say what did not happen
            print(f"musicrec add: error: the bundle was written to {args.out}, but {exc.filename2 or exc.filename}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
        except BundleError as exc:
            print(f"musicrec add: error: the bundle was written to {args.out}, but {exc}; add to the bundle it "
                  "names now, or point it yourself", file=sys.stderr)
            return 1
    u = manifest["update"]
    with contextlib.redirect_stdout(sys.stderr if args.json_out == "-" else sys.stdout):  # '-': the JSON alone
        _print_update(args, manifest, qdrant)
    if args.json_out:
        out = {**u, "qdrant": qdrant.to_json()} if qdrant is not None else u
        try:
            write_output(args.json_out, json.dumps(out, indent=2) + "\n")
        except OSError as exc:  # checked before the work; something changed since
            print(f"musicrec add: error: the bundle was written to {args.out}, but --json {args.json_out}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


def _print_update(args: argparse.Namespace, manifest: dict[str, Any], qdrant: Any) -> None:
    from engine import refused_text, rows_named

    u = manifest["update"]
    print(f"{args.out}: {manifest['counts']['tracks']:,} tracks ({u['added']:,} added, {u['removed']:,} removed) "
          f"from {args.base} ({u['base']['tracks']:,} tracks)")
    if u["remove_ids_not_found"]:
        shown = u.get("remove_ids_not_found_shown") or []
        more = ", ..." if u["remove_ids_not_found"] > len(shown) else ""
        print(f"  {u['remove_ids_not_found']:,} id(s) to remove were not in the bundle"
              + (f": {', '.join(shown)}{more}" if shown else ""))
    if u["refused"]:
        print(f"  refused {refused_text(u['refused'], (u['ingest'] or {}).get('refused_ids', {}))}")
    if u["ingest"]:
        i = u["ingest"]

        def counted(by_reason: dict[str, int] | None, rows: dict[str, list[int]] | None = None) -> str:
            total = sum((by_reason or {}).values())
            parts = [f"{r}: {n:,}" + (f", {rows_named((rows or {})[r], n)}" if (rows or {}).get(r) else "")
                     for r, n in (by_reason or {}).items()]
            return f"{total:,}" + (f" ({'; '.join(parts)})" if total else "")

        print(f"  input: {i['rows_read']:,} rows -> {i['tracks']:,} tracks "
              f"(dropped {counted(i['dropped'], i.get('dropped_rows'))}, "
              f"imputed {counted(i['imputed'])}, {i['duplicates_merged']:,} rows merged by id)")
        if i.get("id_conflicts"):  # as index reports them: the first row's features kept, the others' dropped
            print(f"  id conflicts: {i['id_conflicts']:,} rows whose features differ from the first row of their id "
                  "(first kept)")
    if u["neighbour_table"]:
        t = u["neighbour_table"]
        how = f" ({t['recomputed_by_merge']:,} merged with the new tracks, {t['recomputed_by_search']:,} searched)" \
            if "recomputed_by_merge" in t else ""
        print(f"  neighbour table: {t['recomputed']:,} tracks recomputed{how}, {t['renumbered']:,} kept")
    print(f"  index: {manifest['metrics']['index'].get('update')}")
    print(f"  drift: {u['drift']['verdict']}")
    print("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in u["timings_seconds"].items()))
    if qdrant is not None:
        where = args.qdrant or f"local mode at {args.qdrant_path}"
        print(f"  qdrant ({where}): {qdrant.collection}{' (already complete)' if qdrant.reused else ''} from "
              f"{qdrant.base_collection}: {qdrant.copied:,} points copied ({qdrant.renumbered:,} renumbered), "
              f"{qdrant.upserted:,} upserted, {qdrant.removed:,} left out; alias {qdrant.alias} -> {qdrant.collection}"
              f" (was {qdrant.previous or 'unset'})" + (f"; retired {', '.join(qdrant.retired)}" if qdrant.retired
                                                         else ""))
