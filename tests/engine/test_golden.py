"""Golden bundles, one per on-disk format version (tests/golden/v<N>/, made by tests/golden/make_golden.py).

The current version's bundle, and each older one the engine still reads (``READABLE_VERSIONS``: a layout the
current one only adds to), must load and answer; every other version must be refused with a version error that
tells the user to rebuild, never half-loaded or misread.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import engine

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
VERSIONS = sorted(int(m[1]) for p in GOLDEN.iterdir() if p.is_dir() and (m := re.fullmatch(r"v(\d+)", p.name)))


def test_the_current_format_version_has_a_golden_bundle() -> None:
    assert engine.FORMAT_VERSION in VERSIONS, (
        f"no golden bundle for format version {engine.FORMAT_VERSION} (have {VERSIONS}): run "
        f"`.venv/bin/python tests/golden/make_golden.py` and commit tests/golden/v{engine.FORMAT_VERSION}/")


@pytest.mark.parametrize("version", VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def test_golden_bundle_loads_if_readable_else_asks_for_a_rebuild(version: int) -> None:
    path = GOLDEN / f"v{version}"
    if version not in engine.READABLE_VERSIONS:
        with pytest.raises(engine.BundleVersionError, match="rebuild") as info:
            engine.load_bundle(path)
        assert f"version {version}" in str(info.value)
        return
    bundle = engine.load_bundle(path)
    assert bundle.manifest["format_version"] == version
    seed = bundle.tracks.ids[0]
    result = engine.Recommender(bundle).similar(engine.SimilarQuery(seeds=[engine.Seed(track_id=seed)]))
    assert len(result.rows) > 0 and not result.unknown_seed_ids
    assert seed not in {bundle.tracks.ids[r] for r in result.rows}
    assert np.all(np.diff(result.scores) <= 1e-6)  # best first
    # by features: the shipped genre model, with its linear part where the bundle has one (format 5)
    values = dict(zip(bundle.preprocessor.feature_names, bundle.tracks.features[3].tolist(), strict=True))
    answer = engine.Recommender(bundle).classify(features=values, top_k=3, explain=True)
    assert len(answer.genres) == 3 and 0 < answer.genres[0][1] <= 1
    assert (bundle.classifier.linear_ is not None) == ((path / "genre_linear.npz").exists())


@pytest.mark.parametrize("version", VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def test_golden_bundle_holds_no_pickle(version: int) -> None:
    for npz in sorted((GOLDEN / f"v{version}").glob("*.npz")):
        with np.load(npz, allow_pickle=False) as arrays:  # reading an object (pickled) array raises
            assert all(arrays[name].dtype != object for name in arrays.files), npz
