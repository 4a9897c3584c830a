"""The logistic regression blended into a small catalog's genre trees (engine/_linear.py, engine/_crossfit.py):
chosen by the folds, stored as plain arrays, served and explained as one margin, carried by ``musicrec add``."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine._crossfit as crossfit
from engine import BuildConfig, FeatureSchema, GenreConfig, IndexConfig, MoodConfig, build_bundle, load_bundle
from engine._bundle import sha256_file
from engine._classify import GenreClassify
from engine._errors import BundleIntegrityError
from engine._linear import LINEAR_FILE, LinearPart, fit_linear, softmax
from engine._report import genre_lines
from engine._view import CatalogView
from musicrec.cli import main
from tests.engine.test_crossfit import catalog_of, planted

FEATURES = tuple(f"f{i}" for i in range(5))
# one quick tree capacity: the blend is what these tests are about
QUICK_TREES = (crossfit.Candidate("quick", {"max_depth": 2, "max_rounds": 6, "learning_rate": 0.3}),)
TUNED = GenreConfig(max_rounds=6, early_stopping_rounds=3, tune=True, folds=3, threads=1)


def oblique(n_artists: int = 40, songs: int = 8, seed: int = 0) -> pd.DataFrame:
    """Four genres cut by two oblique planes through all five features: a few shallow trees follow such
    boundaries in coarse steps, a linear margin follows them exactly."""
    rng = np.random.default_rng(seed)
    u, v = np.array([1.0, 1.0, -1.0, 1.0, 1.0]), np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    rows = []
    for a in range(n_artists):
        for s in range(songs):
            f = rng.normal(size=5)
            genre = int(f @ u > 0) + 2 * int(f @ v > 0)
            rows.append({"id": f"t{a}.{s}", "artist": f"artist{a}", "label": f"g{genre}",
                         **{name: f"{x:.6f}" for name, x in zip(FEATURES, f, strict=True)}})
    return pd.DataFrame(rows)


def test_a_margin_is_the_same_bits_alone_or_in_a_batch_and_refuses_arrays_that_do_not_fit() -> None:
    rng = np.random.default_rng(0)
    part = LinearPart(mean=rng.normal(size=5), scale=rng.uniform(0.5, 2, 5), coef=rng.normal(size=(3, 5)),
                      intercept=rng.normal(size=3), weight=0.5)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    batch = part.margin(x)
    assert all(np.array_equal(batch[i], part.margin(x[i:i + 1])[0]) for i in range(0, 300, 37))
    np.testing.assert_allclose(batch, ((x - part.mean) / part.scale) @ part.coef.T + part.intercept, rtol=1e-12)
    bias, contrib = part.contributions(x[3], 2)
    assert bias + contrib.sum() == pytest.approx(batch[3, 2], rel=1e-12)
    back = LinearPart.from_arrays(part.to_arrays(), 3, 5)
    np.testing.assert_array_equal(back.margin(x), batch)
    with pytest.raises(ValueError, match=r"'coef'.*shape"):
        LinearPart.from_arrays(part.to_arrays(), 4, 5)  # a genre more than the arrays hold
    with pytest.raises(ValueError, match="weight"):
        LinearPart.from_arrays({**part.to_arrays(), "weight": np.float64(1.0)}, 3, 5)
    with pytest.raises(ValueError, match="no array 'scale'"):
        LinearPart.from_arrays({k: a for k, a in part.to_arrays().items() if k != "scale"}, 3, 5)
    nan_row = x[:1].copy()
    nan_row[0, 1] = np.nan  # a missing feature reads as the training mean
    filled = x[:1].copy()
    filled[0, 1] = part.mean[1]
    np.testing.assert_allclose(part.margin(nan_row), part.margin(filled))


def test_a_genre_the_training_part_lacks_gets_no_weight_and_two_genres_take_the_binary_form() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    labels = np.where(x[:, 0] > 0, 2, 0)  # genres 0 and 2 of 4
    part = fit_linear(x, np.arange(201), labels, 4)
    margin = part.margin(x)
    assert (margin.argmax(axis=1) == labels).mean() > 0.95
    assert (part.coef[[1, 3]] == 0).all() and (part.intercept[[1, 3]] < -40).all()
    assert softmax(margin)[:, [1, 3]].max() < 1e-15
    assert (part.coef[0] == 0).all() and part.intercept[0] == 0  # binary: the first genre is the zero row
    assert part.coef[2, 0] > 0


def test_a_small_catalog_keeps_the_blend_its_folds_score_best(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crossfit, "CANDIDATES", QUICK_TREES)
    cat = catalog_of(oblique())
    x = cat.features.astype(np.float32)
    model, fit = crossfit.cross_fit(cat, x, cat.feature_names, TUNED)
    linear = fit.metrics["tuning"]["linear"]
    by_weight = {c["weight"]: c["top1"] for c in linear["candidates"]}
    assert set(by_weight) == {0.0, 0.25, 0.5, 0.75}
    assert linear["weight"] > 0 and by_weight[linear["weight"]] == max(by_weight.values())
    assert by_weight[linear["weight"]] > by_weight[0.0] + 0.05  # oblique planes: the linear part must help
    assert fit.metrics["top1"] == pytest.approx(by_weight[linear["weight"]], abs=1e-4)  # the stored OOF are the blend's
    assert model.linear_ is not None and model.linear_.weight == linear["weight"]
    w = model.linear_.weight
    saved, model.linear_ = model.linear_, None
    tree_margin = model.predict_margin(x[:20])
    model.linear_ = saved
    np.testing.assert_array_equal(model.predict_proba(x[:20]),
                                  softmax((1 - w) * tree_margin + w * saved.margin(x[:20])).astype(np.float32))
    lines = genre_lines(fit.metrics)
    assert "with a logistic regression blended in" in lines[0]
    assert f"a logistic regression blended into the trees' margin at weight {w:g}" in "\n".join(lines)
    # the option off, or a large catalog: the trees alone, as before
    _, alone = crossfit.cross_fit(cat, x, cat.feature_names, dataclasses.replace(TUNED, blend=False))
    assert "linear" not in alone.metrics["tuning"] and alone.metrics["top1"] == pytest.approx(by_weight[0.0], abs=1e-4)
    assert "blended" not in "\n".join(genre_lines(alone.metrics))
    assert "no blend with a logistic regression: genre.blend = false" in "\n".join(genre_lines(alone.metrics))
    big, fit_big = crossfit.cross_fit(cat, x, cat.feature_names, dataclasses.replace(TUNED, small_catalog=10))
    assert big.linear_ is None and "the trees alone (no blend)" in fit_big.metrics["tuning"]["skipped"]
    untuned, fit_untuned = crossfit.cross_fit(cat, x, cat.feature_names, dataclasses.replace(TUNED, tune=False))
    assert untuned.linear_ is None and "the trees alone" in "\n".join(genre_lines(fit_untuned.metrics))


def test_where_trees_do_better_the_folds_keep_the_trees_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The label is a product of signs (an XOR of two features): no linear margin separates it."""
    monkeypatch.setattr(crossfit, "CANDIDATES", (
        crossfit.Candidate("deep", {"max_depth": 3, "max_rounds": 40, "learning_rate": 0.3}),))
    rng = np.random.default_rng(2)
    frame = planted(n_artists=40)
    f = rng.normal(size=(len(frame), 5))
    for i in range(5):
        frame[f"f{i}"] = [f"{v:.6f}" for v in f[:, i]]
    frame["label"] = np.where(f[:, 0] * f[:, 1] > 0, "same", "differ")
    cat = catalog_of(frame)
    model, fit = crossfit.cross_fit(cat, cat.features.astype(np.float32), cat.feature_names,
                                    dataclasses.replace(TUNED, max_rounds=40))
    linear = fit.metrics["tuning"]["linear"]
    assert linear["linear_alone"]["top1"] < 0.65 < linear["candidates"][0]["top1"]
    assert linear["weight"] == 0 and model.linear_ is None
    assert "the trees alone: no blend with a logistic regression scored higher" in "\n".join(genre_lines(fit.metrics))


@pytest.fixture(scope="module")
def blended_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("linear")
    frame = oblique(n_artists=60)
    frame.iloc[:400].to_csv(root / "x.csv", index=False)
    frame.iloc[400:].to_csv(root / "y.csv", index=False)
    schema = FeatureSchema.generic(id_column="id", feature_columns=FEATURES, label_column="label",
                                   artists_column="artist")
    config = BuildConfig(schema=schema, index=IndexConfig(kind="flat", neighbours=20),
                         moods=MoodConfig(fit_sample=400, smoothing_neighbours=20, min_cluster_size=15, min_samples=5),
                         genre=TUNED)
    mp = pytest.MonkeyPatch()
    mp.setattr(crossfit, "CANDIDATES", QUICK_TREES)
    try:
        build_bundle(root / "x.csv", root / "a", config)
    finally:
        mp.undo()
    return root / "a"


def test_the_blend_is_stored_as_arrays_served_and_explained_as_one_margin(blended_bundle: Path) -> None:
    manifest = json.loads((blended_bundle / "manifest.json").read_text())
    assert LINEAR_FILE in manifest["files"] and manifest["format_version"] == 5
    with np.load(blended_bundle / LINEAR_FILE, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["coef", "intercept", "mean", "scale", "weight"]
    bundle = load_bundle(blended_bundle)
    classifier = bundle.classifier
    assert classifier is not None and classifier.linear_ is not None
    assert classifier.linear_.weight == manifest["metrics"]["genre"]["tuning"]["linear"]["weight"]
    classify = GenreClassify(CatalogView(bundle))
    features = {name: float(v) for name, v in zip(FEATURES, bundle.tracks.features[5], strict=True)}
    answer = classify.classify(features=features, explain=True)
    x = np.asarray([bundle.tracks.features[5]], dtype=np.float32)
    margin = classifier.predict_margin(x)[0]
    top = classifier.genre_names.index(answer.genres[0][0])
    assert answer.bias + sum(c for _, c in answer.contributions) == pytest.approx(margin[top], abs=1e-5)
    assert answer.genres[0][1] == float(softmax(margin[None, :]).astype(np.float32)[0, top])


def test_a_damaged_linear_part_is_refused_by_name(blended_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(blended_bundle, bad)
    arrays = dict(np.load(bad / LINEAR_FILE, allow_pickle=False))
    arrays["coef"] = arrays["coef"][:, :3]
    np.savez(bad / LINEAR_FILE, **arrays)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["files"][LINEAR_FILE] = sha256_file(bad / LINEAR_FILE)
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match=f"{LINEAR_FILE}: 'coef'"):
        load_bundle(bad)
    arrays["coef"] = np.full_like(np.load(blended_bundle / LINEAR_FILE)["coef"], 1e300)  # loads, then answers NaN
    np.savez(bad / LINEAR_FILE, **arrays)
    manifest["files"][LINEAR_FILE] = sha256_file(bad / LINEAR_FILE)
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match="beyond"):
        load_bundle(bad)
    shutil.copy(blended_bundle / LINEAR_FILE, bad / LINEAR_FILE)  # the real file, in a manifest of format 4
    manifest["files"][LINEAR_FILE] = sha256_file(bad / LINEAR_FILE)
    manifest["format_version"] = 4
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match="of format 4"):
        load_bundle(bad)


def test_musicrec_add_carries_the_linear_part_and_scores_new_tracks_with_the_blend(blended_bundle: Path,
                                                                                  tmp_path: Path) -> None:
    root = blended_bundle.parent
    out = tmp_path / "b"
    assert main(["add", str(root / "y.csv"), "--to", str(blended_bundle), "--out", str(out), "--quiet"]) == 0
    after = load_bundle(out)
    assert after.classifier is not None and after.classifier.linear_ is not None
    assert (out / LINEAR_FILE).read_bytes() == (blended_bundle / LINEAR_FILE).read_bytes()
    # the added tracks (no model saw them) take the shipped blend's probabilities, stored as float16
    added = np.flatnonzero(np.isin(after.tracks.ids, pd.read_csv(root / "y.csv")["id"].astype(str)))
    assert len(added) == 80 and after.genre_proba is not None
    x = after.preprocessor.transform_features(after.tracks.features[added])
    blended = after.classifier.predict_proba(x.astype(np.float32))
    np.testing.assert_array_equal(after.genre_proba[added], blended.astype(np.float16).astype(np.float32))
    saved, after.classifier.linear_ = after.classifier.linear_, None
    assert not np.array_equal(after.classifier.predict_proba(x.astype(np.float32)), blended)  # the trees alone differ
    after.classifier.linear_ = saved


def test_one_row_alone_is_the_same_bits_as_in_a_batch_across_chunks(blended_bundle: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import engine._linear as linear_module

    monkeypatch.setattr(linear_module, "_CHUNK_VALUES", 7 * 4 * 5)  # 7 rows per chunk: the batch crosses many
    bundle = load_bundle(blended_bundle)
    x = bundle.preprocessor.transform_features(bundle.tracks.features[:60]).astype(np.float32)
    x[::9, 2] = np.nan
    batch = bundle.classifier.predict_proba(x)
    assert batch.dtype == np.float32  # as the trees' own: the compiled scoring kernel takes float32
    assert all(np.array_equal(batch[i], bundle.classifier.predict_proba(x[i:i + 1])[0]) for i in range(60))
    assert bundle.classifier.predict_proba(x[:0]).shape == (0, 4)


def test_the_compiled_kernels_answer_a_blended_bundle_as_numpy_does(blended_bundle: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    from engine import Recommender, _compiled
    from tests.engine.test_compiled import feature_queries, same

    was_on = _compiled.active()
    try:
        _compiled.deactivate()
        rec = Recommender(load_bundle(blended_bundle))
        queries = [q for q in feature_queries(rec, 60) if q.genre_weight != 0.0]
        plain = [rec.similar(q) for q in queries]
        assert _compiled.activate(), _compiled.status()
        kernels = _compiled.kernels()
        calls = []
        real = kernels.score_block
        monkeypatch.setattr(kernels, "score_block", lambda *a: calls.append(a[2].dtype) or real(*a))
        compiled = [rec.similar(q) for q in queries]
        assert all(same(a, b) for a, b in zip(plain, compiled, strict=True))
        assert calls  # the blend's float32 probabilities reach the compiled scoring, not only numpy's
    finally:
        if not was_on:
            _compiled.deactivate()
