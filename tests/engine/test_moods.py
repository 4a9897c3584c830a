from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from engine import ConfigError, MoodConfig, MoodModel, mood_name
from engine._moodconfig import AUTO_KEYS, COASSOC_MOODS, FEW_TRACKS_COASSOC, LARGE_CATALOG_MOODS, SMALL_CATALOG_MOODS
from engine._moodreport import mood_consensus_lines, mood_floor_lines, mood_table
from engine._moods import CLUMP_MULTIPLE, MoodSpace, mood_space
from engine._moodstability import measure_stability
from tests.engine._planted import NAMES, fit, planted

# The configuration before the space was denoised: HDBSCAN on a sample of the raw mood space.
LEGACY = {"smoothing_iterations": 0, "fit_sample": 30_000, "min_cluster_size": 60, "min_cluster_fraction": 0.0,
          "min_samples": 2, "selection": "leaf", "epsilon": 0.25}


def test_planted_moods_are_found_and_named() -> None:
    raw, truth = planted()
    model = fit(raw)
    assert model.metrics_["clusters"] == 4
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    names = {c["name"].split(" · ")[0] for c in model.clusters_}
    assert names == {"happy, energetic", "angry, tense", "calm, content", "sad, reflective"}
    assert model.metrics_["core_coverage"] > 0.8
    assert sum(c["size"] for c in model.clusters_) == len(raw)  # every track has a mood


def test_fitting_on_a_sample_assigns_every_track() -> None:
    raw, truth = planted()
    model = fit(raw, fit_sample=600)
    assert model.metrics_["fit_tracks"] == 600
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    assert ((model.strength_ >= 0) & (model.strength_ <= 1)).all()


def test_outliers_are_flagged_not_core_and_weak() -> None:
    raw, _ = planted()
    model = fit(raw)
    far = model.space.project(np.array([[0.0, 0.0, 0, 0, 0], [9.0, 9.0, 0, 0, 0]]))
    labels, strength, core = model.assign_points(far)
    assert core[1] == np.False_ and strength[1] < 0.2  # far outside every core: assigned, flagged, weak
    assert (labels >= 0).all()


def test_assignment_survives_the_array_round_trip() -> None:
    raw, _ = planted()
    model = fit(raw)
    z = (raw - raw.mean(0)) / raw.std(0)
    arrays = model.to_arrays()
    assert all(a.dtype != object for a in arrays.values())
    again = MoodModel.from_arrays(arrays, model.clusters_, model.config)
    labels, strength, _ = again.assign_points(model.space.project(z))
    np.testing.assert_array_equal(labels, model.labels_)
    np.testing.assert_allclose(strength, model.strength_)


def test_mood_names_come_from_the_means_on_absolute_scales() -> None:
    catalog_mean = {"valence": 0.47, "energy": 0.64, "danceability": 0.57, "acousticness": 0.31, "tempo": 122.0}
    catalog_std = {"valence": 0.26, "energy": 0.25, "danceability": 0.17, "acousticness": 0.34, "tempo": 30.0}
    assert mood_name({"valence": 0.8, "energy": 0.8, "danceability": 0.8, "tempo": 125.0}, catalog_mean,
                     catalog_std) == "happy, energetic · danceable"
    assert mood_name({"valence": 0.2, "energy": 0.2, "acousticness": 0.9, "tempo": 80.0}, catalog_mean,
                     catalog_std) == "sad, reflective · acoustic, slow"
    # above the catalog's mean but inside the neutral band: neither happy nor sad (the metalcore)
    assert mood_name({"valence": 0.48, "energy": 0.87, "acousticness": 0.05}, catalog_mean,
                     catalog_std) == "energetic · electric"
    assert mood_name({"valence": 0.5, "energy": 0.5}) == "neutral"


@pytest.mark.parametrize("smoother", ["shift", "field"])
def test_planted_moods_come_back_with_the_shift_and_the_field_too(smoother: str) -> None:
    raw, truth = planted()
    model = fit(raw, smoother=smoother)
    assert model.metrics_["smoother"] == smoother and model.metrics_["clusters"] == 4
    assert adjusted_rand_score(truth, model.labels_) > 0.95


def test_planted_moods_come_back_by_consensus_and_the_bags_make_the_seed_count() -> None:
    raw, truth = planted(middle=True)
    model = fit(raw, bags=6, selection="leaf")
    m = model.metrics_
    assert m["clusters"] == 5 and adjusted_rand_score(truth, model.labels_) > 0.95
    assert m["consensus"]["bags"] == 6 and len(m["consensus"]["moods_per_bag"]) == 6 and m["seeded"] is True
    assert m["hdbscan_core_coverage"] > 0.5 and len(model.exemplars_) == model.is_core_.sum()
    assert "consensus of 6 HDBSCAN fits, each on a random 50%" in mood_consensus_lines(m)[0]
    one = mood_consensus_lines(fit(raw).metrics_)
    assert one[0] == "         one HDBSCAN fit" and one[1].startswith("         method: blurring mean shift, 5 x mean of")
    z = (raw - raw.mean(0)) / raw.std(0)
    st = measure_stability(model, model.space.project(z), share=0.9)
    # the seed draws the bags: the seed check refits on the model's own smoothed points
    assert st["ari_seeds"] > 0.95 and "bags" in st["seeds"] and st["subsample_moods"] == 5
    np.testing.assert_array_equal(fit(raw, bags=6, selection="leaf").labels_, model.labels_)  # same seed, same moods


def test_too_few_moods_by_consensus_scale_each_bags_floor_to_its_share() -> None:
    # five planted moods of 200 tracks and a floor of 150: a half bag holds ~100 of each, so at the full
    # fit's floor every bag finds nothing; scaled to half the floor each finds all five
    raw, truth = planted(n_per=200, middle=True)
    z = (raw - raw.mean(0)) / raw.std(0)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    for fewest, moods in ((0, 0), (5, 5)):
        said: list[str] = []
        config = MoodConfig(min_cluster_size=150, min_samples=10, selection="leaf", fewest_moods=fewest, bags=4)
        model = MoodModel(config=config, space=space).fit(space.project(z), raw, NAMES, progress=said.append)
        co = model.metrics_["consensus"]
        assert co["moods_per_bag"] == [moods] * 4 and co["bag_min_cluster_size"] == (75 if fewest else 150)
        if fewest:  # the full fit's floor is kept, not lowered: 5 x 150 fits in 1,000 tracks
            assert model.metrics_["clusters"] == 5 and adjusted_rand_score(truth, model.labels_) > 0.95
            assert model.metrics_["min_cluster_size"] == 150 and "floor_lowered" not in model.metrics_
            assert any("0 moods, fewer than 5: each bag's floor scaled to its share" in line for line in said)
            assert "the bags' floor scaled to their share" in mood_consensus_lines(model.metrics_)[0]
        else:  # no consensus found a mood: one mood holds every track
            assert model.metrics_["clusters"] == 1 and "scaled" not in mood_consensus_lines(model.metrics_)[0]


def test_auto_keys_take_the_method_for_the_catalog_size_and_the_stability_check_keeps_it() -> None:
    raw, truth = planted(middle=True)  # 2,000 tracks
    z = (raw - raw.mean(0)) / raw.std(0)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    large = {**LARGE_CATALOG_MOODS, "smoothing_neighbours": 9}  # 0.45% of 2,000 tracks
    coassoc = {**COASSOC_MOODS, "min_samples": 100}  # 5% of 2,000 tracks
    few = {**FEW_TRACKS_COASSOC, "min_samples": 100}
    assert set(AUTO_KEYS) == set(SMALL_CATALOG_MOODS) == set(COASSOC_MOODS) == set(LARGE_CATALOG_MOODS) == set(few)
    smoothing = {"coassoc_until": 2_000, "coassoc_wide_from": 2_000}
    for bounds, method, where in (({"coassoc_wide_from": 2_001}, few, "under moods.coassoc_wide_from = 2,001: fewer"),
                                  # (fit_sample "auto" would fit 1,999 of them with the fewer fits)
                                  ({"coassoc_wide_from": 2_000, "fit_sample": 2_000}, coassoc,
                                   "from moods.coassoc_wide_from = 2,000: quick"),
                                  (smoothing, SMALL_CATALOG_MOODS,
                                   "2,000 tracks clustered, under moods.small_catalog = 20,000"),
                                  ({**smoothing, "small_catalog": 2_000}, large,
                                   "at least moods.small_catalog = 2,000")):
        config = MoodConfig(min_cluster_size=50, **bounds)  # type: ignore[arg-type]
        # "auto" resolves too: coassoc_wide_from - 1 with the co-association (2,000 here), 100,000 with a smoothing
        sample = {"fit_sample": bounds.get("fit_sample", 2_000 if method["coassoc_bags"] else 100_000)}
        assert config.auto_keys() == list(method) and config.resolved(2_000) == MoodConfig(
            min_cluster_size=50, **{**bounds, **sample}, **method)  # type: ignore[arg-type]
        model = MoodModel(config=config, space=space).fit(space.project(z), raw, NAMES)
        m = model.metrics_
        assert model.bags_ == m["bags"]["fits"] == method["bags"] and m["seeded"]
        assert m["smoother"] == m["method"]["smoother"] == ("none" if method["coassoc_bags"] else method["smoother"])
        assert m["method"]["epsilon"] == method["epsilon"] and m["method"]["passes"] == method["smoothing_iterations"]
        if method is few:  # five planted moods: HDBSCAN finds them in the mood space, and every fit at K 5
            assert m["clusters"] == 5 and adjusted_rand_score(truth, model.labels_) > 0.95
            facts = {"bags": 20, "ks": [5, 5], "fits": 20, "share": 0.9, "starts": 10, "dims": 5, "assign": "centroid",
                     "density_moods": 5, "moods": "medoid"}
            assert {key: m["coassoc"][key] for key in facts} == facts and 0 <= m["coassoc"]["medoid_fit"] < 20
            assert ("HDBSCAN on the co-association of 20 k-means fits (20 bags) (K 5, each on a random 90% of the "
                    "tracks, the best of 10 starts; HDBSCAN found 5 moods in the mood space itself (leaf selection; the "
                    "median over the 20 fits' shares, each of which found 5); how often"
                    ) in mood_consensus_lines(m)[0]
        elif method["coassoc_bags"]:  # k-means' K 6-8 cut a planted mood the same way often enough: never mixed
            assert 5 <= m["clusters"] <= 7 and all(len(set(truth[model.labels_ == c])) == 1 for c in range(m["clusters"]))
            facts = {"bags": 40, "ks": [5, 8], "fits": 160, "share": 0.5, "starts": 1, "dims": 5, "assign": "centroid",
                     "moods": "clusters"}
            assert {key: m["coassoc"][key] for key in facts} == facts and not {"medoid_fit", "fits_agree"} & set(m["coassoc"])
            assert mood_consensus_lines(m)[0].endswith("moods are the Voronoi cells of its clusters' centroids in mood space")
            assert "HDBSCAN on the co-association of 160 k-means fits (40 bags) (K 5-8, each" in mood_consensus_lines(m)[0]
        else:
            assert m["clusters"] == 5 and adjusted_rand_score(truth, model.labels_) > 0.9
            assert f"consensus of {method['bags']}" in mood_consensus_lines(m)[0]
        assert where in m["method"]["why"]
        # the 90% refit holds 1,800 tracks, in another range for two of these: it refits with the model's
        # resolved configuration, which has nothing left to resolve
        assert model.resolved_.auto_keys() == [] and model.resolved_.resolved(1_800) == model.resolved_
        st = measure_stability(model, space.project(z), share=0.9)
        steady = 0.8 if method["coassoc_bags"] else 0.9  # a cut planted mood moves (issue 17's bar is 0.8)
        assert st["ari_seeds"] is not None and st["ari_subsample_all_tracks"] > steady and st["ari_seeds"] > steady
        assert ("k-means" in st["seeds"]) == bool(method["coassoc_bags"])
    # a key given a value keeps it at any size
    given = MoodConfig(smoother="blur", bags=0, epsilon=0.05).resolved(100_000)
    assert (given.smoother, given.bags, given.epsilon, given.smoothing_neighbours) == ("blur", 0, 0.05, 450)
    # the defaults fit the fewer fits' most at any size; with the co-association stopped at 50,000 tracks, as until
    # 2026-12-06, the Spotify data's 89,583 take the field on all of them
    assert MoodConfig().clustered(89_583) == 4_999 and MoodConfig().regime(4_999) == "few"
    old = MoodConfig(coassoc_until=50_000)
    assert old.clustered(89_583) == 89_583 and old.resolved(89_583).smoothing_neighbours == 403


def test_the_consensus_keeps_only_moods_above_the_floor() -> None:
    # one planted mood of 60 tracks beside four of 400: below a floor of 100 it is not a mood of its own
    raw, truth = planted()
    small = planted(n_per=60, middle=True)[0][-60:]
    raw = np.vstack([raw, small])
    model = fit(raw, bags=4, selection="leaf", min_cluster_size=100)
    assert model.metrics_["clusters"] == 4
    assert adjusted_rand_score(truth, model.labels_[:len(truth)]) > 0.95


def test_cores_are_the_tracks_hdbscan_labelled_and_keep_their_label() -> None:
    raw, _ = planted()
    model = fit(raw)
    m = model.metrics_
    assert m["seeded"] is False and m["fit_tracks"] == len(raw)
    assert m["core_coverage"] == m["hdbscan_core_coverage"] == round(float(model.is_core_.mean()), 4)
    assert len(model.exemplars_) == model.is_core_.sum()  # the core tracks are the exemplars
    z = (raw - raw.mean(0)) / raw.std(0)
    labels, _, core = model.assign_points(model.space.project(z))
    np.testing.assert_array_equal(labels, model.labels_)  # a new copy of a track gets the track's mood
    assert core[model.is_core_].all()


def test_the_seed_plays_no_part_unless_the_catalog_is_sampled() -> None:
    raw, _ = planted()
    np.testing.assert_array_equal(fit(raw, seed=0).labels_, fit(raw, seed=1).labels_)
    a, b = fit(raw, seed=0, fit_sample=800), fit(raw, seed=1, fit_sample=800)
    assert a.metrics_["seeded"] and a.metrics_["fit_tracks"] == 800
    assert not np.array_equal(a.exemplars_, b.exemplars_)  # another sample: other tracks were clustered


def test_blurring_finds_cores_in_a_continuum_where_the_raw_space_has_few() -> None:
    rng = np.random.default_rng(5)  # uniform valence x energy: no density structure at all
    raw = np.column_stack([rng.random(3000), rng.random(3000), rng.random((3000, 2)), rng.normal(120, 25, 3000)])
    settings = {"min_cluster_size": 300, "min_samples": 30, "selection": "leaf"}
    smoothed, unsmoothed = fit(raw, **settings), fit(raw, **settings, smoothing_iterations=0)
    assert smoothed.metrics_["hdbscan_core_coverage"] > 0.6
    assert smoothed.metrics_["hdbscan_core_coverage"] > unsmoothed.metrics_["hdbscan_core_coverage"] + 0.2
    assert 2 <= smoothed.metrics_["clusters"] <= 10 and smoothed.metrics_["largest_cluster_share"] < 0.5


def test_a_mood_outweighs_several_smoothing_clumps() -> None:
    raw, truth = planted()
    model = fit(raw, min_cluster_size=20)  # below the clump floor: the floor wins
    m = model.metrics_
    assert m["min_cluster_size"] == CLUMP_MULTIPLE * m["smoothing_neighbours"] > 20
    assert m["clusters"] == 4 and adjusted_rand_score(truth, model.labels_) > 0.95


def test_fewer_than_five_moods_rerun_with_a_lower_floor_that_only_refines() -> None:
    from sklearn.metrics.cluster import contingency_matrix

    raw, truth = planted()
    model = fit(raw, fewest_moods=5)  # four planted: the first fit finds four, the rerun five or more
    m = model.metrics_
    assert 2 <= m["clump_multiple"] < 3 and m["floor_lowered"]["moods_before"] == 4
    assert m["min_cluster_size"] == math.ceil(m["clump_multiple"] * m["smoothing_neighbours"]) < m["floor_lowered"]["from"]
    assert m["clusters"] == 5  # the floor came down only as far as five moods needed
    purity = contingency_matrix(truth, model.labels_).max(axis=0) / np.bincount(model.labels_)
    assert purity.min() > 0.99  # every mood lies inside one planted mood: the rerun splits, never mixes
    report = "\n".join(mood_floor_lines(m))
    assert f"a mood outweighs {m['clump_multiple']} smoothing clumps" in report and "found 4 moods, fewer than 5" in report
    # five planted: found at once, the floor untouched
    raw, truth = planted(middle=True)
    model = fit(raw, fewest_moods=5)
    assert model.metrics_["clusters"] == 5 and "floor_lowered" not in model.metrics_
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    # the configured floors always hold: a min_cluster_size above the lowered floor leaves four
    raw, _ = planted()
    assert fit(raw, fewest_moods=5, min_cluster_size=300).metrics_["clusters"] == 4


def test_the_old_method_is_still_selectable() -> None:
    raw, truth = planted()
    model = fit(raw, **LEGACY)
    assert model.metrics_["smoothing_neighbours"] == 0 and model.metrics_["smooth_seconds"] == 0
    assert model.metrics_["fit_tracks"] == len(raw)
    assert adjusted_rand_score(truth, model.labels_) > 0.9


def test_spread_metrics_and_the_mood_table() -> None:
    raw, _ = planted()
    model = fit(raw)
    spread = model.metrics_["spread"]
    assert set(spread) == {"valence", "energy", "tempo", "acousticness"}  # danceability is not reported
    for f, s in spread.items():
        means = [c["mean"][f] for c in model.clusters_]
        assert s["min_mean"] == round(min(means), 4) and s["max_mean"] == round(max(means), 4)
        assert s["std_of_means"] > 0 and s["catalog_std"] > 0
    assert spread["valence"]["min_mean"] < 0.2 and spread["valence"]["max_mean"] > 0.8  # planted at 0.15 / 0.85
    lines = mood_table(model.clusters_)
    assert len(lines) == 1 + len(model.clusters_)
    assert lines[0].split()[:4] == ["id", "mood", "tracks", "core"] and "acoustic" in lines[0]
    for line, c in zip(lines[1:], model.clusters_, strict=True):
        assert c["name"] in line and f"{c['size']:,}" in line and f"{c['mean']['tempo']:.1f}" in line
    # a 30-digit tempo took 31 characters and pushed every column after it (an audit, 2026-12-07)
    huge = [{**c, "mean": {**c["mean"], "tempo": 1e30}} if i == 0 else c for i, c in enumerate(model.clusters_)]
    assert len({len(line) - len(line.split("  ")[-1]) for line in mood_table(huge)}) == 1


def test_the_mood_space_follows_the_schema() -> None:
    from engine._moodconfig import MOOD_WEIGHTS

    spotify = ("danceability", "energy", "key_sin", "key_cos", "loudness", "mode", "speechiness", "acousticness",
               "instrumentalness", "liveness", "valence", "tempo", "time_signature", "duration_ms")
    space = mood_space(spotify, MOOD_WEIGHTS)
    assert space.kind == "perceptual"
    assert set(space.names) == set(MOOD_WEIGHTS) and "valence" in space.why
    # a GTZAN-style table has tempo, one of the six: it used to fall to a tempo-only space (one mood)
    gtzan = ("chroma_stft_mean", "chroma_stft_var", "rms_mean", "rms_var", "spectral_centroid_mean",
             "spectral_centroid_var", "spectral_bandwidth_mean", "spectral_bandwidth_var", "rolloff_mean",
             "rolloff_var", "zero_crossing_rate_mean", "zero_crossing_rate_var", "harmony_mean", "harmony_var",
             "perceptr_mean", "perceptr_var", "tempo", *(f"mfcc{i}_{s}" for i in range(1, 21) for s in ("mean", "var")))
    space = mood_space(gtzan, MOOD_WEIGHTS)
    assert space.kind == "descriptors"
    assert space.names == ("rms_mean", "spectral_centroid_mean", "tempo", "perceptr_var", "zero_crossing_rate_mean")
    assert [gtzan[c] for c in space.columns] == list(space.names)
    # the README's earlier five-column example (three aspects)
    five = ("mfcc1_mean", "chroma_stft_mean", "spectral_centroid_mean", "rolloff_mean", "tempo")
    assert mood_space(five, MOOD_WEIGHTS).names == ("mfcc1_mean", "spectral_centroid_mean", "tempo")
    # a log1p transform renames the column, not the feature: the README's config logs the centroid
    logged = mood_space(("mfcc1_mean", "chroma_stft_mean", "spectral_centroid_mean_log1p", "rolloff_mean", "tempo"),
                        MOOD_WEIGHTS)
    assert logged.names == ("mfcc1_mean", "spectral_centroid_mean", "tempo") and logged.columns == (0, 2, 4)
    # unknown columns: every feature, and the report says why
    space = mood_space(("a", "b", "tempo"), MOOD_WEIGHTS)
    assert space.kind == "all features" and space.columns == (0, 1, 2) and "every feature" in space.why
    # weights of one's own win when the schema has them; a feature it does not have is refused, with what it could be
    assert mood_space(gtzan, {"tempo": 2.0, "rms_mean": 1.0}).weights == (1.0, 2.0)
    with pytest.raises(ConfigError, match=r"moods.weights names a feature the schema does not have: 'valence'; its "
                                          r"features: chroma_stft_mean, chroma_stft_var, .* and 37 more"):
        mood_space(gtzan, {"valence": 1.0})
    with pytest.raises(ConfigError, match=r"'tempoo' \(did you mean 'tempo'\?\)"):
        mood_space(spotify, {"tempoo": 1.0, "energy": 1.0})
    with pytest.raises(ConfigError, match=r"'key' \(did you mean 'key_sin' or 'key_cos'\?\)"):  # a cyclic feature
        mood_space(spotify, {"key": 1.0})
    assert mood_space(("a", "duration_ms_log1p"), {"duration_ms": 1.0}).names == ("duration_ms",)


def test_a_descriptor_table_gets_moods_with_relative_names() -> None:
    """A GTZAN-style table (no valence/energy) of 1,200 clips with six planted sounds: the mood space is
    its descriptors, not tempo alone, and the six come back with names whose words hold."""
    from engine._moodnames import claims

    rng = np.random.default_rng(4)
    names = ("chroma_stft_mean", "rms_mean", "spectral_centroid_mean", "tempo", "perceptr_var",
             "zero_crossing_rate_mean", "mfcc2_mean")
    centers = np.array([[0.4, 0.05, 1200, 80, 0.001, 0.05, 100], [0.4, 0.25, 3500, 150, 0.02, 0.15, 60],
                        [0.4, 0.12, 2200, 120, 0.01, 0.10, 80], [0.4, 0.05, 3500, 120, 0.001, 0.15, 80],
                        [0.4, 0.25, 1200, 80, 0.02, 0.05, 100], [0.4, 0.12, 2200, 170, 0.005, 0.10, 60]])
    truth = np.repeat(np.arange(6), 200)
    raw = centers[truth] * (1 + 0.06 * rng.normal(size=(1200, len(names))))
    z = (raw - raw.mean(0)) / raw.std(0)
    space = mood_space(names, MoodConfig().weights)
    assert space.kind == "descriptors" and "tempo" in space.names and len(space.names) == 5
    model = MoodModel(config=MoodConfig(), space=space).fit(space.project(z), raw, names)
    assert model.metrics_["clusters"] == 6 and adjusted_rand_score(truth, model.labels_) > 0.95
    assert model.metrics_["hdbscan_core_coverage"] >= 0.5
    catalog_mean, catalog_std = dict(zip(names, raw.mean(0), strict=True)), dict(zip(names, raw.std(0), strict=True))
    for c in model.clusters_:
        assert "mfcc2" not in c["name"] and "chroma" not in c["name"]  # words only from the mood space
        for word, meanings in claims(c["name"], names):
            w = meanings[0]
            if w.feature.startswith("z:"):
                f = w.feature[2:]
                zf = (c["mean"][f] - catalog_mean[f]) / catalog_std[f]
                assert (w.low is None or zf >= w.low) and (w.high is None or zf <= w.high), (c["name"], word)
            else:
                assert w.holds(c["mean"]), (c["name"], word)
    assert len({c["name"] for c in model.clusters_}) == 6
    words = {v["word"] for v in model.metrics_["vocabulary"]}
    assert any("relative to this catalog" in v["means"] for v in model.metrics_["vocabulary"]) or words <= {
        "fast", "slow", "loud", "quiet", "bright", "mellow"}


def test_a_new_track_is_core_about_as_often_as_the_catalog_s_own() -> None:
    # core within the nearest exemplar's core distance held 99.8% of unseen tracks where HDBSCAN's cores held 76%:
    # `musicrec add` marked nearly every added track core (found by a second fresh-eyes audit)
    from engine import synthetic_catalog

    frame = synthetic_catalog(3000, seed=2, bad_rows=0, exact_duplicates=0).drop_duplicates("track_id")
    names = ("valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo")
    raw = frame[list(names)].to_numpy(float)
    space = MoodSpace(columns=tuple(range(6)), weights=(1.0,) * 6, names=names)
    points = space.project((raw - raw.mean(0)) / raw.std(0))
    order = np.random.default_rng(0).permutation(len(points))
    model = MoodModel(config=MoodConfig(), space=space).fit(points[order[:2400]], None, ())
    _, strength, core = model.assign_points(points[order[2400:]])
    assert abs(core.mean() - model.is_core_.mean()) < 0.1 and model.is_core_.mean() < 0.9
    assert strength.min() >= 0 and strength.max() <= 1 and model.strength_.min() >= 0 and model.strength_.max() <= 1
    again, _, own = model.assign_points(points[order[:2400]])  # the tracks it saw: HDBSCAN's verdict, exactly
    assert np.array_equal(own, model.is_core_) and np.array_equal(again, model.labels_)
    restored = MoodModel.from_arrays(model.to_arrays(), model.clusters_, model.config)
    assert np.array_equal(restored.assign_points(points[order[2400:]])[2], core)
