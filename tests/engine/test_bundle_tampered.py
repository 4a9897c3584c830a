"""A bundle changed after its build, by hand or by an attacker who re-signs the manifest: every tampered,
crafted, edited or misplaced file is refused at load with the file named, never served and never a traceback
(tests/engine/test_bundle.py: the bundle as built, written and published)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import BundleIntegrityError, build_bundle, load_bundle
from engine._bundle import sha256_file
from musicrec.cli import main
from tests.conftest import FAST_CONFIG
from tests.engine.test_bundle import copy


def test_a_tampered_file_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    bad = copy(bundle_dir, tmp_path)
    data = bytearray((bad / "tracks.npz").read_bytes())
    data[-100] ^= 0xFF
    (bad / "tracks.npz").write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"tracks.npz: checksum mismatch"):
        load_bundle(bad)


def test_object_arrays_are_never_unpickled(bundle_dir: Path, tmp_path: Path) -> None:
    bad = copy(bundle_dir, tmp_path)
    np.savez(bad / "moods.npz", labels=np.array([object()], dtype=object))
    m = json.loads((bad / "manifest.json").read_text())
    m["files"]["moods.npz"] = sha256_file(bad / "moods.npz")  # a crafted bundle with valid checksums
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleIntegrityError, match="refused to load"):
        load_bundle(bad)


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
