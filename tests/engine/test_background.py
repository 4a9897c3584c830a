"""The genre stage beside the moods (engine/_background.py): the same results as alone, its errors raised
where the build waits for it, and stopped when the build fails first."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

import engine._build as build_module
from engine import BuildConfig, Preprocessor, Tick, build_bundle, load_bundle, read_catalog
from engine._background import Background, Cancelled
from engine._crossfit import OOF_FILE, oof_arrays
from engine._report import format_report
from engine.evaluation import cross_fit
from tests.conftest import FAST_CONFIG


def test_a_job_returns_its_value_and_its_messages_name_the_stage() -> None:
    said: list[str] = []

    def job(progress):
        progress("fold 1/2")
        progress(Tick("XGBoost: 5/25 rounds"))
        progress("genre: 2-fold cross-validation")
        return 42

    done = Background("genre", job, said.append)
    assert done.result() == 42
    assert said[:3] == ["genre: fold 1/2", "genre: XGBoost: 5/25 rounds", "genre: 2-fold cross-validation"]
    assert isinstance(said[1], Tick) and not isinstance(said[0], Tick)  # a tick stays a tick (the CLI drops them)
    assert said[3].startswith("[genre] done in ")


def test_a_jobs_error_is_raised_where_the_build_waits_for_it() -> None:
    said: list[str] = []

    def job(progress):
        raise ValueError("no labels")

    failed = Background("genre", job, said.append)
    with pytest.raises(ValueError, match="no labels"):
        failed.result()
    assert not any("done in" in s for s in said)  # it did not end well, so it does not say it did


def test_a_cancelled_job_stops_at_its_next_message() -> None:
    started, go_on = threading.Event(), threading.Event()
    rounds = []

    def job(progress):
        started.set()
        go_on.wait(10)
        for r in range(1000):
            progress(Tick(f"{r}"))  # raises Cancelled once cancelled
            rounds.append(r)
        return "finished"

    running = Background("genre", job, lambda _m: None)
    started.wait()
    running.cancel(wait=False)  # (waiting here would wait for the job, which waits for go_on: 10 s lost)
    go_on.set()
    with pytest.raises(Cancelled):
        running.result()
    assert rounds == []


def test_a_cancelled_job_that_ends_without_a_word_is_still_cancelled() -> None:
    release = threading.Event()
    quiet = Background("genre", lambda _progress: release.wait(10) and "trained", lambda _m: None)
    said: list[str] = []
    quiet._say = said.append  # what it would say once done
    quiet.cancel(wait=False)
    release.set()
    quiet.cancel()  # waits for it to end
    with pytest.raises(Cancelled):
        quiet.result()
    assert said == []  # no "[genre] done" after the build gave up on it


def test_cancelling_a_job_stops_the_job_it_started_without_a_stray_thread_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The genre job starts the shipped model's job, which reports through it: cancelling the outer one ends
    both, each with ``Cancelled`` kept for ``result()``, and no thread dies with an unhandled exception."""
    stray: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: stray.append(args.exc_value))
    inner: list[Background] = []
    go_on = threading.Event()

    def shipped(_progress):
        go_on.wait(10)
        return "model"  # done without a word since the cancel: its "done" goes through the cancelled job

    def genre(progress):
        inner.append(Background("shipped model", shipped, progress))
        for r in range(100_000):
            progress(Tick(f"{r}"))
        return inner[0].result()

    outer = Background("genre", genre, lambda _m: None)
    outer.cancel()  # waits until it has stopped
    go_on.set()
    for job in (outer, inner[0]):
        with pytest.raises(Cancelled):
            job.result()
    assert stray == []


def test_the_report_gives_the_builds_wall_time_and_says_the_stages_overlapped(bundle_dir: Path) -> None:
    manifest = load_bundle(bundle_dir).manifest

    def time_line(m: dict) -> str:
        return next(line for line in format_report(m).splitlines() if line.startswith("time"))

    assert time_line(manifest).endswith(f"total {manifest['build_seconds']:.1f} s (the genre stage beside the moods)")
    old = {k: v for k, v in manifest.items() if k != "build_seconds"}  # bundles built before 2026-12-06
    assert time_line(old).endswith(f"total {sum(manifest['timings_seconds'].values()):.1f} s")


def test_the_bundles_genre_model_is_the_one_cross_fit_trains_alone(bundle_dir: Path, synthetic_csv: Path,
                                                                   tmp_path: Path) -> None:
    """Trained beside the moods, the classifier and its out-of-fold probabilities are bit for bit what
    ``cross_fit`` gives on its own in this thread."""
    config = FAST_CONFIG
    catalog = read_catalog(synthetic_csv, config.schema)
    prep = Preprocessor(feature_names=catalog.feature_names, transforms=config.schema.transforms,
                        pca_variance=config.preprocess.pca_variance).fit(catalog.features)
    alone, crossfit = cross_fit(catalog, prep.transform_features(catalog.features), prep.transformed_names,
                                config.genre, seed=config.seed)
    alone.save(str(tmp_path / "alone.ubj"))
    assert (tmp_path / "alone.ubj").read_bytes() == (bundle_dir / "genre_model.ubj").read_bytes()
    stored = np.load(bundle_dir / OOF_FILE)
    for name, array in oof_arrays(crossfit).items():
        np.testing.assert_array_equal(stored[name], array)
    m = load_bundle(bundle_dir).manifest
    assert set(m["timings_seconds"]) >= {"moods", "genre"} and "build_seconds" in m


def test_a_build_whose_moods_fail_stops_the_genre_stage(tmp_path: Path, synthetic_csv: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs: list[Background] = []

    class Kept(Background):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            jobs.append(self)

    def broken(*_args, **_kwargs):
        raise RuntimeError("moods broke")

    monkeypatch.setattr(build_module, "Background", Kept)
    monkeypatch.setattr(build_module.MoodModel, "fit", broken)
    # rounds enough to train for minutes: only a cancel ends it soon
    config = BuildConfig(genre=dataclasses.replace(FAST_CONFIG.genre, max_rounds=5000, early_stopping_rounds=5000))
    with pytest.raises(RuntimeError, match="moods broke"):
        build_bundle(synthetic_csv, tmp_path / "b", config)
    assert not (tmp_path / "b").exists()
    assert len(jobs) == 1
    with pytest.raises(Cancelled):  # stopped at its next progress message, not run to its end
        jobs[0].result()
