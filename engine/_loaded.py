"""A bundle loaded into memory, verified first."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ._arrays import load_npz
from ._bundle import read_verified_manifest
from ._catalog import Catalog, IngestReport
from ._config import BuildConfig, IndexConfig
from ._errors import BundleIntegrityError, TrackNotFound, shown
from ._genre import GenreClassifier
from ._index import configure_search
from ._moods import MoodModel
from ._preprocess import Preprocessor


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
    # Precomputed nearest neighbours per track, rows and scores of shape (n_tracks, width); or None.
    neighbours: tuple[np.ndarray, np.ndarray] | None = None

    def row(self, track_id: str) -> int:
        try:
            return self.row_of[track_id]
        except KeyError:
            raise TrackNotFound(f"track {shown(track_id)} is not in the catalog") from None

    @property
    def version(self) -> str:
        """Identifies the bundle: creation time and the first characters of its manifest digest."""
        return f"{self.manifest['created_at']}/{self.manifest['files']['tracks.npz'][:12]}"


def load_bundle(path: str | os.PathLike[str], *, search_threads: int = 1) -> Bundle:
    """Verify (format version, file list, every sha256) and load a bundle.

    Raises :class:`BundleError` subclasses with a clear message when the bundle is incomplete,
    tampered with, or of another format version.
    """
    path = Path(path)
    manifest = read_verified_manifest(path)
    config = BuildConfig.from_mapping(manifest["config"])
    prep = Preprocessor.from_arrays(load_npz(path / "preprocess.npz"))
    index = faiss.read_index(str(path / "index.faiss"))
    configure_search(index, IndexConfig(**{**dataclasses.asdict(config.index)}))
    arrays = load_npz(path / "tracks.npz")
    vectors = arrays.pop("vectors")
    report = IngestReport(**{f.name: _report_field(manifest, f.name) for f in dataclasses.fields(IngestReport)})
    tracks = Catalog.from_arrays(arrays, report)
    if index.ntotal != len(tracks) or len(vectors) != len(tracks):
        raise BundleIntegrityError(f"{path}: index holds {index.ntotal} vectors but the track table "
                                   f"{len(tracks)}; the bundle is inconsistent")
    clusters = json.loads((path / "moods.json").read_text(encoding="utf-8"))
    moods = MoodModel.from_arrays(load_npz(path / "moods.npz"), clusters, config.moods,
                                  manifest["metrics"].get("moods"))
    classifier = None
    if "genre_model.ubj" in manifest["files"]:
        classifier = GenreClassifier.load(str(path / "genre_model.ubj"), genre_names=tracks.genre_names,
                                          feature_names=prep.transformed_names, threads=search_threads)
    neighbours = None
    if "neighbours.npz" in manifest["files"]:
        table = load_npz(path / "neighbours.npz")
        neighbours = (table["rows"], table["scores"])
        if neighbours[0].shape[0] != len(tracks):
            raise BundleIntegrityError(f"{path}: neighbour table has {neighbours[0].shape[0]} rows for "
                                       f"{len(tracks)} tracks; the bundle is inconsistent")
    return Bundle(path=path, manifest=manifest, config=config, preprocessor=prep, index=index, tracks=tracks,
                  vectors=vectors, moods=moods, classifier=classifier,
                  row_of={str(t): i for i, t in enumerate(tracks.ids)}, neighbours=neighbours)


def _report_field(manifest: dict[str, Any], name: str) -> Any:
    counts = manifest["counts"]
    aliases = {"id_duplicates_merged": "duplicates_merged"}
    value = counts.get(aliases.get(name, name), counts.get(name))
    return tuple(value) if isinstance(value, list) else value
