"""The genre model read without XGBoost (engine/_ubjson.py): the same document as XGBoost's JSON, so the
same predictions and explanations bit for bit, damaged files refused, and a server's process never
imports XGBoost or scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from engine._config import GenreConfig
from engine._explain import PathExplainer
from engine._forest import CompiledForest
from engine._genre import GenreClassifier
from engine._ubjson import as_printed, loads_model

ROOT = Path(__file__).resolve().parents[2]


def same_document(ours: Any, theirs: Any, path: str = "") -> int:
    """Assert ``ours`` (from the binary file) is XGBoost's JSON document ``theirs``; the number of floats compared."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), path
        return sum(same_document(ours[k], theirs[k], f"{path}/{k}") for k in theirs)
    if isinstance(theirs, list) and isinstance(ours, np.ndarray):  # a typed array: the trees' node fields
        if ours.dtype == np.float32:
            np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=np.float32), err_msg=path)
            np.testing.assert_array_equal(as_printed(ours), np.asarray(theirs, dtype=np.float64), err_msg=path)
            return len(ours)
        assert ours.tolist() == theirs, path
        return 0
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), path
        return sum(same_document(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(ours, theirs, strict=True)))
    assert ours == theirs and type(ours) is type(theirs), (path, ours, theirs)
    return 0


def trained(strategy: str) -> tuple[GenreClassifier, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    x[::9, 1] = np.nan
    codes = ((x[:, 0] > 0) + 2 * (x[:, 3] > 0.5)).astype(np.int32)
    model = GenreClassifier(genre_names=tuple("abcd"), feature_names=tuple(f"f{i}" for i in range(6))).fit(
        x, np.arange(501, dtype=np.int32), codes, GenreConfig(multi_strategy=strategy, learning_rate=0.2), rounds=15)
    return model, x


@pytest.mark.parametrize("strategy", ["multi_output_tree", "one_output_per_tree"])
def test_the_binary_model_reads_as_xgboosts_json_and_predicts_and_explains_the_same(strategy: str,
                                                                                   tmp_path: Path) -> None:
    model, x = trained(strategy)
    theirs = json.loads(model.booster_.save_raw("json"))
    path = tmp_path / "genre_model.ubj"
    model.save(str(path))
    ours = loads_model(path.read_bytes())
    assert same_document(ours, theirs) > 100
    loaded = GenreClassifier.load(str(path), genre_names=model.genre_names, feature_names=model.feature_names)
    assert loaded.rounds_ == model.booster_.num_boosted_rounds() == 15 and loaded.n_features == 6
    np.testing.assert_array_equal(loaded.predict_proba(x), CompiledForest(theirs).predict_proba(x))
    by_json, by_file = PathExplainer(theirs), PathExplainer(loaded.model_)
    for row in range(0, 500, 50):
        for cls in range(4):
            (b1, c1), (b2, c2) = by_json.explain(x[row], cls), by_file.explain(x[row], cls)
            assert b1 == b2
            np.testing.assert_array_equal(c1, c2)
    # XGBoost's own booster, from the same bytes, on first use
    margins = loaded.booster_.predict(xgb.DMatrix(x, feature_names=list(model.feature_names)), output_margin=True)
    np.testing.assert_allclose(loaded.predict_margin(x), margins, atol=1e-5)
    assert path.read_bytes() == bytes(model.booster_.save_raw("ubj"))


@pytest.mark.parametrize(("damage", "says"), [
    (lambda raw: raw[: len(raw) // 2], "ends inside"),
    (lambda raw: raw + b"Z", "bytes after the model document"),
    (lambda raw: b"[" * 100 + b"]" * 100, "nested over"),
    (lambda raw: b"{L" + b"\x7f" * 8, "ends inside"),
    (lambda raw: b"{#L" + b"\xff" * 8, "bad length"),
    (lambda raw: b"[$d#L" + b"\x10" + b"\0" * 7, "ends inside"),
    (lambda raw: b"Q", "unknown UBJSON type"),
    (lambda raw: b"[]", "not an XGBoost model"),
])
def test_a_damaged_model_file_is_a_value_error_naming_what_is_wrong(damage: Any, says: str, tmp_path: Path) -> None:
    model, _ = trained("multi_output_tree")
    path = tmp_path / "genre_model.ubj"
    path.write_bytes(damage(bytes(model.booster_.save_raw("ubj"))))
    with pytest.raises(ValueError, match=says) as raised:
        GenreClassifier.load(str(path), genre_names=model.genre_names, feature_names=model.feature_names)
    assert str(path) in str(raised.value)


def test_loading_and_serving_a_bundle_never_imports_xgboost_or_scikit_learn(bundle_dir: Path) -> None:
    """A server's start imported XGBoost (1.4 s of the engine's 2.3 s import here, scikit-learn most of it) only to
    read the model it then evaluates with numpy. Classifying with an explanation must not need either."""
    code = f"""
        import sys
        from engine import Recommender, load_bundle
        rec = Recommender(load_bundle({str(bundle_dir)!r}))
        track = rec.bundle.tracks.ids[0]
        result = rec.classify(track_id=track, top_k=3, explain=True)
        assert len(result.genres) == 3 and len(result.contributions) > 0, result
        names = rec.bundle.preprocessor.feature_names
        result = rec.classify(features={{n: v for n, v in rec.features_of(1).items() if n in names}}, explain=True)
        assert result.genres and len(result.contributions) > 0, result
        print(sorted(m for m in ("xgboost", "sklearn", "scipy") if m in sys.modules))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]"]


def test_a_build_imports_its_training_libraries_before_its_threads_start(tmp_path: Path) -> None:
    """With the engine's import no longer loading XGBoost and scikit-learn, a build's genre thread and its moods
    imported scikit-learn at the same moment once: "cannot import name 'clone' from partially initialized module
    'sklearn.base'" (a 20,000-track synthetic build). The build now imports them first, in its own thread."""
    code = f"""
        import sys, threading
        first = {{}}
        def hook(event, args):
            if event == "import" and args[0] in ("sklearn", "xgboost", "hdbscan") and args[0] not in sys.modules:
                first.setdefault(args[0], threading.current_thread().name)
        sys.addaudithook(hook)
        from engine import BuildConfig, MoodConfig, GenreConfig, build_bundle, synthetic_catalog
        synthetic_catalog(1200, seed=2).to_csv({str(tmp_path / "c.csv")!r}, index=False)
        config = BuildConfig(moods=MoodConfig(stability_subsample=0), genre=GenreConfig(max_rounds=5, tune=False))
        build_bundle({str(tmp_path / "c.csv")!r}, {str(tmp_path / "b")!r}, config)
        print(sorted(first.items()))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == str([(m, "MainThread") for m in ("hdbscan", "sklearn", "xgboost")])
