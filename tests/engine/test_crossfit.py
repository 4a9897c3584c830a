"""Cross-fitted genre probabilities (engine/_crossfit.py): folds, honesty, tuning, and their use by queries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine._crossfit as crossfit
import engine._progress as progress_module
from engine import (
    BuildConfig,
    Catalog,
    FeatureSchema,
    GenreClassifier,
    GenreConfig,
    IndexConfig,
    MoodConfig,
    Recommender,
    Seed,
    SimilarQuery,
    build_bundle,
    clean_catalog,
    load_bundle,
    synthetic_catalog,
)
from engine._background import Background, Cancelled
from engine._genre import subset_labels
from engine._genre_metrics import genre_metrics, informative_ks
from engine._report import genre_lines

QUICK = GenreConfig(max_rounds=8, early_stopping_rounds=3, tune=False, threads=1)


def planted(n_artists: int = 30, songs: int = 8, seed: int = 0, *, artist: bool = True) -> pd.DataFrame:
    """Four genres whose first two features carry the label, plus noise; all text, as read_catalog reads."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_artists):
        genre = a % 4
        for s in range(songs):
            f = rng.normal(size=5) + np.array([genre % 2, genre // 2, 0, 0, 0]) * 1.5
            rows.append({"id": f"t{a}.{s}", "artist": f"artist{a}" if artist else "", "label": f"g{genre}",
                         **{f"f{i}": f"{v:.6f}" for i, v in enumerate(f)}})
    return pd.DataFrame(rows)


def catalog_of(frame: pd.DataFrame, *, artist: bool = True) -> Catalog:
    schema = FeatureSchema.generic(id_column="id", feature_columns=tuple(f"f{i}" for i in range(5)),
                                   label_column="label", artists_column="artist" if artist else None)
    return clean_catalog(frame, schema)


def test_folds_keep_each_group_whole_and_are_balanced() -> None:
    rng = np.random.default_rng(3)
    groups = np.repeat([f"a{i}" for i in range(60)], rng.integers(1, 12, size=60))
    folds = crossfit.assign_folds(groups, 5, seed=0)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1
    sizes = np.bincount(folds, minlength=5)
    assert sizes.min() > 0 and sizes.max() - sizes.min() <= 11  # at most one group apart
    np.testing.assert_array_equal(folds, crossfit.assign_folds(groups, 5, seed=0))


def test_the_split_is_named_for_what_grouped_it() -> None:
    frame = planted()
    with_artists = catalog_of(frame)
    without = catalog_of(frame, artist=False)
    assert crossfit.split_name(crossfit.split_groups(with_artists)) == "by primary artist"
    assert crossfit.split_name(crossfit.split_groups(without)) == "by track: no artist column"
    _, fit = crossfit.cross_fit(without, without.features.astype(np.float32), without.feature_names, QUICK)
    assert fit.metrics["split"] == "by track: no artist column" and "by track" in genre_lines(fit.metrics)[0]


def test_a_tracks_out_of_fold_probabilities_never_depend_on_its_own_label() -> None:
    frame = planted()
    before = catalog_of(frame)
    x = before.features.astype(np.float32)
    model, fit = crossfit.cross_fit(before, x, before.feature_names, QUICK)
    # relabel every track of one artist (one fold: its group); only models that saw them may change
    changed = frame.copy()
    mine = changed["artist"] == "artist5"
    changed.loc[mine, "label"] = "g0" if changed.loc[mine, "label"].iloc[0] != "g0" else "g1"
    after = catalog_of(changed)
    assert after.genre_names == before.genre_names
    model2, fit2 = crossfit.cross_fit(after, x, after.feature_names, QUICK)
    rows = np.flatnonzero(mine.to_numpy())
    np.testing.assert_array_equal(fit.fold, fit2.fold)
    np.testing.assert_array_equal(fit.proba[rows], fit2.proba[rows])  # scored by a model that did not see them
    others = np.flatnonzero(fit.fold != fit.fold[rows[0]])
    assert not np.array_equal(fit.proba[others], fit2.proba[others])  # the other folds' models did see them
    assert not np.allclose(model.predict_proba(x[rows]), model2.predict_proba(x[rows]))  # so did the shipped one
    assert fit.metrics["test_tracks"] == len(before) and fit.metrics["evaluation"] == "k-fold"


def test_a_small_catalog_chooses_among_candidates_by_cross_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crossfit, "CANDIDATES", (
        crossfit.Candidate("stump", {"max_depth": 1, "max_rounds": 2}),
        crossfit.Candidate("deeper", {"max_depth": 3, "max_rounds": 12, "learning_rate": 0.3}),
    ))
    cat = catalog_of(planted())
    config = dataclasses.replace(QUICK, tune=True, folds=3, blend=False)  # the blend: tests/engine/test_linear.py
    _, fit = crossfit.cross_fit(cat, cat.features.astype(np.float32), cat.feature_names, config)
    tuning = fit.metrics["tuning"]
    scores = {c["name"]: c["top1"] for c in tuning["candidates"]}
    assert set(scores) == {"stump", "deeper"} and tuning["chosen"] == max(scores, key=scores.get)
    assert fit.metrics["top1"] == pytest.approx(scores[tuning["chosen"]], abs=1e-4)
    assert fit.config.max_depth == (1 if tuning["chosen"] == "stump" else 3) and fit.metrics["folds"] == 3
    assert not fit.metrics["shipped_beside_folds"]  # its rounds are the median of every fold's: after them
    big = dataclasses.replace(config, small_catalog=10)  # as if the catalog were large: no tuning
    _, fit = crossfit.cross_fit(cat, cat.features.astype(np.float32), cat.feature_names, big)
    assert "skipped" in fit.metrics["tuning"] and "candidates" not in fit.metrics["tuning"]


def test_a_large_catalogs_shipped_model_trains_beside_the_folds_as_it_would_alone() -> None:
    """Past ``small_catalog`` the shipped model needs only the first fold's rounds and trains beside the other
    folds (engine/_background.py): the same model, bit for bit, as one trained alone for those rounds."""
    cat = catalog_of(planted(n_artists=60))
    x = cat.features.astype(np.float32)
    large = dataclasses.replace(QUICK, max_rounds=40, early_stopping_rounds=40, small_catalog=10, threads=2)
    said: list[str] = []
    shipped, fit = crossfit.cross_fit(cat, x, cat.feature_names, large, progress=said.append)
    assert any(m.startswith("[shipped model] done in") for m in said)  # it ran as its own job
    rounds = fit.metrics["fold_rounds"][0]
    alone = GenreClassifier(genre_names=cat.genre_names, feature_names=cat.feature_names).fit(
        x, *subset_labels(cat.genre_indptr, cat.genre_codes, np.arange(len(cat))), fit.config, rounds=rounds)
    assert shipped.rounds_ == rounds == fit.metrics["rounds"] and fit.metrics["shipped_beside_folds"]
    assert bytes(shipped.booster_.save_raw("ubj")) == bytes(alone.booster_.save_raw("ubj"))


def test_a_fold_that_fails_stops_the_shipped_model_training_beside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Background] = []

    class Kept(Background):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(crossfit, "Background", Kept)
    monkeypatch.setattr(progress_module, "TICK_SECONDS", 0.0)  # a progress message every round
    cat = catalog_of(planted(n_artists=60))
    # a tiny learning rate: the early-stopping loss falls for thousands of rounds, and the shipped model is
    # asked for as many as the first fold kept
    large = dataclasses.replace(QUICK, max_rounds=3000, early_stopping_rounds=50, learning_rate=0.001,
                                small_catalog=10)
    said: list[str] = []

    def progress(message: str) -> None:
        said.append(message)
        if message.startswith("fold 2/2"):
            raise RuntimeError("fold 2 broke")

    with pytest.raises(RuntimeError, match="fold 2 broke"):
        crossfit.cross_fit(cat, cat.features.astype(np.float32), cat.feature_names, large, progress=progress)
    assert len(started) == 1 and not started[0]._thread.is_alive()  # cross_fit waited for it to stop
    with pytest.raises(Cancelled):
        started[0].result()
    asked = int(next(m for m in said if m.startswith("shipped model: all ")).split(", ")[1].split()[0])
    trained = [int(m.split()[3].split("/")[0].replace(",", "")) for m in said
               if m.startswith("shipped model: XGBoost: ")]  # a tick every round
    assert asked >= 1000 and max(trained, default=0) < asked - 1  # stopped early, not run to its end


def test_top_k_and_the_report_fit_the_number_of_genres() -> None:
    assert informative_ks(6) == (1, 2, 3) and informative_ks(114) == (1, 2, 3, 5) and informative_ks(2) == (1,)
    assert informative_ks(3) == (1, 2) and informative_ks(4) == (1, 2, 3) and informative_ks(10) == (1, 2, 3, 5)
    truth = np.eye(4, dtype=bool)
    proba = np.array([[0.1, 0.5, 0.3, 0.1]] * 4)
    m = genre_metrics(proba, truth)
    assert (m["top1"], m["top2"], m["top3"]) == (0.25, 0.5, 0.75)
    cat = catalog_of(planted())
    _, fit = crossfit.cross_fit(cat, cat.features.astype(np.float32), cat.feature_names, QUICK)
    text = "\n".join(genre_lines(fit.metrics))
    assert "top-2" in text and "top-3" in text and "top-5" not in text  # 4 genres: top-5 would be certain
    assert "genre families not scored" in text and "covers 0 of this catalog's 4 genres" in text
    assert "no better than chance" not in text
    # labels that the features do not carry: the scores stood beside their baselines, with nothing said
    noise = planted()
    noise["label"] = [f"g{i}" for i in np.random.default_rng(1).integers(0, 4, size=len(noise))]
    cat = catalog_of(noise)
    _, fit = crossfit.cross_fit(cat, cat.features.astype(np.float32), cat.feature_names, QUICK)
    text = "\n".join(genre_lines(fit.metrics))
    assert fit.metrics["top1"] <= max(fit.metrics["majority_top1"], fit.metrics["random_top1"]), fit.metrics["top1"]
    assert f"warning: top-1 {fit.metrics['top1']:.3f} is no better than chance" in text


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oof")
    synthetic_catalog(600, seed=2).to_csv(root / "c.csv", index=False)
    config = BuildConfig(index=IndexConfig(kind="flat", neighbours=20),
                         moods=MoodConfig(fit_sample=600, smoothing_neighbours=20, min_cluster_size=15, min_samples=5),
                         genre=QUICK)
    build_bundle(root / "c.csv", root / "b", config)
    return root / "b"


def test_by_id_queries_rank_with_the_stored_out_of_fold_probabilities(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    assert bundle.genre_proba is not None and bundle.genre_proba.shape == (600, len(bundle.tracks.genre_names))
    np.testing.assert_allclose(bundle.genre_proba.sum(axis=1), 1.0, atol=5e-3)  # float16 storage
    seed = 7
    query = SimilarQuery(seeds=[Seed(track_id=str(bundle.tracks.ids[seed]))], k=5, genre_weight=1.0)
    bundle.neighbours = None  # a live search (the table is checked against live search elsewhere)
    genres = bundle.tracks.genre_matrix()
    for target in (0, 3):  # make the stored row certain of one genre: the answer follows it
        bundle.genre_proba[seed] = np.eye(len(bundle.tracks.genre_names), dtype=np.float32)[target]
        rows = Recommender(bundle).similar(query).rows
        assert genres[rows, target].all()
    m = bundle.manifest["metrics"]
    assert m["genre"]["evaluation"] == "k-fold" and m["genre"]["test_tracks"] == 600
    assert {"genre_precision_at_10_reranked", "genre_precision_at_10_reranked_in_sample"} <= set(m["similar"])
