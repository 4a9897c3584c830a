"""Catalog updates without a refit: ``musicrec add CSV --to BUNDLE --out NEW`` (and ``--remove-ids``).

A new immutable bundle version from an existing one. Nothing fitted changes: the new tracks are
cleaned with the bundle's schema, embedded with its fitted preprocessing (scaling + PCA), given a
mood by its exemplars (``MoodModel.assign_points``, as every catalog track was), and scored by
its genre classifier; only what depends on the set of tracks is recomputed:

- the track table: kept tracks in their old order, new tracks appended (rows are renumbered past
  a removed track);
- the index (and the new-track IVF index): a flat index is rebuilt from the vectors (a copy: no
  training); HNSW gets the new vectors added, IVF too (its trained lists are kept); when tracks are
  removed HNSW is rebuilt and IVF emptied and refilled (keeping its training);
- the neighbour table: the entries the update reaches recomputed, by the build's own function
  (engine/_table.py ``first_blocks``), every other one kept, renumbered (engine/_table_update.py);
- moods: sizes counted again; names and centroids stay those of the fit;
- the mood map: new tracks placed by the fitted projection.

What "equal to a full rebuild" means: equal to a bundle built on the new catalog *with the same
fitted parts* (preprocessing, moods, classifier); with a flat index its table, index and every
answer are the same (tests/engine/test_update.py builds that reference from scratch and compares).
A real full build refits scaling, PCA, the moods and the classifier on the new catalog, so its
vectors and answers differ; the drift check below says when that refit is due.

Refused rows (counted by reason, never dropped silently): an id the bundle already holds (remove
it in the same update to replace it), genres the classifier has never seen (a refit learns
them), and values so far beyond the fitted scaling that the track's mood point or map position
would overflow float32 (a refit scales them; engine/_update_input.py). The input file goes
through the bundle's own cleaning (that of ``musicrec index``), whose counts are reported too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import resource
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ._arrays import load_npz, save_npz
from ._bundle import atomic_bundle_dir, library_versions, sha256_file, write_manifest
from ._catalog import Catalog, catalog_songs
from ._crossfit import OOF_FILE
from ._errors import BundleError, CatalogError
from ._index import build_index, configure_search, measure_recall, new_track_recall, save_index
from ._linear import LINEAR_FILE
from ._loaded import Bundle, load_bundle
from ._progress import Progress
from ._ranking import SLACK, Scoring
from ._rerank import GenreAgreement
from ._table import BLOCKS_FILE, TABLE_FILE, read_blocks, write_table
from ._table_update import updated_table
from ._update_input import REFUSED_IDS_SHOWN, new_tracks, refused_text

# Files an update knows how to carry over; any other file means a bundle layout this code does
# not understand, and copying it blindly could leave per-track arrays of the old length.
_COPIED = {"preprocess.npz", "genre_model.ubj", LINEAR_FILE, "evaluation.npz"}
_REWRITTEN = {"index.faiss", "index_new_tracks.faiss", "tracks.npz", "moods.npz", "moods.json", TABLE_FILE,
              "moodmap.npz", OOF_FILE, BLOCKS_FILE}

# Drift: when the fitted parts no longer describe the catalog (each threshold says why it is there).
REBUILD_CHANGED_SHARE = 0.10  # mood memberships shift measurably once ~10% of the catalog changed (RESULTS.md)
OUTLIER_Z = 4.0  # a standardized feature beyond 4 sd of the fitted scaling
OUTLIER_RATIO = 3.0  # new tracks' outlier share this many times the catalog's own
RESIDUAL_RATIO = 1.5  # variance the fitted PCA loses on new tracks, against what it loses on the catalog
# the nearest-neighbour medians: an exact search per track, of at most this many random new and kept tracks
NEAREST_SAMPLE = 1000


def add_tracks(base: str | os.PathLike[str], out: str | os.PathLike[str], *, csv: str | os.PathLike[str] | None = None,
               remove_ids: Sequence[str] = (), progress: Progress | None = None) -> dict[str, Any]:
    """Write the bundle ``out``: ``base`` with the tracks of ``csv`` added and ``remove_ids`` removed.
    Returns the new manifest; its ``update`` section is the report (counts, drift, what was recomputed)."""
    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - t0, 3)
        say(f"[{name}] done in {timings[name]:.2f} s")

    faiss.omp_set_num_threads(min(2, os.cpu_count() or 1))
    with stage("load"):
        bundle = load_bundle(base)
    unknown_files = set(bundle.manifest["files"]) - _COPIED - _REWRITTEN
    if unknown_files:
        raise BundleError(f"{base}: musicrec add does not know the file(s) {sorted(unknown_files)} (a newer bundle "
                          "layout?); build the new catalog with musicrec index")
    old = bundle.tracks
    with stage("ingest"):
        wanted_out = {str(t) for t in remove_ids}
        keep = ~np.isin(old.ids.astype(str), list(wanted_out)) if wanted_out else np.ones(len(old), dtype=bool)
        removed = int((~keep).sum())
        remove_unknown = len(wanted_out) - removed
        # named, so an operator can tell which takedown was not applied (the first few, as refusals are)
        unknown_shown = sorted(wanted_out - set(old.ids.astype(str).tolist()))[:REFUSED_IDS_SHOWN] \
            if remove_unknown else []
        added, refused, ingest = new_tracks(bundle, csv, old.ids[keep]) if csv is not None else (None, {}, None)
        n_new = 0 if added is None else len(added)
        refusals = refused_text(refused, (ingest or {}).get("refused_ids", {}))
        if n_new == 0 and removed == 0:
            raise CatalogError("nothing to change: no new track was accepted and no id to remove was found"
                               + (f" (refused: {refusals})" if refused else ""))
        if n_new == 0 and keep.sum() == 0:  # musicrec index needs a track too ("nothing to index")
            raise CatalogError(f"the ids to remove take every one of the bundle's {len(old):,} tracks and no track is "
                               "added: that would leave an empty catalog (a bundle holds at least one track)"
                               + (f" (refused: {refusals})" if refused else ""))
        catalog = _combined(old, keep, added)
        say(f"{n_new:,} tracks added, {removed:,} removed, refused {refusals or 'none'}; "
            f"{len(catalog):,} tracks in the new version")
    prep, moods = bundle.preprocessor, bundle.moods
    with stage("embed"):
        new_features = added.features if added is not None else np.empty((0, len(prep.feature_names)))
        new_vectors = prep.embed(new_features).astype(np.float32)
        if not np.isfinite(new_vectors).all() or (n_new and not new_vectors.any(axis=1).all()):  # new_tracks refused
            raise CatalogError("internal: a new track that placeable() accepted cannot be embedded")  # those rows
        vectors = np.ascontiguousarray(np.vstack([bundle.vectors[keep], new_vectors]), dtype=np.float32)
        new_points = moods.space.project(prep.standardize(new_features))
        labels, strength, core = moods.assign_points(new_points) if n_new else (
            np.empty(0, np.int32), np.empty(0, np.float32), np.empty(0, bool))
    n_kept = int(keep.sum())
    with atomic_bundle_dir(out) as tmp:
        for name in _COPIED & set(bundle.manifest["files"]):
            shutil.copy2(bundle.path / name, tmp / name)
        with stage("index"):
            index, index_metrics = _index(bundle, keep, new_vectors, vectors, tmp)
        with stage("moods"):
            mood_arrays = load_npz(bundle.path / "moods.npz")
            mood_arrays["labels"] = np.concatenate([moods.labels_[keep], labels]).astype(mood_arrays["labels"].dtype)
            mood_arrays["strength"] = np.concatenate([moods.strength_[keep], strength]).astype(np.float32)
            mood_arrays["is_core"] = np.concatenate([moods.is_core_[keep], core]).astype(bool)
            save_npz(tmp / "moods.npz", mood_arrays)
            clusters = json.loads((bundle.path / "moods.json").read_text(encoding="utf-8"))
            sizes = np.bincount(mood_arrays["labels"], minlength=len(clusters))
            cores = np.bincount(mood_arrays["labels"][mood_arrays["is_core"]], minlength=len(clusters))
            for i, c in enumerate(clusters):
                c["size"], c["core_size"] = int(sizes[i]), int(cores[i])
            (tmp / "moods.json").write_text(json.dumps(clusters, indent=1) + "\n", encoding="utf-8")
            if bundle.mood_map is not None:
                mood_map = load_npz(bundle.path / "moodmap.npz")
                mood_map["xy"] = np.vstack([mood_map["xy"][keep], bundle.mood_map.place(new_points)])
                save_npz(tmp / "moodmap.npz", mood_map)
        genre_proba = None
        if bundle.genre_proba is not None and bundle.classifier is not None:
            with stage("genre"):
                # kept tracks keep their out-of-fold probabilities; a new track was seen by no model, so the
                # shipped model's are honest for it (fold -1); rounded as stored, so the table agrees with queries
                fresh_proba = bundle.classifier.predict_proba(prep.transform_features(new_features)) if n_new \
                    else np.empty((0, len(old.genre_names)), np.float32)
                oof = load_npz(bundle.path / OOF_FILE)
                oof = {"proba": np.vstack([oof["proba"][keep], fresh_proba.astype(np.float16)]),
                       "fold": np.concatenate([oof["fold"][keep], np.full(n_new, -1, np.int8)])}
                save_npz(tmp / OOF_FILE, oof)
                genre_proba = oof["proba"].astype(np.float32)
        table_metrics: dict[str, Any] | None = None
        if bundle.neighbours is not None:
            with stage("neighbours"):
                table, table_metrics = _neighbour_table(bundle, catalog, keep, index, vectors, n_kept, say, genre_proba)
                write_table(tmp, table)
                # as the build records it, read from the tables themselves, not from the base's manifest
                index_metrics["neighbour_table"] = {
                    "width": int(table["rows"].shape[1]), "genre_weight": float(bundle.neighbours.genre_weight),
                    "block": int(bundle.neighbours.block), "tracks_answered_live": int((table["consumed"] < 0).sum())}
        with stage("drift"):
            drift = drift_check(bundle, keep, new_features, vectors, core, index, n_kept,
                                added=n_new, removed=removed)
            say(f"drift: {drift['verdict']}")
        with stage("write"):
            save_npz(tmp / "tracks.npz", {**catalog.to_arrays(), "vectors": vectors})
            base_manifest = bundle.manifest
            counts = {**base_manifest["counts"], "tracks": len(catalog)}
            update = {
                "base": {"path": str(bundle.path), "version": bundle.version, "tracks": len(old)},
                "added": n_new, "removed": removed, "remove_ids_not_found": remove_unknown,
                "remove_ids_not_found_shown": unknown_shown,
                "refused": refused, "ingest": ingest,
                "source": None if csv is None else {"path": str(csv), "sha256": sha256_file(csv)},
                "neighbour_table": table_metrics, "drift": drift, "timings_seconds": timings,
                "since_full_build": drift["since_full_build"],
                "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
            manifest = {k: v for k, v in base_manifest.items() if k not in ("format", "format_version", "files")}
            manifest.update({
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "counts": counts, "versions": library_versions(),
                "metrics": {**base_manifest["metrics"], "index": index_metrics},
                "update": update,
            })
            manifest = write_manifest(tmp, manifest)
    return manifest


def _combined(old: Catalog, keep: np.ndarray, added: Catalog | None) -> Catalog:
    """The kept tracks in their order, then the added ones."""
    parts = [(old, np.flatnonzero(keep))] + ([(added, np.arange(len(added)))] if added is not None else [])
    codes, lengths = [], []
    for cat, rows in parts:
        s, e = cat.genre_indptr[rows], cat.genre_indptr[rows + 1]
        lengths.append(e - s)
        codes.extend(cat.genre_codes[a:b] for a, b in zip(s.tolist(), e.tolist(), strict=True))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(old.genre_indptr.dtype)
    report = dataclasses.replace(old.report, tracks=sum(len(r) for _, r in parts))
    return Catalog(
        ids=np.concatenate([cat.ids[rows] for cat, rows in parts]),
        feature_names=old.feature_names,
        features=np.vstack([cat.features[rows] for cat, rows in parts]),
        genre_names=old.genre_names, genre_indptr=indptr,
        genre_codes=(np.concatenate(codes) if codes else np.empty(0)).astype(old.genre_codes.dtype),
        metadata={c: np.concatenate([cat.metadata[c][rows] for cat, rows in parts]) for c in old.metadata},
        report=report, artists_column=old.artists_column, artist_separator=old.artist_separator)


def _index(bundle: Bundle, keep: np.ndarray, new_vectors: np.ndarray, vectors: np.ndarray,
           tmp: Path) -> tuple[faiss.Index, dict[str, Any]]:
    config = bundle.config
    metrics = {**bundle.manifest["metrics"]["index"], "tracks": len(vectors)}
    removed = not keep.all()

    def updated(path: Path, kind: str) -> tuple[faiss.Index, str]:
        if kind == "flat":
            return build_index(vectors, dataclasses.replace(config.index, kind="flat")), "rebuilt (flat: a copy)"
        index = faiss.read_index(str(path))
        if kind == "hnsw" and removed:  # HNSW cannot drop points: a new graph
            return build_index(vectors, dataclasses.replace(config.index, kind="hnsw"), seed=config.seed), \
                "rebuilt (hnsw: tracks were removed)"
        if removed:  # IVF: empty the trained lists and add every vector again (no retraining)
            index.reset()
            index.add(vectors)
            how = "re-added into the trained lists (tracks were removed)"
        else:
            index.add(new_vectors)
            how = "new vectors added"
        configure_search(index, dataclasses.replace(config.index, kind=kind))
        return index, how

    index, how = updated(bundle.path / "index.faiss", config.index.kind)
    save_index(index, tmp / "index.faiss")
    metrics["update"] = how
    if config.index.kind != "flat":
        metrics.update(measure_recall(index, vectors, queries=config.index.recall_queries, seed=config.seed))
    if "index_new_tracks.faiss" in bundle.manifest["files"]:
        fast, how = updated(bundle.path / "index_new_tracks.faiss", "ivf")  # IVF-flat (new_track_index_config)
        save_index(fast, tmp / "index_new_tracks.faiss")
        base = {k: v for k, v in metrics.get("new_track_index", {}).items() if k in ("kind", "nlist", "nprobe")}
        metrics["new_track_index"] = {**base, "update": how, **new_track_recall(
            fast, vectors, fetch=config.similar.candidates + SLACK, queries=config.index.recall_queries,
            seed=config.seed)}
    return index, metrics


def _neighbour_table(bundle: Bundle, catalog: Catalog, keep: np.ndarray, index: faiss.Index, vectors: np.ndarray,
                     n_kept: int, say: Progress, genre_proba: np.ndarray | None,
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The new version's table (engine/_table_update.py), ranking with what by-id queries of the new
    version rank with: its stored per-track genre probabilities (or, in a bundle without them, the
    classifier's)."""
    assert bundle.neighbours is not None
    weight = bundle.neighbours.genre_weight
    proba = None
    if weight > 0:
        proba = genre_proba if genre_proba is not None else bundle.classifier.predict_proba(  # type: ignore[union-attr]
            bundle.preprocessor.transform_features(catalog.features))
    scoring = Scoring(genre_weight=weight, agreement=GenreAgreement(catalog.genre_indptr, catalog.genre_codes,
                                                                    len(catalog.genre_names)))
    songs = catalog_songs(catalog, bundle.config.schema.name_column)
    old_blocks = read_blocks(bundle.path, len(keep), bundle.neighbours.block) \
        if BLOCKS_FILE in bundle.manifest["files"] else None  # its checksum verified when the bundle was loaded
    return updated_table(bundle.neighbours, old_blocks, keep, index, vectors, n_kept, songs, scoring, proba,
                         bundle.vectors[~keep], say)


def drift_check(bundle: Bundle, keep: np.ndarray, new_features: np.ndarray, vectors: np.ndarray,
                new_core: np.ndarray, index: faiss.Index, n_kept: int, *,
                added: int, removed: int) -> dict[str, Any]:
    """How far the new tracks sit from the fitted distribution, and whether a full rebuild is due."""
    prep = bundle.preprocessor
    old_features = bundle.tracks.features[keep]
    rng = np.random.default_rng(0)
    sample = old_features[rng.choice(len(old_features), size=min(20_000, len(old_features)), replace=False)] \
        if len(old_features) else old_features

    def outliers(raw: np.ndarray) -> float:
        z = prep.standardize(raw)
        return float((np.abs(z) > OUTLIER_Z).any(axis=1).mean()) if len(z) else 0.0

    def residual(raw: np.ndarray) -> float:
        return prep.residual_share(raw)  # the components may be whitened: the preprocessor knows

    prior = bundle.manifest.get("update", {}).get("since_full_build", {"added": 0, "removed": 0, "base_tracks":
                                                                        len(bundle.tracks)})
    since = {"added": prior["added"] + added, "removed": prior["removed"] + removed,
             "base_tracks": prior["base_tracks"]}
    changed = (since["added"] + since["removed"]) / max(since["base_tracks"], 1)
    out: dict[str, Any] = {"since_full_build": since, "changed_share_since_full_build": round(changed, 4)}
    reasons = []
    if changed > REBUILD_CHANGED_SHARE:
        reasons.append(f"{changed:.1%} of the catalog changed since the last full build (> "
                       f"{REBUILD_CHANGED_SHARE:.0%}: moods and scaling were fitted on another catalog)")
    if added:
        o_new, o_old = outliers(new_features), outliers(sample)
        r_new, r_old = residual(new_features), residual(sample)
        out.update({
            "outlier_share": {"new": round(o_new, 4), "catalog": round(o_old, 4), "z": OUTLIER_Z},
            "pca_residual_share": {"new": round(r_new, 4), "catalog": round(r_old, 4)},
            "mood_core_share": {"new": round(float(new_core.mean()), 4),
                                "catalog": round(float(bundle.moods.is_core_[keep].mean()), 4) if n_kept else None},
        })

        def nearest_cos(rows: np.ndarray) -> float:  # each track's nearest other track in the new version
            found = index.search(np.ascontiguousarray(vectors[rows]), 2)[1]
            first = np.where(found[:, 0] == rows, found[:, 1], found[:, 0])
            return float(np.median((vectors[rows] * vectors[first]).sum(axis=1)))

        def sample(rows: np.ndarray) -> np.ndarray:
            return np.sort(rng.choice(rows, size=NEAREST_SAMPLE, replace=False)) if len(rows) > NEAREST_SAMPLE else rows
        out["nearest_neighbour_cosine_median"] = {
            "new": round(nearest_cos(sample(np.arange(n_kept, len(vectors)))), 4),
            "catalog": round(nearest_cos(sample(np.arange(n_kept))), 4) if n_kept else None,
            "tracks_sampled": NEAREST_SAMPLE}
        if o_new > max(0.01, OUTLIER_RATIO * o_old):
            reasons.append(f"{o_new:.1%} of the new tracks lie beyond {OUTLIER_Z:g} sd of the fitted scaling "
                           f"(catalog: {o_old:.1%})")
        if r_new > RESIDUAL_RATIO * max(r_old, 1e-9):
            # (a share computed as 1 - kept / total can come out a hair under 0: printed "-0.0%")
            reasons.append(f"the fitted PCA loses {max(r_new, 0.0):.1%} of the new tracks' variance (catalog: "
                           f"{max(r_old, 0.0):.1%})")
    out["rebuild_due"] = bool(reasons)
    out["reasons"] = reasons
    out["verdict"] = ("rebuild due: " + "; ".join(reasons)) if reasons else \
        "no refit needed: the new tracks sit within the fitted distribution" if added else "no refit needed"
    return out
