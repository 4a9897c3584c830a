"""What a newcomer meets in a first build: missing parent folders are made, capped settings are
reported, each figure is printed once and paired like with like, and progress says how far, how fast
and how long is left (on a terminal; a log gets the stages only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import synthetic_catalog
from engine._progress import Tick, Ticker, duration
from indexer import _build
from musicrec.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 600-track catalog and a config that asks for the blur (the co-association is the default this small)
    at its default 100 neighbours."""
    root = tmp_path_factory.mktemp("tiny")
    csv, config = root / "tiny.csv", root / "tiny.toml"
    synthetic_catalog(600, seed=0).to_csv(csv, index=False)
    config.write_text("[index]\nneighbours = 20\n[moods]\nsmoother = \"blur\"\nmin_cluster_size = 15\nmin_samples = 5\n"
                      "[genre]\nmax_rounds = 5\nearly_stopping_rounds = 2\ntune = false\n")
    return csv, config


def test_missing_parents_are_created_and_removed_again_when_the_build_fails(
        tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv, config = tiny
    out = tmp_path / "new" / "deeper" / "bundle"
    assert main(["index", str(csv), "--out", str(out), "--config", str(config), "--quiet"]) == 0
    assert (out / "manifest.json").is_file()
    failed = tmp_path / "other" / "bundle"
    assert main(["index", str(tmp_path / "missing.csv"), "--out", str(failed), "--quiet"]) == 2
    assert not (tmp_path / "other").exists()  # a failed build leaves no directory behind, parents included


def test_a_build_reports_what_it_capped_and_each_figure_once(tiny: tuple[Path, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    csv, config = tiny
    assert main(["index", str(csv), "--out", str(tmp_path / "b"), "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    # 600 tracks: blurring over 100 neighbours would be a sixth of the catalog, so it is capped to 3%
    assert "smoothing_neighbours 100 capped to 18" in err
    assert "smoothing_neighbours 100 capped to 18: at most 3% of the 600 tracks clustered" in out
    assert len(re.findall(r"\d% of the variance", out + err)) == 1  # the PCA share: once, in the report
    top = re.search(r"genre top-1 [\d.]+ \(random ([\d.]+)\), top-3 [\d.]+ \(random ([\d.]+)\)", err)
    assert top, err
    report_random = re.search(r"random top-1 ([\d.]+) top-2 [\d.]+ top-3 ([\d.]+)", out)
    assert report_random and top.groups() == report_random.groups()  # the same baselines, paired like with like


def test_ticks_report_rate_and_time_left() -> None:
    said: list[str] = []
    tick = Ticker(said.append, "denoising", 1000, unit="points", every=0.0)
    tick(250, ", pass 1 of 5")
    tick(1000)  # the end of the loop is no tick: the stage's own line says it is done
    assert len(said) == 1 and isinstance(said[0], Tick)
    assert re.fullmatch(r"denoising: 250/1,000 points \([\d,.]+ points/s, about \d+ s left\), pass 1 of 5", said[0])
    bounded: list[str] = []
    Ticker(bounded.append, "XGBoost", 250, unit="rounds", every=0.0, upper_bound=True)(10)
    assert "at most" in bounded[0]
    assert [duration(s) for s in (4.4, 200, 4000)] == ["4 s", "3 min 20 s", "1 h 06 min"]


@pytest.mark.parametrize("terminal", [True, False])
def test_ticks_only_on_a_terminal(terminal: bool, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    progress = _build._Progress()
    progress.terminal = terminal
    try:
        progress("[moods] ...")
        progress(Tick("denoising: 10/100 points (5 points/s, about 18 s left)"))
    finally:
        progress.close()
    err = capsys.readouterr().err
    assert "[moods] ..." in err
    assert ("denoising: 10/100" in err) is terminal


def test_a_build_without_a_terminal_has_no_ticks(tiny: tuple[Path, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    csv, config = tiny
    monkeypatch.setattr("engine._progress.TICK_SECONDS", 0.0)  # a tick for every chunk and round...
    assert main(["index", str(csv), "--out", str(tmp_path / "b"), "--config", str(config)]) == 0
    err = capsys.readouterr().err  # ...and none printed: stderr is not a terminal here
    assert "[moods] done" in err and "XGBoost:" not in err and "denoising:" not in err


def test_config_help_lists_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    assert "[similar]" in " ".join(capsys.readouterr().out.split())


def test_the_report_mood_table_fits_a_terminal() -> None:
    from engine._moodreport import mood_table

    moods = [{"id": 0, "name": "calm · acoustic", "size": 10, "core_size": 5, "top_genres":
              [{"genre": g} for g in ("singer-songwriter", "acoustic", "j-pop")],
              "mean": {"valence": 0.5, "energy": 0.3, "tempo": 100.0, "acousticness": 0.8}}]
    full = mood_table(moods)
    assert full[1].endswith("singer-songwriter, acoustic, j-pop")
    cut = mood_table(moods, width=len(full[1]) - 10)
    assert len(cut[1]) == len(full[1]) - 10 and cut[1].endswith("…")
    assert cut[0] == full[0]  # the header fits already
