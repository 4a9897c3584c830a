"""The classifier on a sample of a large catalog (GenreConfig.fit_sample): the folds and the shipped
model train on the sample, every other labelled track is scored by the shipped model (which never
saw it), and the report says so."""

from __future__ import annotations

import numpy as np
import pytest

from engine import ConfigError, FeatureSchema, GenreConfig, Preprocessor, read_catalog, synthetic_catalog
from engine._crossfit import cross_fit

FAST = GenreConfig(max_rounds=15, early_stopping_rounds=5, tune=False, fit_sample=1000)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("fit-sample") / "catalog.csv"
    synthetic_catalog(2500, seed=7).to_csv(path, index=False)
    catalog = read_catalog(path, FeatureSchema())
    prep = Preprocessor(feature_names=catalog.feature_names, transforms=FeatureSchema().transforms).fit(
        catalog.features)
    x = prep.transform_features(catalog.features)
    model, crossfit = cross_fit(catalog, x, prep.transformed_names, FAST, seed=3)
    return catalog, x, model, crossfit, prep.transformed_names


def test_the_classifier_fits_on_the_sample_and_scores_the_rest_with_the_shipped_model(fitted) -> None:  # type: ignore[no-untyped-def]
    catalog, x, model, crossfit, _ = fitted
    labelled = np.flatnonzero(np.diff(catalog.genre_indptr) > 0)
    assert len(labelled) > 1000
    assert len(crossfit.scored) == 1000 and set(crossfit.scored.tolist()) <= set(labelled.tolist())
    assert (crossfit.fold[crossfit.scored] >= 0).all()
    unseen = np.setdiff1d(np.arange(len(catalog)), crossfit.scored)
    assert (crossfit.fold[unseen] == -1).all()
    assert np.allclose(crossfit.proba[unseen], model.predict_proba(x[unseen]), atol=1e-6)
    sample = crossfit.metrics["fit_sample"]
    assert sample["tracks"] == 1000 and sample["of_labelled"] == len(labelled)
    assert crossfit.metrics["test_tracks"] == 1000


def test_fit_sample_zero_or_above_the_catalog_trains_on_every_labelled_track(fitted) -> None:  # type: ignore[no-untyped-def]
    catalog, x, _, _, names = fitted
    _, crossfit = cross_fit(catalog, x, names, GenreConfig(max_rounds=5, early_stopping_rounds=2, tune=False, fit_sample=0),
                            seed=3)
    assert len(crossfit.scored) == int((np.diff(catalog.genre_indptr) > 0).sum())
    assert crossfit.metrics["fit_sample"] is None
    with pytest.raises(ConfigError, match="fit_sample"):
        GenreConfig(fit_sample=10)
