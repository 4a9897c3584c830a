"""The bundle the README builds from the Spotify data (tests/conftest.py's ``real_bundle_dir``), checked
from the engine's side. Every test that needs that build lives in a file named test_real_data.py (or is the
README walk-through itself), so `pytest -n 2` runs them on the worker that builds it (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine._moodnames import split_name
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

