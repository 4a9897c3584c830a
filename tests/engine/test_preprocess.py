from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine import InvalidQuery, NotFittedError, Preprocessor


def make(n: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.random(n), rng.integers(0, 12, n), rng.lognormal(12, 0.5, n), rng.random(n)])


def prep(**kw: object) -> Preprocessor:
    return Preprocessor(feature_names=["energy", "key", "duration_ms", "valence"],
                        transforms={"key": "cyclic:12", "duration_ms": "log1p"}, **kw)  # type: ignore[arg-type]


def test_cyclic_key_puts_11_next_to_0() -> None:
    p = prep()
    x = p.transform_features(np.array([[0.5, 0, 1e5, 0.5], [0.5, 11, 1e5, 0.5], [0.5, 6, 1e5, 0.5]]))
    assert p.transformed_names == ("energy", "key_sin", "key_cos", "duration_ms_log1p", "valence")
    d = lambda a, b: np.linalg.norm(x[a, 1:3] - x[b, 1:3])  # noqa: E731
    assert d(0, 1) < d(0, 2) / 3


def test_pca_keeps_the_variance_target_or_the_count() -> None:
    raw = make()
    p = prep(pca_variance=0.8).fit(raw)
    kept = p.explained_variance_ratio_[: p.n_components].sum()
    assert kept >= 0.8 and p.explained_variance_ratio_[: p.n_components - 1].sum() < 0.8
    assert prep(pca_components=2).fit(raw).n_components == 2


def test_vectors_are_unit_length_and_round_trip_through_arrays() -> None:
    raw = make()
    p = prep().fit(raw)
    v = p.embed(raw)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    q = Preprocessor.from_arrays(p.to_arrays())
    np.testing.assert_array_equal(q.embed(raw), v)
    assert all(a.dtype != object for a in p.to_arrays().values())


def test_a_track_at_the_mean_stays_a_zero_vector() -> None:
    p = prep().fit(make())
    standardized_mean = p.mean_.copy()
    assert np.allclose((standardized_mean - p.mean_) / p.scale_, 0)
    v = Preprocessor(feature_names=["a", "b"]).fit(np.array([[0.0, 0.0], [2.0, 2.0]])).embed(np.array([[1.0, 1.0]]))
    assert not np.isnan(v).any() and np.all(v == 0)


@pytest.mark.parametrize("value", [0.1, 0.5, -3.3, 1e6 / 3])
def test_a_constant_column_has_no_direction_for_any_track(value: float) -> None:
    """0.1 on every track gave a spread of ~1e-17, not 0: PCA kept a direction of it, and every track added with
    another value pointed along it (an audit, 2026-12-07: added tracks at cosine 1.0000 to each other)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4))
    x[:, 2] = value
    prep = Preprocessor(feature_names=["a", "b", "c", "d"]).fit(x)
    assert prep.n_components == 3
    other = x[:1].copy()
    other[0, 2] = value + 0.4
    assert np.array_equal(prep.embed(x[:1]), prep.embed(other))


def test_errors() -> None:
    with pytest.raises(NotFittedError):
        prep().embed(make())
    with pytest.raises(InvalidQuery, match="3 columns, but the pipeline expects 4"):
        prep().fit(make()).embed(np.zeros((1, 3)))


def test_keeping_every_component_ranks_as_the_standardized_features_do() -> None:
    # pca_variance 1.0 keeps the stage (standardize -> PCA -> cosine) but loses nothing: the vectors
    # are a rotation of the standardized features, so every cosine between tracks is theirs
    raw = make(300, seed=4)
    p = prep(pca_variance=1.0).fit(raw)
    assert p.n_components == len(p.transformed_names)
    z = p.standardize(raw)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    v = p.embed(raw).astype(np.float64)
    np.testing.assert_allclose(v @ v[:20].T, z @ z[:20].T, atol=1e-6)
    fewer = prep(pca_variance=0.6).fit(raw).embed(raw).astype(np.float64)
    assert not np.allclose(fewer @ fewer[:20].T, z @ z[:20].T, atol=1e-3)  # the check can fail


def test_a_cyclic_feature_weighs_as_one_feature() -> None:
    # sin and cos share one scale: together they hold one column's variance, so key does not count
    # twice in every distance (each scaled alone, the pair would hold two)
    raw = make(2000, seed=5)
    p = prep().fit(raw)
    z = p.standardize(raw)
    var = dict(zip(p.transformed_names, z.var(axis=0), strict=True))
    assert var["key_sin"] + var["key_cos"] == pytest.approx(1.0)
    assert 0.3 < var["key_sin"] < 0.7 and var["energy"] == pytest.approx(1.0)
    assert var["duration_ms_log1p"] == pytest.approx(1.0)
    # and 11 is still next to 0 after scaling
    x = p.standardize(np.array([[0.5, 0, 1e5, 0.5], [0.5, 11, 1e5, 0.5], [0.5, 6, 1e5, 0.5]]))
    assert np.linalg.norm(x[0, 1:3] - x[1, 1:3]) < np.linalg.norm(x[0, 1:3] - x[2, 1:3]) / 3


def test_whitening_gives_every_component_unit_spread_and_round_trips() -> None:
    raw = make(2000, seed=6)
    p = prep(pca_variance=1.0, whiten=True).fit(raw)
    projected = p.standardize(raw) @ p.components_.T  # before the L2 normalization
    # each variance first shrunk toward their mean by dims / tracks (5 / 2000): near 1, exactly so
    a = p.whiten_shrinkage_
    assert a == pytest.approx(5 / 2000)
    z = p.standardize(raw)
    eig = np.sort(np.linalg.eigvalsh(np.cov(z.T)))[::-1]
    np.testing.assert_allclose(np.cov(projected.T), np.diag(eig / ((1 - a) * eig + a * eig.mean())), atol=1e-6)
    assert np.allclose(np.diag(np.cov(projected.T)), 1, atol=0.01)
    plain = prep(pca_variance=1.0).fit(raw)
    assert not np.allclose(p.embed(raw), plain.embed(raw), atol=1e-3)  # it changes the space
    # a bundle keeps it (folded into the components) and reports it; the residual ignores it
    q = Preprocessor.from_arrays(p.to_arrays())
    assert q.whiten and np.array_equal(q.embed(raw), p.embed(raw))
    assert abs(p.residual_share(raw)) < 1e-9
    fewer = prep(pca_components=2, whiten=True).fit(raw)
    assert fewer.residual_share(raw) == pytest.approx(prep(pca_components=2).fit(raw).residual_share(raw))
    assert 0.2 < fewer.residual_share(raw) < 0.8


def test_whitening_a_catalog_with_fewer_tracks_than_dimensions_is_a_rotation() -> None:
    # 60 tracks of 109 descriptors (the README's demo corpus): fully whitened, the 60 points would sit
    # at one equal cosine (-1/59) from each other, every neighbour a tie. Shrunk by dims / tracks >= 1,
    # whitening scales every component alike: the cosines are those of the standardized features.
    rng = np.random.default_rng(7)
    styles = rng.normal(size=(5, 109)) * 2
    raw = styles[np.arange(60) % 5] + rng.normal(size=(60, 109))
    names = [f"f{i}" for i in range(109)]
    p = Preprocessor(feature_names=names, whiten=True).fit(raw)
    assert p.whiten_shrinkage_ == 1.0
    v, z = p.embed(raw).astype(np.float64), p.standardize(raw)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    np.testing.assert_allclose(v @ v.T, z @ z.T, atol=1e-5)
    off = (v @ v.T)[~np.eye(60, dtype=bool)]
    assert off.std() > 0.1  # the neighbours differ: not one cosine for every pair
    same_style = (v @ v.T)[np.arange(60) % 5 == 0][:, np.arange(60) % 5 == 0]
    assert same_style[~np.eye(12, dtype=bool)].min() > off.mean()


def test_one_row_normalizes_bit_for_bit_as_in_a_batch() -> None:
    # a query normalizes its one row by a shorter path; the build normalized the catalog in batches.
    # Compared in float64, before the float32 cast could hide a last-bit difference.
    from engine._preprocess import unit_rows

    rng = np.random.default_rng(3)
    rows = rng.standard_normal((400, 14)) * 10.0 ** rng.integers(-300, 300, (400, 1))
    edge = np.zeros((6, 14))
    edge[1, 0], edge[2, 0], edge[3, 0], edge[4, :2], edge[5, 0] = np.inf, np.nan, 5e-324, 1.7e308, -0.0
    rows = np.concatenate([rows, edge])
    batch = unit_rows(rows)
    one = np.concatenate([unit_rows(rows[i:i + 1]) for i in range(len(rows))])
    np.testing.assert_array_equal(one.view(np.uint64), batch.view(np.uint64))
    assert not batch[[-6, -5, -4, -1]].any()  # all-zero, inf, NaN and -0.0 rows: zero rows
    np.testing.assert_allclose(np.linalg.norm(batch[:-6], axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(batch[-3], np.eye(14)[0])  # a subnormal row normalizes exactly


def _descriptor_catalog(signal_in_spread: bool, labelled: int = 600):  # type: ignore[no-untyped-def]
    """600 tracks of 12 descriptors in 4 genres. Either each genre shifts every column alike (the genres are the
    directions of large spread, as in a table of independent descriptors) or the columns share one loud nuisance
    (level, recording) and the genres differ in a direction of small spread, as on the librosa tables."""
    import pandas as pd

    from engine import FeatureSchema, clean_catalog

    rng = np.random.default_rng(0)
    genre = np.repeat(np.arange(4), 150)
    if signal_in_spread:
        x = rng.normal(0, 2.0, (4, 12))[genre] + rng.normal(size=(600, 12))
    else:
        x = rng.normal(size=(600, 1)) * 4 * rng.uniform(0.5, 1, 12) + rng.normal(size=(600, 12))
        x[:, :4] += rng.normal(0, 0.6, (4, 4))[genre]
    names = tuple(f"d{i}" for i in range(12))
    labels = np.where(np.arange(600) % (600 // labelled) == 0, genre.astype(str), "")
    frame = pd.DataFrame(x, columns=list(names)).assign(id=[f"t{i}" for i in range(600)], label=labels)
    return clean_catalog(frame, FeatureSchema.generic(id_column="id", feature_columns=names, label_column="label"))


@pytest.mark.parametrize("signal_in_spread", [True, False])
def test_auto_whitening_keeps_the_vectors_that_find_more_of_the_same_genre(signal_in_spread: bool) -> None:
    from engine._whitening import choose_whitening

    catalog = _descriptor_catalog(signal_in_spread)

    def fit(whiten: bool) -> Preprocessor:
        return Preprocessor(feature_names=catalog.feature_names, whiten=whiten).fit(catalog.features)

    chosen, facts = choose_whitening(catalog, fit, np.arange(len(catalog)), block=200, seed=0)
    whitened, plain = facts["genre_precision_at_10_whitened"], facts["genre_precision_at_10_not_whitened"]
    assert facts["measured"] and facts["queries"] == 600
    assert (whitened < plain) if signal_in_spread else (whitened > plain)  # each shape does what it was built for
    assert chosen.whiten is (not signal_in_spread) and facts["whitened"] is chosen.whiten
    few = _descriptor_catalog(True, labelled=60)
    unmeasured, why = choose_whitening(few, fit, np.arange(len(few)), block=200, seed=0)
    assert unmeasured.whiten and not why["measured"] and "under the 100" in why["why"]


def test_whiten_takes_true_false_or_auto_and_says_so() -> None:
    from engine import BuildConfig, ConfigError, PreprocessConfig

    assert BuildConfig.from_mapping({"preprocess": {"whiten": "auto"}}).preprocess.whiten == "auto"
    with pytest.raises(ConfigError, match=r"whiten must be true or false, or one of \['auto'\], got 'yes'"):
        BuildConfig.from_mapping({"preprocess": {"whiten": "yes"}})
    with pytest.raises(ConfigError, match='true, false or "auto"'):
        PreprocessConfig(whiten="always")  # type: ignore[arg-type]


def test_a_build_without_a_classifier_still_scores_its_retrieval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # --no-genre on a labelled catalog used to drop the similar section: the labels can still score cosine
    from engine import BuildConfig, GenreConfig, build_bundle, format_report, synthetic_catalog

    synthetic_catalog(1_500, seed=3).to_csv(tmp_path / "c.csv", index=False)
    manifest = build_bundle(tmp_path / "c.csv", tmp_path / "b", BuildConfig(genre=GenreConfig(enabled=False)))
    sim = manifest["metrics"]["similar"]
    assert sim["queries"] > 1_000 and 0.3 < sim["genre_precision_at_10_cosine"] <= 1  # planted genres; chance ~0.09
    assert 0 < sim["genre_precision_at_10_plain_standardization"] <= 1 and "reranked" not in str(sim)
    report = format_report(manifest)
    assert "cosine alone (no genre classifier to re-rank with)" in report and "genres   no classifier" in report


def test_the_residual_share_of_values_far_beyond_the_fitted_scaling_is_finite_and_warns_nothing() -> None:
    # musicrec add's drift check: a new track within float32 (what the cleaning keeps) in a feature whose fitted
    # spread is tiny stands ~1e160 sd out, whose square overflows float64 unless the ratio is taken scaled
    raw = make()
    raw[:, 0] = np.random.default_rng(1).random(len(raw)) * 1e-120
    p = prep(pca_components=2).fit(raw)
    new = raw[:20].copy()
    new[0, 0] = 3e38
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        share = p.residual_share(new)
    assert 0.0 <= share <= 1.0
