"""musicrec add: a new bundle version without a refit.

"Equal to a full rebuild" is tested against what it can honestly mean: a bundle of the new catalog
computed from scratch *with the same fitted parts* (preprocessing, moods, classifier): every
vector embedded again, a new flat index, the whole neighbour table by the build's own function.
The update must match it array for array and answer every query the same. (A real full build refits
scaling, PCA, moods and the classifier, so its answers differ by design; the drift check says when.)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import (
    GenreConfig,
    Recommender,
    Seed,
    SimilarQuery,
    TrackFilter,
    build_bundle,
    load_bundle,
    publish,
    synthetic_catalog,
)
from engine._build import _neighbour_table
from engine._bundle import sha256_file
from engine._index import build_index
from engine._update import add_tracks
from musicrec.cli import main
from tests.conftest import FAST_CONFIG

CONFIG = FAST_CONFIG.replace(genre=dataclasses.asdict(GenreConfig(max_rounds=8, early_stopping_rounds=3, tune=False)))


@pytest.fixture(scope="module")
def parts(synthetic_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Catalog X (most rows), the rows Y to add later, and bundle A built on X."""
    root = tmp_path_factory.mktemp("update")
    frame = pd.read_csv(synthetic_csv)
    # ~100 tracks of one genre arrive later: the tracks near them are recomputed, the others not
    ids = frame.loc[frame["track_genre"] == "metal", "track_id"].drop_duplicates()
    later = set(ids.sample(frac=0.4, random_state=1))
    frame[~frame["track_id"].isin(later)].to_csv(root / "x.csv", index=False)
    frame[frame["track_id"].isin(later)].to_csv(root / "y.csv", index=False)
    build_bundle(root / "x.csv", root / "a", CONFIG)
    return {"root": root, "x": root / "x.csv", "y": root / "y.csv", "a": root / "a"}


@pytest.fixture(scope="module")
def updated(parts: dict[str, Path]) -> Path:
    a = load_bundle(parts["a"])
    gone = [str(t) for t in a.tracks.ids[::150]]  # about 20 tracks removed in the same update
    (parts["root"] / "gone.txt").write_text("\n".join(gone) + "\nnot-a-track\n")
    assert main(["add", str(parts["y"]), "--to", str(parts["a"]), "--out", str(parts["root"] / "b"),
                 "--remove-ids", str(parts["root"] / "gone.txt"), "--quiet"]) == 0
    return parts["root"] / "b"


def reference(b: Path):  # type: ignore[no-untyped-def]
    """The new catalog computed from scratch with the bundle's fitted parts."""
    bundle = load_bundle(b)
    prep, config = bundle.preprocessor, bundle.config
    vectors = prep.embed(bundle.tracks.features).astype(np.float32)
    index = build_index(vectors, config.index)
    weight = bundle.neighbours.genre_weight
    proba = bundle.genre_proba if weight > 0 else None  # what by-id queries rank with (engine/_crossfit.py)
    table = _neighbour_table(bundle.tracks, config, index, vectors, proba, weight, lambda _m: None)
    return bundle, vectors, index, table


def test_the_update_equals_a_rebuild_with_the_same_fitted_parts(updated: Path, parts: dict[str, Path]) -> None:
    bundle, vectors, _index, table = reference(updated)
    a = load_bundle(parts["a"])
    u = bundle.manifest["update"]
    assert len(bundle.tracks) == len(a.tracks) - u["removed"] + u["added"] and u["removed"] == len(a.tracks.ids[::150])
    np.testing.assert_array_equal(bundle.vectors, vectors)
    t = bundle.neighbours
    assert t is not None
    np.testing.assert_array_equal(t.rows, table["rows"])
    np.testing.assert_array_equal(t.scores, table["scores"])
    np.testing.assert_array_equal(t.consumed, table["consumed"])
    np.testing.assert_array_equal(t.lengths, table["lengths"])
    blocks = np.load(updated / "neighbour_blocks.npz")["rows"]
    np.testing.assert_array_equal(blocks, table["block_rows"])
    # moods: every track's label is what the fitted exemplars give it
    points = bundle.moods.space.project(bundle.preprocessor.standardize(bundle.tracks.features))
    np.testing.assert_array_equal(bundle.moods.labels_, bundle.moods.assign_points(points)[0])
    # genre probabilities: kept tracks keep their out-of-fold rows; a new track, seen by no model, the shipped one's
    keep = ~np.isin(a.tracks.ids, a.tracks.ids[::150])
    n_kept = int(keep.sum())
    assert a.genre_proba is not None and bundle.genre_proba is not None and bundle.classifier is not None
    np.testing.assert_array_equal(bundle.genre_proba[:n_kept], a.genre_proba[keep])
    fresh = bundle.classifier.predict_proba(bundle.preprocessor.transform_features(bundle.tracks.features[n_kept:]))
    np.testing.assert_array_equal(bundle.genre_proba[n_kept:], fresh.astype(np.float16).astype(np.float32))
    counts = bundle.manifest["update"]["neighbour_table"]
    assert 0 < counts["recomputed"] < len(bundle.tracks)  # the table was updated, not rebuilt
    # entries merged with the new tracks, without a search; the new tracks, and (here most) blocks that
    # lost one of the 20 removed tracks, searched
    assert counts["recomputed_by_merge"] > 100 and counts["recomputed_by_search"] >= u["added"], counts


def test_every_answer_equals_the_rebuilds(updated: Path) -> None:
    bundle, vectors, index, table = reference(updated)
    from engine._table import NeighbourTable

    ref = dataclasses.replace(bundle, vectors=vectors, index=index, neighbours=NeighbourTable(
        rows=table["rows"], scores=table["scores"], consumed=table["consumed"], lengths=table["lengths"],
        genre_weight=float(table["genre_weight"]), block=int(table["block"])))
    got, want = Recommender(bundle), Recommender(ref)
    n = len(bundle.tracks)
    new_rows = range(n - int(bundle.manifest["update"]["added"]), n)
    for row in [*range(0, n, 97), *new_rows]:
        seed = Seed(track_id=got.ids[row])
        for q in (SimilarQuery(seeds=[seed], k=20),  # the neighbour table
                  SimilarQuery(seeds=[seed], k=15, offset=30, filter=TrackFilter(exclude_genres=["pop"])),
                  SimilarQuery(seeds=[seed], k=10, diversity=0.5, max_per_artist=1)):
            a, b = got.similar(q), want.similar(q)
            assert a.rows.tolist() == b.rows.tolist() and a.scores.tolist() == b.scores.tolist(), (row, q)


def test_an_update_of_an_update_equals_a_rebuild(updated: Path, parts: dict[str, Path], tmp_path: Path) -> None:
    """The blocks an update writes serve the next update: tracks of every genre added to the updated
    version (changed entries merged from its blocks) give the rebuild's table again."""
    frame = pd.read_csv(parts["x"]).drop_duplicates("track_id").sample(40, random_state=5)
    frame["track_id"] = [f"again{i}" for i in range(len(frame))]
    frame["danceability"] = (frame["danceability"] * 0.98).clip(0, 1)  # near their originals, not on them
    frame.to_csv(tmp_path / "z.csv", index=False)
    assert main(["add", str(tmp_path / "z.csv"), "--to", str(updated), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    bundle, _vectors, _index, table = reference(tmp_path / "c")
    assert bundle.manifest["update"]["added"] == 40
    for key in ("rows", "scores", "consumed", "lengths"):
        np.testing.assert_array_equal(getattr(bundle.neighbours, key), table[key], key)
    np.testing.assert_array_equal(np.load(tmp_path / "c" / "neighbour_blocks.npz")["rows"], table["block_rows"])
    assert bundle.manifest["update"]["neighbour_table"]["recomputed_by_merge"] > 100


def test_a_bundle_without_blocks_is_updated_by_searching_to_the_same_entries(
        updated: Path, parts: dict[str, Path], tmp_path: Path) -> None:
    """A bundle without the blocks file (built before it was written): every kept track's first fetch
    is searched to find the entries the update reaches, and those are searched again; same entries."""
    old = tmp_path / "a"
    shutil.copytree(parts["a"], old)
    (old / "neighbour_blocks.npz").unlink()
    m = json.loads((old / "manifest.json").read_text())
    del m["files"]["neighbour_blocks.npz"]
    (old / "manifest.json").write_text(json.dumps(m))
    assert main(["add", str(parts["y"]), "--to", str(old), "--out", str(tmp_path / "b"),
                 "--remove-ids", str(parts["root"] / "gone.txt"), "--quiet"]) == 0
    searched, merged = load_bundle(tmp_path / "b"), load_bundle(updated)
    for key in ("rows", "scores", "consumed", "lengths"):
        np.testing.assert_array_equal(getattr(searched.neighbours, key), getattr(merged.neighbours, key), key)
    assert "neighbour_blocks.npz" not in searched.manifest["files"]
    counts = searched.manifest["update"]["neighbour_table"]
    assert counts["recomputed_by_merge"] == 0 and counts["recomputed_by_search"] == counts["recomputed"], counts


def test_a_crafted_blocks_file_is_refused_with_its_name(updated: Path, parts: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "a"
    shutil.copytree(parts["a"], old)
    rows = np.load(old / "neighbour_blocks.npz")["rows"]
    np.savez(old / "neighbour_blocks.npz", rows=np.where(rows >= 0, -7, rows))  # rows that point nowhere
    m = json.loads((old / "manifest.json").read_text())
    m["files"]["neighbour_blocks.npz"] = sha256_file(old / "neighbour_blocks.npz")  # checksums that match
    (old / "manifest.json").write_text(json.dumps(m))
    # a bundle that cannot be updated: the command fails (exit 1, as for any refused bundle) naming the file
    assert main(["add", str(parts["y"]), "--to", str(old), "--out", str(tmp_path / "b"), "--quiet"]) == 1
    assert "neighbour_blocks.npz: not the table's blocks" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_report_counts_and_refuses(updated: Path, parts: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    manifest = load_bundle(updated).manifest
    u = manifest["update"]
    assert u["removed"] > 15 and u["remove_ids_not_found"] == 1 and u["added"] > 50
    assert u["remove_ids_not_found_shown"] == ["not-a-track"]  # named: which takedown was not applied
    assert u["drift"]["rebuild_due"] is False, u["drift"]
    # `musicrec report` says what the update changed, and that the rest is the last full build's
    from engine import format_report

    report = format_report(manifest)
    assert f"update   {u['added']:,} tracks added and {u['removed']:,} removed by musicrec add" in report
    assert "time figures below are the last full build's" in report
    # the same tracks again: every one is refused, and nothing changes
    assert main(["add", str(parts["y"]), "--to", str(updated), "--out", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nothing to change" in err and not (tmp_path / "c").exists()
    first = str(pd.read_csv(parts["y"])["track_id"].iloc[0])
    assert f"already in bundle: {first}, " in err and "{" not in err  # the refused ids, not a dict
    # one known track and one new one: the summary names the refused id, and the dropped row by its number
    y = pd.read_csv(parts["y"]).drop_duplicates("track_id").iloc[:2].copy()
    y.loc[y.index[1], "track_id"] = "brand-new"
    y = pd.concat([y, y.iloc[[1]].assign(track_id="no-tempo", tempo=float("nan")),
                   y.iloc[[1]].assign(tempo=y["tempo"].iloc[1] + 7)])  # "brand-new" again, at another tempo
    y.to_csv(tmp_path / "two.csv", index=False)
    assert main(["add", str(tmp_path / "two.csv"), "--to", str(updated), "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert f"refused 1 already in bundle: {first}" in out and "dropped 1 (missing or non-finite tempo: 1, data row 3)" in out
    # the second row's tempo was dropped and the report said only "1 rows merged by id" (index said more)
    assert "1 rows merged by id" in out and "id conflicts: 1 rows whose features differ from the first row" in out
    assert load_bundle(tmp_path / "d").manifest["update"]["ingest"]["id_conflicts"] == 1


def test_the_drift_check_calls_for_a_rebuild(parts: dict[str, Path], tmp_path: Path) -> None:
    y = pd.read_csv(parts["y"])
    y["track_id"] = "drift-" + y["track_id"].astype(str)
    y["loudness"] = y["loudness"] + 40.0  # far outside the fitted scaling
    y["tempo"] = y["tempo"] * 3
    y.to_csv(tmp_path / "loud.csv", index=False)
    manifest = add_tracks(parts["a"], tmp_path / "d", csv=tmp_path / "loud.csv")
    drift = manifest["update"]["drift"]
    assert drift["rebuild_due"] and any("sd of the fitted scaling" in r for r in drift["reasons"]), drift


def test_a_value_beyond_float32_is_dropped_and_current_moves_to_a_bundle_that_loads(
        parts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # -1e200 is finite but not in float32 (the index's, the classifier's): once, the update kept it, repointed
    # --current, and the bundle it pointed at would not load (its new track's genre probabilities were NaN)
    y = pd.read_csv(parts["y"]).drop_duplicates("track_id").iloc[:30].copy()
    y["track_id"] = "f32-" + y["track_id"].astype(str)
    y.loc[y.index[3], "loudness"] = -1e200
    y.to_csv(tmp_path / "huge.csv", index=False)
    link = tmp_path / "current"
    publish(parts["a"], link)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # and no raw numpy warning reaches the user
        assert main(["add", str(tmp_path / "huge.csv"), "--to", str(link), "--out", str(tmp_path / "b"),
                     "--current", str(link)]) == 0
    out = capsys.readouterr().out
    assert "(29 added" in out and "dropped 1 (missing or non-finite loudness: 1, data row 4)" in out, out
    assert link.resolve() == (tmp_path / "b").resolve()
    bundle = load_bundle(link)
    assert bundle.genre_proba is not None and np.isfinite(bundle.genre_proba).all()
    assert main(["report", str(link)]) == 0


def test_an_add_leaves_current_alone_when_another_repointed_it_meanwhile(
        parts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Two `add --to current --current current` at once both built on A, and the second to finish repointed the
    link over the first, whose tracks were then in no live bundle, without a word (an audit, 2026-12-08)."""
    import engine

    link = tmp_path / "current"
    publish(parts["a"], link)
    other = tmp_path / "other"
    shutil.copytree(parts["a"], other)
    real_add = engine.add_tracks

    def add_while_another_finishes(*args: object, **kwargs: object) -> dict:
        manifest = real_add(*args, **kwargs)
        publish(other, link)  # the other update's publish, between this one's load and its own
        return manifest

    monkeypatch.setattr(engine, "add_tracks", add_while_another_finishes)
    code = main(["add", str(parts["y"]), "--to", str(link), "--out", str(tmp_path / "b"), "--current", str(link),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and f"the bundle was written to {tmp_path / 'b'}, but {link} was repointed while this one " \
                         f"was made (it points at {other.resolve()} now, not at {parts['a'].resolve()})" in err, err
    assert link.resolve() == other.resolve() and load_bundle(tmp_path / "b").manifest["update"]["base"]["path"] == \
        str(parts["a"].resolve())  # the bundle it read, not the link's name


def test_a_track_far_beyond_the_fitted_scaling_is_refused_by_id(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # within float32, but 3e38 in a mood feature whose catalog spread is ~0.2 overflows the float32 mood point
    synthetic_catalog(300, seed=5, exact_duplicates=0, bad_rows=0).to_csv(tmp_path / "x.csv", index=False)
    build_bundle(tmp_path / "x.csv", tmp_path / "a", FAST_CONFIG.replace(genre={"enabled": False}, schema={"rules": {}}))
    new = synthetic_catalog(6, seed=6, exact_duplicates=0, bad_rows=0, multi_genre_share=0)
    new["track_id"] = [f"new{i}" for i in range(len(new))]
    new["danceability"] = new["danceability"].astype(float)
    new.loc[1, "danceability"] = 3e38
    new.to_csv(tmp_path / "new.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["add", str(tmp_path / "new.csv"), "--to", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                     "--quiet"]) == 0
    assert "refused 1 outside the fitted scaling: new1" in capsys.readouterr().out
    bundle = load_bundle(tmp_path / "b")
    assert "new1" not in bundle.row_of and "new2" in bundle.row_of
    assert bundle.manifest["update"]["refused"] == {"outside_the_fitted_scaling": 1}


def test_removing_every_track_or_an_ids_file_that_is_not_utf8_is_a_clear_error(
        small_bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = load_bundle(small_bundle_dir).tracks.ids
    (tmp_path / "all.txt").write_text("\n".join(map(str, ids)) + "\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    for name, said in (("all.txt", f"take every one of the bundle's {len(ids):,} tracks and no track is added: "
                                   "that would leave an empty catalog"),
                       ("latin1.txt", f"--remove-ids {tmp_path / 'latin1.txt'}: not UTF-8 text (byte 3")):
        assert main(["add", "--to", str(small_bundle_dir), "--out", str(tmp_path / "b"), "--remove-ids",
                     str(tmp_path / name), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("musicrec add: error: ") and said in err and "Traceback" not in err, err
        assert not (tmp_path / "b").exists()


def test_a_track_exactly_at_the_fitted_mean_is_refused_by_id_and_the_rest_are_added(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # its vector has no direction (no cosine to any track): once, it failed the whole update without naming it
    synthetic_catalog(300, seed=5, exact_duplicates=0, bad_rows=0).to_csv(tmp_path / "x.csv", index=False)
    config = FAST_CONFIG.replace(genre={"enabled": False}, schema={"rules": {}, "transforms": {}})
    build_bundle(tmp_path / "x.csv", tmp_path / "a", config)
    prep = load_bundle(tmp_path / "a").preprocessor
    new = synthetic_catalog(4, seed=6, exact_duplicates=0, bad_rows=0, multi_genre_share=0)
    new["track_id"] = [f"new{i}" for i in range(len(new))]
    for j, name in enumerate(prep.feature_names):
        new[name] = new[name].astype(float)
        new.loc[2, name] = prep.mean_[j]
    assert not prep.embed(new[list(prep.feature_names)].to_numpy(float)[2:3]).any()  # the row is at the mean
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["add", str(tmp_path / "new.csv"), "--to", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    assert "refused 1 exactly at the fitted mean: new2" in capsys.readouterr().out
    bundle = load_bundle(tmp_path / "b")
    assert "new2" not in bundle.row_of and {"new0", "new1", "new3"} <= set(bundle.row_of)
    assert bundle.manifest["update"]["refused"] == {"exactly_at_the_fitted_mean": 1}
    assert bundle.mood_map is not None and np.isfinite(bundle.mood_map.xy).all()


def metadata_case(tmp_path: Path, name: str, **columns: object) -> Path:
    """Six new tracks (ids new0..new5) with ``columns`` set as the CSV's text, written to ``name``."""
    new = synthetic_catalog(6, seed=6, exact_duplicates=0, bad_rows=0, multi_genre_share=0)
    new["track_id"] = [f"new{i}" for i in range(len(new))]
    for column, value in columns.items():
        new[column] = value
    new.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def test_added_metadata_is_read_as_the_bundle_types_it(small_bundle_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # the added file's columns were typed from their own cells, then cast to the bundle's types: a column of blank
    # flags crashed the update, a blank popularity was stored as -1.0 and an album named "7" as "7.0"
    meta = load_bundle(small_bundle_dir).tracks.metadata
    assert (meta["explicit"].dtype, meta["popularity"].dtype, meta["album_name"].dtype) == (np.int8, np.float64, object)
    csv = metadata_case(tmp_path, "typed.csv", explicit="", popularity=["1", "0", "", " 7 ", "nan", ""],
                        album_name="7", track_name=["0", "1", "true", "1e3", "x", "007"])
    assert main(["add", str(csv), "--to", str(small_bundle_dir), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    bundle = load_bundle(tmp_path / "b")
    rows = [bundle.row_of[f"new{i}"] for i in range(6)]
    added = {c: v[rows] for c, v in bundle.tracks.metadata.items()}
    assert added["explicit"].dtype == np.int8 and (added["explicit"] == -1).all()  # unknown, not an error
    assert np.array_equal(added["popularity"], [1, 0, np.nan, 7, np.nan, np.nan], equal_nan=True)
    assert added["album_name"].tolist() == ["7"] * 6  # text as written, never through a float
    assert added["track_name"].tolist() == ["0", "1", "true", "1e3", "x", "007"]
    # a whole column blank is the bundle's type too: unknown numbers, not a crash
    csv = metadata_case(tmp_path, "blank.csv", popularity="", explicit="TRUE")
    assert main(["add", str(csv), "--to", str(small_bundle_dir), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    bundle = load_bundle(tmp_path / "c")
    rows = [bundle.row_of[f"new{i}"] for i in range(6)]
    assert np.isnan(bundle.tracks.metadata["popularity"][rows]).all()
    assert (bundle.tracks.metadata["explicit"][rows] == 1).all()
    # a cell the bundle's type cannot hold is an error naming the file, its data row and the column
    for column, cells, said in (
            ("explicit", ["", "", "", "yes", "", ""], "holds flags (true/false, 1/0) in the bundle but has 1 other "
                                                      "value(s) (data row 4: 'yes')"),
            ("explicit", "maybe", "holds flags (true/false, 1/0) in the bundle but has 6 other value(s) (data row 1: "
                                  "'maybe', data row 2: 'maybe', data row 3: 'maybe')"),
            ("popularity", ["1", "0", "high", "", "2", "3"], "holds numbers in the bundle but has 1 other value(s) "
                                                             "(data row 3: 'high')"),
            ("popularity", "high", "holds numbers in the bundle but has 6 other value(s)")):
        csv = metadata_case(tmp_path, "bad.csv", **{column: cells})
        assert main(["add", str(csv), "--to", str(small_bundle_dir), "--out", str(tmp_path / "d"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"musicrec add: error: {csv}: metadata column {column!r} {said}"), err
        assert "Traceback" not in err and not (tmp_path / "d").exists()


def test_add_refuses_qdrant_options_without_qdrant_and_a_directory_for_its_csv(
        small_bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = metadata_case(tmp_path, "new.csv")
    # they were ignored: the bundle was written and nothing said --keep 0 or --timeout nan meant nothing
    assert main(["add", str(csv), "--to", str(small_bundle_dir), "--out", str(tmp_path / "b"), "--alias", "foo",
                 "--keep", "0", "--batch", "-5", "--timeout", "nan", "--api-key-env", "NOPE", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("musicrec add: error: --alias, --keep, --batch, --api-key-env, --timeout apply with "
                          "--qdrant URL or --qdrant-path DIR only"), err
    assert not (tmp_path / "b").exists()
    assert main(["add", str(csv), "--to", str(small_bundle_dir), "--out", str(tmp_path / "b"), "--keep", "3",
                 "--quiet"]) == 2
    assert "error: --keep applies with --qdrant URL" in capsys.readouterr().err
    assert main(["add", str(csv), "--to", str(small_bundle_dir), "--out", str(tmp_path / "b"), "--keep", "2",
                 "--timeout", "30", "--quiet"]) == 2  # at their default values: accepted and ignored, before
    assert "error: --keep, --timeout apply with --qdrant URL" in capsys.readouterr().err
    # a directory given as the CSV was "no such file"
    assert main(["add", str(tmp_path), "--to", str(small_bundle_dir), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert f"musicrec add: error: {tmp_path}: is a directory, not a CSV file" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_base_manifest_edited_where_add_reads_it_is_refused_or_not_read(updated: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An audit (2026-12-07) edited the base's manifest where add reads it: a null neighbour-table section was a
    TypeError (exit 70), and an emptied or null ``since_full_build`` a KeyError or AttributeError in the drift check.
    The drift counts are refused at load, naming the key; the table's facts are read from the table itself."""
    import json
    import shutil

    (tmp_path / "more.txt").write_text(str(load_bundle(updated).tracks.ids[0]) + "\n")  # one track to remove
    for key, value, said in (("since_full_build", {}, "update.since_full_build.added is missing"),
                             ("since_full_build", None, "update.since_full_build is null, expected an object")):
        base = tmp_path / "base"
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(updated, base)
        manifest = json.loads((base / "manifest.json").read_text(encoding="utf-8"))
        manifest["update"][key] = value
        (base / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        assert main(["add", "--to", str(base), "--out", str(tmp_path / "out"), "--remove-ids",
                     str(tmp_path / "more.txt"), "--quiet"]) == 1
        err = capsys.readouterr().err
        assert f"{base / 'manifest.json'}: {said}; the manifest was edited" in err and "Traceback" not in err, err
    manifest = json.loads((updated / "manifest.json").read_text(encoding="utf-8"))
    facts = manifest["metrics"]["index"]["neighbour_table"]
    manifest["metrics"]["index"]["neighbour_table"] = None
    shutil.rmtree(base)
    shutil.copytree(updated, base)
    (base / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert main(["add", "--to", str(base), "--out", str(tmp_path / "out"), "--remove-ids", str(tmp_path / "more.txt"),
                 "--quiet"]) == 0
    written = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["metrics"]["index"]
    assert {k: v for k, v in written["neighbour_table"].items() if k != "tracks_answered_live"} == \
        {k: v for k, v in facts.items() if k != "tracks_answered_live"}
