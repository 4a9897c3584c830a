"""A disk that fills while a command writes: the command says which file it could not write (exit 1), a file that
was there stays whole, no cut output is left that a later run would read as good, and nothing written is lost."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.audio._synth import STYLES, write_corpus
from musicrec.cli import main
from tests._full_disk import full_disk

REPO = Path(__file__).resolve().parents[2]
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")


def test_a_report_that_cannot_be_written_leaves_the_one_there_whole(small_bundle_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``--html`` over an existing report on a full disk cut that report short in place (64 KiB of a 792 KiB page)."""
    page = tmp_path / "r.html"
    page.write_text("<p>the last good report</p>")
    full_disk(monkeypatch)
    assert main(["report", str(small_bundle_dir), "--html", str(page)]) == 1
    assert capsys.readouterr().err == f"musicrec report: error: --html {page}: No space left on device\n"
    assert page.read_text() == "<p>the last good report</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left


def test_index_json_on_a_full_disk_names_the_flag_and_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """It said "the bundle was written to B, but None: No space left on device"."""
    csv = tmp_path / "c.csv"
    assert main(["synth", "--tracks", "80", "--seed", "2", "--out", str(csv)]) == 0
    config = tmp_path / "tiny.toml"
    config.write_text("[moods]\nfit_sample = 500\nmin_cluster_size = 10\nmin_samples = 2\nstability_subsample = 0\n")
    full_disk(monkeypatch)
    report = tmp_path / "r.json"
    assert main(["index", str(csv), "--out", str(tmp_path / "b"), "--config", str(config), "--no-genre", "--quiet",
                 "--json", str(report)]) == 1
    assert capsys.readouterr().err.endswith(f"the bundle was written to {tmp_path / 'b'}, but --json {report}: "
                                            "No space left on device\n")
    assert (tmp_path / "b" / "manifest.json").is_file() and not report.exists()


def test_synth_on_a_full_disk_leaves_no_cut_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The cut CSV stayed, and `musicrec index` took it as a good catalog of fewer tracks."""
    full_disk(monkeypatch)
    out = tmp_path / "x.csv"
    assert main(["synth", "--tracks", "50", "--seed", "1", "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"musicrec synth: error: --out {str(out)!r}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []


def test_standard_output_on_a_full_disk_is_exit_1_saying_so(small_bundle_dir: Path) -> None:
    """`musicrec report B --json > full-disk` was exit 70, "a bug", with a traceback."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "musicrec.cli", "report", str(small_bundle_dir), "--json"],
                              cwd=REPO, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (1, "musicrec report: error: cannot write standard output: "
                                                 "No space left on device\n")


def test_an_interrupt_after_the_bundle_was_written_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """It said "interrupted; no bundle was written" while `current` already pointed at the new bundle."""
    csv = tmp_path / "c.csv"
    assert main(["synth", "--tracks", "80", "--seed", "2", "--out", str(csv)]) == 0

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("engine.format_report", interrupted)
    config = tmp_path / "tiny.toml"
    config.write_text("[moods]\nfit_sample = 500\nmin_cluster_size = 10\nmin_samples = 2\nstability_subsample = 0\n")
    out = tmp_path / "b"
    assert main(["index", str(csv), "--out", str(out), "--config", str(config), "--no-genre", "--quiet"]) == 130
    assert capsys.readouterr().err == f"musicrec index: interrupted; the bundle {out} was written\n"
    assert (out / "manifest.json").is_file()


def test_an_extract_whose_disk_fills_keeps_whole_rows_and_resumes_to_every_segment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A short write left a file's first segments and cut its last; a resumed run took the file as done, so its
    last segments were never written (exit 0), and the first run ended in a traceback (exit 70)."""
    import engine.audio._batch as batch

    music = tmp_path / "music"
    write_corpus(music, styles=STYLES[:1], artists_per_style=2, songs_per_artist=2, seconds=4.0, tags=False)
    out = tmp_path / "f.csv"
    real_write, writes = os.write, []

    def fills(fd: int, data: bytes) -> int:  # the second file's rows: half of them go in, then the disk is full
        writes.append(len(data))
        if len(writes) == 2:
            return real_write(fd, bytes(data[:len(data) // 2]))
        if len(writes) == 3:
            raise ENOSPC
        return real_write(fd, data)

    monkeypatch.setattr(batch.os, "write", fills)
    args = ["extract", str(music), "--out", str(out), "--segment-seconds", "2", "--workers", "0", "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"musicrec extract: error: cannot write {out}: No space left on device; the ") and \
        "rows written before are kept: make room and run the same command again to resume" in err, err
    first = out.read_text()
    assert first.endswith("\n") and len(first.splitlines()) == 3  # the header and the first file's two segments
    monkeypatch.setattr(batch.os, "write", real_write)
    assert main(args) == 0
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 8 and len({r.split(",")[0] for r in rows}) == 8  # four files of two segments, once each
    assert json.loads((tmp_path / "f.extraction.json").read_text())["status"] == "finished"


def test_publish_json_on_a_full_disk_says_the_alias_moved(small_bundle_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """It was exit 70 with a traceback, after the alias had moved."""
    full_disk(monkeypatch)
    report = tmp_path / "p.json"
    assert main(["publish", str(small_bundle_dir), "--qdrant-path", str(tmp_path / "q"), "--quiet",
                 "--json", str(report)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("musicrec publish: error: published ") and "alias musicrec moved), but --json " in err
    assert err.endswith(f"{report}: No space left on device\n") and not report.exists()


def test_a_report_file_keeps_its_mode_and_a_link_or_fifo_is_written_through(small_bundle_dir: Path,
                                                                            tmp_path: Path) -> None:
    """Written beside and renamed, a report lost its permissions, a link became a file of its own and a FIFO's
    reader got nothing (a review of the change that made report files whole or nothing)."""
    import stat
    import threading

    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o600)
    real = tmp_path / "real.html"
    real.write_text("old")
    (tmp_path / "link.html").symlink_to(real)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    assert main(["report", str(small_bundle_dir), "--html", str(tmp_path / "link.html")]) == 0
    assert main(["report", str(small_bundle_dir), "--html", str(fifo)]) == 0
    reader.join(30)
    assert main(["publish", str(small_bundle_dir), "--qdrant-path", str(tmp_path / "q"), "--quiet",
                 "--json", str(private)]) == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and json.loads(private.read_text())["collection"]
    assert (tmp_path / "link.html").is_symlink() and real.read_text().startswith("<!doctype html>")
    assert got and got[0].startswith("<!doctype html>")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".musicrec-")]


def test_an_interrupted_report_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import write_output

    def interrupted(fd: int, *args: object, **kwargs: object) -> object:
        os.close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr("engine._files.open", interrupted, raising=False)
    with pytest.raises(KeyboardInterrupt):
        write_output(tmp_path / "x.csv", "a,b\n")
    assert list(tmp_path.iterdir()) == []
