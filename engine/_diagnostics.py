"""What the HTML report draws of the genre evaluation, stored at build time in ``evaluation.npz``
(the manifest keeps the summary scores; these arrays would bloat it and every ServerInfo answer).

All of it comes from the evaluation model's predictions for the held-out artists' tracks (the
honest protocol of engine/_genre.py), for the genres and, when the family table covers the
catalog, for the genre families:

- ``<level>_confusion`` (k, k) int32: rows are the true label, columns the top-1 prediction. A
  track has several genres, so its true label is the predicted one when that is among its genres
  (a hit) and otherwise its first genre, the convention of the macro-F1 in ``genre_metrics``.
- ``<level>_tracks`` and ``<level>_hits`` (k,): held-out tracks carrying each label, and how many
  of them had a correct top-1 (any of their labels, as top-1 is scored).
- ``<level>_bin_count``, ``_bin_confidence``, ``_bin_correct`` (BINS,): per equal-width bin of the
  top-1 probability, the tracks, the sum of their top-1 probability and their correct top-1s: the
  reliability diagram, and the same bins as the expected calibration error of the manifest.
- ``<level>_names``: the labels (packed strings).
Bundles built before this file existed have none; the report then says so and draws the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import load_npz, pack_strings, unpack_strings
from ._families import coarser_families

FILE = "evaluation.npz"
BINS = 15  # as calibration_error's default, so the diagram and the ECE agree
LEVELS = ("genre", "family")


def genre_diagnostics(proba: np.ndarray, truth: np.ndarray, genre_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays of ``evaluation.npz`` from held-out probabilities (n, n_genres) and multi-hot truth."""
    out = _level("genre", proba, truth.astype(bool), genre_names)
    found = coarser_families(tuple(genre_names))
    if found is not None:
        m, names = found
        out.update(_level("family", proba @ m, (truth.astype(np.float32) @ m) > 0, names))
    return out


def _level(prefix: str, proba: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    rows = np.arange(len(proba))
    top1 = np.argmax(proba, axis=1)
    hit = truth[rows, top1]
    true_label = np.where(hit, top1, truth.argmax(axis=1))
    k = proba.shape[1]
    confusion = np.zeros((k, k), dtype=np.int32)
    np.add.at(confusion, (true_label, top1), 1)
    confidence = proba[rows, top1]
    edges = np.linspace(0.0, 1.0, BINS + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, BINS - 1)
    blob, offsets = pack_strings(names)
    return {
        f"{prefix}_names": blob, f"{prefix}_names_offsets": offsets,
        f"{prefix}_confusion": confusion,
        f"{prefix}_tracks": truth.sum(axis=0).astype(np.int32),
        f"{prefix}_hits": (truth & hit[:, None]).sum(axis=0).astype(np.int32),
        f"{prefix}_bin_count": np.bincount(which, minlength=BINS).astype(np.int32),
        f"{prefix}_bin_confidence": np.bincount(which, weights=confidence, minlength=BINS),
        f"{prefix}_bin_correct": np.bincount(which, weights=hit.astype(np.float64), minlength=BINS),
    }


def load_diagnostics(bundle_dir: Path) -> dict[str, dict[str, Any]]:
    """Per level present (``genre``, ``family``): names, confusion, tracks, hits and the bins; {} for
    a bundle without the file. The bundle should have been verified (load_bundle or
    read_verified_manifest) first."""
    path = Path(bundle_dir) / FILE
    if not path.is_file():
        return {}
    arrays = load_npz(path)
    out: dict[str, dict[str, Any]] = {}
    for level in LEVELS:
        if f"{level}_confusion" not in arrays:
            continue
        names = [str(n) for n in unpack_strings(arrays[f"{level}_names"], arrays[f"{level}_names_offsets"])]
        entry = {key.removeprefix(f"{level}_"): value for key, value in arrays.items()
                 if key.startswith(f"{level}_") and not key.startswith(f"{level}_names")}
        out[level] = {"names": names, **entry}
    return out
