"""`musicrec index --out` names the file system refuses end with exit 1 and `cannot write OUT: <reason>`, never a
traceback; a name it takes for the bundle is never refused for the temporary name the bundle is written under."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import BundleError, load_bundle, synthetic_catalog
from engine._bundle import atomic_bundle_dir
from musicrec.cli import main

# no capacity search for the classifier (10 s a build here): what these tests check is where the bundle is written
TINY = ("[moods]\nfit_sample = 500\nmin_cluster_size = 10\nmin_samples = 2\nstability_subsample = 0\n"
        "[genre]\ntune = false\nmax_rounds = 10\n")


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    csv, config = tmp_path / "c.csv", tmp_path / "tiny.toml"
    synthetic_catalog(80, seed=2).to_csv(csv, index=False)
    config.write_text(TINY)
    return csv, config


def name_max(folder: Path) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


def test_an_out_name_over_the_file_systems_limit_is_exit_1_naming_it(
        tmp_path: Path, small: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """It was exit 70 with OSError [Errno 36] from the check that the output does not exist yet."""
    csv, config = small
    out = tmp_path / ("b" * (name_max(tmp_path) + 1))
    code = main(["index", str(csv), "--out", str(out), "--config", str(config), "--quiet", "--no-genre"])
    assert (code, capsys.readouterr().err) == (1, f"musicrec index: error: cannot write {out}: File name too long\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "tiny.toml"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_out_in_a_folder_that_takes_no_new_directory_is_exit_1_naming_it(
        small: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """/proc takes no mkdir: the temporary directory's mkdir raised FileNotFoundError, exit 70."""
    csv, config = small
    code = main(["index", str(csv), "--out", "/proc/musicrec_x", "--config", str(config), "--quiet", "--no-genre"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("musicrec index: error: cannot write /proc/musicrec_x: "), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_long_name_the_file_system_takes_is_not_refused_for_its_temporary_name(
        tmp_path: Path, small: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The bundle was written under ``.<name>.partial-<8 hex>``, 19 bytes longer: a 240-byte name, legal for the
    bundle, failed as the temporary one (exit 70)."""
    csv, config = small
    out = tmp_path / "bundles" / ("b" * name_max(tmp_path))
    code = main(["index", str(csv), "--out", str(out), "--config", str(config), "--quiet", "--no-genre"])
    assert code == 0, capsys.readouterr().err
    load_bundle(out)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary directory left


def test_a_failed_write_under_a_long_name_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / ("é" * (name_max(tmp_path) // 2))  # two bytes a character: the cut is by bytes
    with pytest.raises(RuntimeError, match="stop"), atomic_bundle_dir(out) as partial:
        assert partial.is_dir() and ".partial-" in partial.name and len(os.fsencode(partial.name)) <= 255
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []  # nor the parent folder it made
    with pytest.raises(BundleError, match=r"cannot write .*: File name too long"), \
            atomic_bundle_dir(tmp_path / ("x" * (name_max(tmp_path) + 1))):
        pass


@pytest.mark.parametrize("where", ["engine._build.save_index", "engine._genre.GenreClassifier.save",
                                   "engine._build.write_manifest"])
def test_a_disk_that_fills_during_a_build_is_exit_1_cannot_write(
        tmp_path: Path, small: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], where: str) -> None:
    """A full disk mid-build was exit 70 "a bug" with faiss's RuntimeError, XGBoost's "FileStream.Write incomplete"
    or numpy's OSError; the bundle's own writes now fail as OSErrors (save_index, GenreClassifier.save write their
    bytes from Python) and the build says it could not write its output."""
    import errno

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(where, full)
    csv, config = small
    out = tmp_path / "b"
    code = main(["index", str(csv), "--out", str(out), "--config", str(config), "--quiet"])
    assert (code, capsys.readouterr().err) == (1, f"musicrec index: error: cannot write {out}: "
                                                  "No space left on device\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "tiny.toml"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_the_index_and_the_model_fail_on_a_full_disk_as_oserrors(bundle_dir: Path) -> None:
    """faiss.write_index raised RuntimeError and XGBoost's save_model XGBoostError there."""
    import errno

    bundle = load_bundle(bundle_dir)
    from engine._index import save_index

    for write in (lambda: save_index(bundle.index, Path("/dev/full")),
                  lambda: bundle.classifier.save("/dev/full")):
        with pytest.raises(OSError) as caught:
            write()
        assert caught.value.errno == errno.ENOSPC


def test_a_read_error_inside_a_build_stays_what_it_was(tmp_path: Path) -> None:
    """Only the bundle's writes become "cannot write": an error about another file is not blamed on the output."""
    with pytest.raises(FileNotFoundError), atomic_bundle_dir(tmp_path / "b"):
        (tmp_path / "missing.csv").read_text()
    assert list(tmp_path.iterdir()) == []


def test_a_report_file_named_with_a_trailing_slash_is_refused_not_written_as_a_file(
        bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report --html out/` wrote a file named out (a first-hour walk, 2026-12-08): a name ending in "/" is a
    folder's."""
    assert main(["report", str(bundle_dir), "--html", f"{tmp_path / 'out'}/"]) == 1
    assert capsys.readouterr().err == (f"musicrec report: error: --html {tmp_path / 'out'}/: ends in '/', which names "
                                       "a directory; give a file name\n")
    assert not (tmp_path / "out").exists()
