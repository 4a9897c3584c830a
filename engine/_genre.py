"""The XGBoost genre classifier: its model (``GenreClassifier``: training, loading, probabilities) and the
splits its evaluations group by.

How a build trains and evaluates it is engine/_crossfit.py: grouped k-fold cross-fitting, whose out-of-fold
probabilities are both the stored ones and the evaluation, then the shipped model on every labelled track.
This module also keeps the single held-out split the benchmarks measure with (``evaluate_genre_classifier``,
``held_out_split``; builds never use it), under the same rules:
- one row per deduplicated track (the catalog is already merged by id);
- a test split grouped by primary artist, so no artist is on both sides, and an early-stopping
  validation split carved out of the training part the same way;
- inputs are the stateless feature transforms only (trees need no scaling), so nothing is fitted
  on data the evaluation then scores; popularity, ids, names and the row index are never inputs;
- top-1/top-5 count a prediction correct when it is any of the track's genres.

Model shape (measured on the Spotify data, held-out artists): one tree per class costs 114 trees
per round, ~0.5 ms per single-row predict at only 14 rounds, so the model uses multi-output trees
(one tree per round with a vector leaf, ~0.09 ms per row). Per round, depth 4 generalizes to unseen
artists better than 5, 6 or 8 (top-1 .248 vs .239/.235/.189 at equal budget), max_bin 64 matches
256 at ~1.7x the speed, and learning rate 0.3 stops early near 150 rounds, so both trainings fit in
about 80 s on 2 cores. Lower rates need 1.5-3x the rounds. Known limit: XGBoost 3.2 does not
implement ``pred_contribs`` for multi-output trees.

Training rows are one per (track, genre) pair: a track listed under "chill" and "ambient" teaches
both labels. Each pair is weighted 1/n_genres so multi-genre tracks do not outweigh others.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ._catalog import Catalog
from ._config import GenreConfig
from ._errors import NotFittedError
from ._forest import CompiledForest
from ._genre_metrics import baselines as baselines
from ._genre_metrics import calibration as calibration
from ._genre_metrics import calibration_error as calibration_error
from ._genre_metrics import family_metrics as family_metrics
from ._genre_metrics import genre_metrics as genre_metrics
from ._genre_metrics import song_vote_metrics as song_vote_metrics
from ._linear import LinearPart, softmax
from ._progress import Progress, Ticker
from ._ubjson import loads_model

if TYPE_CHECKING:
    import xgboost as xgb

# Below this many training rows a second thread saves little, and on a shared machine it costs a lot:
# every tree's parallel loops end in a barrier that waits for a descheduled thread. Measured on 2 busy
# cores (load ~4): 5 folds of 480 tracks, 12 genres, per-class trees took 77 s with 2 threads; one such
# fit takes 0.2-0.3 s with 1 thread.
ONE_THREAD_BELOW = 20_000
_FOREST_CHUNK = 256  # rows per compiled-forest call: bounds its (rows, trees, classes) leaf array


class GenreClassifier:
    """Probabilities over every known genre from transformed track features.

    Parameters
    ----------
    genre_names : tuple of str
        Class order of every probability vector.
    feature_names : tuple of str
        Names of the model's input columns (the transformed features).
    """

    def __init__(self, *, genre_names: tuple[str, ...], feature_names: tuple[str, ...]) -> None:
        self.genre_names = tuple(genre_names)
        self.feature_names = tuple(feature_names)
        # a logistic regression blended into the margin, on small catalogs where the folds chose it (engine/_linear.py)
        self.linear_: LinearPart | None = None

    def fit(
        self, x: np.ndarray, indptr: np.ndarray, codes: np.ndarray, config: GenreConfig, *,
        rounds: int, eval_set: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        seed: int = 0, progress: Progress | None = None,
    ) -> GenreClassifier:
        """Train for up to ``rounds``; with ``eval_set`` (x, indptr, codes) stop early on its loss.

        ``x`` has shape (n_tracks, n_features); track ``i`` has genre codes
        ``codes[indptr[i]:indptr[i+1]]``.
        """
        import xgboost as xgb  # here, not at the module's import: serving reads the model without it (_ubjson)

        dtrain = self._pairs_matrix(x, indptr, codes)
        # only the early-stopping set is evaluated: the training set's log loss after every round cost
        # 21% of the training time and nothing read it (benchmarks/train_eval_cost.py)
        evals: list[tuple[xgb.DMatrix, str]] = []
        callbacks: list[xgb.callback.TrainingCallback] = [
            _progress_callback(Ticker(progress, "XGBoost", rounds, unit="rounds", upper_bound=eval_set is not None))]
        if eval_set is not None:
            evals.append((self._pairs_matrix(*eval_set), "valid"))
            callbacks.append(xgb.callback.EarlyStopping(
                rounds=config.early_stopping_rounds, data_name="valid", save_best=True))
        params = _params(config, len(self.genre_names), seed)
        if dtrain.num_row() < ONE_THREAD_BELOW:
            params["nthread"] = 1
        booster = xgb.train(params, dtrain, num_boost_round=rounds, evals=evals, callbacks=callbacks,
                            verbose_eval=False)
        # save_best trims the model to the best round, so every later predict uses all trees
        self._set_model(bytes(booster.save_raw("ubj")), booster)
        return self

    def _set_model(self, raw: bytes, booster: xgb.Booster | None, threads: int = 1) -> None:
        """The model as its file's bytes (what ``save`` writes) and their document; the booster, if given, else
        built from the bytes when something asks for ``booster_``."""
        self._raw, self._booster, self._threads = raw, booster, threads
        self.model_ = loads_model(raw)
        indptr = self.model_["learner"]["gradient_booster"]["model"].get("iteration_indptr")
        self.rounds_ = len(indptr) - 1 if indptr is not None else self.booster_.num_boosted_rounds()
        self.forest_ = None

    @property
    def booster_(self) -> xgb.Booster:
        """XGBoost's booster of the model: the trained one, or after ``load`` one read from the same bytes on
        first use (importing XGBoost then). Predictions and explanations do not need it."""
        if getattr(self, "_raw", None) is None:
            raise AttributeError("booster_: the classifier is not trained")
        if self._booster is None:
            import xgboost as xgb

            booster = xgb.Booster()
            booster.load_model(bytearray(self._raw))
            booster.set_param({"nthread": self._threads})
            self._booster = booster
        return self._booster

    @property
    def n_features(self) -> int:
        """The number of input columns the model was trained on."""
        self._check_fitted()
        return int(self.model_["learner"]["learner_model_param"]["num_feature"])

    def _pairs_matrix(self, x: np.ndarray, indptr: np.ndarray, codes: np.ndarray) -> xgb.DMatrix:
        import xgboost as xgb

        counts = np.diff(indptr)
        rows = np.repeat(np.arange(len(x)), counts)
        weights = np.repeat(1.0 / np.maximum(counts, 1), counts)
        return xgb.DMatrix(x[rows], label=codes, weight=weights, feature_names=list(self.feature_names))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of shape (n, n_genres), columns in ``genre_names`` order.

        Computed by the trees compiled to numpy arrays (engine/_forest.py): one single-row call
        costs a fraction of XGBoost's, and build, evaluation and serving all use the same code, so
        a stored probability equals a live one bit for bit.
        """
        self._check_fitted()
        forest = self._forest()
        x = np.asarray(x, dtype=np.float32)
        if self.linear_ is None:
            if len(x) <= _FOREST_CHUNK:
                return forest.predict_proba(x)
            return np.concatenate([forest.predict_proba(x[i:i + _FOREST_CHUNK])
                                   for i in range(0, len(x), _FOREST_CHUNK)])
        # float32 as the trees' own: the compiled scoring kernel takes float32 probabilities (engine/_ranking.py)
        return softmax(self.predict_margin(x)).astype(np.float32)

    def predict_margin(self, x: np.ndarray) -> np.ndarray:
        """Margins of shape (n, n_genres): the trees', or ``(1 - w) * trees + w * linear`` with a linear part."""
        self._check_fitted()
        forest = self._forest()
        x = np.asarray(x, dtype=np.float32)
        trees = np.concatenate([forest.predict_margin(x[i:i + _FOREST_CHUNK])
                                for i in range(0, max(len(x), 1), _FOREST_CHUNK)])
        if self.linear_ is None:
            return trees
        w = self.linear_.weight
        return (1.0 - w) * trees.astype(np.float64) + w * self.linear_.margin(x)

    def _forest(self) -> CompiledForest:
        forest = getattr(self, "forest_", None)
        if forest is None:  # two threads may both compile it; either result is the same
            forest = self.forest_ = CompiledForest(self.model_)
        return forest

    def _check_fitted(self) -> None:
        if getattr(self, "_raw", None) is None:
            raise NotFittedError("GenreClassifier is not trained; call fit() or load() first")

    def save(self, path: str) -> None:
        """XGBoost's own UBJSON format: no pickle. The bytes ``save_model`` writes, written by Python: a full disk
        is then an OSError naming the file (XGBoost raised "FileStream.Write incomplete", naming none)."""
        self._check_fitted()
        with open(path, "wb") as fh:
            fh.write(self._raw)

    @classmethod
    def load(cls, path: str, *, genre_names: tuple[str, ...], feature_names: tuple[str, ...],
             threads: int = 1) -> GenreClassifier:
        self = cls(genre_names=genre_names, feature_names=feature_names)
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            self._set_model(raw, None, threads)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        self.forest_ = CompiledForest(self.model_)  # at load, so no request pays for it
        return self


def _params(config: GenreConfig, n_classes: int, seed: int) -> dict[str, Any]:
    return {
        "objective": "multi:softprob",
        "num_class": n_classes,
        "eval_metric": "mlogloss",
        "tree_method": "hist",
        "multi_strategy": config.multi_strategy,
        "learning_rate": config.learning_rate,
        "max_depth": config.max_depth,
        "max_bin": config.max_bin,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "colsample_bynode": config.colsample_bynode,
        "num_parallel_tree": config.num_parallel_tree,
        "nthread": config.threads,
        "seed": seed,
    }


def _progress_callback(tick: Ticker) -> xgb.callback.TrainingCallback:
    """Rounds done, their rate and the time left (at most that, with early stopping)."""
    import xgboost as xgb

    class Progress(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            valid = evals_log.get("valid", {}).get("mlogloss")
            tick(epoch + 1, f", valid logloss {valid[-1]:.4f}" if valid else "")
            return False

    return Progress()


def grouped_split(groups: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of (train, test) with no group on both sides."""
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return np.sort(train), np.sort(test)


def subset_labels(indptr: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR labels of the tracks at ``rows``."""
    counts = np.diff(indptr)[rows]
    new_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_ptr[1:])
    new_codes = np.concatenate([codes[indptr[r]:indptr[r + 1]] for r in rows]) if len(rows) else codes[:0]
    return new_ptr, new_codes


MIN_LABELLED_TRACKS = 50
MIN_ARTISTS = 5


def cannot_train(catalog: Catalog) -> str | None:
    """Why the honest protocol cannot run on this catalog, or None when it can."""
    labelled = np.flatnonzero(np.diff(catalog.genre_indptr) > 0)
    artists = len(set(catalog.primary_artists()[labelled]))
    if len(catalog.genre_names) < 2:
        return f"the catalog has {len(catalog.genre_names)} genre(s); a classifier needs at least 2"
    if len(labelled) < MIN_LABELLED_TRACKS or artists < MIN_ARTISTS:
        return (f"only {len(labelled)} labelled tracks by {artists} artists; an artist-grouped evaluation needs "
                f"at least {MIN_LABELLED_TRACKS} tracks by {MIN_ARTISTS} artists")
    return None


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Track rows of the honest protocol's three parts: no primary artist is in two of them."""

    fit: np.ndarray
    valid: np.ndarray  # early stopping
    test: np.ndarray


def split_groups(catalog: Catalog, songs: np.ndarray | None = None) -> np.ndarray:
    """Per track, the key no split may cut: its primary artist; a track without one, its song when
    ``songs`` names each row's recording (segments of one song), else the track itself."""
    groups = catalog.primary_artists()
    if songs is None:
        return groups
    alone = np.array([str(g).startswith("\0track:") for g in groups], dtype=bool)
    groups = groups.copy()
    groups[alone] = np.array([f"\0song:{s}" for s in np.asarray(songs, dtype=object)[alone]], dtype=object)
    return groups


HELD_OUT_FRACTION = 0.2  # the test share of benchmarks' single held-out split (builds cross-fit instead)


def held_out_split(catalog: Catalog, test_fraction: float, seed: int, songs: np.ndarray | None = None) -> HeldOut:
    """The labelled tracks split by primary artist (or song, see :func:`split_groups`) into fit /
    early-stopping / test rows."""
    labelled = np.flatnonzero(np.diff(catalog.genre_indptr) > 0)
    groups = split_groups(catalog, songs)[labelled]
    train_pos, test_pos = grouped_split(groups, test_fraction, seed)
    fit_pos, valid_pos = grouped_split(groups[train_pos], 0.1, seed + 1)
    return HeldOut(fit=labelled[train_pos[fit_pos]], valid=labelled[train_pos[valid_pos]], test=labelled[test_pos])


def evaluate_genre_classifier(
    catalog: Catalog, x: np.ndarray, feature_names: tuple[str, ...], config: GenreConfig, *,
    seed: int = 0, progress: Progress | None = None, songs: np.ndarray | None = None,
) -> tuple[GenreClassifier, HeldOut, dict[str, Any]]:
    """Train on the fit artists (stopping early on the validation artists) and score the test
    artists: the model, its split and its metrics. ``x`` holds every track's transformed features.
    ``songs`` (one recording key per row, for catalogs of segments) keeps each song's segments on one
    side of every split and adds ``per_song``: the scores with one vote per song."""
    say = progress or (lambda _msg: None)
    split = held_out_split(catalog, HELD_OUT_FRACTION, seed, songs)
    ptr, codes = catalog.genre_indptr, catalog.genre_codes
    t0 = time.perf_counter()
    say(f"evaluation model: {len(split.fit)} train / {len(split.valid)} early-stopping / "
        f"{len(split.test)} test tracks, split by primary artist")
    model = GenreClassifier(genre_names=catalog.genre_names, feature_names=feature_names).fit(
        x[split.fit], *subset_labels(ptr, codes, split.fit), config, rounds=config.max_rounds,
        eval_set=(x[split.valid], *subset_labels(ptr, codes, split.valid)), seed=seed, progress=say)
    eval_seconds = time.perf_counter() - t0
    truth = catalog.genre_matrix()
    test_truth = truth[split.test]
    proba = model.predict_proba(x[split.test])
    metrics: dict[str, Any] = {
        "protocol": "tracks deduplicated by id; test and early-stopping splits grouped by primary artist; "
                    "stateless transforms only; correct = any of the track's genres",
        "train_tracks": len(split.fit), "valid_tracks": len(split.valid),
        "test_tracks": len(split.test), "n_genres": len(catalog.genre_names),
        "rounds": model.rounds_, "multi_strategy": config.multi_strategy,
        **genre_metrics(proba, test_truth),
        **baselines(truth[split.fit].sum(axis=0), test_truth),
        **calibration(proba, test_truth),
        "families": family_metrics(proba, test_truth, catalog.genre_names, truth[split.fit]),
        "eval_train_seconds": round(eval_seconds, 2),
    }
    if songs is not None and len(set(songs)) < len(songs):  # a catalog of segments
        metrics["protocol"] += "; segments of one song (or artist) never on both sides"
        metrics["per_song"] = song_vote_metrics(proba, test_truth, np.asarray(songs, dtype=object)[split.test])
    return model, split, metrics
