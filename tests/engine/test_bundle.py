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
from musicrec.cli import main
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


def test_a_tampered_file_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    bad = copy(bundle_dir, tmp_path)
    data = bytearray((bad / "tracks.npz").read_bytes())
    data[-100] ^= 0xFF
    (bad / "tracks.npz").write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"tracks.npz: checksum mismatch"):
        load_bundle(bad)


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


def test_object_arrays_are_never_unpickled(bundle_dir: Path, tmp_path: Path) -> None:
    bad = copy(bundle_dir, tmp_path)
    np.savez(bad / "moods.npz", labels=np.array([object()], dtype=object))
    m = json.loads((bad / "manifest.json").read_text())
    m["files"]["moods.npz"] = sha256_file(bad / "moods.npz")  # a crafted bundle with valid checksums
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleIntegrityError, match="refused to load"):
        load_bundle(bad)


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


@pytest.mark.parametrize("edit", ["no created_at", "created_at 12", "config a list", "a checksum a number",
                                  "no index kind", "no schema", "schema a list", "no source", "source a string",
                                  "no source sha256"])
def test_an_edited_manifest_is_refused_by_name(bundle_dir: Path, tmp_path: Path, edit: str) -> None:
    # the manifest has no checksum of its own: a hand edit must be refused, not fail later as a bare KeyError
    bad = copy(bundle_dir, tmp_path)
    m = json.loads((bad / "manifest.json").read_text())
    if edit == "no created_at":
        del m["created_at"]
    elif edit == "created_at 12":
        m["created_at"] = 12
    elif edit == "config a list":
        m["config"] = []
    elif edit == "no index kind":
        del m["metrics"]["index"]  # serve's start-up line, ServerInfo and musicrec add read it
    elif edit == "no schema":
        del m["schema"]
    elif edit == "schema a list":
        m["schema"] = []
    elif edit == "no source":
        del m["source"]
    elif edit == "source a string":
        m["source"] = "catalog.csv"
    elif edit == "no source sha256":
        del m["source"]["sha256"]  # the report (musicrec report, the console) prints it
    else:
        m["files"]["tracks.npz"] = 7
    (bad / "manifest.json").write_text(json.dumps(m))
    key = {"no created_at": "'created_at'", "created_at 12": "'created_at'", "config a list": "'config'",
           "a checksum a number": "'files' checksum table", "no index kind": "'metrics.index.kind'",
           "no schema": "'schema' is missing or not an object", "schema a list": "'schema' is missing or not an object",
           "no source": "'source' is missing or not an object",
           "source a string": "'source' is missing or not an object",
           "no source sha256": "'source.sha256' is missing or not text"}[edit]
    with pytest.raises(BundleIntegrityError, match=key):
        load_bundle(bad)


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


def rechecksum(bundle: Path, name: str) -> None:
    """What an attacker who can write the bundle can also do: make the manifest match."""
    m = json.loads((bundle / "manifest.json").read_text())
    m["files"][name] = sha256_file(bundle / name)
    (bundle / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize(("name", "payload"), [
    ("index.faiss", b"garbage" * 10), ("genre_model.ubj", b"{not ubj"), ("moods.json", b"[1, 2"),
    ("preprocess.npz", b"PK\x03\x04junk"), ("tracks.npz", b""),
])
def test_crafted_files_with_matching_checksums_are_refused(bundle_dir: Path, tmp_path: Path, name: str,
                                                            payload: bytes) -> None:
    bad = copy(bundle_dir, tmp_path)
    (bad / name).write_bytes(payload)
    rechecksum(bad, name)
    with pytest.raises(BundleIntegrityError, match=rf"{name}: (cannot be read|not an npz archive)"):
        load_bundle(bad)


def test_an_index_of_another_kind_than_the_config_says_is_named(bundle_dir: Path, tmp_path: Path) -> None:
    """An edited index.kind gave "'IndexFlatIP' object has no attribute 'hnsw'" (an audit, 2026-12-08)."""
    bad = copy(bundle_dir, tmp_path)
    m = json.loads((bad / "manifest.json").read_text())
    m["config"]["index"]["kind"] = "hnsw"
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleIntegrityError, match=r"index\.faiss: cannot be read \(ValueError: the file holds a FAISS "
                                                  r"IndexFlatIP, but the bundle's config says index\.kind = 'hnsw'\)"):
        load_bundle(bad)


def test_truncated_and_swapped_files_are_refused(bundle_dir: Path, tmp_path: Path, synthetic_csv: Path) -> None:
    truncated = copy(bundle_dir, tmp_path / "t")
    data = (truncated / "index.faiss").read_bytes()
    (truncated / "index.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleIntegrityError, match=r"index\.faiss: checksum mismatch"):
        load_bundle(truncated)
    other = tmp_path / "other"
    build_bundle(synthetic_csv, other, FAST_CONFIG.replace(preprocess={"pca_components": 4}))
    swapped = copy(bundle_dir, tmp_path / "s")
    shutil.copy(other / "index.faiss", swapped / "index.faiss")
    with pytest.raises(BundleIntegrityError, match=r"index\.faiss: checksum mismatch"):
        load_bundle(swapped)
    rechecksum(swapped, "index.faiss")  # even with a matching manifest, the shapes give it away
    with pytest.raises(BundleIntegrityError, match=r"inconsistent: .*index holds .* vectors of 4 dims"):
        load_bundle(swapped)


def test_inconsistent_neighbour_table_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    bad = copy(bundle_dir, tmp_path)
    table = np.load(bad / "neighbours.npz")
    rows = table["rows"].copy()
    rows[0, 0] = 10**6
    np.savez(bad / "neighbours.npz", **{**dict(table), "rows": rows})
    rechecksum(bad, "neighbours.npz")
    with pytest.raises(BundleIntegrityError, match="neighbour table does not match"):
        load_bundle(bad)


def _edited(bundle_dir: Path, tmp_path: Path, name: str, key: str, edit: object) -> Path:
    """A copy whose ``name`` array ``key`` is ``edit(array)``, re-signed in the manifest."""
    bad = copy(bundle_dir, tmp_path / f"{name}-{key}")
    arrays = dict(np.load(bad / name))
    arrays[key] = edit(arrays[key].copy())  # type: ignore[operator]
    np.savez(bad / name, **arrays)
    rechecksum(bad, name)
    return bad


def nan_first(a: np.ndarray) -> np.ndarray:
    a.flat[0] = np.nan
    return a


def own_neighbour(rows: np.ndarray) -> np.ndarray:
    rows[:, 0] = np.arange(len(rows))
    return rows


def reversed_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors[::-1].copy()


@pytest.mark.parametrize(("name", "key", "edit", "said"), [
    ("tracks.npz", "vectors", nan_first, "vectors hold values that are not finite"),
    ("tracks.npz", "vectors", reversed_rows, "the index holds other vectors than the track table"),
    ("neighbours.npz", "rows", own_neighbour, "neighbour table lists a track as its own neighbour"),
])
def test_crafted_values_the_queries_would_serve_are_refused_at_load(bundle_dir: Path, tmp_path: Path, name: str,
                                                                    key: str, edit: object, said: str) -> None:
    """Files changed and re-signed in the manifest loaded and served wrong answers: NaN vectors, an index over
    other vectors than the table's, a table listing the seed as its own neighbour (an audit, 2026-12-08)."""
    with pytest.raises(BundleIntegrityError, match=rf"the bundle is inconsistent: .*{re.escape(said)}"):
        load_bundle(_edited(bundle_dir, tmp_path, name, key, edit))


def test_neighbour_table_is_skipped_above_its_size_limit(synthetic_csv: Path, tmp_path: Path) -> None:
    config = FAST_CONFIG.replace(genre={"enabled": False}, index={"neighbours_max_tracks": 1000})  # 3,000 tracks
    m = build_bundle(synthetic_csv, tmp_path / "b", config)
    assert m["metrics"]["index"]["neighbour_table"].startswith(
        "skipped: 3,000 tracks, above index.neighbours_max_tracks = 1,000")
    assert "neighbours.npz" not in m["files"]
    assert load_bundle(tmp_path / "b").neighbours is None


@pytest.mark.parametrize("name", ["genre_oof.npz", "moodmap.npz"])
def test_non_finite_probabilities_or_map_positions_are_named_as_such(bundle_dir: Path, tmp_path: Path,
                                                                      name: str) -> None:
    bad = copy(bundle_dir, tmp_path)
    arrays = dict(np.load(bad / name))
    key = "proba" if name == "genre_oof.npz" else "xy"
    values = arrays[key].copy()
    values[3, :2] = np.inf
    np.savez(bad / name, **{**arrays, key: values})
    rechecksum(bad, name)
    said = "holds 2 non-finite probabilities" if key == "proba" else r"places 1 of its [\d,]+ tracks at a non-finite"
    with pytest.raises(BundleIntegrityError, match=said) as info:
        load_bundle(bad)
    assert "shape" not in str(info.value) and "does not match" not in str(info.value)


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


EDITS = {  # a hand edit that is still valid JSON, and what the refusal names
    "moods a list": (("metrics", "moods"), [1, 2], "metrics.moods is a list, expected an object"),
    "genre a string": (("metrics", "genre"), "xgboost", "metrics.genre is text, expected an object"),
    "unknown mood cells": (("metrics", "moods", "coassoc", "cells"), "hexagons",
                           "metrics.moods.coassoc.cells is 'hexagons', expected one of 'k-means', 'octants'"),
    "a count as text": (("counts", "rows_read"), "many", "counts.rows_read is text, expected a whole number"),
    "dropped a list": (("counts", "dropped"), [], "counts.dropped is a list, expected an object"),
    "a timing as text": (("timings_seconds", "ingest"), "fast", "timings_seconds.ingest is text, expected a number"),
    "no pca": (("metrics", "pca"), None, "metrics.pca is null, expected an object"),
    "genre rounds missing": (("metrics", "genre", "rounds"), KeyError, "metrics.genre.rounds is missing"),
}


@pytest.mark.parametrize("edit", EDITS)
def test_a_manifest_edit_the_report_cannot_read_is_refused_at_load_by_name(
        bundle_dir: Path, tmp_path: Path, edit: str, capsys: pytest.CaptureFixture[str]) -> None:
    keys, value, said = EDITS[edit]
    bad = copy(bundle_dir, tmp_path)
    m = json.loads((bad / "manifest.json").read_text())
    parent = m
    for key in keys[:-1]:
        parent = parent.setdefault(key, {})
    if value is KeyError:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleIntegrityError, match=re.escape(f"manifest.json: {said}; the manifest was edited")):
        load_bundle(bad)
    code, err = main(["report", str(bad)]), capsys.readouterr().err  # the report never meets it: exit 1, no traceback
    assert code == 1 and err.startswith("musicrec report: error: ") and said in err and "Traceback" not in err, err


@pytest.mark.parametrize(("keys", "value"), [
    (("metrics", "genre", "top1"), None), (("metrics", "genre", "top1"), "high"),
    (("metrics", "similar", "queries"), "many"), (("metrics", "genre", "families"), None),
    (("metrics", "moods", "spread"), {"valence": {}}),
])
def test_a_figure_edited_into_another_type_is_refused_by_the_report_not_a_traceback(
        bundle_dir: Path, tmp_path: Path, keys: tuple[str, ...], value: object,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The shape check covers the keys the report reads as structure; a figure it prints edited into text or null
    was a TypeError (exit 70) from a format string (an audit, 2026-12-07). The text report names the damage."""
    bad = copy(bundle_dir, tmp_path)
    m = json.loads((bad / "manifest.json").read_text())
    parent = m
    for key in keys[:-1]:
        parent = parent[key]
    parent[keys[-1]] = value
    (bad / "manifest.json").write_text(json.dumps(m))
    code, err = main(["report", str(bad)]), capsys.readouterr().err
    assert code == 1 and err.startswith(f"musicrec report: error: {bad / 'manifest.json'}: the report cannot read it (")
    assert "if the manifest was edited or is damaged, rebuild the bundle" in err and "Traceback" not in err, err


def test_a_directory_in_place_of_a_bundle_file_is_named(bundle_dir: Path, tmp_path: Path) -> None:
    """It was an IsADirectoryError from the checksum's open (an audit, 2026-12-07)."""
    bad = copy(bundle_dir, tmp_path)
    (bad / "moods.json").unlink()
    (bad / "moods.json").mkdir()
    with pytest.raises(BundleIntegrityError, match=r"moods\.json: is not a regular file"):
        load_bundle(bad)
    other = copy(bundle_dir, tmp_path / "other")
    (other / "manifest.json").unlink()
    (other / "manifest.json").mkdir()
    with pytest.raises(BundleIntegrityError, match=r"manifest\.json: is not a regular file \(a directory\), not the "
                                                  r"bundle's manifest"):
        load_bundle(other)


def test_a_manifest_or_file_that_is_not_the_bundles_own_regular_file_is_refused_without_reading_it(
        bundle_dir: Path, tmp_path: Path) -> None:
    """A FIFO for manifest.json hung every load (and a server's reloads, under the holder's lock), a link to
    /dev/zero filled the memory, a deep manifest was a RecursionError, and a file linked from outside the bundle
    loaded (its target can change after its checksum): an audit, 2026-12-08."""
    import os

    fifo = copy(bundle_dir, tmp_path / "fifo")
    (fifo / "manifest.json").unlink()
    os.mkfifo(fifo / "manifest.json")
    with pytest.raises(BundleIntegrityError, match=r"manifest\.json: is not a regular file \(a FIFO\)"):
        load_bundle(fifo)
    zero = copy(bundle_dir, tmp_path / "zero")
    (zero / "manifest.json").unlink()
    (zero / "manifest.json").symlink_to("/dev/zero")
    with pytest.raises(BundleIntegrityError, match=r"manifest\.json: is a link, not the bundle's own manifest"):
        load_bundle(zero)
    deep = copy(bundle_dir, tmp_path / "deep")
    (deep / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleIntegrityError, match=r"manifest\.json: nested deeper than JSON's reader goes"):
        load_bundle(deep)
    linked = copy(bundle_dir, tmp_path / "linked")
    outside = tmp_path / "moods.json"
    shutil.copy(linked / "moods.json", outside)  # the same bytes: the checksum matches
    (linked / "moods.json").unlink()
    (linked / "moods.json").symlink_to(outside)
    with pytest.raises(BundleIntegrityError, match=r"moods\.json: is a link, not a file of the bundle's own"):
        load_bundle(linked)


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
