"""The bundle the README builds from the Spotify data (tests/conftest.py's ``real_bundle_dir``), checked
from the engine's side. Every test that needs that build lives in a file named test_real_data.py (or is the
README walk-through itself), so `pytest -n 2` runs them on the worker that builds it (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine._moodnames import split_name
from tests._seeds import within_rules
from tests.engine.test_mood_names import check_names

pytestmark = pytest.mark.real_data


def test_every_mood_name_of_the_real_bundle_matches_its_numbers(real_bundle_dir: Path) -> None:
    """The names of the bundle the README builds from the Spotify data, against the means of its tracks."""
    from engine import load_bundle

    bundle = load_bundle(real_bundle_dir)
    raw, features = bundle.tracks.features, list(bundle.tracks.feature_names)
    clusters = bundle.moods.clusters_
    names = [c["name"] for c in clusters]
    means = [dict(zip(features, raw[bundle.moods.labels_ == c["id"]].mean(axis=0), strict=True)) for c in clusters]
    for c, mean in zip(clusters, means, strict=True):  # the numbers the report prints are these means
        assert all(abs(c["mean"][f] - mean[f]) <= 5e-4 * max(1.0, abs(mean[f])) for f in features), c["name"]
    catalog_mean = dict(zip(features, raw.mean(axis=0), strict=True))
    catalog_std = dict(zip(features, raw.std(axis=0), strict=True))
    check_names(names, means, catalog_mean, catalog_std)
    assert not any(("happy" in n or "cheerful" in n or "content" in n) and m["valence"] < 0.6
                   for n, m in zip(names, means, strict=True))
    vocab = {v["word"] for v in bundle.manifest["metrics"]["moods"]["vocabulary"]}
    assert {split_name(n)[0] for n in names} <= vocab and {w for n in names for w in split_name(n)[1]} <= vocab



def test_compiled_kernels_answer_as_the_numpy_code_on_the_real_bundle(real_bundle_dir: Path) -> None:
    """engine/_compiled.py on the Spotify catalog (songs listed under several ids, 114 genres, vector-leaf
    trees): feature-seeded answers and classifications with the kernels equal the numpy code's bit for bit."""
    pytest.importorskip("numba")
    import numpy as np

    from engine import Recommender, Seed, SimilarQuery, _compiled, load_bundle

    rec = Recommender(load_bundle(real_bundle_dir))
    rng = np.random.default_rng(11)
    features = rec.bundle.tracks.features
    rows = rng.choice(rec.n, 200, replace=False).tolist()
    values = [within_rules(rec, features[r] * (1 + 0.03 * rng.standard_normal(features.shape[1])) if i % 2
                           else features[r]) for i, r in enumerate(rows)]
    queries = [SimilarQuery(seeds=[Seed(features=v)], k=10, offset=(0, 195)[i % 2]) for i, v in enumerate(values)]

    def answers() -> list[tuple[list[int], list[float], int, list[tuple[str, float]]]]:
        out = []
        for q, v in zip(queries, values, strict=True):
            r = rec.similar(q)
            out.append((r.rows.tolist(), r.scores.tolist(), r.examined, rec.classify(features=v, top_k=5).genres))
        return out

    was_on = _compiled.active()
    _compiled.deactivate()
    plain = answers()
    assert _compiled.activate(), _compiled.status()
    try:
        assert answers() == plain
    finally:
        if not was_on:
            _compiled.deactivate()
