"""`musicrec extract`'s inputs and output path: a label table that is short a field, not UTF-8 or matches no file, a
folder reached through a link (and a link making a loop), and an --out the file system refuses. Each ends with a
clear message (exit 2) or is said, never a traceback or a silent skip."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from engine.audio._inputs import find_files, read_label_table
from engine.audio._synth import chord_pad
from musicrec.cli import main
from tests.audio.conftest import encode

RUN = ["--workers", "0", "--quiet"]


def clip(pitch: int = 57, seconds: float = 3.0) -> bytes:
    return encode(chord_pad(pitch, True, seconds).astype(np.float32))


@pytest.fixture
def music(tmp_path: Path) -> Path:
    (tmp_path / "music" / "rock").mkdir(parents=True)
    (tmp_path / "music" / "rock" / "a.wav").write_bytes(clip())
    return tmp_path / "music"


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(("content", "message"), [
    # DictReader filled the missing label with None: AttributeError 'NoneType' object has no attribute 'strip'
    (b"filename,label\na.wav\n", "data row 1 has no label (it has 1 field(s), the header 2)"),
    (b"filename,label\na.wav,rock\n\nb.wav\n", "data row 2 has no label (it has 1 field(s), the header 2)"),
    (b"filename,label\na.wav,rock, pop\n", "data row 1 has 3 fields, the header 2 (quote a label that holds a comma)"),
    # a UnicodeDecodeError, exit 70
    (b"filename,label\na.wav,caf\xe9\n", "not UTF-8 text (line 2, byte 24: invalid continuation byte); re-save the "
                                         "label table as UTF-8"),
    (b"filename,label\na.wav,rock\na.wav,pop\n", "'a.wav' is labelled 'rock' in data row 1 and 'pop' in data row 2; give it one label"),
    (b"file,genre\na.wav,rock\n", "a label table needs the columns filename,label; its header is 'file,genre'"),
])
def test_a_bad_label_table_is_exit_2_naming_the_file_and_row(content: bytes, message: str, music: Path,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table, out = tmp_path / "labels.csv", tmp_path / "f.csv"
    table.write_bytes(content)
    assert main(["extract", str(music), "--out", str(out), "--label-from", str(table), *RUN]) == 2
    assert capsys.readouterr().err == f"musicrec extract: error: {table}: {message}\n"
    assert not out.exists()


def test_a_label_table_is_read_by_its_header_with_blank_lines_and_quoted_commas(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbflabel,filename\n rock , a.wav \n\n\"pop, indie\",b.wav\nrock,a.wav\n")
    assert read_label_table(path) == {"a.wav": "rock", "b.wav": "pop, indie"}


def test_a_label_table_that_names_no_file_found_is_refused_and_one_that_names_some_is_said(
        music: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every label came out blank, with exit 0 and nothing said."""
    table, out = tmp_path / "labels.csv", tmp_path / "f.csv"
    table.write_text("filename,label\nzz.wav,pop\nrock/zz.wav,jazz\n")
    assert main(["extract", str(music), "--out", str(out), "--label-from", str(table), *RUN]) == 2
    assert capsys.readouterr().err == (
        f"musicrec extract: error: {table}: none of its 2 row(s) names a file found (such as 'zz.wav'; files found: "
        "'rock/a.wav'); the filename column takes a file's id (its path under the folder given) or its bare name\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "music"]
    table.write_text("filename,label\nrock/a.wav,grunge\nzz.wav,pop\n")
    assert main(["extract", str(music), "--out", str(out), "--label-from", str(table), *RUN]) == 0
    assert [r["label"] for r in rows_of(out)] == ["grunge"]
    assert f"warning: 1 row(s) of {table} name no file found, so their labels were not used: 'zz.wav'" in \
        capsys.readouterr().err
    report = json.loads((tmp_path / "f.extraction.json").read_text())
    assert (report["label_rows_unmatched"], report["label_rows_unmatched_shown"]) == (1, ["zz.wav"])


def test_a_linked_folder_is_extracted_and_a_link_making_a_loop_is_said(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """os.walk left out every folder reached through a link, unsaid and uncounted."""
    lib, elsewhere = tmp_path / "lib", tmp_path / "elsewhere" / "rock"
    (lib / "jazz").mkdir(parents=True)
    elsewhere.mkdir(parents=True)
    (lib / "jazz" / "c.wav").write_bytes(clip(60))
    (elsewhere / "b.wav").write_bytes(clip(64))
    (lib / "rock").symlink_to(Path("..") / "elsewhere" / "rock")
    (lib / "jazz" / "up").symlink_to(Path(".."))  # lib/jazz/up/jazz/up/...: walked once only
    (lib / "rock" / "again").symlink_to(lib / "jazz")  # a second way to lib/jazz
    out = tmp_path / "f.csv"
    assert main(["extract", str(lib), "--out", str(out), *RUN]) == 0
    assert sorted((r["filename"], r["label"]) for r in rows_of(out)) == [("jazz/c.wav", "jazz"), ("rock/b.wav", "rock")]
    skipped = json.loads((tmp_path / "f.extraction.json").read_text())["folders_skipped"]
    assert skipped == [
        {"path": str(lib / "jazz" / "up"), "reason": f"a link to {lib}, a folder above it: a loop"},
        {"path": str(lib / "rock" / "again"), "reason": f"{lib / 'jazz'} was walked already, by another path"}]
    err = capsys.readouterr().err
    assert "warning: 2 folder(s) not walked" in err and f"  {lib / 'jazz' / 'up'}: a link to {lib}" in err


def test_a_folder_before_a_link_beside_it_to_the_same_place(tmp_path: Path) -> None:
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "a.wav").write_bytes(b"x")
    (tmp_path / "a").symlink_to("z")  # sorted before its target: the folder's own path is still the id
    skipped: list[dict[str, str]] = []
    assert [job.id for job in find_files([tmp_path], folders_skipped=skipped)] == ["z/a.wav"]
    assert [item["path"] for item in skipped] == [str(tmp_path / "a")]


def test_a_folder_that_cannot_be_listed_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.walk passed over it in silence (its default onerror)."""
    (tmp_path / "locked").mkdir()
    (tmp_path / "a.wav").write_bytes(b"x")
    scandir = os.scandir

    def refusing(path: object) -> object:
        if Path(os.fsdecode(path)) == tmp_path / "locked":  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", os.fsdecode(path))  # type: ignore[arg-type]
        return scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", refusing)
    skipped: list[dict[str, str]] = []
    assert [job.id for job in find_files([tmp_path], folders_skipped=skipped)] == ["a.wav"]
    assert skipped == [{"path": str(tmp_path / "locked"), "reason": "cannot be listed (Permission denied)"}]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder")
def test_a_folder_that_cannot_be_listed_is_said_and_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "music" / "locked").mkdir(parents=True)
    (tmp_path / "music" / "a.wav").write_bytes(clip())
    (tmp_path / "music" / "locked").chmod(0)
    try:
        assert main(["extract", str(tmp_path / "music"), "--out", str(tmp_path / "f.csv"), *RUN]) == 3
    finally:
        (tmp_path / "music" / "locked").chmod(0o755)
    assert f"  {tmp_path / 'music' / 'locked'}: cannot be listed" in capsys.readouterr().err


def test_an_out_the_file_system_refuses_is_exit_2_and_writes_nothing(
        music: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 250-byte name: its report's temporary name was too long (exit 70, the CSV left without its report, so
    every later run refused it); a file where a folder should be was called a directory that does not exist."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    (tmp_path / "afile").write_text("x")
    for out, said in [
        (tmp_path / ("c" * (limit - 4) + ".csv"), "the name of its extraction report (the name with "
                                                  f".extraction.json for .csv) would be {limit + 12} bytes"),
        (tmp_path / ("c" * (limit + 1) + ".csv"), "File name too long"),
        (tmp_path / "afile" / "x.csv", f"{tmp_path / 'afile'} is not a directory"),
    ]:
        assert main(["extract", str(music), "--out", str(out), *RUN]) == 2
        assert capsys.readouterr().err.startswith(f"musicrec extract: error: cannot write {out}: {said}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "music"]
    out = tmp_path / ("c" * (limit - 20) + ".csv")  # its report's name is 255 bytes: taken
    assert main(["extract", str(music), "--out", str(out), *RUN]) == 0
    assert len(rows_of(out)) == 1 and (tmp_path / (out.stem + ".extraction.json")).is_file()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_out_in_a_folder_that_takes_no_new_file_is_exit_2(music: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", str(music), "--out", "/proc/musicrec_x.csv", *RUN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("musicrec extract: error: cannot write /proc/musicrec_x.csv: ") and err.count("\n") == 1
