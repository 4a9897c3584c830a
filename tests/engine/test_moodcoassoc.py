"""Moods from the co-association of k-means fits (engine/_moodcoassoc.py): the fits, the medoid, and the moods
it gives under coassoc_wide_from, cores or none."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from engine import MoodConfig, MoodModel
from engine._moodreport import mood_consensus_lines, mood_stability_lines
from engine._moods import MoodSpace
from tests.engine._planted import NAMES, fit, planted, planted_with_a_small_group


def test_the_co_association_takes_any_seed_a_build_may_have() -> None:
    from engine._config import LARGEST_SEED
    from engine._moodcoassoc import coassociation, kmeans_cells

    points = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    for seed in (0, 42_950, LARGEST_SEED):  # scikit-learn's random_state must stay under 2**32
        cells = kmeans_cells(points, bags=2, share=0.5, seed=seed)
        assert cells.shape == (300, 8) and list(cells.max(axis=0)) == [4, 5, 6, 7] * 2
        assert coassociation(cells, seed).shape == (300, 5)


def test_the_co_association_with_the_vote_says_so_and_reproduces_its_labels() -> None:
    raw, truth = planted()  # four planted moods, 1,600 tracks; fit() gives bags, so coassoc_bags is given
    for moods, says in (("clusters", "every other track takes the vote of its nearest cores"),
                        ("medoid", "the tracks HDBSCAN calls noise there are not core and take the vote of their "
                                   "nearest cores")):
        model = fit(raw, coassoc_bags=8, bags="auto", assign="vote", selection="auto", min_samples="auto",
                    coassoc_moods=moods)
        m = model.metrics_
        assert m["coassoc"]["assign"] == "vote" and model.centroids_ is None and m["seeded"]
        assert mood_consensus_lines(m)[0].endswith(says) and m["coassoc"]["moods"] == moods
        assert all(len(set(truth[model.labels_ == c])) == 1 for c in range(m["clusters"]))  # never mixed
        z = (raw - raw.mean(0)) / raw.std(0)
        np.testing.assert_array_equal(model.assign_points(model.space.project(z))[0], model.labels_)


def test_under_coassoc_wide_from_the_moods_are_the_cells_of_the_fit_the_others_agree_with_most() -> None:
    # fits at one K: as many as the moods HDBSCAN finds in the mood space, at least fewest_moods; the moods are
    # the medoid fit's cells, never mixing planted moods (four planted, five asked for: one is cut in two)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    for middle, fewest, density, moods in ((True, 6, 5, 6), (False, 5, 4, 5)):
        raw, truth = planted(middle=middle)
        z = (raw - raw.mean(0)) / raw.std(0)
        model = MoodModel(config=MoodConfig(min_cluster_size=50, fewest_moods=fewest), space=space).fit(
            space.project(z), raw, NAMES)
        m = model.metrics_
        assert m["coassoc"]["density_moods"] == density and m["coassoc"]["ks"] == [moods, moods]
        assert m["coassoc"]["moods"] == "medoid" and 0 <= m["coassoc"]["medoid_fit"] < 20
        assert m["clusters"] == moods and all(len(set(truth[model.labels_ == c])) == 1 for c in range(moods))
        assert m["hdbscan_core_coverage"] > 0.8
        assert mood_consensus_lines(m)[0].endswith(
            "moods are the cells of the fit that agrees most with the others (the Voronoi cells of their centroids, in "
            "mood space), all of them; the tracks HDBSCAN calls noise there are not core")


def test_a_medoid_cell_without_cores_is_a_mood_too() -> None:
    # four planted moods and a group of 30 tracks, under the smallest mood: HDBSCAN finds four in the mood space,
    # so the fits are at K 5; the small group is a cell of its own, whose tracks HDBSCAN calls noise
    raw, truth = planted_with_a_small_group()
    z = (raw - raw.mean(0)) / raw.std(0)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    model = MoodModel(config=MoodConfig(min_cluster_size=50), space=space).fit(space.project(z), raw, NAMES)
    m = model.metrics_
    assert m["coassoc"]["density_moods"] == 4 and m["coassoc"]["ks"] == [5, 5] and m["clusters"] == 5
    assert adjusted_rand_score(truth, model.labels_) > 0.99
    small = int(np.bincount(model.labels_[truth == 4]).argmax())
    assert model.clusters_[small]["core_size"] == 0 and model.clusters_[small]["size"] == 30
    assert len(model.centroids_) == 5 and set(model.exemplar_labels_) == {0, 1, 2, 3, 4} - {small}
    z_small = model.space.project(z[truth == 4])
    np.testing.assert_array_equal(model.assign_points(z_small)[0], small)  # new tracks there go to it too


def test_with_the_vote_a_medoid_cell_without_cores_is_no_mood() -> None:
    raw, truth = planted_with_a_small_group()  # the case above, with the vote: its tracks go to the nearest cores
    z = (raw - raw.mean(0)) / raw.std(0)
    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    model = MoodModel(config=MoodConfig(min_cluster_size=50, assign="vote"), space=space).fit(
        space.project(z), raw, NAMES)
    assert model.metrics_["clusters"] == 4 and sorted(set(model.labels_)) == [0, 1, 2, 3]  # no empty mood
    assert all(c["size"] > 0 and c["core_size"] > 0 for c in model.clusters_)
    planted4 = truth < 4  # the four planted moods, the small group left out
    assert adjusted_rand_score(truth[planted4], model.labels_[planted4]) > 0.99


def test_the_medoid_is_the_fit_the_others_agree_with_most() -> None:
    from engine._moodcoassoc import agreement, medoid

    a = np.repeat([0, 1, 2], 20)
    b = a.copy()
    b[:5] = 1  # a little off a
    c = np.tile([0, 1, 2], 20)  # another cut altogether
    assert medoid(agreement(np.stack([c, b, a, a], axis=1))) == 2  # a: its twin, and b
    assert medoid(agreement(np.stack([c, a, b, b], axis=1))) == 2  # b: its twin, and a


def test_the_fits_agreement_is_the_mean_ari_of_two_different_fits() -> None:
    from engine._moodcoassoc import agreement, mean_agreement

    a = np.repeat([0, 1, 2], 20)
    b = a.copy()
    b[:5] = 1
    cells = np.stack([a, a, b], axis=1)
    agree = agreement(cells)
    ab = adjusted_rand_score(a, b)
    np.testing.assert_allclose(agree, [[1, 1, ab], [1, 1, ab], [ab, ab, 1]])
    assert mean_agreement(agree) == pytest.approx((1 + 2 * ab) / 3)  # the three pairs, the diagonal left out


def test_the_fits_agree_on_planted_moods_and_not_on_a_round_blob_where_the_build_says_the_moods_may_move() -> None:
    # five planted moods: every fit takes the same five cells. One round blob of 1,000 tracks has no best cut in
    # five (any rotation of one is as good), so the fits take different ones: the report says the moods may move,
    # even where its one refit happened to hold
    from engine._moodstability import AGREED_FITS, measure_stability

    space = MoodSpace(columns=(0, 1), weights=(1.0, 1.0))
    blob = np.random.default_rng(0).normal([0.5, 0.5, 0.4, 0.6, 110], [0.2, 0.2, 0.2, 0.2, 20], size=(1000, 5))
    agree = {}
    for what, raw in (("planted", planted(middle=True)[0]), ("blob", blob)):
        z = (raw - raw.mean(0)) / raw.std(0)
        model = MoodModel(config=MoodConfig(min_cluster_size=50), space=space).fit(space.project(z), raw, NAMES)
        st = measure_stability(model, space.project(z))
        agree[what] = st["fits_agree"]
        if what == "blob":  # a continuum, but two mood columns hold no octants: said, and k-means cells taken
            assert model.metrics_["coassoc"]["no_octants"] == "the mood space has 2 columns, and octants take 3"
            assert "a continuum, but the mood space has 2 columns, and octants take 3" in mood_consensus_lines(
                model.metrics_)[0]
        assert model.metrics_["coassoc"]["fits_agree"] == st["fits_agree"] and model.metrics_["clusters"] == 5
        assert f"the k-means fits agree at mean ARI {st['fits_agree']}" in mood_stability_lines(st)[0]
        if what == "blob":
            assert f"the k-means fits agree at mean ARI {st['fits_agree']} (under {AGREED_FITS})" in st["warning"]
        else:
            assert "warning" not in st
    assert agree["planted"] > 0.99 and agree["blob"] < AGREED_FITS


def test_octant_fits_are_the_sides_of_each_shares_means() -> None:
    from engine._moodcoassoc import octant_cells

    points = np.random.default_rng(0).normal(size=(400, 4))
    cells = octant_cells(points, bags=3, share=0.9, seed=7)
    assert cells.shape == (400, 3) and (cells.max(axis=0) == 7).all()
    np.testing.assert_array_equal(cells, octant_cells(points, bags=3, share=0.9, seed=7))  # the seed draws shares
    part = np.random.default_rng([7, 1]).choice(400, size=360, replace=False)
    sides = (points[:, :3] > points[part, :3].mean(axis=0)) @ [1, 2, 4]  # the fourth column plays no part
    np.testing.assert_array_equal(cells[:, 1], sides)


def test_a_continuum_gets_the_octants_of_its_first_three_axes_and_they_hold_still() -> None:
    # a round blob of 1,000 tracks in three mood columns: HDBSCAN finds no five moods there, and no five-cell cut
    # is better than its rotations; its octants are fixed by three means, so a 90% refit and the next seed keep
    # them. The same blob with coassoc_continuum = "kmeans" keeps the k-means fits, which disagree.
    from engine._moodstability import AGREED_FITS, measure_stability

    space = MoodSpace(columns=(0, 1, 3), weights=(1.0, 1.0, 1.0), names=("valence", "energy", "danceability"))
    raw = np.random.default_rng(0).normal([0.5, 0.5, 0.4, 0.6, 110], [0.2, 0.2, 0.2, 0.2, 20], size=(1000, 5))
    z = (raw - raw.mean(0)) / raw.std(0)
    points = space.project(z)
    model = MoodModel(config=MoodConfig(min_cluster_size=50), space=space).fit(points, raw, NAMES)
    m, st = model.metrics_, measure_stability(model, points)
    assert m["coassoc"]["density_moods"] < 5 and m["coassoc"]["cells"] == "octants" and m["coassoc"]["fits"] == 20
    assert m["clusters"] == 8 and m["hdbscan_core_coverage"] >= 0.5
    octant = (points > points.mean(axis=0)) @ [1, 2, 4]
    assert adjusted_rand_score(octant, model.labels_) > 0.9  # the Voronoi cells of the octants' centroids
    assert st["ari_subsample_all_tracks"] >= 0.8 and st["ari_seeds"] >= 0.8 and "warning" not in st
    assert st["fits"] == "octant" and st["fits_agree"] >= AGREED_FITS
    assert f"the octant fits agree at mean ARI {st['fits_agree']}" in mood_stability_lines(st)[0]
    assert mood_consensus_lines(m)[0].startswith(
        "         HDBSCAN on the co-association of 20 octant fits (each the octants of the mood space's first 3 "
        "axes, valence, energy, danceability, around their means over a random 90% of the tracks; HDBSCAN found")
    assert (f"HDBSCAN found {m['coassoc']['density_moods']} moods in the mood space itself (leaf selection; the median "
            "over the 20 fits' shares, ") in mood_consensus_lines(m)[0]
    kmeans = MoodModel(config=MoodConfig(min_cluster_size=50, coassoc_continuum="kmeans"), space=space).fit(
        points, raw, NAMES)
    assert kmeans.metrics_["coassoc"]["cells"] == "k-means" and kmeans.metrics_["clusters"] == 5
    assert kmeans.metrics_["coassoc"]["fits_agree"] < AGREED_FITS


def test_a_mood_space_with_clusters_keeps_its_k_means_cells() -> None:
    # five planted moods in three mood columns: HDBSCAN finds them, so no octants (which would cut through them)
    space = MoodSpace(columns=(0, 1, 2), weights=(1.0, 1.0, 1.0))
    raw, truth = planted(middle=True)
    z = (raw - raw.mean(0)) / raw.std(0)
    model = MoodModel(config=MoodConfig(min_cluster_size=50), space=space).fit(space.project(z), raw, NAMES)
    m = model.metrics_
    assert m["coassoc"]["density_moods"] == 5 and m["coassoc"]["cells"] == "k-means" and m["clusters"] == 5
    assert adjusted_rand_score(truth, model.labels_) > 0.99


def test_the_density_count_is_the_median_over_the_fits_shares() -> None:
    # one HDBSCAN fit on every track flips between counts near a boundary; the median of the 20 shares' counts
    # flips only where about half of them find each (benchmarks/mood_borderline.py)
    from engine._moodcoassoc import density_moods, share_rows

    space = np.random.default_rng(0).normal(size=(200, 3))
    config = MoodConfig().resolved(200)
    seen: list[np.ndarray] = []

    def cluster(points: np.ndarray, keep: bool, selection: str) -> np.ndarray:  # finds 2 moods on 12 shares, 5 on 8
        assert not keep and selection == "leaf"  # the count takes HDBSCAN's leaves
        seen.append(points)
        return np.arange(len(points)) % (5 if len(seen) % 5 in (1, 3) else 2)

    dense, counts = density_moods(space, config, 7, cluster)
    assert len(seen) == config.coassoc_bags == 20 and counts == [2] * 12 + [5] * 8 and dense == 2
    for bag, points in enumerate(seen):  # each count on its fit's own share
        np.testing.assert_array_equal(points, space[share_rows(200, 180, 7, bag)])


def borderline(spread: float = 0.12, seed: int = 0) -> tuple[MoodSpace, np.ndarray, np.ndarray]:
    """Five moods planted in three mood columns at the boundary between clusters and a continuum
    (benchmarks/mood_borderline.py): (the mood space, its points, the raw features)."""
    from benchmarks.mood_borderline import CENTERS

    space = MoodSpace(columns=(0, 1, 2), weights=(1.0, 1.0, 1.0), names=("valence", "energy", "danceability"))
    raw = CENTERS[np.repeat(np.arange(5), 400)] + np.random.default_rng(seed).normal(size=(2000, 3)) * spread
    return space, space.project((raw - raw.mean(0)) / raw.std(0)), raw


def test_at_the_boundary_the_refit_keeps_the_builds_cut_and_the_build_says_what_a_build_alone_would_do() -> None:
    # 15 of the 20 shares find the five planted moods and 5 fewer: the build takes k-means cells. Its refit (draw
    # 5) splits too, and keeps the build's cut, as a rebuild with --current does: ARI 1.0. Alone, its count takes
    # octants, which agree at ARI 0.77. The warning says so, and names coassoc_ks = 5, which keeps the same cells
    # whatever the count.
    from engine._moodstability import measure_stability

    space, points, raw = borderline(0.12, 2)
    model = MoodModel(config=MoodConfig(), space=space).fit(points, raw, space.names)
    st = measure_stability(model, points, draw=5, seeds=False)
    assert model.metrics_["coassoc"]["density_sides"] == [5, 15] and st["fits"] == "k-means" and "kept" not in st
    assert st["subsample_fits"] == "k-means" and st["ari_subsample_all_tracks"] >= 0.8
    assert st["subsample_kept"] == {"cut": 5, "source": "the build's own fit", "counted": "octants", "split": "here"}
    assert st["subsample_alone"]["fits"] == "octant" and st["subsample_alone"]["ari_all_tracks"] < 0.8
    assert ("the catalog sits at the boundary between clusters and a continuum (HDBSCAN found 5 density moods or more "
            "on 15 of the 20 fits' shares of the mood space (k-means cells) and fewer on 5 (octants); this build took "
            f"k-means fits and its refit took octant fits without the build's cut (ARI "
            f"{st['subsample_alone']['ari_all_tracks']})") in st["warning"]
    assert st["warning"].startswith("the moods may move: ")  # the refit held; alone it would not have
    assert (f"(5 moods there; it kept this build's cut, as its count split; without it, octant fits at ARI "
            f"{st['subsample_alone']['ari_all_tracks']})") in mood_stability_lines(st)[0]
    assert "rebuild with --current pointing at this bundle (where either count splits), or set [moods] " \
        "coassoc_ks = 5 (k-means cells at K 5, whatever the count, at any size" in st["warning"]
    kept = MoodModel(config=MoodConfig(coassoc_ks=st["pin"]), space=space).fit(points, raw, space.names)
    np.testing.assert_array_equal(kept.labels_, model.labels_)
    again = measure_stability(kept, points, draw=5, seeds=False)
    assert again["ari_subsample_all_tracks"] >= 0.8 and again["subsample_fits"] == "k-means" and "warning" not in again


def test_a_kept_cut_is_taken_only_where_the_shares_split_or_its_own_did() -> None:
    from engine._moodcoassoc import KeptCut, cut_of

    space, points, raw = borderline(0.12, 2)  # 5 of 20 shares find fewer than five moods: octants kept
    kept = MoodModel(config=MoodConfig(), space=space).fit(points, raw, space.names, keep=KeptCut("octants", "x"))
    assert kept.metrics_["coassoc"]["cells"] == "octants" and cut_of(kept.metrics_["coassoc"]) == "octants"
    assert kept.metrics_["coassoc"]["kept"] == {"cut": "octants", "source": "x", "counted": 5, "split": "here"}
    six = MoodModel(config=MoodConfig(), space=space).fit(points, None, (), keep=KeptCut(6, "x"))
    assert six.metrics_["clusters"] == 6 and cut_of(six.metrics_["coassoc"]) == 6
    space, points, raw = borderline(0.12, 0)  # every share finds five: the count decides, whatever is kept ...
    model = MoodModel(config=MoodConfig(), space=space).fit(points, raw, space.names, keep=KeptCut("octants", "x"))
    assert model.metrics_["coassoc"]["density_sides"] == [0, 20] and "kept" not in model.metrics_["coassoc"]
    assert cut_of(model.metrics_["coassoc"]) == 5 and model.metrics_["clusters"] == 5
    # ... unless the kept cut's own count split: one unanimous count right after a split one does not switch
    held = MoodModel(config=MoodConfig(), space=space).fit(points, None, (), keep=KeptCut("octants", "x", split=True))
    assert held.metrics_["coassoc"]["density_sides"] == [0, 20] and cut_of(held.metrics_["coassoc"]) == "octants"
    assert held.metrics_["coassoc"]["kept"] == {"cut": "octants", "source": "x", "counted": 5, "split": "there"}
    # no medoid, or fits at several K: no one cut to keep
    assert cut_of({"moods": "clusters", "cells": "k-means", "ks": [5, 8]}) is None
    assert cut_of({"moods": "medoid", "cells": "k-means", "ks": [5, 8], "medoid_fit": 3}) is None
    assert cut_of({"moods": "medoid", "cells": "k-means", "ks": [5, 5]}) is None  # no group found: no medoid fit
    assert cut_of({}) is None
    # a K more than a fit's share of the tracks holds is not kept: the count decides
    small = MoodModel(config=MoodConfig(), space=space).fit(points[:60], None, (), keep=KeptCut(80, "x", split=True))
    assert "kept" not in small.metrics_["coassoc"]
    assert small.metrics_["coassoc"]["not_kept"] == "its K 80 is more than a fit's share of these tracks holds"


def test_no_boundary_is_said_where_octants_were_never_possible() -> None:
    # the same catalog with coassoc_continuum = "kmeans": both sides of the count give k-means cells, so the
    # shares' split is no boundary between cuts, and the build does not say it is
    from engine._moodstability import boundary, measure_stability

    space, points, raw = borderline(0.12, 2)
    model = MoodModel(config=MoodConfig(coassoc_continuum="kmeans"), space=space).fit(points, raw, space.names)
    assert "density_sides" not in model.metrics_["coassoc"] and model.metrics_["coassoc"]["cells"] == "k-means"
    st = measure_stability(model, points, draw=5, seeds=False)
    assert st["subsample_fits"] == "k-means" and boundary(st) is None and "density_sides" not in st


def test_the_density_count_takes_hdbscans_leaves() -> None:
    # five planted moods of 400 at spread 0.10: HDBSCAN's leaves are the five on every share, where eom found fewer
    # than five on 18 of the 20 (and this catalog then took octants through the planted moods)
    space, points, raw = borderline(0.10, 1)
    model = MoodModel(config=MoodConfig(), space=space).fit(points, raw, space.names)
    ka = model.metrics_["coassoc"]
    assert ka["density_sides"] == [0, 20] and ka["density_selection"] == "leaf" and ka["cells"] == "k-means"
    assert adjusted_rand_score(np.repeat(np.arange(5), 400), model.labels_) > 0.95


def test_octants_given_are_taken_whatever_the_count_and_need_three_mood_columns() -> None:
    from engine import ConfigError
    from engine._moodstability import measure_stability

    space, points, raw = borderline(0.10, 0)  # every share finds the five planted moods: k-means cells by default
    model = MoodModel(config=MoodConfig(coassoc_ks="octants"), space=space).fit(points, raw, space.names)
    ka = model.metrics_["coassoc"]
    assert ka["cells"] == "octants" and "density_moods" not in ka and model.metrics_["clusters"] == 8
    assert "as moods.coassoc_ks = \"octants\" asks, whatever HDBSCAN finds" in mood_consensus_lines(model.metrics_)[0]
    st = measure_stability(model, points, draw=1, seeds=False)
    assert st["pin"] == "octants" and st["subsample_fits"] == "octant" and "warning" not in st
    flat = MoodSpace(columns=(0, 1), weights=(1.0, 1.0), names=("valence", "energy"))
    with pytest.raises(ConfigError, match="takes the octants of the mood space's first 3 columns, and it has 2"):
        MoodModel(config=MoodConfig(coassoc_ks="octants"), space=flat).fit(flat.project(points[:, :2]), raw[:, :2], flat.names)
