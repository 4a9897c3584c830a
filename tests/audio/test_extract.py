"""`musicrec extract`: rows, labels, tags, every bad-file reason, resuming, and a kill mid-run."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.audio import csv_columns
from engine.audio._synth import STYLES, chord_pad, write_corpus
from musicrec.cli import main
from tests.audio.conftest import SR, encode
from tests.server.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
BAD_FILES = {  # file name -> the reason it must be listed under
    "notes.txt": "not audio",
    "cover.m4a": "unsupported",
    "broken.wav": "corrupt",
    "cut.wav": "truncated",
    "blip.wav": "too short",
    "quiet.flac": "silent",
}


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def add_bad_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    clip = chord_pad(57, True, 4.0).astype(np.float32)
    (folder / "notes.txt").write_text("title,artist\nnot,audio\n")
    (folder / "cover.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    (folder / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(300))
    whole = encode(clip)
    (folder / "cut.wav").write_bytes(whole[:len(whole) // 2])
    (folder / "blip.wav").write_bytes(encode(clip[:SR]))
    (folder / "quiet.flac").write_bytes(encode(np.zeros(4 * SR, dtype=np.float32), SR, "FLAC", "PCM_16"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "music"
    write_corpus(root, styles=STYLES[:3], artists_per_style=2, songs_per_artist=1, seconds=4.0)
    return root


def test_extract_writes_rows_labels_tags_and_lists_every_bad_file(corpus: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    music = tmp_path / "music"
    shutil.copytree(corpus, music)
    add_bad_files(music / "junk")
    shutil.copy(sorted(music.glob("rock/*"))[0], music / "rock" / "copy of a rock song.wav")
    out = tmp_path / "features.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0"]) == 3
    err = capsys.readouterr().err
    assert "finished with 6 file(s) skipped" in err
    rows = rows_of(out)
    assert list(rows[0]) == list(csv_columns())
    assert len(rows) == 6 and {r["label"] for r in rows} == {"ambient", "rock", "electronic"}
    for r in rows:
        assert r["filename"].startswith(r["label"] + "/")
        assert r["artist"] == f"{r['label'].title()} Artist {r['artist'][-1]}" and r["title"].startswith("Song ")
        assert r["song"] == r["filename"] and abs(float(r["duration"]) - 4.0) < 0.05
        assert int(r["length"]) == pytest.approx(4 * SR, abs=2)
    report = json.loads((tmp_path / "features.extraction.json").read_text())
    assert report["status"] == "finished" and report["extracted"] == 6
    listed = {Path(item["path"]).name: item["reason"] for item in report["skipped_files"]}
    assert listed == BAD_FILES
    assert report["skipped"] == {reason: 1 for reason in BAD_FILES.values()}
    assert [Path(d["path"]).name for d in report["duplicates"]] == ["copy of a rock song.wav"]
    assert report["extractor"]["name"] == "musicrec-librosa" and report["extractor"]["params"]["sample_rate"] == SR


def test_a_rerun_adds_only_new_files(corpus: Path, tmp_path: Path) -> None:
    music = tmp_path / "music"
    shutil.copytree(corpus / "ambient", music / "ambient")
    out = tmp_path / "f.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    first = rows_of(out)
    shutil.copytree(corpus / "rock", music / "rock")
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    second = rows_of(out)
    assert second[:len(first)] == first and len(second) == len(first) + 2
    assert len({r["sha256"] for r in second}) == len(second)
    report = json.loads((tmp_path / "f.extraction.json").read_text())
    assert (report["already_extracted"], report["extracted"], report["rows_total"]) == (2, 2, 4)


def test_a_rerun_replaces_the_rows_of_a_changed_file_and_names_a_copy(corpus: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A file changed between runs got a second row of its id, and the index kept the first, stale one; a copy of
    a file extracted in an earlier run was counted as already extracted, not listed as a duplicate (an audit,
    2026-12-07)."""
    import soundfile as sf

    music = tmp_path / "music"
    shutil.copytree(corpus / "ambient", music / "ambient")
    out = tmp_path / "f.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    first = {r["filename"]: r for r in rows_of(out)}
    changed, kept = sorted(first)
    y, sr = sf.read(music / changed)
    sf.write(music / changed, y[::-1] * 0.5, sr)  # the same name, other content
    shutil.copy(music / kept, music / "ambient" / "copy.wav")
    capsys.readouterr()
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    said = capsys.readouterr().out
    second = {r["filename"]: r for r in rows_of(out)}
    assert len(rows_of(out)) == 2 and set(second) == {changed, kept}  # one row a file: the copy is not repeated
    assert second[kept] == first[kept] and second[changed]["sha256"] != first[changed]["sha256"]
    report = json.loads((tmp_path / "f.extraction.json").read_text())
    assert report["changed_files"] == [changed] and report["rows_dropped"] == 1 and report["rows_total"] == 2
    assert report["duplicates"] == [{"path": str(music / "ambient" / "copy.wav"), "same_as": kept}]
    assert f"1 file(s) changed since they were extracted ({changed}): their 1 old row(s) were taken out" in said
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 0  # and then it holds
    assert rows_of(out) == list(second.values())
    # other inputs: the same id names another folder's file, whose rows are not this one's to take out
    other = tmp_path / "other"
    (other / "ambient").mkdir(parents=True)
    shutil.copy(next((corpus / "rock").iterdir()), other / kept)
    assert main(["extract", str(other), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    report = json.loads((tmp_path / "f.extraction.json").read_text())
    assert report["changed_files"] == [] and report["rows_dropped"] == 0 and report["extracted"] == 1
    assert [r["filename"] for r in rows_of(out)] == [*second, kept]


def test_labels_from_tags_or_a_table(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "tag.csv"
    assert main(["extract", str(corpus / "rock"), "--out", str(out), "--label-from", "tag", "--workers", "0"]) == 0
    assert {r["label"] for r in rows_of(out)} == {"rock"}
    table = tmp_path / "labels.csv"
    names = sorted(p.name for p in (corpus / "rock").iterdir())
    table.write_text("filename,label\n" + f"{names[0]},grunge\n")
    out = tmp_path / "table.csv"
    assert main(["extract", str(corpus / "rock"), "--out", str(out), "--label-from", str(table), "--workers", "0"]) == 0
    assert sorted(r["label"] for r in rows_of(out)) == ["", "grunge"]


def test_an_existing_csv_from_other_settings_is_refused(corpus: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.csv"
    assert main(["extract", str(corpus / "ambient"), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    assert main(["extract", str(corpus / "ambient"), "--out", str(out), "--segment-seconds", "2",
                 "--workers", "0"]) == 2
    assert "segment_seconds" in capsys.readouterr().err
    orphan = tmp_path / "orphan.csv"
    orphan.write_text("a,b\n1,2\n")
    assert main(["extract", str(corpus / "ambient"), "--out", str(orphan), "--workers", "0"]) == 2
    assert main(["extract", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.csv")]) == 2


def test_segments_carry_their_song(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "seg.csv"
    assert main(["extract", str(corpus / "electronic"), "--out", str(out), "--segment-seconds", "2",
                 "--workers", "0", "--quiet"]) == 0
    rows = rows_of(out)
    assert len(rows) == 4
    for r in rows:
        assert r["filename"] == f"{r['song']}#{r['segment']}" and r["start_seconds"] in ("0", "2")
        assert int(r["length"]) == 2 * SR
    assert len({r["song"] for r in rows}) == 2


def test_resume_after_a_kill_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL a real run (process pool and all) mid-way, leave a half-written line, re-run: every
    file ends up in the CSV exactly once."""
    music = tmp_path / "music"
    write_corpus(music, styles=STYLES[:2], artists_per_style=3, songs_per_artist=2, seconds=3.0, tags=False)
    out = tmp_path / "f.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "musicrec.cli", "extract", str(music), "--out", str(out),
                                 "--workers", "1", "--quiet"], cwd=REPO, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        def written_or_dead() -> bool:
            assert proc.poll() is None, log.read_text()
            return out.exists() and len(out.read_text().splitlines()) >= 3

        # the timeout bounds a hang only: a cold worker start can take a minute
        wait_until(written_or_dead, "the run's first rows", timeout=300)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    written = rows_of(out)
    assert 2 <= len(written) < 12, "the kill must land mid-run"
    with out.open("a") as fh:
        fh.write("rock/half-written-row.wav,66150,0.3")  # what a kill inside a write could leave
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 0
    rows = rows_of(out)
    assert len(rows) == 12 and len({r["filename"] for r in rows}) == 12
    assert rows[:len(written)] == written
    report = json.loads((tmp_path / "f.extraction.json").read_text())
    assert report["already_extracted"] == len(written) and report["extracted"] == 12 - len(written)


@pytest.mark.parametrize(("option", "value"), [
    ("--segment-seconds", "nan"), ("--segment-seconds", "inf"), ("--segment-seconds", "-1"),
    ("--segment-seconds", "0"), ("--segment-seconds", "x"), ("--workers", "-1"), ("--workers", "two"),
])
def test_bad_option_values_are_refused_before_anything_is_written(option: str, value: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    music = tmp_path / "music"
    music.mkdir()
    (music / "a.wav").write_bytes(encode(chord_pad(57, True, 3.0).astype(np.float32)))
    out = tmp_path / "o.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["extract", str(music), "--out", str(out), "--quiet", "--workers", "0", option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["music"]  # no CSV, no .extraction.json


@pytest.mark.parametrize(("value", "words"), [("257", "must be at most 256, got 257"),
                                              ("100000", "must be at most 256, got 100000"),
                                              ("-1", "must be 0 (in this process) or more, got -1")])
def test_workers_outside_0_to_256_are_refused_at_parsing(value: str, words: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from musicrec.cli import _parser

    argv = ["extract", "music", "--out", "o.csv", "--workers"]
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args([*argv, value])  # parsing only: nothing is spawned, whatever happens
    assert exit_.value.code == 2 and f"argument --workers: {words}" in capsys.readouterr().err
    assert [_parser().parse_args([*argv, ok]).workers for ok in ("0", "1", "256")] == [0, 1, 256]


def test_folders_without_audio_files_are_refused_and_the_csv_left_alone(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    music = tmp_path / "music"
    (music / "rock" / "empty").mkdir(parents=True)
    (music / ".hidden.wav").write_bytes(encode(chord_pad(57, True, 3.0).astype(np.float32)))
    out = tmp_path / "o.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"musicrec extract: error: no audio files in {music} (looked for .wav, .flac, .ogg, .mp3, .aiff, "
                   ".au and .caf files in it and every folder below, recognised by their content whatever their "
                   "names; hidden files and folders are left out)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["music"]  # no CSV, no .extraction.json
    # an earlier run's CSV and report are neither truncated nor rewritten
    out.write_text("kept\n")
    (tmp_path / "o.extraction.json").write_text("{}\n")
    assert main(["extract", str(music), str(music / "rock"), "--out", str(out), "--workers", "0", "--quiet"]) == 2
    assert f"no audio files in {music}, {music / 'rock'} (looked for" in capsys.readouterr().err
    assert out.read_text() == "kept\n" and (tmp_path / "o.extraction.json").read_text() == "{}\n"


def test_what_the_decoder_prints_is_listed_under_its_file_not_left_on_stderr(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """libmpg123 prints its complaints about a damaged MP3 frame to stderr itself; they reached the user with no
    file named. Now each file's are captured and listed under it, and stderr names the file."""
    import soundfile as sf

    music = tmp_path / "music" / "rock"
    music.mkdir(parents=True)
    buf = io.BytesIO()
    sf.write(buf, chord_pad(57, True, 10.0), SR, format="MP3")
    damaged = bytearray(buf.getvalue())
    for at in np.random.default_rng(0).integers(2000, len(damaged) - 100, 40):
        damaged[at:at + 4] = b"\xff\xfb\x00\x00"  # a frame header with nothing behind it
    (music / "damaged.mp3").write_bytes(bytes(damaged))
    (music / "clean.wav").write_bytes(encode(chord_pad(60, False, 3.0).astype(np.float32)))
    out = tmp_path / "o.csv"
    assert main(["extract", str(tmp_path / "music"), "--out", str(out), "--workers", "0", "--quiet"]) in (0, 3)
    listed = json.loads((tmp_path / "o.extraction.json").read_text())["decoder_output"]
    assert [Path(item["path"]).name for item in listed] == ["damaged.mp3"], listed
    assert listed[0]["lines"] >= 1 and "libmpg123" in listed[0]["first"][0]
    err = capfd.readouterr().err
    raw = [line for line in err.splitlines() if "[src/libmpg123" in line]
    assert raw and all(line.startswith(f"  {music / 'damaged.mp3'}: ") for line in raw), err


def test_an_out_that_is_a_directory_is_named_as_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It was told that the directory's extraction report was missing, as if it were a CSV of unknown origin."""
    music = tmp_path / "music"
    music.mkdir()
    (music / "a.wav").write_bytes(encode(chord_pad(57, True, 3.0).astype(np.float32)))
    out = tmp_path / "features"
    out.mkdir()
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 2
    assert capsys.readouterr().err == (f"musicrec extract: error: cannot write {out}: it is a directory; --out names "
                                       f"the CSV file to write (for example {out / 'features.csv'})\n")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, 0.0, -2.0, "3", True])
def test_run_extraction_refuses_a_bad_segment_length_before_writing(value: object, tmp_path: Path) -> None:
    """A library caller gets the CLI's check: a NaN or inf would poison the CSV's resume record."""
    from engine import ConfigError
    from engine.audio import run_extraction

    music = tmp_path / "music"
    music.mkdir()
    (music / "a.wav").write_bytes(encode(chord_pad(57, True, 3.0).astype(np.float32)))
    with pytest.raises(ConfigError, match=r"^segment_seconds \(None for whole files\) must be a finite number of "
                                          r"seconds over 0, got "):
        run_extraction([music], tmp_path / "o.csv", segment_seconds=value, workers=0)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["music"]


def test_a_wav_cut_to_20_bytes_is_reported_by_its_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    music = tmp_path / "music"
    music.mkdir()
    (music / "cut20.wav").write_bytes(encode(chord_pad(57, True, 3.0).astype(np.float32))[:20])
    out = tmp_path / "o.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 3
    err = capsys.readouterr().err
    [item] = json.loads((tmp_path / "o.extraction.json").read_text())["skipped_files"]
    for text in (err, item["detail"]):
        assert "cut20.wav" in text and " object at 0x" not in text and "_Tracked" not in text


def test_a_float_wav_with_a_huge_finite_sample_is_skipped_and_the_rest_extracted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A last sample of 1e30 used to overflow inside librosa and end the whole run with exit 70 and no rows."""
    music = tmp_path / "music"
    music.mkdir()
    clip = chord_pad(57, True, 3.0).astype(np.float32)
    (music / "good.wav").write_bytes(encode(clip))
    clip[-1] = 1e30
    (music / "huge.wav").write_bytes(encode(clip, SR, "WAV", "FLOAT"))
    out = tmp_path / "o.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 3
    assert [r["filename"] for r in rows_of(out)] == ["good.wav"]
    report = json.loads((tmp_path / "o.extraction.json").read_text())
    assert report["status"] == "finished" and report["extracted"] == 1 and report["skipped"] == {"corrupt": 1}
    [item] = report["skipped_files"]
    assert Path(item["path"]).name == "huge.wav" and item["reason"] == "corrupt"
    assert "huge.wav holds a sample of magnitude 1e+30" in item["detail"]
    assert "huge.wav" in capsys.readouterr().err


def test_a_file_longer_than_the_workers_memory_holds_is_skipped_before_it_is_decoded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 130 KB WAV whose header says 3 Hz decodes to some 6 hours at 22,050 Hz: the worker grew to 23 GB and the
    kernel killed the run, which every resume would have retried (an audit, 2026-12-07)."""
    from engine.audio._worker import longest_seconds

    music = tmp_path / "music"
    music.mkdir()
    clip = chord_pad(57, True, 3.0).astype(np.float32)
    (music / "good.wav").write_bytes(encode(clip))
    data = bytearray(encode(clip))
    data[24:32] = struct.pack("<II", 3, 3 * 2)  # sample rate and byte rate: 66,150 frames at 3 Hz
    (music / "slow.wav").write_bytes(bytes(data))
    out = tmp_path / "o.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 3
    assert [r["filename"] for r in rows_of(out)] == ["good.wav"]
    [item] = json.loads((tmp_path / "o.extraction.json").read_text())["skipped_files"]
    assert Path(item["path"]).name == "slow.wav" and item["reason"] == "too long", item
    assert item["detail"].startswith(f"slow.wav lasts 22050 s; at most {round(longest_seconds(1))} s for 1 worker(s)")
    assert "run with fewer --workers" in capsys.readouterr().err
    assert 600 <= longest_seconds(4) < longest_seconds(2) < longest_seconds(1)


def test_an_unexpected_error_in_one_file_skips_it_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An exception other than BadAudio or OSError used to end the whole run with exit 70."""
    from engine.audio import _worker

    analyse = _worker.analyse

    def failing(data: bytes, *args: object, name: str = "", **kwargs: object) -> object:
        if name == "odd.wav":
            raise ZeroDivisionError("float division by zero")
        return analyse(data, *args, name=name, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_worker, "analyse", failing)
    music = tmp_path / "music"
    music.mkdir()
    clip = encode(chord_pad(57, True, 3.0).astype(np.float32))
    (music / "good.wav").write_bytes(clip)
    (music / "odd.wav").write_bytes(clip + b"\0")  # other bytes: not a duplicate of good.wav
    out = tmp_path / "o.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 3
    assert [r["filename"] for r in rows_of(out)] == ["good.wav"]
    report = json.loads((tmp_path / "o.extraction.json").read_text())
    assert report["status"] == "finished" and report["skipped"] == {"analysis failed": 1}
    [item] = report["skipped_files"]
    assert Path(item["path"]).name == "odd.wav" and item["reason"] == "analysis failed"
    assert item["detail"] == ("odd.wav: unexpected ZeroDivisionError in the analysis (float division by zero); its "
                              "traceback is in the extraction report")
    assert "Traceback (most recent call last)" in item["traceback"] and "in failing" in item["traceback"]
    err = capsys.readouterr().err
    assert f"  analysis failed: {item['detail']}" in err and "Traceback" not in err


def test_odd_names_and_entries_are_extracted_or_counted_never_the_end_of_the_run(tmp_path: Path) -> None:
    """A file name that is not UTF-8 ended every run with exit 70 at that file (it could never finish); a FIFO
    and a link to nothing were left out unsaid (a FIFO read would block the run)."""
    music = tmp_path / "music"
    (music / "rock").mkdir(parents=True)
    clip = encode(chord_pad(57, True, 3.0).astype(np.float32))
    (music / "rock" / "ok.wav").write_bytes(clip)
    (Path(os.fsdecode(bytes(music / "rock")) + "/" + os.fsdecode(b"caf\xe9.wav"))).write_bytes(clip[:-2] + b"\0\1")
    os.mkfifo(music / "rock" / "fifo.wav")
    (music / "rock" / "gone.wav").symlink_to(tmp_path / "missing.wav")
    out = tmp_path / "o.csv"
    assert main(["extract", str(music), "--out", str(out), "--workers", "0", "--quiet"]) == 3
    assert sorted(r["filename"] for r in rows_of(out)) == ["rock/caf\\xe9.wav", "rock/ok.wav"]
    report = json.loads((tmp_path / "o.extraction.json").read_text())
    assert report["status"] == "finished" and report["files_found"] == 4 and report["skipped"] == {"unreadable": 2}
    details = sorted(item["detail"] for item in report["skipped_files"])
    assert details == ["fifo.wav: not a regular file (a FIFO)", "gone.wav: not a regular file (a link to a missing "
                                                                "file)"]


def test_a_clip_whose_every_segment_is_silent_is_refused_as_silent() -> None:
    # 12 s, silent but for its last 2 s: the whole clip is loud enough, every full 5 s segment is not; the server
    # answered INTERNAL ("max() arg is an empty sequence") and SimilarTracks "at least one seed is required"
    from engine.audio import BadAudio, ExtractorParams, analyse

    y = np.zeros(12 * SR, dtype=np.float32)
    y[-2 * SR:] = chord_pad(57, True, 2.0).astype(np.float32)[:2 * SR]
    with pytest.raises(BadAudio) as err:
        analyse(encode(y), ExtractorParams(), segment_seconds=5.0, name="tail.wav")
    assert err.value.reason == "silent" and str(err.value) == "silent: tail.wav: every 5 s segment is silent"
