"""Every numeric config key's range (engine/_confcheck.py), NaN and infinity refused for every float key, keys that
would be ignored refused, and what a build checks against the catalog before it fits anything (engine/_moodcheck.py,
engine/_index.py): a clear ConfigError naming the key, never XGBoost's, FAISS's or HDBSCAN's error, nor a bundle
with NaN in it."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path

import numpy as np
import pytest

from engine import (
    BuildConfig,
    ConfigError,
    GenreConfig,
    IndexConfig,
    MoodConfig,
    PreprocessConfig,
    build_index,
    synthetic_catalog,
)
from engine._index import ivf_facts
from engine._moodcheck import check_moods
from engine._oldconfig import without_retired_keys
from engine._preprocess import Preprocessor, l2_normalize
from engine._schema import SPOTIFY_FEATURES, SPOTIFY_TRANSFORMS

SECTIONS = ("preprocess", "index", "moods", "genre", "similar")


@pytest.mark.parametrize(("section", "values", "message"), [
    # the audit's: each built a bundle that could not be loaded (NaN out-of-fold probabilities), or stopped in XGBoost
    ("genre", {"learning_rate": math.nan}, "genre.learning_rate must be in (0, 1], got nan"),
    ("genre", {"subsample": 0.0}, "genre.subsample must be in (0, 1], got 0.0"),
    ("genre", {"learning_rate": -1.0}, "genre.learning_rate must be in (0, 1], got -1.0"),
    ("genre", {"max_depth": -1}, "genre.max_depth must be >= 1, got -1"),
    ("genre", {"max_depth": 0}, "genre.max_depth must be >= 1, got 0"),
    ("genre", {"max_bin": 1}, "genre.max_bin must be >= 2, got 1"),
    ("genre", {"colsample_bytree": 2.0}, "genre.colsample_bytree must be in (0, 1], got 2.0"),
    ("genre", {"min_child_weight": -5.0}, "genre.min_child_weight must be in [0, 3.40282e+38], got -5.0"),
    ("genre", {"min_child_weight": 1e300}, "genre.min_child_weight must be in [0, 3.40282e+38], got 1e+300"),
    ("genre", {"threads": 0}, "genre.threads must be >= 1, got 0"),
    ("genre", {"threads": -3}, "genre.threads must be >= 1, got -3"),
    ("genre", {"max_rounds": 2**40}, "genre.max_rounds must be >= 1 and at most 2,147,483,647"),
    ("genre", {"folds": 1}, "genre.folds must be 0 (automatic) or 2..20, got 1"),
    ("moods", {"epsilon": math.nan}, "moods.epsilon must be 'auto' or >= 0, got nan"),
    ("moods", {"epsilon": math.inf}, "moods.epsilon must be 'auto' or >= 0 and finite, got inf"),
    ("moods", {"stability_subsample": 0.3}, "moods.stability_subsample must be 0 (no check) or in [0.5, 1), got 0.3"),
    ("index", {"ivf_nlist": 0}, "index.ivf_nlist must be >= 1, got 0"),
    ("index", {"hnsw_m": 1}, "index.hnsw_m must be >= 2, got 1"),  # (FAISS segfaults on one link a node)
    ("index", {"neighbours_max_tracks": -1}, "index.neighbours_max_tracks must be 0 (no limit) or >= 1, got -1"),
    ("preprocess", {"pca_variance": math.nan}, "preprocess.pca_variance must be in (0, 1], got nan"),
    ("similar", {"genre_weight": math.inf}, "similar.genre_weight must be in [0, 1], got inf"),
    ("schema", {"rules": {"tempo": {"min": math.nan}}}, "schema.rules.tempo.min must be a finite number, got nan"),
    # str.split("") raised ValueError in the build (exit 70); cyclic:inf made the feature's sine and cosine constant
    ("schema", {"artist_separator": ""}, "schema.artist_separator must be a non-empty string"),
    ("schema", {"transforms": {"tempo": "cyclic:inf"}}, "schema.transforms.tempo: the period of a cyclic transform "
                                                        "must be a finite number > 0, got 'cyclic:inf'"),
    ("schema", {"transforms": {"tempo": "cyclic:1e999"}}, "schema.transforms.tempo: the period of a cyclic"),
    ("schema", {"transforms": {"key": "cyclic:nan"}}, "schema.transforms.key: the transform for column 'key' must be "
                                                      "'none', 'log1p' or 'cyclic:<period>' with a period > 0"),
])
def test_an_out_of_range_value_is_refused_naming_the_key(section: str, values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        BuildConfig.from_mapping({section: values})
    assert str(err.value) == message or str(err.value).startswith(message)


def float_keys() -> list[tuple[str, str]]:
    """Every (section, key) whose type takes a float."""
    keys = []
    for section in SECTIONS:
        cls = type(getattr(BuildConfig(), section))
        for name, hint in typing.get_type_hints(cls).items():
            if hint is float or (typing.get_origin(hint) in (typing.Union, types.UnionType)
                                 and float in typing.get_args(hint)):
                keys.append((section, name))
    return keys


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_every_float_key_refuses_nan_and_infinity_naming_it(bad: float) -> None:
    """Before: NaN passed every check written as ``if value < 0`` (``[moods] epsilon = nan`` built as epsilon 0 and
    wrote a bare NaN into manifest.json, which is not JSON)."""
    keys = float_keys()
    assert len(keys) >= 14 and ("moods", "epsilon") in keys and ("genre", "learning_rate") in keys
    for section, key in keys:
        with pytest.raises(ConfigError, match=rf"^{section}\.{key} must be .*got {bad!r}$"):
            BuildConfig.from_mapping({section: {key: bad}})
    with pytest.raises(ConfigError, match=r"^moods.weights.valence must be a finite number, got nan$"):
        MoodConfig(weights={"valence": math.nan, "energy": 1.0})


def test_the_defaults_and_what_every_method_resolves_to_pass_the_checks() -> None:
    config = BuildConfig()
    assert BuildConfig.from_mapping(config.to_json()) == config
    for tracks in (200, 4_999, 10_000, 60_000):
        for moods in (MoodConfig(), MoodConfig(coassoc_until=50_000), MoodConfig(smoother="blur")):
            moods.resolved(tracks)


def test_genre_keys_beside_enabled_false_are_refused_as_moods_refuses_keys_it_ignores() -> None:
    """Before: enabled = false, max_depth = 9, folds = 7 built "no classifier" and exit 0."""
    with pytest.raises(ConfigError, match=r"^genre.max_depth, genre.folds given, but genre.enabled = false trains no "
                                          r"classifier: leave them out, or set enabled = true$"):
        BuildConfig.from_mapping({"genre": {"enabled": False, "max_depth": 9, "folds": 7}})
    assert GenreConfig(enabled=False) == BuildConfig.from_mapping({"genre": {"enabled": False}}).genre
    # --no-genre over a file's [genre] turns the classifier off; the manifest holds no key it did not use
    tuned = BuildConfig(genre=GenreConfig(max_depth=9, threads=1))
    assert tuned.replace(genre={"enabled": False}).genre == GenreConfig(enabled=False)
    with pytest.raises(ConfigError, match=r"genre.max_depth given"):
        tuned.replace(genre={"enabled": False, "max_depth": 9})
    # ... and a bundle built so before this check still loads
    stored = dataclasses.asdict(BuildConfig())
    stored["genre"].update(enabled=False, max_depth=9, folds=7)
    assert BuildConfig.from_mapping(without_retired_keys(stored)).genre == GenreConfig(enabled=False)


def test_a_variance_beside_a_component_count_is_refused_wherever_it_comes_from() -> None:
    """Only a config file's [preprocess] was checked: PreprocessConfig, from_mapping and a file's pca_variance under
    --pca-components built with the count and recorded a variance that did nothing. A bundle so built loads as
    built (the count won), and genre.test_fraction, which builds never read, is refused with why."""
    for make in (lambda: PreprocessConfig(pca_variance=0.9, pca_components=5),
                 lambda: BuildConfig.from_mapping({"preprocess": {"pca_variance": 0.9, "pca_components": 5}}),
                 lambda: BuildConfig(preprocess=PreprocessConfig(pca_variance=0.9)).replace(
                     preprocess={"pca_components": 5})):
        with pytest.raises(ConfigError, match=r"^preprocess gives both pca_variance and pca_components"):
            make()
    assert PreprocessConfig(pca_components=5).pca_variance == 1.0  # the default beside a count: a bundle's own
    stored = dataclasses.asdict(BuildConfig())
    stored["preprocess"].update(pca_variance=0.9, pca_components=5)
    stored["genre"]["test_fraction"] = 0.2
    loaded = BuildConfig.from_mapping(without_retired_keys(stored))
    assert loaded.preprocess == PreprocessConfig(pca_components=5) and loaded.genre == GenreConfig()
    with pytest.raises(ConfigError, match=r"test_fraction: removed on 2026-12-08: builds never read it"):
        BuildConfig.from_mapping({"genre": {"test_fraction": 0.3}})


def test_a_bundle_built_with_a_value_now_refused_that_its_build_took_still_loads() -> None:
    """ivf_nlist 0 (automatic then), threads 0 (XGBoost's choice) and coassoc_continuum beside fewest_moods 0 (never
    read) built working bundles until 2026-12-06; the range checks refused loading them. They load as what they did;
    a config file still may not give them."""
    stored = dataclasses.asdict(BuildConfig())
    stored["index"].update(kind="ivf", ivf_nlist=0)
    stored["genre"].update(threads=0)
    stored["moods"].update(fewest_moods=0, coassoc_continuum="kmeans")
    with pytest.raises(ConfigError):
        BuildConfig.from_mapping(stored)
    loaded = BuildConfig.from_mapping(without_retired_keys(stored))
    assert loaded.index.ivf_nlist is None and loaded.genre.threads == GenreConfig().threads
    assert loaded.moods.fewest_moods == 0 and loaded.moods.coassoc_continuum == "auto"
    # cyclic:inf made its feature one constant (the preprocessing keeps its own specs); "" built only without artists
    stored = dataclasses.asdict(BuildConfig())
    stored["schema"].update(transforms={"key": "cyclic:12", "tempo": "cyclic:inf"}, artist_separator="")
    with pytest.raises(ConfigError, match=r"schema\.artist_separator must be a non-empty string"):
        BuildConfig.from_mapping(stored)
    schema = BuildConfig.from_mapping(without_retired_keys(stored)).schema
    assert schema.transforms == {"key": "cyclic:12", "tempo": "none"} and schema.artist_separator == ";"
    built = Preprocessor(feature_names=("tempo",), transforms={"tempo": "cyclic:inf"})
    assert built.transform_features(np.array([[90.0], [180.0]])).tolist() == [[0.0, 1.0], [0.0, 1.0]]
    # the same rule in [moods]: a continuum's fits given where fewest_moods = 0 means there is never a continuum
    for continuum in ("kmeans", "octants"):
        with pytest.raises(ConfigError, match=f"moods.coassoc_continuum = '{continuum}' applies where HDBSCAN finds "
                                              "fewer moods than moods.fewest_moods, which 0 never is"):
            MoodConfig(coassoc_continuum=continuum, fewest_moods=0)


@pytest.mark.parametrize(("weights", "message"), [
    ({"valence": math.inf}, "moods.weights.valence must be a finite number, got inf"),
    ({"valence": -1.0}, "moods.weights.valence must be in [0, 1e+06], got -1.0"),
    ({"valence": 1e300, "energy": 1.0}, "moods.weights.valence must be in [0, 1e+06], got 1e+300"),  # (overflowed)
    ({"valence": 0.0, "energy": 0.0}, "moods.weights must give at least one feature a weight above 0"),
    ({}, "moods.weights must give at least one feature a weight above 0"),
])
def test_mood_weights_must_be_finite_and_one_above_zero(weights: dict, message: str) -> None:
    """Before: valence = inf stopped in scikit-learn (exit 70); NaN or all-zero weights built, and the report said
    "none of the configured mood features is in the schema"."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        MoodConfig(weights=weights)


def test_a_validity_sample_too_small_for_a_silhouette_gives_none() -> None:
    """Before: moods.validity_sample = 2 stopped in scikit-learn's silhouette_score (exit 70)."""
    from engine._mooddescribe import silhouette

    points = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    labels = np.arange(200) % 2
    assert silhouette(points, labels, 2, 0) is None and silhouette(points, labels, 3, 0) is not None


def spotify(moods: MoodConfig, tracks: int) -> None:
    check_moods(moods, tracks, SPOTIFY_FEATURES, SPOTIFY_TRANSFORMS)


def test_the_co_association_k_must_be_below_the_tracks_fitted_and_refitted() -> None:
    """Before: coassoc_ks = 500 on 200 tracks stopped in scikit-learn at once, 999 on 1,000 tracks in the 90%
    stability refit 26 s in (exit 70)."""
    with pytest.raises(ConfigError, match=r"^moods.coassoc_ks = 500 asks for k-means fits at K 500, and K must be "
                                          r"below the number of tracks they cluster: the 180 tracks the stability "
                                          r"check refits \(moods.stability_subsample = 0.9 of 200; 0 skips the "
                                          r"check\); give a K of at most 179$"):
        spotify(MoodConfig(coassoc_ks=500), 200)
    with pytest.raises(ConfigError, match=r"K 999, .* the 900 tracks the stability check refits"):
        spotify(MoodConfig(coassoc_ks=999), 1_000)
    with pytest.raises(ConfigError, match=r"K 200, .* the 200 tracks the moods are fitted on; give a K of at most "
                                          r"199$"):
        spotify(MoodConfig(coassoc_ks="5-200", stability_subsample=0), 200)
    with pytest.raises(ConfigError, match=r"^moods.fewest_moods = 950 is the K of the k-means fits of a continuum"):
        spotify(MoodConfig(fewest_moods=950, coassoc_continuum="kmeans"), 1_000)
    spotify(MoodConfig(coassoc_ks=899), 1_000)
    spotify(MoodConfig(coassoc_ks=500, stability_subsample=0), 1_000)
    spotify(MoodConfig(fewest_moods=950), 1_000)  # (a continuum takes octants: no K)
    spotify(MoodConfig(coassoc_ks=500), 8)  # (too few tracks to cluster: one mood, nothing fitted)
    # without the co-association the key is not used at that size: refused as before, now before anything is fitted
    with pytest.raises(ConfigError, match=r"moods.coassoc_ks given, but 60,000 tracks clustered"):
        spotify(MoodConfig(coassoc_ks=6, coassoc_until=50_000, fit_sample=100_000), 60_000)


def test_a_co_association_share_too_small_for_the_catalog_is_refused_with_the_smallest_that_works() -> None:
    """Before: coassoc_share = 0.001 stopped in HDBSCAN on 200 and 1,000 tracks (a share of one track); the
    share the message gives fits the moods of that catalog."""
    from engine import MoodModel
    from engine._moodspace import mood_space

    for tracks, refit, least in ((200, 180, "0.0112"), (1_000, 900, "0.0023")):
        with pytest.raises(ConfigError, match=rf"^moods.coassoc_share = 0.001 gives each fit 0 of the {refit:,} tracks "
                                              rf"the stability check refits .* give coassoc_share >= {least}$"):
            spotify(MoodConfig(coassoc_share=0.001), tracks)
        spotify(MoodConfig(coassoc_share=float(least)), tracks)
    with pytest.raises(ConfigError, match=r"gives each fit 1 of the 200 tracks the moods are fitted on"):
        spotify(MoodConfig(coassoc_share=0.005, stability_subsample=0), 200)
    points = np.random.default_rng(0).normal(size=(180, 6)).astype(np.float32)
    space = mood_space(("valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo"),
                       MoodConfig().weights)
    fit = MoodModel(config=MoodConfig(coassoc_share=0.0112, coassoc_starts=1), space=space).fit(points, None, ())
    assert fit.metrics_["coassoc"]["share"] == 0.0112 and len(fit.labels_) == 180


def test_an_ivf_nlist_above_what_the_tracks_train_is_said_and_reported() -> None:
    """Before: ivf_nlist = 5000 on 200 tracks built 5 lists, the manifest kept 5000 and nothing said so."""
    vectors = l2_normalize(np.random.default_rng(0).normal(size=(200, 8)))
    said: list[str] = []
    facts = ivf_facts(build_index(vectors, IndexConfig(kind="ivf", ivf_nlist=5000)), 5000, said.append)
    assert facts["nlist"] == 5 and facts["nprobe"] == 5
    assert facts["nlist_lowered"] == ("index.ivf_nlist = 5,000 lowered to 5 lists: 200 tracks train at most 5 (FAISS "
                                      "wants about 39 tracks a list); index.ivf_nprobe = 16 probes all of them (exact "
                                      "search)")
    assert said == [f"warning: {facts['nlist_lowered']}"]
    assert ivf_facts(build_index(vectors, IndexConfig(kind="ivf", ivf_nlist=4)), 4) == {"nlist": 4, "nprobe": 4}
    assert ivf_facts(build_index(vectors, IndexConfig(kind="flat")), None) == {}
    with pytest.raises(ConfigError, match=r"^index.kind = 'ivfpq' trains 256 codes .* at least 256 tracks, and this "
                                          r"catalog has 200: use kind 'ivf' or 'flat'$"):
        build_index(vectors, IndexConfig(kind="ivfpq"))


def test_the_build_report_gives_an_ivf_index_s_lists_and_says_when_they_were_lowered(tmp_path: Path) -> None:
    from engine import build_bundle, format_report

    csv = tmp_path / "c.csv"
    synthetic_catalog(1_000, seed=0).to_csv(csv, index=False)
    config = BuildConfig().replace(index={"kind": "ivf", "ivf_nlist": 5000}, genre={"enabled": False})
    report = format_report(build_bundle(csv, tmp_path / "b", config))
    assert "; 25 lists, 16 probed" in report
    assert "warning: index.ivf_nlist = 5,000 lowered to 25 lists: 1,000 tracks train at most 25" in report


# the values a config file gives alone are named with the file; the others are checked against the catalog
@pytest.mark.parametrize(("config", "message", "names_file"), [
    ("[genre]\nlearning_rate = nan\n", "genre.learning_rate must be in (0, 1], got nan", True),
    ("[preprocess]\npca_variance = 0.9\npca_components = 3\n", "preprocess gives both pca_variance and pca_components",
     True),
    ("[moods]\ncoassoc_ks = 999\n", "moods.coassoc_ks = 999 asks for k-means fits at K 999", False),
    ("[moods]\ncoassoc_share = 0.001\n", "moods.coassoc_share = 0.001 gives each fit 0 of the 900 tracks", False),
    ("[moods.weights]\ntempoo = 1\nvalence = 1\n", "moods.weights names a feature the schema does not have: 'tempoo' "
                                                   "(did you mean 'tempo'?)", False),
    ('[schema]\nartist_separator = ""\n', "schema.artist_separator must be a non-empty string", True),
    ('[schema]\ntransforms = { tempo = "cyclic:inf" }\n', "schema.transforms.tempo: the period of a cyclic transform",
     True),
])
def test_the_cli_prints_one_line_and_exits_2(config: str, message: str, names_file: bool, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from musicrec.cli import main

    csv, toml = tmp_path / "c.csv", tmp_path / "c.toml"
    synthetic_catalog(1_000, seed=0).to_csv(csv, index=False)
    toml.write_text(config)
    code = main(["index", str(csv), "--out", str(tmp_path / "b"), "--config", str(toml), "--quiet"])
    err = capsys.readouterr().err
    said = f"musicrec index: error: {f'config file {toml}: ' if names_file else ''}{message}"
    assert code == 2 and err.startswith(said) and err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("text", "key"), [('{"seed": 0, "seed": 1}', "seed"),
                                           ('{"moods": {"min_samples": 3, "min_samples": 5}}', "min_samples")])
def test_a_key_given_twice_in_a_json_config_is_refused_naming_it(text: str, key: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """TOML refuses a repeated key; JSON kept the last silently."""
    from musicrec.cli import main

    config = tmp_path / "c.json"
    config.write_text(text)
    code = main(["index", str(tmp_path / "c.csv"), "--out", str(tmp_path / "b"), "--config", str(config), "--quiet"])
    assert (code, capsys.readouterr().err) == (2, f"musicrec index: error: config file {config}: key {key!r} is given "
                                                  "twice in one object; give it once\n")
    config.write_text('{"seed": 1, "moods": {"min_samples": 5}}')  # each once: read
    assert BuildConfig.from_file(config).seed == 1
