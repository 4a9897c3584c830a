"""How much the moods move (engine/_moodstability.py): the ARI against a refit on a share of the tracks and
across seeds, and the report's warning when they moved."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

import engine._moodstability
from engine._moodconfig import MOOD_WEIGHTS, MoodConfig
from engine._moodreport import mood_stability_lines
from engine._moods import MoodModel, MoodSpace, mood_space
from engine._moodsample import id_keys, sample_rows
from engine._moodstability import measure_stability, unsteady
from tests.engine.test_moods import NAMES, fit, planted


def test_stability_is_measured_over_all_tracks() -> None:
    raw, _ = planted()
    model = fit(raw)
    z = (raw - raw.mean(0)) / raw.std(0)
    st = measure_stability(model, model.space.project(z), share=0.9)
    assert st["ari_subsample_all_tracks"] > 0.95 and st["subsample_moods"] == 4  # four planted moods hold still
    assert st["ari_seeds"] is None and "no part" in st["seeds"]  # the whole catalog is fitted: no seed to vary
    sampled = fit(raw, fit_sample=800)
    st = measure_stability(sampled, sampled.space.project(z), share=0.9)
    assert st["ari_seeds"] is not None and st["ari_seeds"] > 0.9 and "plays a part" in st["seeds"]
    # above fit_sample the refits cluster fit_sample tracks and are scored on every track (up to 100,000)
    assert st["evaluated_tracks"] == st["catalog_tracks"] == len(raw) > 800
    assert sampled.metrics_["fit_tracks"] == 800 and sampled.metrics_["sampled"] == "at random"  # no ids given


def test_a_catalog_above_fit_sample_is_fitted_on_the_tracks_whose_ids_hash_lowest(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    raw, truth = planted()  # 1,600 tracks
    z = (raw - raw.mean(0)) / raw.std(0)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    points = space.project(z)
    ids = [f"track-{i}" for i in range(len(raw))]
    keys = id_keys(ids)
    # the same id, the same key, in any run and on any machine: BLAKE2b-64 of its UTF-8 bytes, little-endian
    assert int(keys[0]) == 10677518496270296075 and int(id_keys(["4iV5W9uYEdYUVa79Axb7Rh"])[0]) == 5720273631880240150
    lowest = np.sort(np.argsort(keys)[:800])
    config = MoodConfig(fit_sample=800, min_cluster_size=50, fewest_moods=0)  # the co-association's medoid
    model = MoodModel(config=config, space=space).fit(points, raw, NAMES, keys=keys)
    np.testing.assert_array_equal(model.fitted_, lowest)
    assert model.metrics_["sampled"] == "by id" and model.metrics_["fit_tracks"] == 800
    assert adjusted_rand_score(truth, model.labels_) > 0.95  # every other track assigned to its planted mood
    # a catalog that lost a tenth of its tracks keeps the rest of its sample, whatever the draw
    rng = np.random.default_rng(1)
    kept = np.sort(rng.choice(len(raw), size=1_440, replace=False))
    again = sample_rows(kept, 800, rng, keys)
    assert len(again) == 800 and set(np.intersect1d(lowest, kept)) <= set(again)
    # the stability check fits the subsample's lowest keys, and the seed fit the model's own sample
    drawn: list[np.ndarray] = []

    def spy(rows: np.ndarray, size: int, rng: np.random.Generator, given: np.ndarray | None) -> np.ndarray:
        drawn.append(sample_rows(rows, size, rng, given))
        assert given is keys  # the model's ids, not a random draw
        return drawn[-1]

    monkeypatch.setattr(engine._moodstability, "sample_rows", spy)
    st = measure_stability(model, points, share=0.9)
    (refit_rows,) = drawn
    assert len(refit_rows) == 800 and len(np.intersect1d(refit_rows, lowest)) >= 700
    assert st["ari_subsample_all_tracks"] > 0.95 and st["ari_seeds"] > 0.95
    assert "the seed draws the co-association's" in st["seeds"]


def test_stability_counts_a_moved_boundary() -> None:
    # one uniform strip: where HDBSCAN cuts it depends on the sample, which ARI must show (below 1)
    rng = np.random.default_rng(0)
    raw = np.column_stack([rng.random(2000), rng.random(2000) * 0.2, rng.random((2000, 2)), rng.normal(120, 25, 2000)])
    model = fit(raw, min_cluster_size=200, min_samples=20, selection="leaf")
    z = (raw - raw.mean(0)) / raw.std(0)
    st = measure_stability(model, model.space.project(z), share=0.6)
    assert st["ari_subsample_all_tracks"] < 0.99


def test_moods_that_moved_are_flagged_in_the_report_with_the_lever_that_helps() -> None:
    held = {"ari_subsample_all_tracks": 0.93, "ari_seeds": 0.97, "subsample_share": 0.9, "evaluated_tracks": 10,
            "catalog_tracks": 10, "subsample_moods": 5, "ari_subsample_core_in_both": 1.0, "core_in_both_share": 0.8,
            "seeds": "", "seconds": 1.0}
    three = mood_space(("mfcc1_mean", "chroma_stft_mean", "spectral_centroid_mean", "tempo"), MOOD_WEIGHTS)
    assert unsteady(held, three) is None
    assert not any("warning" in line for line in mood_stability_lines(held))
    moved = {**held, "ari_seeds": 0.61}
    warning = unsteady(moved, three)
    assert warning is not None and "across seeds 0.61" in warning and "ARI against the 90% refit" not in warning
    assert "no column for activity, texture" in warning  # the aspects this descriptor space lacks
    moved = {**moved, "ari_subsample_all_tracks": 0.5, "warning": unsteady({**moved, "ari_subsample_all_tracks": 0.5},
                                                                            mood_space(tuple(MOOD_WEIGHTS), MOOD_WEIGHTS))}
    assert "90% refit 0.5" in moved["warning"] and "0.8896-0.98 on 1,000-4,000 (the octants: 63 of 63" in moved["warning"]
    assert mood_stability_lines(moved)[-1] == f"         warning: {moved['warning']}"
    # one mood in both fits: 1 by construction, which a reader took for moods that hold (an audit, 2026-12-07)
    one = {**held, "ari_subsample_all_tracks": 1.0, "subsample_moods": 1}
    assert "stability: ARI 1.0 (one mood both times: 1 by construction) over" in mood_stability_lines(one)[0]
    assert "by construction" not in mood_stability_lines({**one, "subsample_moods": 2})[0]


def test_fits_that_disagree_are_flagged_even_where_the_refit_held() -> None:
    from engine._moodstability import AGREED_FITS

    held = {"ari_subsample_all_tracks": 0.95, "ari_seeds": 0.97, "subsample_share": 0.9, "fits_agree": 0.93}
    space = mood_space(tuple(MOOD_WEIGHTS), MOOD_WEIGHTS)
    assert AGREED_FITS == 0.9 and unsteady(held, space) is None
    split = unsteady({**held, "fits_agree": 0.85}, space)
    assert split is not None and split.startswith("the moods may move: the k-means fits agree at mean ARI 0.85 (under "
                                                  "0.9): their cut is one of several nearly as good")
    octant = unsteady({**held, "fits_agree": 0.85, "fits": "octant"}, space)  # the fits named as they were
    assert octant is not None and octant.startswith("the moods may move: the octant fits agree at mean ARI 0.85")
    both = unsteady({**held, "fits_agree": 0.85, "ari_subsample_all_tracks": 0.6}, space)
    assert both is not None and both.startswith("the moods moved (ARI against the 90% refit 0.6, under 0.8); the k-means "
                                                "fits agree at mean ARI 0.85")
    every_aspect = mood_space(("rms_mean", "spectral_centroid_mean", "tempo", "perceptr_var", "zero_crossing_rate_mean"),
                              MOOD_WEIGHTS)  # a descriptor table with a column per aspect: the tables' figures
    table = unsteady({**held, "fits_agree": 0.85}, every_aspect)
    assert table is not None and "72 of 72 draws" in table and "Spotify" not in table


def test_a_build_at_the_boundary_between_clusters_and_a_continuum_names_the_key_that_keeps_its_cut() -> None:
    from engine._moodstability import BOUNDARY_MOVED, boundary

    space = mood_space(tuple(MOOD_WEIGHTS), MOOD_WEIGHTS)
    held = {"ari_subsample_all_tracks": 0.99, "subsample_share": 0.9, "fits_agree": 0.99, "fits": "k-means",
            "subsample_fits": "k-means", "pin": 5, "density_sides": [0, 20], "fewest_moods": 5}
    assert boundary(held) is None and unsteady(held, space) is None  # every share on one side, the refit too
    split = {**held, "density_sides": [3, 17]}
    assert boundary(split) == ("the catalog sits at the boundary between clusters and a continuum (HDBSCAN found 5 "
                               "density moods or more on 17 of the 20 fits' shares of the mood space (k-means cells) "
                               "and fewer on 3 (octants)): a build of a changed catalog may take the other cut, unless it "
                               f"keeps this one ({BOUNDARY_MOVED}); a rebuild whose --current points at this bundle "
                               "keeps its cut where its count or this one's splits")
    # where the refit kept the build's cut, the warning says so
    kept = boundary({**split, "subsample_kept": {"cut": 5, "source": "the build's own fit", "counted": "octants",
                                                 "split": "there"}})
    assert (kept or "").endswith("keeps its cut where its count or this one's splits, as the refit here did")
    warning = unsteady(split, space)
    assert warning is not None and warning.startswith("the moods may move: the catalog sits at the boundary")
    assert "set [moods] coassoc_ks = 5 (k-means cells at K 5, whatever the count, at any size" in warning
    assert "Spotify" not in warning  # the lever is the key, not the generic figures
    octants = {**held, "fits": "octant", "pin": "octants", "subsample_fits": "octant", "seed_fits": "k-means",
               "density_sides": [20, 0], "ari_seeds": 0.7}
    assert "(this build took octant fits and its seed fit took k-means fits)" in (boundary(octants) or "")
    warning = unsteady(octants, space)
    assert warning is not None and warning.startswith("the moods moved (across seeds 0.7, under 0.8); the catalog sits")
    assert 'set [moods] coassoc_ks = "octants" (the octants, whatever the count, at any size' in warning
    assert boundary({"ari_subsample_all_tracks": 0.99}) is None  # no medoid: no cut to keep
    # every share on one side, but the refit took the other fits: said too, without the shares
    refit_only = {**held, "subsample_fits": "octant"}
    assert (boundary(refit_only) or "").startswith("the catalog sits at the boundary between clusters and a continuum "
                                                   "(this build took k-means fits and its refit took octant fits): ")
    # a build that kept its current bundle's cut says so, and what its count alone would take
    current = {**split, "kept": {"cut": 5, "source": "the previous bundle v3", "counted": "octants"}}
    assert ("; this build kept the cut of the previous bundle v3, k-means cells at K 5, where its count would take "
            "the octants)") in (boundary(current) or "")
    # fits that disagree and the boundary: both reasons, and the key as the lever
    both = unsteady({**split, "fits_agree": 0.85}, space)
    assert both is not None and both.startswith("the moods may move: the k-means fits agree at mean ARI 0.85 (under "
                                                "0.9): their cut is one of several nearly as good")
    assert "; the catalog sits at the boundary" in both and "coassoc_ks = 5" in both
    assert 'at any size while moods.fit_sample is "auto"' in both  # the fewer fits on at most 4,999 tracks


def test_the_density_count_reads_as_each_bundle_took_it() -> None:
    from engine._moodreport import density_range

    assert density_range({"bags": 20, "density_counts": [0, 3], "density_selection": "leaf"}) == (
        " (leaf selection; the median over the 20 fits' shares, which found 0-3)")
    # bundles built before the count took leaves say nothing of it, and before the median nothing at all
    assert density_range({"bags": 20, "density_counts": [2, 2]}) == " (the median over the 20 fits' shares, each of " \
        "which found 2)"
    assert density_range({"bags": 20}) == ""
