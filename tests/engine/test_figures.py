"""What a build stores for pictures: the mood map (engine/_moodmap.py) and the genre evaluation's
arrays (engine/_diagnostics.py); and the HTML report drawn from them (musicrec report --html)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

import engine
from engine._diagnostics import BINS, genre_diagnostics, load_diagnostics
from engine._genre import calibration_error
from engine._moodmap import fit_mood_map
from musicrec.cli import main
from tests.test_entrypoint import loaded, run_main

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / f"v{engine.FORMAT_VERSION}"
PICTURE_FILES = ("moodmap.npz", "evaluation.npz")


@pytest.fixture
def without_pictures(tmp_path: Path) -> Path:
    """The current golden bundle as a build made before pictures were stored wrote it: no mood map, no
    evaluation arrays, and a manifest that does not list them (format 3 bundles were such; format 4
    refuses them by version, so the optional files are checked on a copy of the current one)."""
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(GOLDEN, old)
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    for name in PICTURE_FILES:
        (old / name).unlink()
        del manifest["files"][name]
    (old / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return old


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> engine.Bundle:
    return engine.load_bundle(bundle_dir)


def mood_points(bundle: engine.Bundle) -> np.ndarray:
    return bundle.moods.space.project(bundle.preprocessor.standardize(bundle.tracks.features))


def test_a_build_stores_a_mood_map_of_every_track(bundle: engine.Bundle) -> None:
    mood_map = bundle.mood_map
    assert mood_map is not None and mood_map.xy.shape == (len(bundle.tracks), 2)
    assert "linear discriminant" in mood_map.method
    assert len(mood_map.columns) == len(bundle.moods.space.columns)
    # the stored coordinates are the map's own function of the mood space: new tracks land consistently
    np.testing.assert_allclose(mood_map.place(mood_points(bundle)), mood_map.xy, atol=1e-4)
    # moods are told apart on the map: each mood's centre is nearer its own tracks than the others' centres are
    labels = bundle.moods.labels_
    centres = np.array([mood_map.xy[labels == m].mean(axis=0) for m in range(len(bundle.moods.clusters_))])
    nearest = np.argmin(((mood_map.xy[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    # (on this catalog of 12 planted genres the medoid's 8 octants are told apart for 72% of the tracks, its 5
    # k-means cells, the default until 2026-12-06, for 86%, and the 160 fits' 8 moods before them for 67%: a 2-D
    # picture separates fewer moods better)
    assert (nearest == labels).mean() > 0.7
    assert all(label for label in mood_map.axis_labels())


def test_the_report_says_what_the_moods_of_a_small_catalog_are(bundle: engine.Bundle) -> None:
    # 3,000 tracks whose mood space HDBSCAN finds fewer than five moods in: the moods are the cells of the medoid
    # of 20 octant fits, HDBSCAN's noise the tracks not core
    report = engine.format_report(bundle.manifest)
    assert re.search(r"moods    \d+ octants \(fitted on 3,000 tracks\); HDBSCAN cores hold [\d.]+% of tracks, "
                     r"the rest assigned to the nearest mood centroid", report), report
    assert "HDBSCAN on the co-association of 20 octant fits (each the octants of the mood space's first 3 axes" in report


def test_the_map_is_deterministic_and_never_mirrored(bundle: engine.Bundle) -> None:
    points, labels = mood_points(bundle), bundle.moods.labels_
    again = fit_mood_map(points[::-1], labels[::-1], bundle.mood_map.columns)
    np.testing.assert_allclose(again.xy[::-1], bundle.mood_map.xy, atol=1e-3)


def test_fewer_than_three_moods_fall_back_to_principal_components() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 4))
    for labels in (np.zeros(200, dtype=int), np.repeat([0, 1], 100)):
        mood_map = fit_mood_map(points, labels, ["a", "b", "c", "d"])
        assert mood_map.xy.shape == (200, 2) and "principal components" in mood_map.method
        assert np.isfinite(mood_map.xy).all()


def test_a_bundle_without_pictures_still_loads(without_pictures: Path) -> None:
    old = engine.load_bundle(without_pictures)
    assert old.mood_map is None
    assert load_diagnostics(without_pictures) == {}


def test_the_evaluation_arrays_agree_with_the_manifest(bundle: engine.Bundle) -> None:
    g = bundle.manifest["metrics"]["genre"]
    diag = load_diagnostics(bundle.path)
    assert set(diag) == {"genre", "family"}
    genre = diag["genre"]
    assert genre["names"] == list(bundle.tracks.genre_names)
    confusion = genre["confusion"]
    assert confusion.sum() == g["test_tracks"] == genre["bin_count"].sum()
    assert np.trace(confusion) / confusion.sum() == pytest.approx(g["top1"])  # a hit sits on the diagonal
    assert genre["bin_correct"].sum() / genre["bin_count"].sum() == pytest.approx(g["top1"])
    count = genre["bin_count"]
    ece = float(np.sum(np.abs(genre["bin_confidence"] - genre["bin_correct"])) / count.sum())
    assert ece == pytest.approx(g["ece_top1"], abs=1e-4)  # the diagram's bins are the ECE's
    assert (genre["hits"] <= genre["tracks"]).all()
    family = diag["family"]
    assert np.trace(family["confusion"]) / family["confusion"].sum() == pytest.approx(g["families"]["top1"], abs=1e-4)


def test_diagnostics_of_a_known_case() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5]])
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=bool)
    out = genre_diagnostics(proba, truth, ["a", "b", "c"])
    # track 2 is b but called a; track 3 is b but called c; track 1 (a and b) called b: a hit, counted as b
    np.testing.assert_array_equal(out["genre_confusion"], [[1, 0, 0], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(out["genre_tracks"], [2, 3, 0])
    np.testing.assert_array_equal(out["genre_hits"], [2, 1, 0])
    assert out["genre_bin_count"].shape == (BINS,) and out["genre_bin_count"].sum() == 4
    confidence = proba.max(axis=1)
    correct = np.array([True, True, False, False])
    ece = np.abs(out["genre_bin_confidence"] - out["genre_bin_correct"]).sum() / 4
    assert ece == pytest.approx(calibration_error(confidence, correct, bins=BINS))
    assert "family_confusion" not in out  # "a", "b", "c" are in no family table


def png_widths(page: str) -> list[int]:
    """The width of every embedded image (the PNG header's IHDR field)."""
    widths = []
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        widths.append(int.from_bytes(png[16:20], "big"))
    return widths


def test_report_html_draws_every_figure(bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(bundle_dir), "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    for heading in ("Build report", "Mood map", "Mood profiles", "Genre confusion", "Genre-family confusion",
                    "Reliability", "Per-genre accuracy", "PCA explained variance", "Index"):
        assert f">{heading}</h2>" in page
    widths = png_widths(page)
    assert len(widths) == 7 and min(widths) > 300
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched
    assert "7 figures" in capsys.readouterr().err


def test_names_with_dollar_signs_are_drawn_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """matplotlib read a "$...$" pair as mathematics: a genre "$\\foo$ metal" failed the report, which blamed the
    manifest, and "cla$\\sqrt{x}$ical" was drawn "cla√xical" (an audit, 2026-12-07)."""
    from tests.conftest import FAST_CONFIG

    catalog = engine.synthetic_catalog(1200, n_genres=4, seed=3)
    genres = sorted(set(catalog["track_genre"]))
    catalog["track_genre"] = catalog["track_genre"].replace({genres[0]: "$\\foo$ metal", genres[1]: "cla$\\sqrt{x}$ical"})
    catalog.to_csv(tmp_path / "c.csv", index=False)
    engine.build_bundle(tmp_path / "c.csv", tmp_path / "b", FAST_CONFIG)
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "b"), "--html", str(out)]) == 0, capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    assert ">Genre confusion</h2>" in page and ">Per-genre accuracy</h2>" in page and len(png_widths(page)) >= 6


def test_report_of_an_older_bundle_says_what_is_missing(tmp_path: Path, without_pictures: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "old.html"
    assert main(["report", str(without_pictures), "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "built before mood maps were stored" in page and "rebuild" in page
    assert len(png_widths(page)) >= 2  # the mood profiles and PCA need nothing new
    assert main(["report", str(without_pictures)]) == 0
    assert f"musicrec bundle (format {engine.FORMAT_VERSION})" in capsys.readouterr().out


def test_report_help_loads_no_plotting_or_heavy_module() -> None:
    code, modules, printed = run_main(["report", "--help"])
    assert code == 0 and "--html" in printed
    assert loaded(modules, ("matplotlib", "starlette", "uvicorn", "grpc", "faiss", "xgboost", "sklearn")) == []


def test_the_index_figure_names_the_new_track_index_by_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The new-track index is IVF (engine/_build.py); the figure called it HNSW, its kind before, until 2026-12-07."""
    from matplotlib.figure import Figure

    import engine._htmlreport as report

    drawn: list[Figure] = []
    monkeypatch.setattr(report, "figure_html", lambda fig, *_args, **_kw: drawn.append(fig) or "")
    new = {"kind": "ivf", "recall_at_10": 0.99, "recall_at_264": 0.97, "queries": 1000}
    report._index(Figure, {"kind": "flat", "tracks": 3000, "dim": 14, "new_track_index": new})
    labels = [t.get_text() for t in drawn[-1].axes[0].get_xticklabels()]
    assert labels == ["ivf (new-track index)\nrecall@10", "ivf (new-track index)\nrecall@264"]


def test_a_figure_the_pictures_cannot_read_is_refused_naming_the_manifest(bundle_dir: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An edited manifest the text report reads but a picture cannot (a recall turned null) is the text report's
    refusal, not a traceback (a probe of the figures the pictures read found seven such edits, in five places)."""
    import json
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(bundle_dir, edited)
    manifest = json.loads((edited / "manifest.json").read_text(encoding="utf-8"))
    # the text report prints recall@10 and the first fetch's; the picture draws every recall, a null one too
    manifest["metrics"]["index"]["new_track_index"] = {"kind": "ivf", "nlist": 55, "nprobe": 16, "queries": 1000,
                                                       "recall_at_10": 0.99, "recall_at_264": 0.97,
                                                       "recall_at_50": None}
    (edited / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert main(["report", str(edited)]) == 0  # the text report reads it
    capsys.readouterr()
    with pytest.raises(engine.BundleIntegrityError, match="the report cannot read it"):
        engine.bundle_report_html(engine.load_bundle(edited))
    assert main(["report", str(edited), "--html", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert f"{edited / 'manifest.json'}: the report cannot read it (TypeError" in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()
