"""The mood method's configuration (engine/_moodconfig.py): what it refuses, and what "auto" takes at each
catalog size."""

from __future__ import annotations

import pytest

from engine import MoodConfig


@pytest.mark.parametrize("bad", [{"selection": "tree"}, {"min_cluster_size": 1}, {"weights": {"energy": -1}},
                                 {"smoothing_iterations": -1}, {"smoothing_neighbours": 0},
                                 {"min_cluster_fraction": 1.5}, {"max_cluster_fraction": -0.1},
                                 {"smoother": "gaussian"}, {"epsilon": "wide"}, {"epsilon": -0.1},
                                 {"smoothing_neighbours": "many"}, {"fewest_moods": -1}, {"bags": 1}, {"bags": -2},
                                 {"bags": "all"}, {"small_catalog": -1}, {"bag_share": 0.0}, {"bag_share": 1.5}, {"consensus_cut": 1.0},
                                 {"min_samples": 1}, {"min_samples": "many"}, {"min_cluster_fraction": "most"},
                                 {"assign": "nearest"}, {"coassoc_bags": -1}, {"coassoc_bags": "many"},
                                 {"coassoc_wide_from": -1}, {"coassoc_bags": 10, "smoother": "blur"},
                                 {"coassoc_bags": 10, "bags": 20}, {"coassoc_bags": 10, "epsilon": 0.1},
                                 {"coassoc_bags": 10, "smoothing_neighbours": 50}, {"coassoc_bags": 1},
                                 {"coassoc_wide_from": 60_000, "coassoc_until": 50_000}, {"coassoc_until": "all"},
                                 {"max_cluster_fraction": "auto"},
                                 {"coassoc_ks": "8-5"}, {"coassoc_ks": 1}, {"coassoc_ks": "many"}, {"coassoc_ks": 5.5},
                                 {"coassoc_share": 0.0}, {"coassoc_share": 1.5}, {"coassoc_starts": 0},
                                 {"coassoc_moods": "cells"}, {"coassoc_moods": "medoid", "coassoc_ks": "5-8"},
                                 {"coassoc_ks": "5-"}, {"coassoc_ks": 6, "bags": 0}, {"coassoc_ks": 6, "coassoc_bags": 0},
                                 {"coassoc_moods": "medoid", "smoother": "blur"}, {"coassoc_starts": 5, "epsilon": 0.1},
                                 {"coassoc_continuum": "quadrants"}, {"coassoc_continuum": "kmeans", "bags": 0},
                                 {"coassoc_continuum": "octants", "fewest_moods": 0},
                                 {"coassoc_ks": "octants", "coassoc_moods": "clusters"}, {"coassoc_ks": "octant"}])
def test_config_validation(bad: dict[str, object]) -> None:
    from engine import ConfigError

    with pytest.raises(ConfigError):
        MoodConfig(**bad)  # type: ignore[arg-type]


def test_a_given_smoothing_keeps_the_smoothing_where_the_co_association_is_the_default() -> None:
    from engine import ConfigError

    # 5,000 tracks are in the co-association's range; a smoothing key given says the smoothing was asked for
    assert MoodConfig().resolved(5_000).coassoc_bags == 40 and MoodConfig().resolved(49_999).coassoc_bags == 40
    few = MoodConfig().resolved(4_999)  # under coassoc_wide_from: fewer, better fits at one K
    assert (few.coassoc_bags, few.coassoc_ks, few.coassoc_share, few.coassoc_starts) == (20, "density", 0.9, 10)
    assert MoodConfig().resolved(1_000).coassoc_bags == 20 and MoodConfig().resolved(1_000).smoothing_iterations == 0
    for given in ({"smoother": "field"}, {"bags": 0}, {"smoothing_neighbours": 50}):
        kept = MoodConfig(**given).resolved(5_000)  # type: ignore[arg-type]
        assert kept.coassoc_bags == 0 and kept.selection == "leaf" and kept.min_samples == 30
        assert "given: no co-association" in MoodConfig(**given).method(5_000)[1]  # type: ignore[arg-type]
    # from 20,000 to 50,000 tracks a given smoothing key gets the field's other keys, as before the co-association
    assert MoodConfig(bags=5).resolved(30_000).smoother == "field"
    until = MoodConfig(coassoc_until=50_000)  # (as until 2026-12-06: the co-association stopped there)
    assert until.resolved(50_000).smoother == "field" and until.resolved(50_000).coassoc_bags == 0
    # the co-association given, at any size; its min_samples at most what the default range reaches (5% of 50,000)
    assert MoodConfig(coassoc_bags=8, smoothing_iterations=0, bags=0).resolved(500).coassoc_bags == 8
    assert MoodConfig(coassoc_bags=8).resolved(200_000).min_samples == 2_500
    # a K range given takes HDBSCAN's clusters, a medoid given one K, at any size the co-association runs
    assert MoodConfig(coassoc_ks="5-8").resolved(1_000).coassoc_moods == "clusters"
    assert MoodConfig(coassoc_moods="medoid").resolved(10_000).coassoc_ks == "density"
    # a continuum's moods: octants under coassoc_wide_from, and wherever the medoid's K comes from the density
    assert few.coassoc_continuum == "octants" and MoodConfig().resolved(10_000).coassoc_continuum is None
    assert MoodConfig(coassoc_moods="medoid").resolved(10_000).coassoc_continuum == "octants"
    assert MoodConfig(coassoc_continuum="kmeans").resolved(1_000).coassoc_continuum == "kmeans"
    for given in ({"coassoc_ks": 6}, {"coassoc_moods": "clusters"}, {"coassoc_ks": "5-8"}):  # no octants there,
        once = MoodConfig(**given).resolved(1_000)  # type: ignore[arg-type]  # and a stability refit resolves again
        assert once.coassoc_continuum is None and once.resolved(1_000) == once
    assert MoodConfig(coassoc_moods="medoid", coassoc_ks="density").resolved(10_000).coassoc_continuum == "octants"
    for tracks in (1_000, 10_000):  # octants given: every fit octants, taken by the medoid, at any size it runs
        given = MoodConfig(coassoc_ks="octants").resolved(tracks)
        assert (given.coassoc_ks, given.coassoc_moods, given.coassoc_continuum) == ("octants", "medoid", None)
        assert given.resolved(tracks) == given
    with pytest.raises(ConfigError, match=r"moods.coassoc_continuum = 'octants' given, but at 1,000 tracks clustered "
                                          r"the co-association's K is 'octants'"):
        MoodConfig(coassoc_ks="octants", coassoc_continuum="octants").resolved(1_000)
    for tracks, where in ((10_000, "K is '5-8' and its moods 'clusters'"), (1_000, "K is 6 and its moods 'medoid'")):
        with pytest.raises(ConfigError, match=f"moods.coassoc_continuum = 'kmeans' given, but at {tracks:,} tracks "
                                              f"clustered the co-association's {where}"):
            MoodConfig(coassoc_continuum="kmeans", **({"coassoc_ks": 6} if tracks == 1_000 else {})).resolved(tracks)
    # its keys given where it does not run would be ignored: refused, naming why
    with pytest.raises(ConfigError, match=r"moods.coassoc_ks given, but 60,000 tracks clustered are at least "
                                          r"moods.coassoc_until = 50,000"):
        MoodConfig(coassoc_ks=6, coassoc_until=50_000).resolved(60_000)
    assert MoodConfig(coassoc_ks=6, coassoc_bags=10, coassoc_until=50_000).resolved(60_000).coassoc_ks == 6
    assert MoodConfig(coassoc_ks=6).resolved(MoodConfig().clustered(60_000)).coassoc_ks == 6  # (the default: any size)
    smoothing = MoodConfig(smoother="blur").resolved(1_000)  # no co-association: its keys are not used
    assert smoothing.coassoc_bags == 0 and smoothing.coassoc_ks is None and smoothing.auto_keys() == []


def test_a_rebuild_keeps_its_method_only_within_a_tenth_of_the_size_it_crossed() -> None:
    default = MoodConfig()  # one method at every size: a million tracks cluster 4,999, as 4,999 do
    assert default.seams_between(default.clustered(1_000), default.clustered(1_000_000)) == []
    # with an explicit coassoc_until the "auto" sample follows the method: 4,999 under it, up to 100,000 from it,
    # and a rebuild across it keeps its bundle's method, sampled as that method samples
    until = MoodConfig(coassoc_until=50_000)
    assert (until.clustered(49_000), until.clustered(52_000), until.clustered(150_000)) == (4_999, 52_000, 100_000)
    for n in (1_000, 49_000, 52_000, 150_000, 1_000_000):
        assert until.resolved(until.clustered(n)).fit_sample == until.sample_size(n)  # what the build sampled with
    kept, said = until.keeping_regime(52_000, "few", 4_999)
    assert said is not None and said["seam"] == "coassoc_until" and kept.clustered(52_000) == 4_999
    assert kept.regime(kept.clustered(52_000)) == "few"
    back, said = until.keeping_regime(48_000, "large", 52_000)  # and the other way
    assert said is not None and back.regime(back.clustered(48_000)) == "large" and back.clustered(48_000) == 48_000
    far = MoodConfig(coassoc_until=150_000)  # judged at the tracks a smoothing would cluster, as resolved judges them
    assert far.clustered(200_000) == 4_999 and far.resolved(4_999).fit_sample == 4_999
    # with the defaults nothing is kept across sizes, not even from a bundle built before 2026-12-06
    assert default.keeping_regime(4_999, "wide", 10_000) == default.keeping_regime(4_930, "wide", 5_200) == (default,
                                                                                                           None)
    config = MoodConfig(fit_sample=100_000, coassoc_until=50_000)  # the defaults until 2026-12-06
    assert [config.regime(n) for n in (4_999, 5_000, 49_999, 50_000)] == ["few", "wide", "wide", "large"]
    grown, said = config.keeping_regime(5_086, "few", 4_996)
    assert grown.regime(5_086) == "few" and said is not None and said["seam"] == "coassoc_wide_from"
    again, said = config.keeping_regime(5_400, "few", 5_086)  # its next rebuild: the method it kept, still
    assert again.regime(5_400) == "few" and said is not None
    shrunk, said = config.keeping_regime(4_600, "wide", 5_200)  # the other way
    assert shrunk.regime(4_600) == "wide" and shrunk.regime(4_140) == "few" and said is not None
    assert said["instead_of"] == "few" and "within 10% of moods.coassoc_wide_from = 5,000" in said["says"]
    assert config.keeping_regime(5_600, "few", 5_086) == (config, None)  # past 5,555: the size decides
    assert config.keeping_regime(4_400, "wide", 5_200) == (config, None)  # under 4,500
    assert config.keeping_regime(4_000, "few", 3_000) == (config, None)  # the same method
    field, said = config.keeping_regime(52_000, "wide", 49_000)
    assert field.regime(52_000) == "wide" and said is not None and said["seam"] == "coassoc_until"
    assert config.seams_between(4_000, 60_000) == ["coassoc_wide_from", "coassoc_until", "small_catalog"]
