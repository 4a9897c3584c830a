"""The indexing pipeline: catalog CSV -> verified bundle directory."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ._arrays import save_npz
from ._background import Background
from ._bundle import atomic_bundle_dir, library_versions, sha256_file, write_manifest
from ._catalog import Catalog, case_only_genres, catalog_songs
from ._config import BuildConfig, choose_index_kind, new_track_index_config, wants_new_track_index
from ._crossfit import CrossFit, cross_fit, save_genre_files
from ._diagnostics import FILE as EVALUATION_FILE
from ._diagnostics import genre_diagnostics
from ._genre import GenreClassifier, cannot_train
from ._genre_metrics import informative_ks
from ._index import build_index, configure_search, ivf_facts, measure_recall, new_track_recall, save_index
from ._ingest import read_catalog
from ._moodcarry import against_current, cut_to_keep, read_current
from ._moodcheck import check_moods
from ._moodmap import fit_mood_map, save_mood_map
from ._moodreport import current_line, mood_stability_lines
from ._moods import MoodModel, mood_space
from ._moodsample import id_keys
from ._moodstability import measure_stability
from ._preprocess import Preprocessor, check_log_columns
from ._progress import Progress
from ._ranking import SLACK, Scoring
from ._report import heavy_drops
from ._rerank import GenreAgreement
from ._similar_eval import evaluate_audio_only, evaluate_similar
from ._table import Searched, exact_index, first_blocks, first_fetch, nearest_candidates, write_table
from ._whitening import MIN_QUERIES, choose_whitening
from .audio._columns import DESCRIPTORS
from .audio._extract import read_provenance, sidecar_path


def import_before_threads() -> None:
    """The libraries the genre stage's thread and the moods import, imported here first, in one thread. The
    engine's own import leaves them out (a server needs none of them: engine/_ubjson.py), and two threads importing
    scikit-learn at once can find it half initialized: "cannot import name 'clone' from partially initialized
    module 'sklearn.base'", when the genre stage's XGBoost and the moods' hdbscan imported it together."""
    import hdbscan  # noqa: F401
    import sklearn.linear_model
    import sklearn.metrics
    import sklearn.model_selection  # noqa: F401
    import xgboost  # noqa: F401


def build_bundle(
    source: str | os.PathLike[str], out: str | os.PathLike[str], config: BuildConfig | None = None, *,
    progress: Progress | None = None, source_label: str | None = None, current: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Build a bundle from the catalog CSV at ``source`` into the new directory ``out``. ``current``: the
    symlink the build will repoint (``--current``); the cut of the bundle it points at is kept where this
    build's count of density moods splits (engine/_moodcarry.py).

    Returns the manifest (which is also the build report). Raises :class:`CatalogError`,
    :class:`ConfigError` or :class:`BundleError` with a message naming the file, row or column;
    on any failure no directory is left at ``out``.
    """
    config = config or BuildConfig()
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    source = Path(source)

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        say(f"[{name}] ...")
        t0 = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - t0, 2)
        say(f"[{name}] done in {timings[name]:.1f} s")

    faiss.omp_set_num_threads(min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    with atomic_bundle_dir(out) as tmp, contextlib.ExitStack() as jobs:
        with stage("ingest"):
            catalog = read_catalog(source, config.schema)
            source_sha = sha256_file(source)
            # a table written by `musicrec extract` names its extractor beside it: audio queries
            # against this bundle must be analysed with the same version and parameters
            audio = read_provenance(source)
            if audio is None and set(catalog.feature_names) <= set(DESCRIPTORS):
                say(f"note: no extraction report from musicrec extract beside {source} ({sidecar_path(source).name}), "
                    "so this bundle will refuse audio queries (it cannot know how its descriptors were extracted); "
                    "keep that file beside the CSV to take them")
            rep = catalog.report
            if rep.skipped_columns:
                say(f"optional column(s) not in the file, skipped: {list(rep.skipped_columns)}")
            say(f"{rep.rows_read} rows -> {rep.tracks} tracks ({rep.exact_duplicates} exact duplicates, "
                f"{rep.id_duplicates_merged} rows merged by id, {sum(rep.dropped.values())} dropped, "
                f"{sum(rep.imputed.values())} values imputed)")
            for warning in heavy_drops(rep.dropped, rep.rows_read, rep.imputed):
                say(f"warning: {warning}")
            for same in case_only_genres(catalog.genre_names):
                say(f"warning: genres {', '.join(repr(g) for g in same)} differ only in case; they are kept apart as "
                    "different genres (write them alike in the file to make them one)")
            for col, n in rep.flag_blanks.items():
                if n:
                    say(f"{n} tracks have no {col} value (unknown: {col} filters leave them out)")
            if rep.unlabelled:
                say(f"{rep.unlabelled} tracks have a blank {config.schema.label_column} in every row (kept without "
                    "a genre; the genre model does not learn from them)")
            if rep.missing_metadata:
                say(f"{rep.missing_metadata} tracks have a blank field: "
                    f"{', '.join(f'{c} {n:,}' for c, n in rep.blank_cells.items())} (shown as no value)")
            # one song key per track: the same song under several ids is left out of its own answers and scores
            track_songs = catalog_songs(catalog, config.schema.name_column)
            check_moods(config.moods, len(catalog), catalog.feature_names, config.schema.transforms or {})  # not fitted
            check_log_columns(catalog, config.schema.transforms or {})

        with stage("preprocess"):
            def fit_prep(whiten: bool) -> Preprocessor:
                return Preprocessor(feature_names=catalog.feature_names, transforms=config.schema.transforms,
                                    pca_variance=config.preprocess.pca_variance,
                                    pca_components=config.preprocess.pca_components,
                                    whiten=whiten).fit(catalog.features)

            whitening = None
            if config.preprocess.whiten == "auto":
                prep, whitening = choose_whitening(catalog, fit_prep, track_songs, block=config.similar.candidates,
                                                   seed=config.seed)
                if whitening["measured"]:
                    say(f"whitening {'kept' if whitening['whitened'] else 'dropped'}: audio-only genre-precision@10 "
                        f"{whitening['genre_precision_at_10_whitened']:.3f} whitened vs "
                        f"{whitening['genre_precision_at_10_not_whitened']:.3f} not ({whitening['queries']:,} queries)")
            else:
                prep = fit_prep(bool(config.preprocess.whiten))
            transformed = prep.transform_features(catalog.features)  # the classifier's inputs
            standardized = prep.standardize(catalog.features)
            vectors = prep.embed(catalog.features)
            save_npz(tmp / "preprocess.npz", prep.to_arrays())
            # the share of variance kept is printed once, by the report, rounded as the manifest stores it
            say(f"PCA keeps {prep.n_components} of {len(prep.transformed_names)} dimensions")

        with stage("index"):
            requested = config.index.kind
            config = config.replace(index=choose_index_kind(config.index, len(vectors)))
            if requested == "auto":
                say(f"index kind auto -> {config.index.kind} for {len(vectors):,} tracks")
            index = build_index(vectors, config.index, seed=config.seed)
            save_index(index, tmp / "index.faiss")
            index_metrics: dict[str, Any] = {"kind": config.index.kind, "requested": requested,
                                             "dim": int(vectors.shape[1]), "tracks": int(index.ntotal),
                                             **ivf_facts(index, config.index.ivf_nlist, say)}
            if config.index.kind != "flat":
                index_metrics.update(measure_recall(index, vectors, queries=config.index.recall_queries,
                                                    seed=config.seed))
                say(f"{config.index.kind} recall@10 vs exact: {index_metrics['recall_at_10']:.4f}")
            if wants_new_track_index(config.index, len(vectors)):
                fast_config = new_track_index_config(config.index, len(vectors))
                fast = build_index(vectors, fast_config, seed=config.seed)
                configure_search(fast, fast_config)
                save_index(fast, tmp / "index_new_tracks.faiss")
                new_fetch = config.similar.candidates + SLACK  # a new track's first fetch (no seed to skip)
                index_metrics["new_track_index"] = {
                    "kind": "ivf", **ivf_facts(fast),
                    **new_track_recall(fast, vectors, fetch=new_fetch, queries=config.index.recall_queries,
                                       seed=config.seed)}
                say(f"new-track index (ivf) recall@10 vs exact "
                    f"{index_metrics['new_track_index']['recall_at_10']:.4f}, recall@{new_fetch} "
                    f"{index_metrics['new_track_index'][f'recall_at_{new_fetch}']:.4f}")

        # The genre classifier trains beside the moods (engine/_background.py): neither reads the other's results.
        genre_metrics: dict[str, Any] | None = None
        model: GenreClassifier | None = None
        crossfit: CrossFit | None = None
        genre_job: Background[tuple[GenreClassifier, CrossFit]] | None = None
        skip_reason = "disabled by configuration" if not config.genre.enabled else cannot_train(catalog)
        if skip_reason:
            say(f"no genre classifier: {skip_reason}")
            genre_metrics = {"skipped": skip_reason}
        else:
            song_column = config.schema.song_column
            songs = catalog.metadata.get(song_column) if song_column else None
            genre_config = config.genre
            say("[genre] ... (beside the moods)")
            import_before_threads()
            genre_job = Background("genre", lambda progress: cross_fit(
                catalog, transformed, prep.transformed_names, genre_config, seed=config.seed, progress=progress,
                songs=songs), say)
            # a build that fails before the genre stage ends stops it (at once on Ctrl-C: no waiting for it)
            jobs.push(lambda kind, _error, _trace: genre_job.cancel(wait=kind is not KeyboardInterrupt))

        with stage("moods"):
            space = mood_space(prep.transformed_names, config.moods.weights)
            genre_matrix = catalog.genre_matrix() if catalog.genre_names else None
            say(f"mood space ({space.kind}): {', '.join(space.names)}")
            mood_points = space.project(standardized)
            replaced, read = read_current(current, space, catalog.ids)
            if replaced is None and current is not None:
                say(f"the current bundle's moods are not compared or kept: {read['none']}")
            clustered = config.moods.clustered(len(catalog))
            mood_config, regime = config.moods, None
            if replaced is not None:  # a catalog that crossed a size where the method changes keeps its method
                theirs = replaced.regime or config.moods.regime(replaced.fit_tracks)  # (older bundles: by their size)
                mood_config, regime = config.moods.keeping_regime(len(catalog), theirs, replaced.fit_tracks)
                if regime:
                    say(regime["says"])
                    clustered = mood_config.clustered(len(catalog))  # (a kept method may sample otherwise)
            keep, carried = cut_to_keep(replaced, read, mood_config, space, len(catalog))
            if "cut" in carried or (replaced is not None and mood_config.regime(clustered) == "few"):
                say(f"the current bundle's mood cut: {carried.get('says') or 'not kept: ' + carried['none']}")
            moods = MoodModel(config=mood_config, space=space, seed=config.seed).fit(
                mood_points, catalog.features, catalog.feature_names, genre_matrix=genre_matrix,
                genre_names=catalog.genre_names, progress=say, keep=keep, keys=id_keys(catalog.ids))
            save_npz(tmp / "moods.npz", moods.to_arrays())
            (tmp / "moods.json").write_text(json.dumps(moods.clusters_, indent=1) + "\n", encoding="utf-8")
            m = moods.metrics_
            m["regime"] = mood_config.regime(clustered)  # what a rebuild with --current at this bundle keeps
            m["current_cut"] = {**carried, "kept": "kept" in (m.get("coassoc") or {})}
            if regime:
                m["current_regime"] = regime
            if keep is not None and not m["current_cut"]["kept"]:
                say(f"the current bundle's mood cut was not kept: {m['coassoc'].get('not_kept', 'no count decided')}")
            if replaced is not None:  # how far the moods moved from the bundle this one replaces
                m["against_current"] = against_current(replaced, catalog.ids, moods.labels_)
                say(current_line(m["against_current"]))
            say(f"{m['clusters']} moods; cores hold {m['core_coverage']:.1%} of tracks; DBCV {m['dbcv_sample']}")
            if config.moods.stability_subsample:
                m["stability"] = measure_stability(moods, mood_points, share=config.moods.stability_subsample,
                                                   progress=say, fresh=config.moods)
                first, *warning = mood_stability_lines(m["stability"])  # as the report will say it
                for line in (f"mood {first.strip()}", *warning):
                    say(line.strip())

        if genre_job is not None:
            model, crossfit = genre_job.result()
            timings["genre"] = round(genre_job.seconds, 2)
            genre_metrics = crossfit.metrics
            if "per_song" in genre_metrics:
                say(f"one vote per song ({genre_metrics['per_song']['songs']} songs): top-1 "
                    f"{genre_metrics['per_song']['top1']:.3f}")
            crossfit = save_genre_files(tmp, model, crossfit)
            wide = max(k for k in informative_ks(len(catalog.genre_names)) if k <= 3)  # top-3, or 2 of 3 genres
            gm = genre_metrics
            say("genre " + ", ".join(f"top-{k} {gm[f'top{k}']:.3f} (random {gm[f'random_top{k}']:.3f})"
                                     for k in sorted({1, wide}))
                + f", {gm['folds']}-fold cross-validation split {gm['split']}")

        with stage("figures"):
            # what the console and `musicrec report --html` draw: the mood map (engine/_moodmap.py) and the
            # evaluation's confusion and reliability (engine/_diagnostics.py)
            save_mood_map(tmp, fit_mood_map(space.project(standardized), moods.labels_,
                                            [prep.transformed_names[i] for i in space.columns], seed=config.seed))
            if crossfit is not None and len(crossfit.scored):
                scored = crossfit.scored
                save_npz(tmp / EVALUATION_FILE, genre_diagnostics(
                    crossfit.proba[scored], catalog.genre_matrix()[scored], catalog.genre_names))

        limit = config.index.neighbours_max_tracks
        if config.index.neighbours and limit and len(vectors) > limit:
            index_metrics["neighbour_table"] = (
                f"skipped: {len(vectors):,} tracks, above index.neighbours_max_tracks = {limit:,} (the table cost "
                "about 6 minutes per million tracks here; 0 lifts the limit); by-id queries search the index")
            say(f"neighbour table {index_metrics['neighbour_table']}")
        elif config.index.neighbours:
            with stage("neighbours"):
                weight = config.similar.genre_weight if model is not None else 0.0
                # catalog seeds re-rank with their out-of-fold probabilities (engine/_crossfit.py)
                proba = crossfit.proba if crossfit is not None and weight > 0 else None
                table = _neighbour_table(catalog, config, index, vectors, proba, weight, say, songs=track_songs)
                write_table(tmp, table)
                index_metrics["neighbour_table"] = {
                    "width": int(table["rows"].shape[1]), "genre_weight": weight, "block": config.similar.candidates,
                    "tracks_answered_live": int((table["consumed"] < 0).sum())}

        similar_metrics: dict[str, Any] = {"skipped": "no genre classifier"}
        if (crossfit is None or model is None) and len(catalog.genre_names) > 1 \
                and (np.diff(catalog.genre_indptr) > 0).sum() >= MIN_QUERIES:
            with stage("similar-eval"):
                similar_metrics = evaluate_audio_only(catalog, config, vectors, track_songs, whitening)
        elif crossfit is not None and model is not None and len(crossfit.scored):
            with stage("similar-eval"):
                similar_metrics = evaluate_similar(catalog, config, index, vectors, track_songs, transformed, crossfit,
                                                    model)
                say(f"similar tracks by id: genre-precision@10 "
                    f"{similar_metrics['genre_precision_at_10_cosine']:.3f} by cosine, "
                    f"{similar_metrics['genre_precision_at_10_reranked']:.3f} re-ranked with out-of-fold "
                    f"probabilities, {similar_metrics['genre_precision_at_10_reranked_in_sample']:.3f} with the "
                    f"shipped model's in-sample ones (genre_weight {config.similar.genre_weight})")

        with stage("write"):
            save_npz(tmp / "tracks.npz", {**catalog.to_arrays(), "vectors": vectors})
            manifest = write_manifest(tmp, {
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "source": {"path": str(source_label or source), "sha256": source_sha,
                           "bytes": source.stat().st_size},
                "counts": {
                    "rows_read": rep.rows_read, "tracks": rep.tracks, "dropped": rep.dropped,
                    "dropped_rows": rep.dropped_rows,
                    "case_only_genres": [list(g) for g in case_only_genres(catalog.genre_names)],
                    "imputed": rep.imputed, "exact_duplicates": rep.exact_duplicates,
                    "duplicates_merged": rep.id_duplicates_merged, "id_conflicts": rep.id_conflicts,
                    "multi_genre_tracks": rep.multi_genre_tracks, "missing_metadata": rep.missing_metadata,
                    "blank_cells": rep.blank_cells,
                    "genres": len(catalog.genre_names),
                    "skipped_columns": list(rep.skipped_columns),
                    "flag_blanks": rep.flag_blanks,
                    "unlabelled": rep.unlabelled,
                },
                "schema": config.to_json()["schema"],
                "config": config.to_json(),
                "versions": library_versions(),
                "metrics": {
                    "pca": {
                        "components": prep.n_components,
                        "input_dimensions": len(prep.transformed_names),
                        "explained_variance": round(float(prep.explained_variance_ratio_[:prep.n_components].sum()), 4),
                        "explained_variance_ratio": [round(float(r), 5) for r in prep.explained_variance_ratio_],
                        "whitened": bool(prep.whiten),
                        **({"whitening": whitening} if whitening else {}),
                        "whiten_shrinkage": round(float(prep.whiten_shrinkage_), 4),
                        "fit_tracks": len(catalog.features),  # what the shrinkage saw (added tracks do not refit)
                        # the same value on every track: standardized to 0, no weight in any distance
                        "constant_features": [n for n, v in zip(catalog.feature_names, np.ptp(catalog.features, axis=0),
                                                                strict=True) if v == 0],
                    },
                    "index": index_metrics,
                    "moods": moods.metrics_,
                    "genre": genre_metrics,
                    "similar": similar_metrics,
                },
                "transformed_features": list(prep.transformed_names),
                **({"audio": audio} if audio else {}),
                "timings_seconds": timings,
                # wall time to here: the genre stage's seconds overlap the moods', so they do not add up to it
                "build_seconds": round(time.perf_counter() - started, 2),
                "peak_memory_mib": _peak_rss_mib(),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            })
    return manifest


def _neighbour_table(catalog: Catalog, config: BuildConfig, index: faiss.Index, vectors: np.ndarray,
                     proba: np.ndarray | None, weight: float, say: Progress, *,
                     songs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each track's by-id ranking head at the bundle's defaults (engine/_table.py); with an exact index,
    also each track's whole block 1 (``block_rows``, for ``musicrec add``). ``songs``: the catalog's song keys,
    when the caller has them."""
    if songs is None:
        songs = catalog_songs(catalog, config.schema.name_column)
    block = config.similar.candidates
    candidates = Searched(index, vectors, first_fetch(len(vectors), block))
    agreement = GenreAgreement(catalog.genre_indptr, catalog.genre_codes, len(catalog.genre_names))
    scoring = Scoring(genre_weight=weight, agreement=agreement)
    table = first_blocks(vectors, songs, candidates, scoring, proba, block, config.index.neighbours,
                         progress=say, deeper=lambda v, fetch: nearest_candidates(index, v, fetch),
                         blocks=exact_index(index))
    return {**table, "genre_weight": np.asarray(weight, dtype=np.float64), "block": np.asarray(block, dtype=np.int64)}


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


