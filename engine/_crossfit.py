"""Cross-fitted genre probabilities: every catalog track scored by a model that never saw it.

By-id "more like this" re-ranks candidates by the seed's genre probabilities (engine/_rerank.py).
Read from the shipped model, trained on every catalog track, those probabilities know the seed's
own genre: on a labelled 1,000-clip catalog by-id label-precision@10 was 0.993 against 0.731 for
the same clips held out. So the build cross-fits (``cross_fit``):

- the labelled tracks are cut into k folds by a key no fold may split: the primary artist, or a
  recording's segments when there is no artist, or else the track itself (``split_name`` says which);
- a model per fold is trained on the other folds and scores its own fold: these out-of-fold (OOF)
  probabilities are what the bundle stores (``genre_oof.npz``) and what by-id queries and the
  neighbour table use for catalog seeds; tracks without a label were seen by no model's labels and
  take the shipped model's probabilities;
- the same OOF probabilities are the evaluation: k-fold cross-validation grouped as above, so the
  separate evaluation model of earlier builds is gone and its cost pays for the folds;
- the shipped model (for new tracks) is trained on every labelled track for the rounds the folds chose.

Rounds: each fold's training part gives up a grouped share (``VALID_SHARE``) for early stopping. On a
large catalog only fold 0 stops early and the other folds reuse its rounds (build budget: the Spotify
build's genre stage was ~250 s of ~370 s with one evaluation model and the shipped model); on a small
one every fold stops early and the shipped model takes the median.

Capacity (``choose``): below ``GenreConfig.small_catalog`` labelled tracks, with ``tune`` on, a short
list of candidates (``CANDIDATES``: per-class trees at lower learning rates and several depths beside
the large-catalog default) is cross-validated on the same folds and the best top-1 (ties: log loss)
is kept; its OOF probabilities are the stored ones. The reported score of the chosen candidate is
then mildly optimistic (it won on those folds); benchmarks/small_catalog.py measures the whole
procedure nested inside an outer cross-validation against a random forest.

Blend (``_blended``, with ``GenreConfig.blend``): after the capacity, the same folds fit a logistic regression
each (engine/_linear.py) and the chosen trees' out-of-fold probabilities are blended with its margins at each of
``BLEND_WEIGHTS``; the best top-1 (ties: log loss) is kept, weight 0 being the trees alone, and the shipped model
gets a regression trained on every labelled track at that weight.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import save_npz
from ._background import Background
from ._catalog import Catalog
from ._config import GenreConfig
from ._genre import GenreClassifier, grouped_split, split_groups, subset_labels
from ._genre_metrics import baselines, calibration, family_metrics, genre_metrics, song_vote_metrics
from ._linear import BLEND_WEIGHTS, LINEAR_C, LINEAR_FILE, blend_proba, fit_linear, softmax
from ._progress import Progress

VALID_SHARE = 0.15  # of a fold's training groups, held back for early stopping
LARGE_FOLDS = 2  # large catalogs: the fewest folds that score every track (build budget)
SMALL_FOLDS = 5  # small catalogs up to SMALL_FOLDS_UP_TO labelled tracks, then MID_FOLDS
MID_FOLDS = 3
SMALL_FOLDS_UP_TO = 5_000
PREDICT_BATCH = 100_000  # rows per predict_proba call: bounds the temporary arrays on million-track catalogs
PER_CLASS_MAX_GENRES = 30  # one tree per class per round costs n_genres trees: not for 114 genres


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A classifier capacity tried on small catalogs: GenreConfig fields to override."""

    name: str
    overrides: dict[str, Any]
    per_class: bool = False  # one tree per class per round: only for catalogs of few genres


_SLOW = {"subsample": 0.8, "colsample_bytree": 0.5, "early_stopping_rounds": 30, "max_rounds": 800}
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("default (vector leaves, depth 4, rate 0.3)", {}),
    Candidate("per-class depth 3, rate 0.1", {"multi_strategy": "one_output_per_tree", "max_depth": 3,
                                                "learning_rate": 0.1, **_SLOW}, per_class=True),
    Candidate("per-class depth 5, rate 0.1", {"multi_strategy": "one_output_per_tree", "max_depth": 5,
                                                "learning_rate": 0.1, **_SLOW}, per_class=True),
    Candidate("per-class depth 2, rate 0.1, colsample 0.3",
              {"multi_strategy": "one_output_per_tree", "max_depth": 2, "learning_rate": 0.1, **_SLOW,
               "colsample_bytree": 0.3}, per_class=True),
    Candidate("vector leaves depth 6, rate 0.1", {"max_depth": 6, "learning_rate": 0.1, **_SLOW}),
)


def split_name(groups: np.ndarray) -> str:
    """How ``split_groups`` keys were formed, as the report says it."""
    keys = [str(g) for g in groups]
    tracks = sum(k.startswith("\0track:") for k in keys)
    songs = sum(k.startswith("\0song:") for k in keys)
    artists = len(keys) - tracks - songs
    if artists == len(keys):
        return "by primary artist"
    if songs == len(keys) or (songs and not artists):
        return "by song (a recording's segments together): no artist column" + ("" if not tracks else " or value")
    if tracks == len(keys):
        return "by track: no artist column"
    return (f"by primary artist ({tracks + songs:,} of {len(keys):,} tracks without one: "
            f"{'by song' if songs else 'by track'})")


def assign_folds(groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold 0..n_folds-1 of each row; rows sharing a group share a fold. Groups go, largest first (ties in
    a seeded random order), to the fold with the fewest rows, so folds are balanced and deterministic."""
    keys, inverse, counts = np.unique(np.asarray(groups).astype(str), return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    order = order[np.argsort(-counts[order], kind="stable")]
    sizes = np.zeros(n_folds, dtype=np.int64)
    fold_of_key = np.empty(len(keys), dtype=np.int8)
    for key in order:
        f = int(np.argmin(sizes))
        fold_of_key[key] = f
        sizes[f] += counts[key]
    return fold_of_key[inverse]


@dataclasses.dataclass(frozen=True)
class FoldRun:
    """One candidate's cross-validation: OOF probabilities of the labelled rows and what it cost."""

    proba: np.ndarray  # (n_labelled, n_genres) float32
    rounds: list[int]  # per fold
    seconds: float
    scores: dict[str, float]
    logloss: float


def _fold_models(x: np.ndarray, ptr: np.ndarray, codes: np.ndarray, labelled: np.ndarray, groups: np.ndarray,
                 folds: np.ndarray, config: GenreConfig, names: tuple[tuple[str, ...], tuple[str, ...]], *,
                 every_fold_stops: bool, seed: int, say: Progress,
                 after_first: Callable[[int], None] | None = None) -> FoldRun:
    """Each fold's model, trained on the other folds, scoring its own; ``after_first`` is told the first
    fold's rounds as soon as it has them (the shipped model of a large catalog trains for as many)."""
    genre_names, feature_names = names
    n_folds = int(folds.max()) + 1
    proba = np.zeros((len(labelled), len(genre_names)), dtype=np.float32)
    rounds: list[int] = []
    t0 = time.perf_counter()
    for f in range(n_folds):
        train_pos, test_pos = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        model = GenreClassifier(genre_names=genre_names, feature_names=feature_names)
        if f == 0 or every_fold_stops:
            fit_p, valid_p = grouped_split(groups[train_pos], VALID_SHARE, seed + 1 + f)
            fit_rows, valid_rows = labelled[train_pos[fit_p]], labelled[train_pos[valid_p]]
            say(f"fold {f + 1}/{n_folds}: {len(fit_rows):,} train / {len(valid_rows):,} early-stopping / "
                f"{len(test_pos):,} scored tracks")
            model.fit(x[fit_rows], *subset_labels(ptr, codes, fit_rows), config, rounds=config.max_rounds,
                      eval_set=(x[valid_rows], *subset_labels(ptr, codes, valid_rows)), seed=seed, progress=say)
        else:
            fit_rows = labelled[train_pos]
            say(f"fold {f + 1}/{n_folds}: {len(fit_rows):,} train / {len(test_pos):,} scored tracks, "
                f"{rounds[0]} rounds (fold 1's)")
            model.fit(x[fit_rows], *subset_labels(ptr, codes, fit_rows), config, rounds=rounds[0], seed=seed,
                      progress=say)
        rounds.append(model.rounds_)
        if f == 0 and after_first is not None:
            after_first(model.rounds_)
        proba[test_pos] = model.predict_proba(x[labelled[test_pos]])
    return FoldRun(proba=proba, rounds=rounds, seconds=time.perf_counter() - t0, scores={}, logloss=float("nan"))


def _scored(run: FoldRun, truth: np.ndarray) -> FoldRun:
    p = np.clip(run.proba, 1e-7, 1.0)
    # multi-genre tracks: the log of the probability given to any of their genres
    logloss = float(-np.log(np.minimum((p * truth).sum(axis=1), 1.0)).mean())
    return dataclasses.replace(run, scores=genre_metrics(run.proba, truth), logloss=logloss)


def _blended(run: FoldRun, x: np.ndarray, ptr: np.ndarray, codes: np.ndarray, labelled: np.ndarray,
             folds: np.ndarray, truth: np.ndarray, n_genres: int, *, seed: int,
             say: Progress) -> tuple[FoldRun, dict[str, Any]]:
    """The chosen trees' folds, each beside a logistic regression fitted on the same training part
    (engine/_linear.py), blended at each of ``BLEND_WEIGHTS`` and kept where the folds score it higher
    (ties: log loss; weight 0 is the trees alone). Returns the kept run and what the report says of it."""
    t0 = time.perf_counter()
    margin = np.zeros((len(labelled), n_genres))
    for f in range(int(folds.max()) + 1):
        train_pos, test_pos = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        rows = labelled[train_pos]
        part = fit_linear(x[rows], *subset_labels(ptr, codes, rows), n_genres, seed=seed)
        margin[test_pos] = part.margin(x[labelled[test_pos]])
    options = [(0.0, run)] + [(w, _scored(dataclasses.replace(run, proba=blend_proba(run.proba, margin, w)), truth))
                              for w in BLEND_WEIGHTS]
    linear_alone = _scored(dataclasses.replace(run, proba=softmax(margin).astype(np.float32)), truth)
    weight, kept = min(options, key=lambda o: (-round(o[1].scores["top1"], 4), o[1].logloss))
    seconds = time.perf_counter() - t0
    say(f"logistic regression beside the trees: top-1 {run.scores['top1']:.3f} alone, "
        + ", ".join(f"{r.scores['top1']:.3f} at weight {w}" for w, r in options[1:])
        + f"; kept weight {weight}")
    return kept, {
        "weight": weight, "C": LINEAR_C, "seconds": round(seconds, 2),
        "why": "a multinomial logistic regression on the standardized inputs, fitted on each fold's training part, "
               "blended into the chosen trees' margin at each weight; the best top-1 on these folds kept (ties: "
               "log loss), weight 0 being the trees alone",
        "candidates": [{"weight": w, "top1": round(r.scores["top1"], 4), "logloss": round(r.logloss, 4)}
                       for w, r in options],
        "linear_alone": {"top1": round(linear_alone.scores["top1"], 4), "logloss": round(linear_alone.logloss, 4)},
    }


def n_folds_for(config: GenreConfig, n_labelled: int, tuning: bool) -> int:
    if config.folds:
        return config.folds
    if not tuning:
        return LARGE_FOLDS
    return SMALL_FOLDS if n_labelled <= SMALL_FOLDS_UP_TO else MID_FOLDS


def candidates_for(config: GenreConfig, n_genres: int) -> list[tuple[str, GenreConfig]]:
    """The configurations a small catalog's build cross-validates (the first is the configured one)."""
    out = []
    for c in CANDIDATES:
        if c.per_class and n_genres > PER_CLASS_MAX_GENRES:
            continue
        out.append((c.name, dataclasses.replace(config, **c.overrides)))
    return out


@dataclasses.dataclass(frozen=True)
class CrossFit:
    """What the genre stage hands the rest of the build.

    ``proba`` (n_tracks, n_genres) float32: per catalog track, the probabilities by-id queries use:
    a labelled track's from the fold model that did not see it, an unlabelled one's from the shipped
    model. ``fold`` (n_tracks,) int8: the track's fold, -1 when the shipped model scored it (no label, or
    outside ``GenreConfig.fit_sample``). ``scored``: the rows of the labelled tracks the folds scored
    (every one of them is an evaluation track).
    """

    proba: np.ndarray
    fold: np.ndarray
    scored: np.ndarray
    metrics: dict[str, Any]
    config: GenreConfig


def cross_fit(catalog: Catalog, x: np.ndarray, feature_names: tuple[str, ...], config: GenreConfig, *,
              seed: int = 0, progress: Progress | None = None,
              songs: np.ndarray | None = None) -> tuple[GenreClassifier, CrossFit]:
    """Cross-fit (and on small catalogs choose the capacity), then train the shipped model.

    ``x`` holds the classifier inputs of every catalog track, shape (n_tracks, n_features). ``songs``
    (one recording key per row, for catalogs of segments) keeps a song's segments in one fold and adds
    ``per_song`` to the metrics.
    """
    say = progress or (lambda _msg: None)
    ptr, codes = catalog.genre_indptr, catalog.genre_codes
    labelled = np.flatnonzero(np.diff(ptr) > 0)
    n_labelled = len(labelled)
    if config.fit_sample and n_labelled > config.fit_sample:
        # Training grows with the tracks (three models here); past the sample its accuracy barely moves.
        # A labelled track outside the sample was seen by no model, so the shipped model's probabilities
        # are out-of-sample for it (fold -1, as for unlabelled tracks); the evaluation is the sample's.
        labelled = np.sort(np.random.default_rng(seed).choice(labelled, size=config.fit_sample, replace=False))
        say(f"genre: fitting on a random sample of {len(labelled):,} of {n_labelled:,} labelled tracks "
            f"(genre.fit_sample)")
    groups = split_groups(catalog, songs)[labelled]
    split = split_name(groups)
    truth = catalog.genre_matrix()[labelled]
    small = len(labelled) < config.small_catalog
    tuning = config.tune and small
    n_folds = n_folds_for(config, len(labelled), tuning)
    n_folds = max(2, min(n_folds, len(set(groups.tolist()))))
    folds = assign_folds(groups, n_folds, seed)
    names = (catalog.genre_names, feature_names)
    tried = candidates_for(config, len(catalog.genre_names)) if tuning else [("configured", config)]
    say(f"genre: {n_folds}-fold cross-validation split {split}, {len(labelled):,} labelled tracks"
        + (f"; {len(tried)} capacities tried (small catalog)" if tuning else ""))

    def train_shipped(cand: GenreConfig, rounds: int, progress: Progress) -> GenreClassifier:
        say(f"shipped model: all {len(labelled):,} labelled tracks, {rounds} rounds")
        return GenreClassifier(genre_names=catalog.genre_names, feature_names=feature_names).fit(
            x[labelled], *subset_labels(ptr, codes, labelled), cand, rounds=rounds, seed=seed, progress=progress)

    # A large catalog's shipped model needs only the first fold's rounds: it trains beside the other folds
    # (XGBoost keeps about 1.2 of 2 cores busy; engine/_background.py), the same model bit for bit. A large
    # catalog is never tuned, so its one candidate is ``config``.
    beside: Background[GenreClassifier] | None = None

    def start_shipped(rounds: int) -> None:
        nonlocal beside
        beside = Background("shipped model", lambda progress: train_shipped(config, rounds, progress), say)

    runs = []
    try:
        for name, cand in tried:
            if tuning:
                say(f"candidate: {name}")
            runs.append(_scored(_fold_models(x, ptr, codes, labelled, groups, folds, cand, names,
                                             every_fold_stops=small, seed=seed, say=say,
                                             after_first=None if small else start_shipped), truth))
    except BaseException as exc:  # a fold failed (or the build stopped this stage): stop the shipped model too
        if beside is not None:
            beside.cancel(wait=not isinstance(exc, KeyboardInterrupt))
        raise
    best = min(range(len(runs)), key=lambda i: (-round(runs[i].scores["top1"], 4), runs[i].logloss))
    chosen_name, chosen = tried[best]
    run = runs[best]
    blend: dict[str, Any] | None = None
    if tuning and config.blend:
        run, blend = _blended(run, x, ptr, codes, labelled, folds, truth, len(catalog.genre_names),
                                             seed=seed, say=say)
    if beside is not None:
        shipped = beside.result()
        final_seconds = beside.seconds
    else:  # a small catalog: the median of every fold's rounds
        t0 = time.perf_counter()
        shipped = train_shipped(chosen, int(np.median(run.rounds)), say)
        if blend is not None and blend["weight"] > 0:
            say(f"shipped model: a logistic regression beside the trees, weight {blend['weight']}")
            shipped.linear_ = fit_linear(x[labelled], *subset_labels(ptr, codes, labelled), len(catalog.genre_names),
                                         seed=seed).with_weight(blend["weight"])
        final_seconds = time.perf_counter() - t0
    proba = np.zeros((len(catalog), len(catalog.genre_names)), dtype=np.float32)
    proba[labelled] = run.proba
    unseen = np.setdiff1d(np.arange(len(catalog)), labelled, assume_unique=True)  # unlabelled or not sampled
    for start in range(0, len(unseen), PREDICT_BATCH):
        rows = unseen[start:start + PREDICT_BATCH]
        proba[rows] = shipped.predict_proba(x[rows])
    fold = np.full(len(catalog), -1, dtype=np.int8)
    fold[labelled] = folds
    metrics: dict[str, Any] = {
        "protocol": f"{n_folds}-fold cross-validation, folds grouped {split}: every labelled track scored by the "
                    "fold model that did not see it (the same out-of-fold probabilities drive by-id re-ranking); "
                    f"early stopping on {VALID_SHARE:.0%} of each training part's groups; stateless transforms "
                    "only; correct = any of the track's genres",
        "evaluation": "k-fold", "folds": n_folds, "split": split,
        "test_tracks": len(labelled), "n_genres": len(catalog.genre_names),
        "fit_sample": None if len(labelled) == n_labelled else {
            "tracks": len(labelled), "of_labelled": n_labelled,
            "why": f"genre.fit_sample = {config.fit_sample:,}: the folds and the shipped model train on a random "
                   "sample; the other labelled tracks take the shipped model's probabilities (it never saw them)"},
        "rounds": shipped.rounds_, "fold_rounds": run.rounds, "multi_strategy": chosen.multi_strategy,
        "params": {k: getattr(chosen, k) for k in ("multi_strategy", "max_depth", "learning_rate", "subsample",
                                                   "colsample_bytree", "colsample_bynode", "num_parallel_tree",
                                                   "min_child_weight", "max_bin")},
        **run.scores,
        "logloss": round(run.logloss, 4),
        **baselines(truth.sum(axis=0), truth),
        **calibration(run.proba, truth),
        "families": family_metrics(run.proba, truth, catalog.genre_names, truth),
        "cv_seconds": round(sum(r.seconds for r in runs) + (blend["seconds"] if blend else 0.0), 2),
        "final_train_seconds": round(final_seconds, 2),
        "shipped_beside_folds": beside is not None,  # then its seconds overlap the folds' (cv_seconds)
    }
    if tuning:
        metrics["tuning"] = {
            "chosen": chosen_name,
            "why": f"{len(labelled):,} labelled tracks, under genre.small_catalog = {config.small_catalog:,}: "
                   "capacities cross-validated on the folds above, best top-1 kept (ties: log loss); its score "
                   "won on these folds, so it is mildly optimistic",
            "candidates": [{"name": n, "top1": round(r.scores["top1"], 4), "logloss": round(r.logloss, 4),
                            "fold_rounds": r.rounds, "seconds": round(r.seconds, 2)}
                           for (n, _), r in zip(tried, runs, strict=True)]}
        if blend is not None:
            metrics["tuning"]["linear"] = blend
        else:
            metrics["tuning"]["linear_skipped"] = "genre.blend = false: the trees alone"
    elif config.tune:
        metrics["tuning"] = {"skipped": f"{len(labelled):,} labelled tracks, at least genre.small_catalog = "
                                        f"{config.small_catalog:,}: the configured capacity, {n_folds} folds "
                                        "(build budget), the trees alone (no blend)"}
    else:
        metrics["tuning"] = {"skipped": "genre.tune = false: the configured capacity, the trees alone (the blend, "
                                        "genre.blend, is chosen with the capacity)"}
    if songs is not None and len(set(songs)) < len(songs):  # a catalog of segments
        metrics["protocol"] += "; segments of one song (or artist) never in two folds"
        metrics["per_song"] = song_vote_metrics(run.proba, truth, np.asarray(songs, dtype=object)[labelled])
    return shipped, CrossFit(proba=proba, fold=fold, scored=labelled, metrics=metrics, config=chosen)


OOF_FILE = "genre_oof.npz"


def save_genre_files(directory: Path, model: GenreClassifier, crossfit: CrossFit) -> CrossFit:
    """Write the genre model (``genre_model.ubj``, and ``genre_linear.npz`` with a blend) and ``genre_oof.npz``
    into a bundle directory; returns ``crossfit`` with its probabilities rounded as stored, which by-id queries
    and the neighbour table read, so both agree."""
    model.save(str(directory / "genre_model.ubj"))
    if model.linear_ is not None:
        save_npz(directory / LINEAR_FILE, model.linear_.to_arrays())
    oof = oof_arrays(crossfit)
    save_npz(directory / OOF_FILE, oof)
    return dataclasses.replace(crossfit, proba=oof["proba"].astype(np.float32))


def oof_arrays(crossfit: CrossFit) -> dict[str, np.ndarray]:
    """The bundle's ``genre_oof.npz``: ``proba`` (n_tracks, n_genres) in float16 (half the bytes; by-id
    queries and the neighbour table both read these rounded values, so they agree exactly) and ``fold``."""
    return {"proba": crossfit.proba.astype(np.float16), "fold": crossfit.fold.astype(np.int8)}
