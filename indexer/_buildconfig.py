"""The build options ``musicrec index`` and ``musicrec demo`` share, and the ``BuildConfig`` they make: a ``--config``
file, then the column preset (``--schema``), then the flags, each over the one before."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_build_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (flags override the --config file)")
    g.add_argument("--config", type=Path, help="TOML or JSON file with [schema] [preprocess] [index] [moods] [genre] "
                                               "[similar] and seed (README: Any other feature set)")
    g.add_argument("--schema", choices=["auto", "spotify", "audio"], default="auto",
                   help="column preset: spotify (the Spotify Tracks Dataset), audio (GTZAN-layout tables, e.g. from "
                        "musicrec extract); auto (default) picks audio when the header has that layout and no "
                        "column is named (by a column flag or a config's [schema]); --schema audio keeps the preset "
                        "under column flags")
    g.add_argument("--id-column", help="track id column (one row per track after duplicates are merged)")
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
    g.add_argument("--seed", type=int, help="random seed of the build's samples, folds and fits (default: the "
                   "config file's, else 0)")
    o = p.add_argument_group("output")
    o.add_argument("--json", dest="json_out", help="also write the report as JSON to this file ('-': stdout, and the "
                                                   "text report to stderr)")
    o.add_argument("--current", type=Path, help="after a successful build, point this symlink at the bundle (a "
                   "rebuild of the bundle it points at keeps its moods' cut where this build's count of density "
                   "moods splits or that bundle's did)")
    o.add_argument("--quiet", action="store_true", help="no progress on stderr")


def config_from_args(args: argparse.Namespace) -> Any:
    from engine import BuildConfig, ConfigError, read_config_file

    data = read_config_file(args.config) if args.config else {}
    try:
        from_file = BuildConfig.from_mapping(data)
    except ConfigError as exc:  # a value the file gave: say which file
        raise ConfigError(f"config file {args.config}: {exc}") from None
    config = _apply_preset(args, from_file, set(data.get("preprocess") or {}))
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
    elif args.pca_components is not None:  # and a file's variance would be refused beside it
        from engine import PreprocessConfig
        pre = {"pca_variance": PreprocessConfig().pca_variance, "pca_components": args.pca_components}
    if pre:
        sections["preprocess"] = pre
    if args.no_genre:
        sections["genre"] = {"enabled": False}
    if args.seed is not None:
        sections["seed"] = args.seed
    return config.replace(**sections) if sections else config


def _apply_preset(args: argparse.Namespace, config: Any, preprocess_keys: set[str]) -> Any:
    """``--schema audio`` (or a GTZAN-layout header under ``auto`` with no column flags and no columns in a
    config file's ``[schema]``): ``engine.with_audio_preset`` with this file's header; a config file's own
    ``[preprocess]`` keys (``preprocess_keys``), mood weights and ``[schema]`` ``missing`` and ``artist_separator``
    win."""
    import csv
    import dataclasses

    from engine import ConfigError, FeatureSchema, detect_preset, with_audio_preset

    source = getattr(args, "csv", None)
    if args.schema == "spotify" or source is None:
        return config
    flags = ("id_column", "label_column", "feature_columns", "name_column", "artists_column", "metadata_columns")
    # [schema] keys that say how to read rows, not which columns are which: they apply to a detected preset too
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
    preset = with_audio_preset(config, header, keep_preprocess=preprocess_keys)
    if not args.quiet:
        how = "detected from the header" if args.schema == "auto" else "--schema audio"
        print(f"schema: audio preset ({how}): {len(preset.schema.feature_columns)} descriptor columns as features",
              file=sys.stderr)
    return preset
