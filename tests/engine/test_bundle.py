from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import (
    FORMAT_VERSION,
    BuildConfig,
    BundleError,
    BundleIntegrityError,
    BundleNotFound,
    BundleVersionError,
    CatalogError,
    ConfigError,
    build_bundle,
    load_bundle,
    publish,
)
from engine._bundle import atomic_bundle_dir, sha256_file, write_manifest
from tests.conftest import FAST_CONFIG


def copy(bundle_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(bundle_dir, dest)
    return dest


def test_manifest_has_the_promised_fields(bundle_dir: Path) -> None:
    m = json.loads((bundle_dir / "manifest.json").read_text())
    for key in ("format_version", "created_at", "source", "counts", "schema", "config", "versions",
                "metrics", "files"):
        assert key in m
    assert m["format_version"] == FORMAT_VERSION
    assert set(m["counts"]) >= {"rows_read", "tracks", "dropped", "duplicates_merged"}
    assert m["counts"]["flag_blanks"] == {"explicit": 0}  # a flag column, recognised, with no blanks
    assert set(m["metrics"]) >= {"pca", "index", "moods", "genre", "similar"}
    sim = m["metrics"]["similar"]  # the shipped ranking, scored on the classifier's held-out artists
    assert sim["queries"] > 100 and sim["genre_weight"] == m["config"]["similar"]["genre_weight"]
    assert sim["genre_precision_at_10_reranked"] > sim["genre_precision_at_10_cosine"] > 0
    assert set(m["files"]) == {p.name for p in bundle_dir.iterdir()} - {"manifest.json"}
    assert m["source"]["sha256"] == sha256_file(m["source"]["path"])
    assert {"numpy", "faiss-cpu", "xgboost-cpu", "hdbscan"} <= set(m["versions"])


def test_round_trip_gives_the_same_tracks_vectors_and_answers(bundle_dir: Path, synthetic_csv: Path) -> None:
    b = load_bundle(bundle_dir)
    assert len(b.tracks) == b.manifest["counts"]["tracks"] == 3000
    # the stored pipeline reproduces the stored vectors from the raw features
    np.testing.assert_allclose(b.preprocessor.embed(b.tracks.features), b.vectors, atol=1e-6)
    _scores, rows = b.index.search(b.vectors[:5], 1)
    assert list(rows[:, 0]) == [0, 1, 2, 3, 4]
    assert b.classifier is not None
    proba = b.classifier.predict_proba(b.preprocessor.transform_features(b.tracks.features[:3]))
    assert proba.shape == (3, len(b.tracks.genre_names)) and np.allclose(proba.sum(1), 1, atol=1e-4)
    labels, _, _ = b.moods.assign_points(b.moods.space.project(b.preprocessor.standardize(b.tracks.features)))
    np.testing.assert_array_equal(labels, b.moods.labels_)
    assert b.row(str(b.tracks.ids[7])) == 7


@pytest.mark.parametrize("damage", ["unlisted", "missing", "manifest"])
def test_incomplete_or_extended_bundles_are_refused(bundle_dir: Path, tmp_path: Path, damage: str) -> None:
    bad = copy(bundle_dir, tmp_path)
    if damage == "unlisted":
        (bad / "payload.pkl").write_bytes(b"\x80\x04K\x01.")
        match = r"not listed in the manifest: \['payload.pkl'\]"
    elif damage == "missing":
        (bad / "moods.json").unlink()
        match = r"missing: \['moods.json'\]"
    else:
        (bad / "manifest.json").unlink()
        match = "no manifest.json"
    with pytest.raises(BundleIntegrityError, match=match):
        load_bundle(bad)


def test_another_format_version_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    bad = copy(bundle_dir, tmp_path)
    m = json.loads((bad / "manifest.json").read_text())
    m["format_version"] = FORMAT_VERSION + 1
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleVersionError, match=r"a newer musicrec built it: upgrade musicrec to load it$"):
        load_bundle(bad)
    m["format_version"] = 3
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleVersionError, match=r"rebuild the bundle with this version of musicrec$"):
        load_bundle(bad)


def test_a_bundle_built_with_a_retired_key_still_loads_and_a_config_file_is_told_what_replaced_it(
        bundle_dir: Path, tmp_path: Path) -> None:
    old = copy(bundle_dir, tmp_path)  # built before moods.coassoc_from became coassoc_wide_from (2026-12-05)
    m = json.loads((old / "manifest.json").read_text())
    m["config"]["moods"]["coassoc_from"] = 2_000
    (old / "manifest.json").write_text(json.dumps(m))
    assert load_bundle(old).config.moods.coassoc_wide_from == 5_000
    config = tmp_path / "old.toml"
    config.write_text("[moods]\ncoassoc_from = 2000\n")
    with pytest.raises(ConfigError, match=r"coassoc_from: replaced by moods.coassoc_wide_from"):
        BuildConfig.from_file(config)


def test_existing_output_is_refused_and_left_alone(bundle_dir: Path, synthetic_csv: Path) -> None:
    before = sorted(p.name for p in bundle_dir.iterdir())
    with pytest.raises(BundleError, match="already exists"):
        build_bundle(synthetic_csv, bundle_dir, FAST_CONFIG)
    assert sorted(p.name for p in bundle_dir.iterdir()) == before


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("track_id,energy\nx,abc\n")
    with pytest.raises(CatalogError):
        build_bundle(csv, tmp_path / "out", BuildConfig())
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]


def test_publish_swaps_the_current_pointer(bundle_dir: Path, tmp_path: Path) -> None:
    other = copy(bundle_dir, tmp_path)
    link = tmp_path / "current"
    publish(bundle_dir, link)
    assert link.resolve() == bundle_dir.resolve()
    publish(other, link)
    assert link.resolve() == other.resolve()
    assert load_bundle(link).manifest["files"] == load_bundle(bundle_dir).manifest["files"]


def test_publish_never_replaces_a_file_or_a_directory(bundle_dir: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("data")
    (tmp_path / "a_dir").mkdir()
    for target in (precious, tmp_path / "a_dir", precious / "current"):
        with pytest.raises(BundleError, match=r"not a symlink|not a directory"):
            publish(bundle_dir, target)
    assert precious.read_text() == "data" and (tmp_path / "a_dir").is_dir()
    publish(bundle_dir, tmp_path / "new" / "deeper" / "current")  # missing parents are created
    assert (tmp_path / "new" / "deeper" / "current").resolve() == bundle_dir.resolve()


def test_neighbour_table_is_skipped_above_its_size_limit(synthetic_csv: Path, tmp_path: Path) -> None:
    config = FAST_CONFIG.replace(genre={"enabled": False}, index={"neighbours_max_tracks": 1000})  # 3,000 tracks
    m = build_bundle(synthetic_csv, tmp_path / "b", config)
    assert m["metrics"]["index"]["neighbour_table"].startswith(
        "skipped: 3,000 tracks, above index.neighbours_max_tracks = 1,000")
    assert "neighbours.npz" not in m["files"]
    assert load_bundle(tmp_path / "b").neighbours is None


def test_a_bundle_that_would_not_load_is_never_written(bundle_dir: Path, tmp_path: Path) -> None:
    # what musicrec index and musicrec add write through: loaded before it is renamed into place (so before any
    # --current could point at it)
    out = tmp_path / "new"
    said = rf"{out}: the bundle just written would not load.*{out}: the bundle is inconsistent: genre_oof.npz holds"
    with pytest.raises(BundleError, match=said), atomic_bundle_dir(out) as tmp:
        for p in bundle_dir.iterdir():
            shutil.copy(p, tmp / p.name)
        arrays = dict(np.load(tmp / "genre_oof.npz"))
        np.savez(tmp / "genre_oof.npz", **{**arrays, "proba": np.full_like(arrays["proba"], np.nan)})
        write_manifest(tmp, {k: v for k, v in json.loads((bundle_dir / "manifest.json").read_text()).items()
                             if k not in ("format", "format_version", "files")})
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_link_to_a_bundle_is_read_from_the_bundle_it_named_when_the_load_began(bundle_dir: Path,
                                                                                 tmp_path: Path) -> None:
    """``add --to bundles/current`` re-read files through the link after loading: a link repointed meanwhile
    made one bundle of two (another bundle's genre model beside this one's tracks) that still verified."""
    real = copy(bundle_dir, tmp_path)
    link = tmp_path / "current"
    link.symlink_to(real)
    bundle = load_bundle(link)
    assert bundle.path == real.resolve()


def test_a_bundle_path_too_long_for_the_system_is_named_short(tmp_path: Path) -> None:
    """ENAMETOOLONG was an unexpected OSError in a reloading server's log, and the client's message, cut at 400
    characters inside the echoed path, lost its reason (an audit, 2026-12-07)."""
    with pytest.raises(BundleNotFound) as err:
        load_bundle(tmp_path / ("a" * 5000))
    assert str(err.value).endswith("not a bundle directory (File name too long)") and len(str(err.value)) < 300


def test_the_folder_bundles_go_in_names_one_of_them(bundle_dir: Path, tmp_path: Path) -> None:
    """`serve --bundle bundles` said only "no manifest.json; not a bundle" (a first-hour walk, 2026-12-08)."""
    (tmp_path / "current").symlink_to(bundle_dir)
    with pytest.raises(BundleIntegrityError, match=rf"{re.escape(str(tmp_path))}: no manifest\.json; not a bundle, or "
                                                   rf"an interrupted build; it holds 1 bundle: give one of them, such "
                                                   rf"as {re.escape(str(tmp_path / 'current'))}$"):
        load_bundle(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleIntegrityError, match=r"interrupted build$"):  # no bundle in it: nothing more to say
        load_bundle(tmp_path / "empty")


def test_a_dead_builds_temporary_directory_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    """A build killed with SIGKILL (or by the OOM killer) left its .NAME.partial-* directory forever: 180 MB for a
    Spotify bundle, each time (an audit, 2026-12-08)."""
    import fcntl
    import os

    from engine._bundle import remove_stale_partials

    dead, live = tmp_path / ".v1.partial-0000dead", tmp_path / ".v2.partial-00001ive"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "tracks.npz").write_bytes(b"x" * 100)
    held = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a build holds its own while it runs
        assert remove_stale_partials(tmp_path) == [dead.name]
        assert not dead.exists() and live.exists()
    finally:
        os.close(held)
    assert remove_stale_partials(tmp_path) == [live.name]  # its build ended
    with pytest.raises(KeyboardInterrupt), atomic_bundle_dir(tmp_path / "v3") as building:
        assert building.name.startswith(".v3.partial-") and remove_stale_partials(tmp_path) == []  # locked: its own
        raise KeyboardInterrupt  # the build stops: its directory goes with it
    assert list(tmp_path.iterdir()) == []
