"""A bundle loaded into memory, verified first."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ._arrays import load_npz
from ._bundle import read_verified_manifest
from ._catalog import Catalog, IngestReport
from ._config import BuildConfig
from ._crossfit import OOF_FILE
from ._errors import BundleError, BundleIntegrityError, TrackNotFound, shown
from ._genre import GenreClassifier
from ._index import configure_search
from ._linear import LINEAR_FILE, LinearPart
from ._moodmap import FILE as MOOD_MAP_FILE
from ._moodmap import MoodMap, load_mood_map
from ._moods import MoodModel
from ._oldconfig import without_retired_keys
from ._preprocess import Preprocessor
from ._table import NeighbourTable


@dataclasses.dataclass(eq=False)
class Bundle:
    """Everything a server needs, loaded from a verified bundle directory.

    ``tracks`` is the track table (row ``i`` of the index is ``tracks.ids[i]``); ``vectors`` are
    the L2-normalized PCA vectors of shape (n_tracks, n_components).
    """

    path: Path
    manifest: dict[str, Any]
    config: BuildConfig
    preprocessor: Preprocessor
    index: faiss.Index
    tracks: Catalog
    vectors: np.ndarray
    moods: MoodModel
    classifier: GenreClassifier | None
    row_of: dict[str, int]
    # An approximate index for queries seeded by new tracks (IndexConfig.new_track_index); or None.
    new_track_index: faiss.Index | None = None
    # Per track, the head of its by-id ranking at the bundle's defaults (engine/_ranking.py); or None.
    neighbours: NeighbourTable | None = None
    # The 2-D mood map drawn by the console and the HTML report (engine/_moodmap.py); None in bundles
    # built before maps were stored.
    mood_map: MoodMap | None = None
    # Per track, the genre probabilities by-id queries re-rank with: out of fold, from a model that did not
    # see the track (engine/_crossfit.py), float32 of shape (n_tracks, n_genres); None without a classifier.
    genre_proba: np.ndarray | None = None

    def row(self, track_id: str) -> int:
        try:
            return self.row_of[track_id]
        except KeyError:
            raise TrackNotFound(f"track {shown(track_id)} is not in the catalog") from None

    @property
    def version(self) -> str:
        """Identifies the bundle: creation time and the first characters of its manifest digest."""
        return f"{self.manifest['created_at']}/{self.manifest['files']['tracks.npz'][:12]}"


def load_bundle(path: str | os.PathLike[str], *, search_threads: int = 1, share_pages: bool = False) -> Bundle:
    """Verify (format version, file list, every sha256) and load a bundle.

    Raises :class:`BundleError` subclasses with a clear message when the bundle is incomplete,
    tampered with, of another format version, or internally inconsistent, including a crafted
    bundle whose checksums match files that are not what they claim to be.

    ``share_pages``: a flat index is memory-mapped from the bundle (``IO_FLAG_MMAP_IFC``) and the
    vectors are a view of its pages (the same float32 rows, checked equal), so processes serving
    one bundle (``musicrec serve --processes N``) share one copy in the page cache.

    A link (``bundles/current``) is resolved once, first: every file is read from the bundle it named then, and
    ``Bundle.path`` is that bundle's own directory, so a link repointed meanwhile cannot mix two bundles.
    """
    path = Path(os.path.realpath(path))
    manifest = read_verified_manifest(path)
    with _reading(path, "manifest.json"):
        config = BuildConfig.from_mapping(without_retired_keys(manifest["config"]))
        report = IngestReport(**{f.name: _report_field(manifest, f) for f in dataclasses.fields(IngestReport)})
    with _reading(path, "preprocess.npz"):
        prep = Preprocessor.from_arrays(load_npz(path / "preprocess.npz"))
    with _reading(path, "index.faiss"):
        mmap = share_pages and config.index.kind == "flat" and hasattr(faiss, "IO_FLAG_MMAP_IFC")
        index = faiss.read_index(str(path / "index.faiss"), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        configure_search(index, config.index)
    with _reading(path, "tracks.npz"):
        arrays = load_npz(path / "tracks.npz")
        vectors = arrays.pop("vectors")
        tracks = Catalog.from_arrays(arrays, report)
        if mmap and index.ntotal == len(vectors) and index.d == vectors.shape[1]:
            mapped = faiss.rev_swig_ptr(faiss.downcast_index(index).get_xb(), index.ntotal * index.d)
            mapped = mapped.reshape(index.ntotal, index.d)
            if np.array_equal(mapped, vectors):  # else the consistency check below refuses the bundle
                vectors = mapped
    with _reading(path, "moods.json"):
        clusters = json.loads((path / "moods.json").read_text(encoding="utf-8"))
    with _reading(path, "moods.npz"):
        moods = MoodModel.from_arrays(load_npz(path / "moods.npz"), clusters, config.moods,
                                      manifest["metrics"].get("moods"))
    classifier = None
    if "genre_model.ubj" in manifest["files"]:
        with _reading(path, "genre_model.ubj"):
            classifier = GenreClassifier.load(str(path / "genre_model.ubj"), genre_names=tracks.genre_names,
                                              feature_names=prep.transformed_names, threads=search_threads)
    if LINEAR_FILE in manifest["files"]:
        with _reading(path, LINEAR_FILE):
            if classifier is None or manifest["format_version"] < 5:
                raise BundleIntegrityError(f"{path}: the bundle is inconsistent: {LINEAR_FILE} without a genre model, "
                                           f"or in a bundle of format {manifest['format_version']} (it came with 5)")
            try:
                classifier.linear_ = LinearPart.from_arrays(load_npz(path / LINEAR_FILE), len(tracks.genre_names),
                                                            len(prep.transformed_names))
            except ValueError as exc:
                raise BundleIntegrityError(f"{path}: the bundle is inconsistent: {LINEAR_FILE}: {exc}") from None
    new_track_index = None
    if "index_new_tracks.faiss" in manifest["files"]:
        with _reading(path, "index_new_tracks.faiss"):
            new_track_index = faiss.read_index(str(path / "index_new_tracks.faiss"))
            # IVF since 167313e; bundles of format 3 built before it hold an HNSW index, searched
            # wide enough for the first fetch
            if faiss.try_extract_index_ivf(new_track_index) is not None:
                configure_search(new_track_index, dataclasses.replace(config.index, kind="ivf"))
            else:
                configure_search(new_track_index, dataclasses.replace(
                    config.index, kind="hnsw", hnsw_ef_search=max(config.index.hnsw_ef_search, 256)))
            if new_track_index.ntotal != len(tracks) or new_track_index.d != prep.n_components:
                raise BundleIntegrityError(f"{path}: the bundle is inconsistent: the new-track index holds "
                                           f"{new_track_index.ntotal} vectors of {new_track_index.d} dims")
    neighbours = None
    if "neighbours.npz" in manifest["files"]:
        with _reading(path, "neighbours.npz"):
            table = load_npz(path / "neighbours.npz")
            neighbours = NeighbourTable(rows=table["rows"], scores=table["scores"],
                                        consumed=table["consumed"], lengths=table["lengths"],
                                        genre_weight=float(table["genre_weight"]), block=int(table["block"]))
    mood_map = None
    if MOOD_MAP_FILE in manifest["files"]:
        with _reading(path, MOOD_MAP_FILE):
            mood_map = load_mood_map(path / MOOD_MAP_FILE, len(tracks), len(moods.space.columns))
    genre_proba = None
    if OOF_FILE in manifest["files"]:
        with _reading(path, OOF_FILE):
            genre_proba = load_npz(path / OOF_FILE)["proba"].astype(np.float32)
            expected = (len(tracks), len(tracks.genre_names))
            problem = None
            if classifier is None:
                problem = f"{OOF_FILE} without a genre model"
            elif genre_proba.shape != expected:
                problem = f"{OOF_FILE} holds probabilities of shape {genre_proba.shape}, expected {expected}"
            elif bad := int((~np.isfinite(genre_proba)).sum()):
                problem = f"{OOF_FILE} holds {bad:,} non-finite probabilities (of {genre_proba.size:,})"
            if problem:
                raise BundleIntegrityError(f"{path}: the bundle is inconsistent: {problem}")
    elif classifier is not None:
        raise BundleIntegrityError(f"{path}: the bundle is inconsistent: a genre model without {OOF_FILE}")
    row_of = {str(t): i for i, t in enumerate(tracks.ids)}
    _check_consistent(path, prep, index, tracks, vectors, moods, classifier, neighbours, row_of)
    return Bundle(path=path, manifest=manifest, config=config, preprocessor=prep, index=index, tracks=tracks,
                  vectors=vectors, moods=moods, classifier=classifier, row_of=row_of, neighbours=neighbours,
                  new_track_index=new_track_index, mood_map=mood_map, genre_proba=genre_proba)


@contextlib.contextmanager
def _reading(path: Path, name: str) -> Iterator[None]:
    """Any failure to parse a verified file means the bundle is not what it claims to be."""
    try:
        yield
    except BundleError:
        raise
    except Exception as exc:  # faiss, xgboost, numpy, json each raise their own types
        raise BundleIntegrityError(f"{path / name}: cannot be read ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None


def _check_consistent(path: Path, prep: Preprocessor, index: faiss.Index, tracks: Catalog, vectors: np.ndarray,
                      moods: MoodModel, classifier: GenreClassifier | None,
                      table: NeighbourTable | None, row_of: dict[str, int]) -> None:
    """Shapes and ranges that queries rely on; a crafted bundle fails here, not in a request."""
    n, dim = len(tracks), prep.n_components
    problems = []
    if vectors.ndim != 2 or vectors.shape != (n, dim):
        problems.append(f"vectors have shape {vectors.shape}, expected ({n}, {dim})")
    if index.ntotal != n or index.d != dim:
        problems.append(f"index holds {index.ntotal} vectors of {index.d} dims, expected {n} of {dim}")
    if tracks.features.shape != (n, len(prep.feature_names)):
        problems.append(f"track features have shape {tracks.features.shape}")
    if not np.isfinite(vectors).all():
        problems.append("vectors hold values that are not finite")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:  # cosine is the inner product of unit vectors
        problems.append("the index does not rank by inner product")
    elif isinstance(index, faiss.IndexFlat) and index.ntotal == n and index.d == dim and \
            not np.array_equal(faiss.rev_swig_ptr(index.get_xb(), n * dim).reshape(n, dim), vectors):
        problems.append("the index holds other vectors than the track table")  # a flat index is its vectors
    prep_arrays = prep.to_arrays().values()
    if not all(np.isfinite(a).all() for a in prep_arrays if a.dtype.kind == "f"):
        problems.append("the preprocessing holds values that are not finite")
    ptr, codes = tracks.genre_indptr, tracks.genre_codes
    if len(ptr) != n + 1 or (n and (ptr[0] != 0 or ptr[-1] != len(codes) or (np.diff(ptr) < 0).any())) or \
            (len(codes) and (codes.min() < 0 or codes.max() >= len(tracks.genre_names))):
        problems.append("genre table does not match the tracks")
    if len(row_of) != n or "" in row_of:  # one entry per id: fewer when an id repeats
        problems.append("track ids are not one non-empty id per track")
    if len(moods.labels_) != n or len(moods.strength_) != n or len(moods.is_core_) != n:
        problems.append("mood labels do not match the tracks")
    elif n and (moods.labels_.min() < 0 or moods.labels_.max() >= len(moods.clusters_)):
        problems.append("mood labels point outside the mood list")
    if moods.exemplars_.ndim != 2 or moods.exemplars_.shape[1] != len(moods.space.columns) or \
            max(moods.space.columns, default=0) >= len(prep.transformed_names):
        problems.append("mood exemplars do not match the mood space")
    if classifier is not None and classifier.n_features != len(prep.transformed_names):
        problems.append("genre model expects another number of features")
    if table is not None:
        if table.rows.shape[0] != n or table.rows.shape != table.scores.shape or table.consumed.shape != (n,) \
                or table.lengths.shape != (n,) or (table.rows.size and table.rows.max() >= n) \
                or (n and (table.consumed.max() > n or table.lengths.max() > n)) or table.block < 1:
            problems.append("neighbour table does not match the tracks")
        elif n:
            listed = np.arange(table.rows.shape[1]) < np.minimum(table.lengths, table.rows.shape[1])[:, None]
            if (table.lengths < 0).any() or (table.rows[listed] < 0).any() or \
                    (listed & (table.rows == np.arange(n)[:, None])).any():
                problems.append("neighbour table lists a track as its own neighbour, or a row that is no track")
        if not 0.0 <= table.genre_weight <= 1.0 or (table.genre_weight > 0 and classifier is None):
            problems.append(f"neighbour table genre weight {table.genre_weight} needs 0..1 and a genre classifier")
    if problems:
        raise BundleIntegrityError(f"{path}: the bundle is inconsistent: {'; '.join(problems)}")


def _report_field(manifest: dict[str, Any], field: dataclasses.Field[Any]) -> Any:
    counts = manifest["counts"]
    name = {"id_duplicates_merged": "duplicates_merged"}.get(field.name, field.name)
    if name not in counts and field.default_factory is not dataclasses.MISSING:  # a manifest from before it was
        return field.default_factory()  # counted (flag_blanks, blank_cells)
    if name not in counts and field.default is not dataclasses.MISSING:  # (unlabelled)
        return field.default
    value = counts.get(name)
    return tuple(value) if isinstance(value, list) else value
