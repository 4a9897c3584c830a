"""Genre re-ranking of similar-track candidates: the hybrid score.

Audio features alone place a track near others of the same genre only 12% of the time (genre-
precision@10 on held-out artists). The genre classifier reads the same features and knows which
genres such features come from, and every catalog track's genres are known. So the retrieval stage
(standardize -> PCA -> FAISS cosine) fetches ``candidates`` tracks, and each is scored

    (1 - w) * cosine(query, candidate) + w * agreement(query, candidate)

where ``agreement`` is the probability the classifier gives the *query's features* of belonging to
any of the *candidate's* genres (the sum over them, at most 1). The query's own genre is never an
input, so a new track described only by its features is ranked the same way as a catalog one.
``w = 0`` is plain cosine. Measured trade-off in benchmarks/RESULTS.md (quality.py): precision
rises steeply up to w ~0.35 and flattens, while the mean cosine of the results falls slowly.
"""

from __future__ import annotations

import faiss
import numpy as np

from ._candidates import CandidateSource, IndexSource
from ._ranking import SLACK, RowFilter, Scoring, Survivors


class GenreAgreement:
    """Agreement between genre probabilities of queries and the known genres of candidates.

    Parameters
    ----------
    indptr, codes : np.ndarray
        The catalog's genres as CSR: track ``i`` has codes ``codes[indptr[i]:indptr[i+1]]``.
    n_genres : int
        Length of every probability vector.
    """

    def __init__(self, indptr: np.ndarray, codes: np.ndarray, n_genres: int) -> None:
        counts = np.diff(indptr)
        width = max(int(counts.max(initial=0)), 1)
        # codes padded to a rectangle; padding points at an extra probability column that is 0
        self.codes = np.full((len(counts), width), n_genres, dtype=np.int32)
        row_of_code = np.repeat(np.arange(len(counts)), counts)
        slot = np.arange(len(codes)) - np.repeat(indptr[:-1], counts)
        self.codes[row_of_code, slot] = codes
        self.n_genres = n_genres

    def __call__(self, proba: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Agreement of each query with each of its candidates.

        ``proba`` has shape (n_queries, n_genres) and ``rows`` (n_queries, n_candidates), or
        (n_genres,) and (n_candidates,) for one query; rows < 0 (no candidate) get 0 in the
        batched form (the single form takes rows >= 0 only).
        """
        single = proba.ndim == 1
        if single:  # the pipeline's call, once per block: its rows are survivors (all >= 0)
            padded = np.zeros(len(proba) + 1, dtype=proba.dtype)
            padded[:-1] = proba
            # take and add.reduce: the sums of the batched form below, with fewer per-call checks
            agree = np.add.reduce(padded.take(self.codes.take(rows, axis=0)), axis=1)
            return np.minimum(agree, 1.0, out=agree)
        proba2 = np.atleast_2d(proba)
        rows2 = np.atleast_2d(rows)
        padded = np.concatenate([proba2, np.zeros((len(proba2), 1), dtype=proba2.dtype)], axis=1)
        codes = self.codes[np.maximum(rows2, 0)]  # (q, c, width)
        agree = np.take_along_axis(padded[:, None, :], codes, axis=2).sum(axis=2)
        agree = np.where(rows2 >= 0, np.minimum(agree, 1.0), 0.0)
        return agree[0] if single else agree


def hybrid_scores(cosine: np.ndarray, agreement: np.ndarray, weight: float) -> np.ndarray:
    return (1.0 - weight) * cosine + weight * agreement


def rerank_table(rows: np.ndarray, scores: np.ndarray, proba: np.ndarray, agreement: GenreAgreement,
                 weight: float, width: int, *, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each cosine candidate list by the hybrid score and keep the best ``width``.

    ``rows``/``scores`` hold one list per query (n_queries, candidates), -1 / -inf where missing
    (a neighbour table: one per track); ``proba`` holds each query's genre probabilities
    (n_queries, n_genres).
    """
    n = len(rows)
    out_rows = np.full((n, width), -1, dtype=np.int32)
    out_scores = np.full((n, width), -np.inf, dtype=np.float32)
    for start in range(0, n, chunk):
        r = rows[start:start + chunk]
        s = hybrid_scores(scores[start:start + chunk], agreement(proba[start:start + chunk], r), weight)
        s = np.where(r >= 0, s, -np.inf)
        order = np.argsort(-s, axis=1, kind="stable")[:, :width]
        got = order.shape[1]
        out_rows[start:start + chunk, :got] = np.take_along_axis(r, order, axis=1)
        out_scores[start:start + chunk, :got] = np.take_along_axis(s, order, axis=1)
    return out_rows, out_scores


def evaluate_reranking(source: CandidateSource, vectors: np.ndarray, queries: np.ndarray, query_proba: np.ndarray,
                       genres: np.ndarray, songs: np.ndarray, agreement: GenreAgreement, weight: float,
                       block: int, k: int = 10) -> dict[str, float]:
    """Genre-precision@k of the shipped ranking (engine/_ranking.py) for catalog tracks used as
    "more like this" queries, by cosine alone (weight 0) and with genre agreement at ``weight``.

    ``query_proba`` must come from a model that never saw the queries' artists; ``genres`` is the
    catalog's multi-hot genre matrix and ``songs`` a song key per track (the query's own song is
    excluded, as in every by-id query).
    """
    scoring = Scoring(genre_weight=weight, agreement=agreement)
    cosine_hits, reranked_hits = [], []
    # every query's first fetch in one batched search (one query at a time, an exact search over
    # millions of tracks costs ~0.1 s each); a query that needs more fetches deeper from the source
    fetch = min(len(vectors), block + SLACK + 1)
    first_fetches = source.nearest_batch(np.ascontiguousarray(vectors[queries], dtype=np.float32), fetch) \
        if isinstance(source, IndexSource) else None
    for i, (q, proba) in enumerate(zip(queries.tolist(), query_proba, strict=True)):
        row_filter = RowFilter(exclude_rows=np.array([q], np.int64), exclude_songs=songs[q:q + 1].astype(np.int64))
        from_source = source if first_fetches is None else _Prefetched(first_fetches[i], source)
        first = Survivors(from_source, len(vectors), vectors, songs, vectors[q], row_filter, block).next_block()
        if first is None:
            continue
        wanted = genres[q].nonzero()[0]
        ranked, _ = scoring.sorted_block(first, proba)
        cosine_hits.append(genres[np.ix_(first.rows[:k], wanted)].any(axis=1).mean())
        reranked_hits.append(genres[np.ix_(ranked[:k], wanted)].any(axis=1).mean())

    def mean(hits: list[float]) -> float:
        return round(float(np.mean(hits)), 4) if hits else float("nan")

    return {"queries": len(cosine_hits), "k": k, "candidates": block, "genre_weight": weight,
            f"genre_precision_at_{k}_cosine": mean(cosine_hits),
            f"genre_precision_at_{k}_reranked": mean(reranked_hits)}


class _Prefetched:
    """One query's first fetch, searched ahead in a batch; deeper fetches go to the source."""

    pushes_filters = False

    def __init__(self, rows: np.ndarray, source: CandidateSource) -> None:
        self.rows, self.source = rows, source

    def nearest(self, vector: np.ndarray, n: int) -> np.ndarray:
        return self.rows[:n] if n <= len(self.rows) else self.source.nearest(vector, n)


def audio_only_precision(vectors: np.ndarray, queries: np.ndarray, genres: np.ndarray, songs: np.ndarray,
                         agreement: GenreAgreement, block: int) -> float:
    """Genre-precision@10 of exact cosine alone (genre weight 0) in ``vectors`` of shape (n_tracks, dims), for
    the catalog rows ``queries`` as "more like this" seeds, their own songs left out: the figure the retrieval
    defaults were chosen by (benchmarks/retrieval_defaults.py)."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    unread = np.zeros((len(queries), genres.shape[1]), dtype=np.float32)  # genre weight 0: never read
    return evaluate_reranking(IndexSource(index), vectors, queries, unread, genres, songs, agreement, 0.0,
                              block)["genre_precision_at_10_cosine"]


EVAL_QUERIES = 3000  # catalog tracks a build scores retrieval with (its similar-tracks evaluation, auto whitening)


def eval_queries(rows: np.ndarray, seed: int) -> np.ndarray:
    """The rows (catalog tracks with genres) a build uses as "more like this" queries: up to ``EVAL_QUERIES`` of
    ``rows``, drawn with ``seed``, in row order."""
    return np.sort(np.random.default_rng(seed).choice(rows, size=min(EVAL_QUERIES, len(rows)), replace=False))
