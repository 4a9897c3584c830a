"""A rebuild keeps its moods' cut at the boundary between clusters and a continuum (engine/_moodcarry.py): the
bundle ``--current`` points at gives its cut where the new build's count of density moods splits."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from engine import BuildConfig, MoodConfig, build_bundle, load_bundle, synthetic_catalog
from engine._config import GenreConfig
from engine._moodcarry import cut_to_keep, read_current
from engine._moods import MoodSpace
from musicrec.cli import main

THREE = {"valence": 1.0, "energy": 1.0, "danceability": 1.0}  # the mood space of benchmarks/mood_borderline.py
CONFIG = BuildConfig(moods=MoodConfig(weights=THREE), genre=GenreConfig(enabled=False))
UNCHECKED = CONFIG.replace(moods={"stability_subsample": 0})  # for builds whose stability check nothing reads


def borderline_catalog(spread: float = 0.12, seed: int = 2) -> pd.DataFrame:
    """2,000 tracks in the Spotify schema whose valence, energy and danceability hold five planted moods at the
    boundary between clusters and a continuum (those of tests/engine/test_moodcoassoc.py ``borderline``, scaled
    into 0..1: the standardized mood space is the same)."""
    from benchmarks.mood_borderline import CENTERS

    raw = CENTERS[np.repeat(np.arange(5), 400)] + np.random.default_rng(seed).normal(size=(2000, 3)) * spread
    raw = (raw - raw.min(0)) / (raw.max(0) - raw.min(0)) * 0.9 + 0.05
    catalog = synthetic_catalog(2400, seed=5).drop_duplicates("track_id").dropna().iloc[:2000].reset_index(drop=True)
    for j, column in enumerate(THREE):
        catalog[column] = raw[:, j]
    return catalog


def current_cut(link: Path | None, config: MoodConfig, space: MoodSpace, ids: np.ndarray):  # type: ignore[no-untyped-def]
    """The cut a build of ``ids`` keeps from the bundle ``link`` points at, and what it says (as engine/_build.py)."""
    current, said = read_current(link, space, ids)
    return cut_to_keep(current, said, config, space, len(ids))


def moods_by_id(bundle: Path) -> dict[str, int]:
    loaded = load_bundle(bundle)
    return dict(zip(loaded.tracks.ids, loaded.moods.labels_.tolist(), strict=True))


def test_a_rebuild_at_the_boundary_keeps_the_cut_of_the_bundle_it_replaces(tmp_path: Path) -> None:
    # the full catalog: 15 of the 20 shares find the five moods, so k-means cells. 90% of it: 17 of 20 find fewer
    # (octants alone, ARI 0.76 against the full build's moods); rebuilt with --current at the full build, it keeps
    # its k-means cells, and its moods are the full build's
    catalog = borderline_catalog()
    catalog.to_csv(tmp_path / "full.csv", index=False)
    catalog.iloc[np.sort(np.random.default_rng(5).choice(2000, 1800, replace=False))].to_csv(
        tmp_path / "changed.csv", index=False)
    full = build_bundle(tmp_path / "full.csv", tmp_path / "v1", UNCHECKED)["metrics"]["moods"]
    assert full["coassoc"]["density_sides"] == [5, 15] and full["coassoc"]["cells"] == "k-means"
    assert full["current_cut"] == {"none": "no --current link given", "kept": False}
    os.symlink("v1", tmp_path / "current")
    (tmp_path / "moods.toml").write_text("[moods.weights]\nvalence = 1.0\nenergy = 1.0\ndanceability = 1.0\n"
                                         "[genre]\nenabled = false\n", encoding="utf-8")
    assert main(["index", str(tmp_path / "changed.csv"), "--out", str(tmp_path / "v2"), "--current",
                 str(tmp_path / "current"), "--config", str(tmp_path / "moods.toml"), "--quiet",
                 "--json", str(tmp_path / "v2.json")]) == 0
    rebuilt = json.loads((tmp_path / "v2.json").read_text(encoding="utf-8"))["metrics"]["moods"]
    assert rebuilt["coassoc"]["density_sides"] == [17, 3] and rebuilt["coassoc"]["cells"] == "k-means"
    assert rebuilt["coassoc"]["kept"] == {"cut": 5, "source": "the previous bundle v1", "counted": "octants",
                                          "split": "here"}
    # v1's own count split too: its cut would be kept here even where this count agreed
    assert rebuilt["current_cut"]["cut"] == 5 and rebuilt["current_cut"]["split"] is True
    assert rebuilt["current_cut"]["kept"] is True
    assert rebuilt["against_current"]["bundle"] == "v1" and rebuilt["against_current"]["shared_tracks"] == 1800
    assert rebuilt["against_current"]["ari"] >= 0.99
    assert "this build kept the cut of the previous bundle v1, k-means cells at K 5" in rebuilt["stability"]["warning"]
    assert os.readlink(tmp_path / "current") == "v2"
    alone = build_bundle(tmp_path / "changed.csv", tmp_path / "alone", UNCHECKED)["metrics"]["moods"]
    assert alone["coassoc"]["cells"] == "octants" and "kept" not in alone["coassoc"]
    before, kept, fresh = (moods_by_id(tmp_path / name) for name in ("v1", "v2", "alone"))
    ids = sorted(kept)
    assert adjusted_rand_score([before[i] for i in ids], [kept[i] for i in ids]) >= 0.99
    assert adjusted_rand_score([before[i] for i in ids], [fresh[i] for i in ids]) < 0.8


def test_a_rebuild_just_across_a_size_where_the_method_changes_keeps_the_method_it_had(tmp_path: Path) -> None:
    # the method changes at moods.coassoc_wide_from (5,000 tracks by default; 1,000 here, to build small): a catalog
    # of 980 tracks grown to 1,060 kept every mood with --current, where a fresh build replaces them; and a fresh
    # build's stability check says what its tracks built alone would take
    config = BuildConfig(moods=MoodConfig(coassoc_wide_from=1000), genre=GenreConfig(enabled=False))
    frame = synthetic_catalog(1300, seed=6, bad_rows=0, exact_duplicates=0).drop_duplicates("track_id")
    frame.iloc[:980].to_csv(tmp_path / "small.csv", index=False)
    frame.iloc[:1060].to_csv(tmp_path / "grown.csv", index=False)
    unchecked = config.replace(moods={"stability_subsample": 0})  # for builds whose stability check nothing reads
    build_bundle(tmp_path / "small.csv", tmp_path / "v1", unchecked)
    os.symlink("v1", tmp_path / "current")
    grown = build_bundle(tmp_path / "grown.csv", tmp_path / "v2", config, current=tmp_path / "current")
    moods = grown["metrics"]["moods"]
    assert grown["counts"]["tracks"] == 1060 and moods["coassoc"]["moods"] == "medoid"  # the method under 1,000
    assert moods["current_regime"]["regime"] == "few" and moods["current_regime"]["seam"] == "coassoc_wide_from"
    assert moods["against_current"]["shared_tracks"] == 980 and moods["against_current"]["ari"] >= 0.8
    assert "subsample_fresh" not in moods["stability"]  # its 90% built alone takes the same method as it did
    fresh = build_bundle(tmp_path / "grown.csv", tmp_path / "fresh", config)["metrics"]["moods"]
    assert fresh["coassoc"]["moods"] == "clusters" and "against_current" not in fresh
    crossed = fresh["stability"]["subsample_fresh"]
    assert crossed["seam"] == "coassoc_wide_from" and crossed["at"] == 1000
    assert ("where the mood method changes" in fresh["stability"].get("warning", "")) == (crossed["ari_all_tracks"] < 0.8)
    # its next rebuild, still within the band, keeps the method this one kept (not the size's)
    frame.iloc[:1090].to_csv(tmp_path / "more.csv", index=False)
    os.symlink("v2", tmp_path / "v2-link")
    more = build_bundle(tmp_path / "more.csv", tmp_path / "v3", unchecked, current=tmp_path / "v2-link")["metrics"]["moods"]
    assert more["regime"] == "few" and more["current_regime"]["regime"] == "few"
    # the other way: a catalog of the method over the seam shrunk under it keeps that method, and its stability
    # check fits the refit's tracks alone (under 1,000: the other method) without failing
    os.symlink("fresh", tmp_path / "fresh-link")
    frame.iloc[:990].to_csv(tmp_path / "shrunk.csv", index=False)
    shrunk = build_bundle(tmp_path / "shrunk.csv", tmp_path / "v4", config,
                          current=tmp_path / "fresh-link")["metrics"]["moods"]
    assert shrunk["regime"] == "wide" and shrunk["coassoc"]["moods"] == "clusters"
    assert shrunk["stability"]["subsample_fresh"]["seam"] == "coassoc_wide_from"
    assert shrunk["stability"]["subsample_fresh"]["at"] == 1000
    before, kept, replaced = (moods_by_id(tmp_path / name) for name in ("v1", "v2", "fresh"))
    ids = sorted(before)
    assert adjusted_rand_score([before[i] for i in ids], [kept[i] for i in ids]) == pytest.approx(
        moods["against_current"]["ari"], abs=1e-4)
    assert adjusted_rand_score([before[i] for i in ids], [replaced[i] for i in ids]) < moods["against_current"]["ari"]


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A bundle of the synthetic catalog behind a ``current`` link, and the catalog's ids."""
    root = tmp_path_factory.mktemp("carry")
    synthetic_catalog(1200, seed=4).to_csv(root / "catalog.csv", index=False)
    build_bundle(root / "catalog.csv", root / "v1", BuildConfig(genre=GenreConfig(enabled=False)))
    os.symlink("v1", root / "current")
    return root / "current", load_bundle(root / "v1").tracks.ids


def test_the_current_cut_is_read_only_from_a_rebuild_of_the_same_catalog(current: tuple[Path, np.ndarray],
                                                                          tmp_path: Path) -> None:
    link, ids = current
    config = MoodConfig()
    space = MoodSpace(columns=(0, 1, 2, 3, 4, 5), weights=(1.0,) * 6, names=(
        "valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo"))
    cut, said = current_cut(link, config, space, ids)
    manifest = json.loads((link / "manifest.json").read_text(encoding="utf-8"))
    theirs = manifest["metrics"]["moods"]["coassoc"]
    assert cut is not None and cut.cut == ("octants" if theirs["cells"] == "octants" else theirs["ks"][0])
    assert cut.source == f"the previous bundle {link.resolve().name}" and cut.split is (min(theirs["density_sides"]) > 0)
    assert said["bundle"] == str(link.resolve()) and said["cut"] == cut.cut and said["shared_tracks"] == 1.0
    # another catalog (under half of its tracks in the bundle), another mood space, another method: none
    assert "another catalog, not a rebuild" in current_cut(link, config, space, np.array(["x"] * 10))[1]["none"]
    other_space = MoodSpace(columns=(0, 1, 2), weights=(1.0,) * 3, names=("valence", "energy", "tempo"))
    assert "its mood space is ['valence'" in current_cut(link, config, other_space, ids)[1]["none"]
    assert "do not count density moods" in current_cut(link, MoodConfig(coassoc_ks=5), space, ids)[1]["none"]
    assert current_cut(None, config, space, ids) == (None, {"none": "no --current link given"})
    assert "points at no bundle yet" in current_cut(tmp_path / "current", config, space, ids)[1]["none"]
    # a damaged bundle is being replaced: the build goes on, and says why it keeps nothing
    shutil.copytree(link.resolve(), tmp_path / "damaged")
    with open(tmp_path / "damaged" / "tracks.npz", "r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    os.symlink(tmp_path / "damaged", tmp_path / "broken")
    none, said = current_cut(tmp_path / "broken", config, space, ids)
    assert none is None and said["none"].startswith("it cannot be read (") and "tracks.npz" in said["none"]
    # the manifest has no checksum: an edited one is read as far as it goes, never into a crash
    for moods in ("edited", {"space": ["x"]}, {**manifest["metrics"]["moods"], "coassoc": {**theirs, "cells": "k-means", "ks": "ab"}},
                  {**manifest["metrics"]["moods"], "coassoc": {**theirs, "density_sides": [None, 3]}}):
        edited = tmp_path / f"edited-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(link.resolve(), edited)
        (edited / "manifest.json").write_text(json.dumps({**manifest, "metrics": {**manifest["metrics"],
                                                                                 "moods": moods}}), encoding="utf-8")
        os.symlink(edited, tmp_path / f"{edited.name}-link")
        none, said = current_cut(tmp_path / f"{edited.name}-link", config, space, ids)
        assert none is None and said["none"].startswith(("it cannot be read (", "its mood space is")), moods
