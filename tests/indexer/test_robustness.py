"""Malformed CSVs end with a clear error and no partial bundle; a SIGKILLed build leaves the
previous bundle and the `current` pointer untouched and loadable."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import PreprocessConfig, load_bundle, publish, synthetic_catalog
from musicrec.cli import main

TINY = ["--quiet", "--no-genre", "--config"]


def tiny_toml(*, stability: bool = True) -> str:
    """A quick build's configuration; ``stability=False`` leaves out the moods' stability check (its refits), for
    the tests that build a 1,500-3,000-track catalog whole (the malformed catalogs keep it: a degenerate one is where
    its refits could fail)."""
    return ("[moods]\nfit_sample = 500\nmin_cluster_size = 10\nmin_samples = 2\n"
            + ("" if stability else "stability_subsample = 0\n") + "[index]\nneighbours = 8\n")


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(tiny_toml())
    return path


@pytest.fixture(scope="module")
def unchecked_config(tiny_config: Path) -> Path:
    path = tiny_config.with_name("unchecked.toml")
    path.write_text(tiny_toml(stability=False))
    return path


@pytest.fixture(scope="module")
def valid_csv_bytes() -> bytes:
    return synthetic_catalog(80, seed=2, exact_duplicates=2, bad_rows=2).to_csv(index=False).encode()


def run_index(csv: Path, out: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["index", str(csv), "--out", str(out), *TINY, str(config)])
    return code, capsys.readouterr().err


def assert_clean_outcome(code: int, err: str, out: Path) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    assert not any(".partial-" in p.name for p in out.parent.iterdir()), "a partial bundle was left behind"
    if code == 0:
        load_bundle(out)  # a bundle that was written must be complete and verifiable
    else:
        assert code == 2 and err.startswith("musicrec index: error: "), (code, err)
        assert not out.exists()


def mutate(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, pos, payload in ops:
        at = pos % (len(buf) + 1)
        if op == "insert":
            buf[at:at] = payload
        elif op == "delete":
            del buf[at:at + len(payload) + 1]
        elif op == "replace":
            buf[at:at + len(payload)] = payload
        elif op == "truncate":
            del buf[at:]
        else:  # duplicate a line
            lines = bytes(buf).split(b"\n")
            i = pos % len(lines)
            lines.insert(i, lines[i])
            buf = bytearray(b"\n".join(lines))
    return bytes(buf)


PAYLOADS = st.one_of(st.binary(max_size=8), st.sampled_from(
    [b",", b'"', b'""', b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"nan", b"inf", b"-1e309", b";",
     b"x" * 5000, "é".encode("latin-1"), b",,,,,,,,,,,,,,,,,,,,,,,,,,,,", b"True"]))
OPS = st.lists(st.tuples(st.sampled_from(["insert", "delete", "replace", "truncate", "dup"]),
                         st.integers(0, 20_000), PAYLOADS), min_size=1, max_size=4)


@pytest.mark.slow  # 40 builds of fuzzed files
def test_fuzzed_csv_bytes(tmp_path: Path, tiny_config: Path, valid_csv_bytes: bytes,
                          capsys: pytest.CaptureFixture[str]) -> None:
    counter = iter(range(10**6))

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(OPS)
    def one(ops: list[tuple[str, int, bytes]]) -> None:
        case = tmp_path / f"case{next(counter)}"
        case.mkdir()
        csv = case / "in.csv"
        csv.write_bytes(mutate(valid_csv_bytes, ops))
        out = case / "bundle"
        code, err = run_index(csv, out, tiny_config, capsys)
        assert_clean_outcome(code, err, out)

    one()


@pytest.mark.parametrize("case", ["ragged_long", "ragged_short", "latin1", "unclosed_quote", "bom", "huge_field",
                                  "duplicate_headers", "only_header", "nul_byte", "blank_lines", "ragged_first_row"])
def test_named_malformations(case: str, tmp_path: Path, tiny_config: Path, valid_csv_bytes: bytes,
                             capsys: pytest.CaptureFixture[str]) -> None:
    lines = valid_csv_bytes.split(b"\n")
    data = {
        "ragged_long": b"\n".join([*lines[:5], lines[5] + b",extra,fields", *lines[6:]]),
        "ragged_short": b"\n".join([*lines[:5], b",".join(lines[5].split(b",")[:6]), *lines[6:]]),
        "latin1": valid_csv_bytes.replace(b"Track 00003", "Trąck".encode()).replace(
            b"Track 00004", "Tr\xe4ck".encode("latin-1")),
        "unclosed_quote": b"\n".join([*lines[:7], lines[7].replace(b",", b',"', 1), *lines[8:]]),
        "bom": b"\xef\xbb\xbf" + valid_csv_bytes,
        "huge_field": valid_csv_bytes.replace(b"Track 00005", b"T" * 2_000_000),
        "duplicate_headers": valid_csv_bytes.replace(b"liveness", b"energy", 1),
        "only_header": lines[0] + b"\n",
        "nul_byte": valid_csv_bytes.replace(b"Track 00006", b"Track\x0000006"),
        "blank_lines": b"\n\n".join(lines),
        # pandas took the first column for the row index: every column shifted, and the error blamed another one
        "ragged_first_row": b"\n".join([lines[0], lines[1] + b",", *lines[2:]]),
    }[case]
    csv = tmp_path / "in.csv"
    csv.write_bytes(data)
    out = tmp_path / "bundle"
    code, err = run_index(csv, out, tiny_config, capsys)
    assert_clean_outcome(code, err, out)
    expected = {"ragged_long": 2, "latin1": 2, "duplicate_headers": 2, "only_header": 2, "ragged_first_row": 2}
    if case in expected:
        assert code == expected[case], err
    if case in ("bom", "huge_field", "blank_lines", "ragged_short"):
        assert code == 0, err  # readable files are indexed; a short row is counted as missing values
    if case == "latin1":
        at = data.index(b"\xe4")
        line = data.count(b"\n", 0, at) + 1
        assert f"not UTF-8 text (line {line}, byte {at}: invalid continuation byte)" in err, err
    if case == "ragged_first_row":
        fields = len(lines[0].split(b","))
        assert err == (f"musicrec index: error: {csv}: malformed CSV: data row 1 has {fields + 1} fields, the header "
                       f"{fields} (a comma at the end of the row?); every row needs one field per column\n")


@pytest.mark.parametrize(("head", "words"), [(b"\x1f\x8b\x08\x00", "a gzip-compressed file: decompress it first"),
                                            (b"PK\x03\x04\x14", "a zip archive (an .xlsx workbook?)")])
def test_a_compressed_catalog_is_named_as_one(head: bytes, words: str, tmp_path: Path, tiny_config: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """It was "not UTF-8 text (byte 1 ...); re-save the file as UTF-8"."""
    csv = tmp_path / "in.csv"
    csv.write_bytes(head + bytes(range(256)) * 40)
    code, err = run_index(csv, tmp_path / "bundle", tiny_config, capsys)
    assert code == 2 and err.startswith(f"musicrec index: error: {csv}: {words}"), err


def test_a_bad_byte_deep_in_a_large_catalog_is_named_by_its_line(tmp_path: Path, tiny_config: Path,
                                                                  valid_csv_bytes: bytes,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The decoders' offsets count from the chunk they were decoding: a byte some 300 KB in was "byte 5489"."""
    header, _, rows = valid_csv_bytes.partition(b"\n")
    body = rows * (300_000 // len(rows) + 1)
    at = len(header) + 1 + len(body)
    csv = tmp_path / "in.csv"
    csv.write_bytes(header + b"\n" + body + b"Tr\xe4ck" + rows)
    code, err = run_index(csv, tmp_path / "bundle", tiny_config, capsys)
    line = (header + b"\n" + body).count(b"\n") + 1
    assert code == 2 and f"not UTF-8 text (line {line}, byte {at + 2}: invalid continuation byte)" in err, err


@pytest.mark.slow  # a minute or more of builds killed at random points
def test_sigkill_during_builds_never_touches_the_live_bundle(tmp_path: Path, unchecked_config: Path) -> None:
    csv = tmp_path / "catalog.csv"
    synthetic_catalog(1500, seed=3).to_csv(csv, index=False)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    assert main(["index", str(csv), "--out", str(bundles / "v0"), *TINY, str(unchecked_config)]) == 0
    current = bundles / "current"
    publish(bundles / "v0", current)
    musicrec = Path(sys.executable).with_name("musicrec")
    rng = random.Random(0)
    t0 = time.monotonic()
    done = subprocess.run([str(musicrec), "index", str(csv), "--out", str(bundles / "timing"), *TINY, str(unchecked_config)],
                          capture_output=True, check=True)
    build_seconds = time.monotonic() - t0
    assert done.returncode == 0
    for attempt in range(6):  # kill moments drawn over the whole build
        out = bundles / f"v{attempt + 1}"
        with subprocess.Popen([str(musicrec), "index", str(csv), "--out", str(out), "--current", str(current),
                               *TINY, str(unchecked_config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) as proc:
            time.sleep(rng.uniform(0, build_seconds * 1.1))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        live = load_bundle(current)  # always loadable, whatever the moment of the kill
        assert current.resolve() in {(bundles / f"v{i}").resolve() for i in range(attempt + 2)}
        assert len(live.tracks) == 1500
        if out.exists():  # renamed into place before the kill: then it is complete
            load_bundle(out)
    # the next build into the folder removes what the killed ones left (their locks ended with them)
    assert main(["index", str(csv), "--out", str(bundles / "after"), *TINY, str(unchecked_config)]) == 0
    assert not [p.name for p in bundles.iterdir() if ".partial-" in p.name]


def test_a_tiny_catalog_builds_and_says_why_it_has_no_classifier(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "tiny.csv"
    synthetic_catalog(6, seed=1, exact_duplicates=0, bad_rows=0, multi_genre_share=0).to_csv(csv, index=False)
    assert main(["index", str(csv), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "no classifier: only 6 labelled tracks" in out
    b = load_bundle(tmp_path / "b")
    assert b.classifier is None and len(b.moods.clusters_) == 1
    assert b.manifest["metrics"]["genre"]["skipped"].startswith("only 6 labelled tracks")


@pytest.mark.parametrize("where", ["current is a file", "current is a directory", "current under a file",
                                   "json under a file", "json is a directory", "json is the catalog",
                                   "json is the config", "json in the bundle", "json in the current bundle",
                                   "current is the out directory"])
def test_outputs_that_cannot_be_written_are_refused_before_the_build(
        where: str, tmp_path: Path, tiny_config: Path, valid_csv_bytes: bytes,
        capsys: pytest.CaptureFixture[str]) -> None:
    csv, out = tmp_path / "c.csv", tmp_path / "b"
    csv.write_bytes(valid_csv_bytes)
    precious = tmp_path / "precious.txt"
    precious.write_text("data")
    (tmp_path / "a_dir").mkdir()
    flag, path = {
        "current is a file": ("--current", precious),
        "current is a directory": ("--current", tmp_path / "a_dir"),
        "current under a file": ("--current", precious / "cur"),
        "json under a file": ("--json", precious / "r.json"),
        "json is a directory": ("--json", tmp_path / "a_dir"),
        # the input was replaced by the report, and a file in the bundle broke its check (an audit, 2026-12-07)
        "json is the catalog": ("--json", csv),
        "json is the config": ("--json", tiny_config),
        "json in the bundle": ("--json", out / "report.json"),
        "json in the current bundle": ("--json", tmp_path / "live" / "manifest.json"),
        "current is the out directory": ("--current", out),  # it was found after the whole build
    }[where]
    extra = []
    if where == "json in the current bundle":
        live = tmp_path / "live"
        live.mkdir()
        (live / "manifest.json").write_text("{}")
        (tmp_path / "current").symlink_to(live)
        extra = ["--current", str(tmp_path / "current")]
        path = tmp_path / "current" / "manifest.json"
    config_before, csv_before = tiny_config.read_bytes(), csv.read_bytes()
    code = main(["index", str(csv), "--out", str(out), *TINY, str(tiny_config), flag, str(path), *extra])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("musicrec index: error: "), (code, err)
    assert tiny_config.read_bytes() == config_before and csv.read_bytes() == csv_before
    if where in ("json is the catalog", "json is the config"):
        assert "is the input" in err, err
    if where in ("json in the bundle", "json in the current bundle"):
        assert "is inside the bundle" in err, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert not out.exists(), "the build ran (or left its bundle) although its results could not be placed"
    assert precious.read_text() == "data" and (tmp_path / "a_dir").is_dir() and not any((tmp_path / "a_dir").iterdir())


def test_a_pipe_is_refused_not_waited_on(tmp_path: Path, tiny_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "catalog.csv"
    os.mkfifo(fifo)
    code, err = run_index(fifo, tmp_path / "b", tiny_config, capsys)
    assert code == 2 and "not a regular file" in err, err
    # without --config the schema preset reads the header first: that read must not wait on the pipe either
    # (a hang here fails the run by its own timeout, below)
    done = subprocess.run([sys.executable, "-m", "musicrec.cli", "index", str(fifo), "--out", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr


def test_the_small_files_read_whole_refuse_pipes_and_devices(tmp_path: Path, valid_csv_bytes: bytes,
                                                             small_bundle_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--config, --remove-ids and --label-from read their file whole: a FIFO hung the command (until the run's own
    timeout), and /dev/zero was read until the memory ran out, then an internal error (an audit, 2026-12-07)."""
    import wave

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    csv = tmp_path / "c.csv"
    csv.write_bytes(valid_csv_bytes)
    clip = tmp_path / "clip.wav"
    with wave.open(str(clip), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050), w.writeframes(b"\0\1" * 22050)
    out = tmp_path / "b"
    for special, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device or other special file")):
        for argv in (["index", str(csv), "--out", str(out), "--quiet", "--config", str(special)],
                     ["add", "--to", str(small_bundle_dir), "--remove-ids", str(special), "--out", str(out), "--quiet"],
                     ["extract", str(clip), "--out", str(tmp_path / "f.csv"), "--label-from", str(special),
                      "--workers", "0", "--quiet"]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert f"{special}: " in err and f"not a regular file ({kind})" in err and "Traceback" not in err, err
            assert not out.exists()


def test_pca_options_are_never_silently_ignored(tmp_path: Path, tiny_config: Path, valid_csv_bytes: bytes,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "c.csv"
    csv.write_bytes(valid_csv_bytes)
    base = ["index", str(csv), *TINY, str(tiny_config)]
    with pytest.raises(SystemExit) as both_flags:  # argparse: not allowed together
        main([*base, "--out", str(tmp_path / "a"), "--pca-variance", "0.9", "--pca-components", "3"])
    assert both_flags.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "b"), "--pca-components", "100"]) == 2
    assert "only" in capsys.readouterr().err and not (tmp_path / "b").exists()
    both_keys = tmp_path / "both.toml"
    both_keys.write_text(tiny_config.read_text() + "[preprocess]\npca_variance = 0.9\npca_components = 3\n")
    assert main(["index", str(csv), "--quiet", "--no-genre", "--config", str(both_keys), "--out", str(tmp_path / "c")]) == 2
    assert "both pca_variance and pca_components" in capsys.readouterr().err
    # a flag replaces the file's choice: --pca-variance 1.0 over a file's pca_components = 3 keeps every component
    three = tmp_path / "three.toml"
    three.write_text(tiny_config.read_text() + "[preprocess]\npca_components = 3\n")
    out = tmp_path / "d"
    assert main(["index", str(csv), "--quiet", "--no-genre", "--config", str(three), "--out", str(out),
                 "--pca-variance", "1.0"]) == 0
    bundle = load_bundle(out)
    assert bundle.preprocessor.n_components == len(bundle.preprocessor.transformed_names) > 3
    # ... and --pca-components over a file's pca_variance keeps that count (the file's variance was recorded unused)
    variance = tmp_path / "variance.toml"
    variance.write_text(tiny_config.read_text() + "[preprocess]\npca_variance = 0.5\n")
    assert main(["index", str(csv), "--quiet", "--no-genre", "--config", str(variance), "--out", str(tmp_path / "e"),
                 "--pca-components", "3"]) == 0
    assert load_bundle(tmp_path / "e").config.preprocess == PreprocessConfig(pca_components=3)


def test_feature_values_beyond_float32_are_dropped_by_index_without_warnings(
        tmp_path: Path, valid_csv_bytes: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    # finite in float64, not in float32 (what FAISS, XGBoost and the bundle hold): once XGBoost's "value too large"
    # (exit 70), or numpy's raw overflow warnings; now counted with the non-finite values
    frame = pd.read_csv(io.BytesIO(valid_csv_bytes))
    frame[["loudness", "duration_ms"]] = frame[["loudness", "duration_ms"]].astype(float)
    frame.loc[3, "loudness"], frame.loc[5, "loudness"] = -1e200, -1e308
    frame.loc[7:9, "duration_ms"] = [1e200, 1e250, 1e300]
    frame.to_csv(tmp_path / "c.csv", index=False)
    config = tmp_path / "genre.toml"  # with the genre classifier, XGBoost sees every feature; its capacity search
    config.write_text(tiny_toml() + "[genre]\ntune = false\nmax_rounds = 10\n")  # (10 s here) would add nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        code = main(["index", str(tmp_path / "c.csv"), "--out", str(tmp_path / "b"), "--quiet", "--config",
                     str(config)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert re.search(r"dropped +2  missing or non-finite loudness", out), out
    assert re.search(r"dropped +3  missing or non-finite duration_ms", out), out
    assert load_bundle(tmp_path / "b").classifier is not None


def test_add_and_report_outputs_that_cannot_be_written_are_refused_before_the_work(
        tmp_path: Path, small_bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one check for every command's report file (engine/_files.py output_file_problem): index's, above
    (tmp_path / "a_dir").mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("data")
    ids = tmp_path / "gone.txt"
    ids.write_text(str(load_bundle(small_bundle_dir).tracks.ids[0]) + "\n")
    link = tmp_path / "current"
    publish(small_bundle_dir, link)
    other = tmp_path / "other"
    shutil.copytree(small_bundle_dir, other)
    add = ["add", "--to", str(small_bundle_dir), "--remove-ids", str(ids), "--out", str(tmp_path / "b"), "--current",
           str(link), "--quiet"]
    for argv, said in (([*add, "--json", str(tmp_path / "a_dir")], f"--json {tmp_path / 'a_dir'}: is a directory"),
                       ([*add, "--json", str(precious / "r.json")], f"{precious} is not a directory"),
                       ([*add[:-3], "--current", str(precious), "--quiet"], f"{precious}: exists and is a file"),
                       ([*add[:-4], str(precious), "--quiet"], f"output {precious} already exists"),
                       (["report", str(small_bundle_dir), "--html", str(tmp_path / "a_dir")],
                        f"--html {tmp_path / 'a_dir'}: is a directory"),
                       # nothing was written, and the option was ignored (an audit, 2026-12-07)
                       ([*add, "--json", ""], "--json: the file name is empty; give a file name"),
                       # it replaced the manifest, and the bundle no longer loaded (an audit, 2026-12-07)
                       (["report", str(link), "--html", str(link / "manifest.json")],
                        f"--html {link / 'manifest.json'}: is inside the bundle"),
                       ([*add, "--json", str(ids)], f"--json {ids}: is the input"),
                       ([*add, "--json", str(tmp_path / "b" / "update.json")], "is inside the bundle"),
                       ([*add, "--json", str(small_bundle_dir / "x.json")], "is inside the bundle"),
                       # a bundle the command does not name: its moods file was replaced (an audit, 2026-12-07)
                       (["report", str(small_bundle_dir), "--html", str(other / "moods.json")],
                        f"is inside the bundle {other.resolve()}"),
                       ([*add, "--json", str(other / "deeper" / "add.json")], "is inside the bundle")):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"musicrec {argv[0]}: error: ") and said in err and "Traceback" not in err, err
        assert not (tmp_path / "b").exists() and link.resolve() == small_bundle_dir.resolve()
    assert precious.read_text() == "data" and not any((tmp_path / "a_dir").iterdir())
    load_bundle(other)  # checked whole: nothing was written into it
    # ... and, as index does, missing parent directories of a report file are created
    deep = tmp_path / "new" / "deeper"
    assert main([*add, "--json", str(deep / "add.json")]) == 0
    assert json.loads((deep / "add.json").read_text())["removed"] == 1 and link.resolve() == (tmp_path / "b").resolve()
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:  # '-' is standard output, as for index (it wrote a file named '-')
        mp.chdir(tmp_path)
        assert main([*add[:5], "--out", str(tmp_path / "b2"), "--json", "-", "--quiet"]) == 0
    captured = capsys.readouterr()  # stdout is the JSON alone (the text report went to stderr), so it parses
    assert not (tmp_path / "-").exists() and json.loads(captured.out)["removed"] == 1
    assert "tracks (0 added, 1 removed)" in captured.err
    pytest.importorskip("matplotlib")
    assert main(["report", str(small_bundle_dir), "--html", str(deep / "r.html")]) == 0
    assert (deep / "r.html").read_text().startswith("<!doctype html>")


def test_index_json_to_stdout_is_the_json_alone(synthetic_csv: Path, tmp_path: Path, unchecked_config: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # the text report came first on stdout, so `musicrec index ... --json - | jq` could not parse it
    assert main(["index", str(synthetic_csv), "--out", str(tmp_path / "b"), "--json", "-", *TINY,
                 str(unchecked_config)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["format"] == "musicrec-bundle" and "bundle written to" in captured.err


def test_a_catalog_of_identical_tracks_builds_without_numpy_warnings(
        tmp_path: Path, tiny_config: Path, valid_csv_bytes: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    """The moods' co-association SVD divided 0 by 0 in a ratio it does not read; the warning reached the output."""
    frame = pd.read_csv(io.BytesIO(valid_csv_bytes)).dropna()
    features = [c for c in frame.columns if c not in ("Unnamed: 0", "track_id", "artists", "album_name", "track_name",
                                                       "popularity", "explicit", "track_genre")]
    frame = frame[frame["tempo"] > 0]
    frame[features] = frame[features].iloc[0].to_numpy()
    frame.to_csv(tmp_path / "c.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        code, err = run_index(tmp_path / "c.csv", tmp_path / "b", tiny_config, capsys)
    assert code == 0, err
