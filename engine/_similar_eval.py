"""The build's own scores of similar tracks (the report's "similar" section): by-id "more like this" on labelled
catalog tracks, held out by cross-fitting; audio-only cosine where there is no classifier; and the yardstick both
are read against, plain standardization (benchmarks/RESULTS.md, "Retrieval defaults")."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from ._candidates import IndexSource
from ._catalog import Catalog
from ._config import BuildConfig
from ._crossfit import CrossFit
from ._genre import GenreClassifier
from ._preprocess import Preprocessor
from ._rerank import GenreAgreement, audio_only_precision, eval_queries, evaluate_reranking


def evaluate_similar(catalog: Catalog, config: BuildConfig, index: faiss.Index, vectors: np.ndarray,
                      songs: np.ndarray, transformed: np.ndarray, crossfit: CrossFit,
                      model: GenreClassifier) -> dict[str, Any]:
    """By-id "more like this" scored on labelled catalog tracks with the out-of-fold probabilities
    by-id queries use (the fold model never saw the query, so this is the held-out protocol), beside
    the same queries re-ranked with the shipped model's in-sample probabilities (what by-id queries
    used before cross-fitting). The index and PCA are unsupervised and fitted on every track;
    benchmarks/quality.py fits those on the training artists too."""
    queries = eval_queries(crossfit.scored, config.seed)
    proba = crossfit.proba[queries]
    agreement = GenreAgreement(catalog.genre_indptr, catalog.genre_codes, len(catalog.genre_names))
    metrics = {"protocol": "the shipped ranking's first page for by-id queries of labelled catalog tracks, the "
                           "query's own song excluded; re-ranked with the out-of-fold genre probabilities by-id "
                           "queries use (from the fold model that never saw the query: held out), and for "
                           "comparison with the shipped model's in-sample ones",
               **evaluate_reranking(IndexSource(index), vectors, queries, proba, catalog.genre_matrix(), songs,
                                    agreement, config.similar.genre_weight, config.similar.candidates)}
    in_sample = evaluate_reranking(IndexSource(index), vectors, queries, model.predict_proba(transformed[queries]),
                                   catalog.genre_matrix(), songs, agreement, config.similar.genre_weight,
                                   config.similar.candidates)
    metrics["genre_precision_at_10_reranked_in_sample"] = in_sample["genre_precision_at_10_reranked"]
    metrics["genre_precision_at_10_plain_standardization"] = plain_precision(catalog, queries, songs, agreement,
                                                                              config.similar.candidates)
    return metrics


def evaluate_audio_only(catalog: Catalog, config: BuildConfig, vectors: np.ndarray, songs: np.ndarray,
                         whitening: dict[str, Any] | None) -> dict[str, Any]:
    """Without a genre classifier (``--no-genre``, or one that could not be trained) a labelled catalog's
    retrieval is still scored: audio-only genre-precision@10 in the shipped vectors (as ``whitening`` measured
    them, when it did: the same queries) and on the raw features standardized, the same by-id queries."""
    queries = eval_queries(np.flatnonzero(np.diff(catalog.genre_indptr) > 0), config.seed)
    agreement = GenreAgreement(catalog.genre_indptr, catalog.genre_codes, len(catalog.genre_names))
    measured = whitening.get("genre_precision_at_10_" + ("whitened" if whitening["whitened"] else "not_whitened")) \
        if whitening and whitening.get("measured") else None
    return {"protocol": "exact cosine alone (no genre re-ranking: no classifier) for by-id queries of labelled "
                        "catalog tracks, the query's own song excluded",
            "queries": len(queries), "k": 10,
            "genre_precision_at_10_cosine": measured if measured is not None else audio_only_precision(
                vectors, queries, catalog.genre_matrix(), songs, agreement, config.similar.candidates),
            "genre_precision_at_10_plain_standardization": plain_precision(catalog, queries, songs, agreement,
                                                                            config.similar.candidates)}


def plain_precision(catalog: Catalog, queries: np.ndarray, songs: np.ndarray, agreement: GenreAgreement,
                     block: int) -> float:
    """The yardstick the retrieval defaults were chosen against (benchmarks/retrieval_defaults.py): audio-only
    cosine on the raw features standardized, no transforms, no PCA (every component is a rotation), exact."""
    plain = Preprocessor(feature_names=catalog.feature_names, pca_variance=1.0).fit(catalog.features)
    return audio_only_precision(plain.embed(catalog.features), queries, catalog.genre_matrix(), songs, agreement,
                                block)
