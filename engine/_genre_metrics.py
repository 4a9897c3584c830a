"""Scores of genre probabilities against known genres: top-k, macro-F1, baselines, calibration,
genre families and one vote per song. Pure numpy (and sklearn's F1); no model here.

Top-k is reported for k = 1, 2, 3 and 5 whatever the number of genres, but a report shows only the
k that inform: with few genres top-5 is near certain by chance (6 genres: random top-5 is 0.83), so
``informative_ks`` keeps top-1, 2 and 3 below the genre count and top-5 up to half of it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._families import MIN_COVERAGE, SPOTIFY_GENRE_FAMILIES, coarser_families, family_matrix, genre_key

TOP_KS = (1, 2, 3, 5)


def informative_ks(n_genres: int) -> tuple[int, ...]:
    """The top-k worth printing for ``n_genres`` genres: 1, 2 and 3 while below the genre count (a small
    genre set is read by its top-1/2/3, each beside its random baseline), and 5 up to half of them (top-5 of
    114 genres says something; top-5 of 6 says little: random 0.83)."""
    return tuple(k for k in TOP_KS if k == 1 or (k < n_genres and (k <= 3 or k <= n_genres // 2)))


def genre_metrics(proba: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Top-1/2/3/5 (any of the track's genres counts) and macro-F1 of the top-1 prediction.

    ``proba`` has shape (n, n_genres), ``truth`` is the multi-hot bool matrix of the same shape. For
    F1 a track's true label is the predicted genre when it is one of its genres, else its first (lowest
    code), so a multi-genre track is not penalised for naming its other genre.
    """
    order = np.argsort(-proba, axis=1, kind="stable")
    rows = np.arange(len(truth))
    top1 = order[:, 0]
    hit1 = truth[rows, top1]
    y_true = np.where(hit1, top1, truth.argmax(axis=1))
    labels = np.flatnonzero(truth.any(axis=0))
    out = {f"top{k}": float(truth[rows[:, None], order[:, :k]].any(axis=1).mean()) for k in TOP_KS}
    from sklearn.metrics import f1_score  # here: the engine's import does not load scikit-learn (_ubjson)

    out["macro_f1"] = float(f1_score(y_true, top1, labels=labels, average="macro", zero_division=0))
    return out


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the gap between stated confidence and observed accuracy,
    averaged over ``bins`` equal-width confidence bins weighted by how many predictions fall in each."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    gap = 0.0
    for b in np.unique(which):
        inside = which == b
        gap += inside.mean() * abs(float(confidence[inside].mean()) - float(correct[inside].mean()))
    return float(gap)


def calibration(proba: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ECE of the top-1 probability against "the top-1 genre is one of the track's genres"."""
    top1 = proba.argmax(axis=1)
    confidence = proba[np.arange(len(proba)), top1]
    correct = truth[np.arange(len(truth)), top1]
    return {"ece_top1": round(calibration_error(confidence, correct), 4),
            "mean_top1_probability": round(float(confidence.mean()), 4)}


def families_unavailable(genre_names: tuple[str, ...]) -> str:
    """Why family scores are not computed for these genres (the report prints it)."""
    if family_matrix(genre_names) is not None:  # covered, but one genre a family
        return (f"each of this catalog's {len(genre_names)} genres is a family of its own in the genre family table "
                "(engine/_families.py), so family scores would repeat the genre scores")
    known = {genre_key(g) for genres in SPOTIFY_GENRE_FAMILIES.values() for g in genres}
    covered = sum(genre_key(g) in known for g in genre_names)
    return (f"the genre family table (engine/_families.py: Spotify's genres in {len(SPOTIFY_GENRE_FAMILIES)} "
            f"families) covers {covered} of this catalog's {len(genre_names)} genres, under the "
            f"{MIN_COVERAGE:.0%} it needs; the genres themselves are the coarsest level here")


def family_metrics(proba: np.ndarray, truth: np.ndarray, genre_names: tuple[str, ...],
                   train_truth: np.ndarray) -> dict[str, Any]:
    """The same scores on coarse genre families (engine/_families.py): a family's probability is
    the sum of its genres'; correct = the family holds any of the track's genres."""
    found = coarser_families(genre_names)
    if found is None:
        return {"skipped": families_unavailable(genre_names)}
    m, names = found
    fam_proba = proba @ m
    fam_truth = (truth.astype(np.float32) @ m) > 0
    order = np.argsort(-fam_proba, axis=1)
    rows = np.arange(len(fam_truth))
    hit1 = fam_truth[rows, order[:, 0]]
    majority = int(np.argmax((train_truth.astype(np.float32) @ m > 0).sum(axis=0)))
    per_family = [{"family": f, "test_tracks": int(fam_truth[:, j].sum()),
                   "top1": round(float(hit1[fam_truth[:, j]].mean()), 4) if fam_truth[:, j].any() else None,
                   "genres": [g for g, row in zip(genre_names, m, strict=True) if row[j]]}
                  for j, f in enumerate(names)]
    return {
        "n_families": len(names),
        "top1": round(float(hit1.mean()), 4),
        **{f"top{k}": round(float(fam_truth[rows[:, None], order[:, :k]].any(axis=1).mean()), 4)
           for k in informative_ks(len(names)) if k > 1},
        "majority_top1": round(float(fam_truth[:, majority].mean()), 4),
        "random_top1": round(float(fam_truth.sum(axis=1).mean() / len(names)), 4),
        **calibration(fam_proba, fam_truth),
        "per_family": per_family,
    }


def baselines(train_counts: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Majority-class (most frequent training genres) and uniform-random expectations of top-k."""
    n_genres = truth.shape[1]
    majority = np.argsort(-train_counts, kind="stable")
    per_track = truth.sum(axis=1)
    out: dict[str, float] = {}
    for k in TOP_KS:
        kk = min(k, n_genres)
        out[f"majority_top{k}"] = float(truth[:, majority[:kk]].any(axis=1).mean())
        out[f"random_top{k}"] = float(np.mean([(math.comb(n_genres, kk) - math.comb(n_genres - m, kk))
                                               / math.comb(n_genres, kk) for m in per_track]))
    return out


def song_vote_metrics(proba: np.ndarray, truth: np.ndarray, songs: np.ndarray) -> dict[str, Any]:
    """Top-k with one vote per song: the mean of its segments' probabilities. Segments of a song are
    not independent tests, so this is the honest score of a segment model."""
    keys, inverse = np.unique(np.asarray(songs, dtype=str), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(keys)).astype(np.float64)
    song_proba = np.zeros((len(keys), proba.shape[1]))
    np.add.at(song_proba, inverse, proba)
    song_proba /= counts[:, None]
    song_truth = np.zeros((len(keys), truth.shape[1]), dtype=bool)
    np.logical_or.at(song_truth, inverse, truth)
    scores = genre_metrics(song_proba, song_truth)
    return {"songs": len(keys), "segments_per_song": round(float(counts.mean()), 2), **scores}
