"""The CLI end to end: success paths, and every bad input ending with a clear message and exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import load_bundle, synthetic_catalog
from musicrec.cli import main

FAST = ["--quiet", "--seed", "0"]


def fast_toml(*, stability: bool = False) -> str:
    """A quick build's configuration, without the moods' stability check (its refits) unless ``stability``."""
    return ("[moods]\nfit_sample = 3000\nmin_cluster_size = 40\nmin_samples = 5\n"
            + ("" if stability else "stability_subsample = 0\n")
            + "[genre]\nmax_rounds = 15\nearly_stopping_rounds = 5\ntune = false\n")


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text(fast_toml())
    return path


def no_partials(root: Path) -> bool:
    return not any(".partial-" in p.name for p in root.rglob("*"))


def test_index_writes_bundle_report_json_and_current(
    tmp_path: Path, synthetic_csv: Path, fast_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "b", tmp_path / "report.json"
    code = main(["index", str(synthetic_csv), "--out", str(out), "--config", str(fast_config), *FAST,
                 "--json", str(report), "--current", str(tmp_path / "current"), "--index", "hnsw"])
    assert code == 0
    text = capsys.readouterr().out
    assert "tracks indexed" in text and "recall@10 vs exact" in text and "cross-validation split by primary artist" in text
    manifest = json.loads(report.read_text())
    assert manifest["metrics"]["index"]["kind"] == "hnsw"
    assert 0.9 <= manifest["metrics"]["index"]["recall_at_10"] <= 1.0
    assert manifest["config"]["moods"]["fit_sample"] == 3000  # the config file reached the build
    assert (tmp_path / "current").resolve() == out.resolve()
    load_bundle(tmp_path / "current")


def test_librosa_style_columns_by_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 3
    labels = np.repeat([0, 1, 2], 200)
    cols = ["mfcc1_mean", "mfcc2_mean", "chroma_stft_mean", "spectral_centroid_mean", "rolloff_mean", "tempo"]
    data = pd.DataFrame(centers[labels] + rng.normal(size=(600, 6)), columns=cols)
    data["tempo"] = data["tempo"].abs() * 20 + 60
    data.insert(0, "filename", [f"track{i}.wav" for i in range(600)])
    data["label"] = np.array(["blues", "metal", "reggae"])[labels]
    csv = tmp_path / "features.csv"
    data.to_csv(csv, index=False)
    code = main(["index", str(csv), "--out", str(tmp_path / "b"), "--id-column", "filename", "--label-column",
                 "label", "--feature-columns", ",".join(cols), "--quiet"])
    assert code == 0, capsys.readouterr().err
    b = load_bundle(tmp_path / "b")
    assert b.tracks.genre_names == ("blues", "metal", "reggae")
    assert b.manifest["metrics"]["genre"]["top1"] > 0.9
    # these genres are in the family table, each in a family of its own: family scores would repeat the genres'
    assert "a family of its own" in b.manifest["metrics"]["genre"]["families"]["skipped"]
    sim = b.manifest["metrics"]["similar"]  # no names or artists: each track is its own song
    assert sim["genre_precision_at_10_reranked"] >= sim["genre_precision_at_10_cosine"] > 0.5
    assert set(b.manifest["counts"]["skipped_columns"]) >= {"track_name", "artists"}


def bad_inputs(tmp_path: Path, synthetic_csv: Path) -> dict[str, tuple[list[str], str]]:
    frame = pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False)
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={"energy": "energie"}).to_csv(renamed, index=False)
    text = tmp_path / "text.csv"
    frame.assign(tempo=frame["tempo"].where(frame.index != 41, "allegro")).to_csv(text, index=False)
    flag = tmp_path / "flag.csv"
    frame.assign(explicit=frame["explicit"].where(frame.index != 41, "maybe")).to_csv(flag, index=False)
    allbad = tmp_path / "allbad.csv"
    frame.assign(tempo="0").to_csv(allbad, index=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    existing = tmp_path / "exists"
    existing.mkdir()
    out = str(tmp_path / "out")
    return {
        "missing file": (["index", str(tmp_path / "nope.csv"), "--out", out], "nope.csv: no such file"),
        "empty file": (["index", str(empty), "--out", out], "empty.csv: the file is empty"),
        "misnamed column": (["index", str(renamed), "--out", out], "missing column(s) 'energy' (did you mean 'energie'?)"),
        "non-numeric": (["index", str(text), "--out", out], "column 'tempo' has 1 non-numeric value(s) (data row 42: 'allegro')"),
        "every row bad": (["index", str(allbad), "--out", out], "every one of the"),
        "bad flag": (["index", str(flag), "--out", out], "metadata column 'explicit' holds flags (true/false, 1/0) "
                                                         "but has 1 other value(s) (data row 42: 'maybe')"),
        "output exists": (["index", str(synthetic_csv), "--out", str(existing)], "already exists"),
        "bad config key": (["index", str(synthetic_csv), "--out", out, "--pca-variance", "1.5"], "pca_variance must be in (0, 1]"),
        "bad transform": (["index", str(synthetic_csv), "--out", out, "--transform", "key=circle"], "cyclic:<period>"),
        "negative seed": (["index", str(synthetic_csv), "--out", out, "--seed", "-1"],
                          "seed must be a whole number from 0 to 2,147,483,646, got -1"),
    }


@pytest.mark.parametrize("case", ["missing file", "empty file", "misnamed column", "non-numeric", "every row bad",
                                  "bad flag", "output exists", "bad config key", "bad transform", "negative seed"])
def test_bad_input_exits_nonzero_with_a_clear_message_and_no_bundle(
    case: str, tmp_path: Path, synthetic_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, message = bad_inputs(tmp_path, synthetic_csv)[case]
    code = main([*argv, "--quiet"])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert no_partials(tmp_path)


def test_log1p_on_a_column_below_0_is_refused_before_the_work(
    tmp_path: Path, synthetic_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """log1p takes a value below 0 as 0 (so that a new track's never fails a query): loudness, in dB below 0 on
    every track, became a column of zeros, and the build said nothing (an audit, 2026-12-07)."""
    code = main(["index", str(synthetic_csv), "--out", str(tmp_path / "out"), "--quiet", "--transform",
                 "loudness=log1p"])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "out").exists()
    assert re.match(r"musicrec index: error: schema.transforms.loudness = 'log1p', but 2,9\d\d of the catalog's "
                    r"3,000 tracks have loudness below 0 \(the lowest -\d", err), err
    assert "which log1p would take as 0: give loudness = 'none', or a column that starts at 0" in err


def test_a_transform_given_twice_for_a_column_is_refused_naming_it(
    tmp_path: Path, synthetic_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the last --transform for a column won silently."""
    code = main(["index", str(synthetic_csv), "--out", str(tmp_path / "out"), "--quiet", "--transform", "tempo=log1p",
                 "--transform", "key=cyclic:12", "--transform", "tempo = none"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("musicrec index: error: --transform given twice for column 'tempo' ('tempo=log1p' and "
                   "'tempo = none'); give each column one transform\n")
    assert not (tmp_path / "out").exists()


def test_synth_then_index(tmp_path: Path, fast_config: Path) -> None:
    csv = tmp_path / "s.csv"
    assert main(["synth", "--out", str(csv), "--tracks", "800", "--seed", "4"]) == 0
    assert len(pd.read_csv(csv)) > 800  # plus multi-genre copies, duplicates and bad rows
    assert main(["index", str(csv), "--out", str(tmp_path / "b"), "--config", str(fast_config), "--quiet",
                 "--no-genre"]) == 0
    assert load_bundle(tmp_path / "b").classifier is None


@pytest.mark.parametrize(("argv", "message"), [
    (["synth", "--tracks", "10", "--seed", "-1"], "--seed must be 0 or more, got -1"),
    (["demo", "--tracks", "0"], "--tracks must be 1 to 10,000,000, got 0"),
    (["demo", "--tracks", "-5"], "--tracks must be 1 to 10,000,000, got -5"),
    # a 745 GiB allocation's traceback (an audit, 2026-12-07)
    (["demo", "--tracks", "100000000000"], "--tracks must be 1 to 10,000,000, got 100000000000"),
    (["synth", "--tracks", "100000000000"], "--tracks must be 1 to 10,000,000, got 100000000000"),
    (["publish", "BUNDLE", "--qdrant", "http://127.0.0.1:9", "--timeout", "nan"],
     "--timeout must be a number of seconds over 0 and at most 1,000,000, got nan"),
])
def test_numbers_no_command_can_use_are_refused_naming_the_flag(argv: list[str], message: str, tmp_path: Path,
                                                                 small_bundle_dir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Before: an internal error (a negative seed, a demo of 0 tracks) or a publish that ran on."""
    paths = {"BUNDLE": str(small_bundle_dir), "STORE": str(tmp_path / "store")}
    out = ["--out", str(tmp_path / "x.csv")] if argv[0] == "synth" else \
        ["--bundles", str(tmp_path / "bundles")] if argv[0] == "demo" else []
    code = main([paths.get(a, a) for a in argv] + out)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "bundles").exists()


def test_synth_never_replaces_a_file_and_names_a_bad_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It replaced any file (a catalog named like it) without a word, and a directory or a missing parent was a
    traceback (an audit, 2026-12-07)."""
    precious = tmp_path / "catalog.csv"
    precious.write_text("track_id\nmine\n")
    (tmp_path / "a_dir").mkdir()
    for out, said in ((precious, "exists: synth does not replace a file"), (tmp_path / "a_dir", "is a directory"),
                      (tmp_path / "t.parquet", "synth writes CSV"), (precious / "x.csv", "is not a directory")):
        assert main(["synth", "--tracks", "5", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"musicrec synth: error: --out '{out}': ") and said in err, err
    assert precious.read_text() == "track_id\nmine\n" and not (tmp_path / "t.parquet").exists()
    assert main(["synth", "--tracks", "5", "--out", str(tmp_path / "new" / "s.csv")]) == 0  # parents are created
    assert len(pd.read_csv(tmp_path / "new" / "s.csv")) >= 5
    capsys.readouterr()
    assert main(["synth", "--tracks", "5", "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith(",track_id,")


def test_the_largest_seed_builds(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    assert main(["synth", "--out", str(csv), "--tracks", "600", "--seed", "2147483646"]) == 0
    # with the stability check, whose refit on another seed takes seed + 1: the reason the largest seed is 2**31 - 2
    checked = tmp_path / "checked.toml"
    checked.write_text(fast_toml(stability=True))
    assert main(["index", str(csv), "--out", str(tmp_path / "b"), "--config", str(checked), "--quiet",
                 "--seed", "2147483646"]) == 0
    bundle = load_bundle(tmp_path / "b")
    assert bundle.manifest["config"]["seed"] == 2147483646
    assert bundle.manifest["metrics"]["moods"]["stability"]["ari_seeds"] is not None


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "index" in capsys.readouterr().err


def test_synthetic_generator_is_deterministic() -> None:
    pd.testing.assert_frame_equal(synthetic_catalog(300, seed=5), synthetic_catalog(300, seed=5))


def test_a_bundle_path_that_is_not_a_directory_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2, as a missing CSV is for index and a missing bundle for serve; report and add said 1 (an audit)."""
    (tmp_path / "c.csv").write_text("x\n")
    for argv in (["report", str(tmp_path / "nosuch")], ["report", str(tmp_path / "c.csv")],
                 ["add", str(tmp_path / "c.csv"), "--to", str(tmp_path / "nosuch"), "--out", str(tmp_path / "o")]):
        assert main(argv) == 2, argv
        assert "not a bundle directory" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_config_file_with_a_byte_order_mark_is_read(suffix: str, tmp_path: Path) -> None:
    """Windows editors save one; it was "not valid toml: Invalid statement (line 1, column 1)" (an audit)."""
    from engine import read_config_file

    path = tmp_path / f"c{suffix}"
    text = "[moods]\nstability_subsample = 0\n" if suffix == ".toml" else '{"moods": {"stability_subsample": 0}}'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_config_file(path) == {"moods": {"stability_subsample": 0}}


def test_demo_refuses_what_it_would_ignore_or_cannot_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--tracks beside a CSV was ignored, and --bundles naming a file was a traceback (an audit, 2026-12-07)."""
    (tmp_path / "c.csv").write_text("x\n")
    assert main(["demo", str(tmp_path / "c.csv"), "--tracks", "5", "--bundles", str(tmp_path / "b")]) == 2
    assert "with a CSV its tracks are indexed: leave --tracks out" in capsys.readouterr().err
    assert main(["demo", "--tracks", "5", "--bundles", str(tmp_path / "c.csv")]) == 2
    assert f"--bundles {tmp_path / 'c.csv'}: is a file, not a directory" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_demos_queries_leave_out_classify_genre_on_a_bundle_without_a_classifier(
        tmp_path: Path, fast_config: Path) -> None:
    """It asked anyway, and the demo ended in a traceback on --no-genre (an audit, 2026-12-07)."""
    from engine import InvalidQuery, Recommender, load_bundle
    from server._cli_query import demo_queries

    assert main(["synth", "--out", str(tmp_path / "s.csv"), "--tracks", "300"]) == 0
    assert main(["index", str(tmp_path / "s.csv"), "--out", str(tmp_path / "b"), "--config", str(fast_config),
                 "--quiet", "--no-genre"]) == 0
    said = demo_queries(tmp_path / "b")
    assert "ClassifyGenre: not asked, this bundle has no genre classifier (disabled by configuration)" in said
    assert "SimilarTracks to" in said and "MoodPlaylist from the same seed" in said
    # the moods' legend once, under a heading that counts them (it was printed twice under 6 moods: "1 moods")
    assert said.count("core: tracks at the mood's dense centre") == 1
    moods = len(Recommender(load_bundle(tmp_path / "b")).moods())
    assert (f"ListMoods (first 5 of {moods}):" if moods > 5 else "ListMoods:\n") in said
    assert f"{moods} mood{'' if moods == 1 else 's'}, flat index" in said
    assert main(["synth", "--out", str(tmp_path / "t.csv"), "--tracks", "100"]) == 0  # one mood
    assert main(["index", str(tmp_path / "t.csv"), "--out", str(tmp_path / "one"), "--config", str(fast_config),
                 "--quiet", "--no-genre"]) == 0
    said = demo_queries(tmp_path / "one")
    assert "ListMoods:\n" in said and ", 1 mood, flat index" in said
    assert said.count("core: tracks at the mood's dense centre") == 1
    # and a question to it says why, as its build did: it said "its catalog had no genre labels" to every bundle

    rec = Recommender(load_bundle(tmp_path / "b"))
    for ask in (lambda: rec.classify(track_id=rec.ids[0]), lambda: rec.check_classify(3)):
        with pytest.raises(InvalidQuery, match=r"^this bundle has no genre classifier \(disabled by configuration\)$"):
            ask()


def test_a_symlink_loop_for_a_bundle_or_current_is_a_message_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Path.resolve() raised RuntimeError("Symlink loop") from report's and add's output checks: exit 70 with a
    traceback (an audit, 2026-12-08)."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert main(["report", str(loop), "--html", str(tmp_path / "r.html")]) == 2  # BundleNotFound: bad input
    err = capsys.readouterr().err
    assert err == f"musicrec report: error: {loop}: not a bundle directory (it does not exist or is not a directory)\n"
    assert main(["add", str(tmp_path / "none.csv"), "--to", str(loop), "--out", str(tmp_path / "o"),
                 "--current", str(loop)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_report_narrows_its_mood_table_to_the_terminal_as_index_does(
        bundle_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """index printed the report narrowed to the terminal's width, report in full (a code review, 2026-12-08); and
    its prose lines ran to 600 characters on a terminal (a first-hour walk): they wrap under the text column."""
    import re

    assert main(["report", str(bundle_dir)]) == 0
    wide = capsys.readouterr().out
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["report", str(bundle_dir)]) == 0
    narrow = capsys.readouterr().out
    assert "…" in narrow  # the mood table's last column, cut to fit
    prose = [line for line in narrow.splitlines() if re.match(r"^(?:[a-z]+ +| {9})\S", line)
             and max(map(len, line.split())) < 40]  # a long path is not cut
    assert len(prose) > 20 and max(map(len, prose)) <= 80
    assert " ".join(narrow.split()).replace("…", "") != " ".join(wide.split())  # the same words, wrapped
    assert max(map(len, wide.splitlines())) > 200  # piped output (no $COLUMNS) stays whole, for other programs
