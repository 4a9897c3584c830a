"""FAISS cosine index: inner product over L2-normalized vectors.

Rows of the index are track positions in the bundle's track table (0..n-1); ids live there.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from ._config import IndexConfig
from ._errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Neighbors:
    """Search result: ``rows`` (track positions, -1 where fewer than k exist) and ``scores``
    (cosine similarity, higher is better), both of shape (n_queries, k)."""

    rows: np.ndarray
    scores: np.ndarray


def save_index(index: faiss.Index, path: Path) -> None:
    """``faiss.write_index``'s bytes, written by Python: a full disk is then an OSError naming the file (faiss
    raised a RuntimeError, which a build reported as a bug)."""
    with open(path, "wb") as fh:
        fh.write(memoryview(faiss.serialize_index(index)))


def build_index(vectors: np.ndarray, config: IndexConfig, *, seed: int = 0) -> faiss.Index:
    """Build the configured index over float32 unit vectors of shape (n, d)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if config.kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif config.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
    else:
        nlist = ivf_nlist(config, n)
        quantizer = faiss.IndexFlatIP(d)
        if config.kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            # PQ splits the vector into m sub-vectors of 8-bit codes; m must divide the dimension
            m = config.pq_bytes or d
            if d % m:
                raise ConfigError(f"index.pq_bytes={m} must divide the vector dimension {d}")
            if n < PQ_CODES:  # (FAISS stops with a RuntimeError)
                raise ConfigError(f"index.kind = 'ivfpq' trains {PQ_CODES} codes for each part of a vector on the "
                                  f"catalog's tracks, so it needs at least {PQ_CODES} tracks, and this catalog has "
                                  f"{n:,}: use kind 'ivf' or 'flat'")
            index = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(vectors[np.random.default_rng(seed).choice(n, size=ivf_training_size(n, nlist), replace=False)])
    index.add(vectors)
    configure_search(index, config)
    return index


PQ_CODES = 256  # an ivfpq index's 8-bit codes: k-means at this K for each part of a vector
POINTS_PER_LIST = 39  # FAISS wants about this many training points per IVF list


def ivf_nlist(config: IndexConfig, n: int) -> int:
    """Number of IVF lists: configured, or 4 * sqrt(n), never more than n / POINTS_PER_LIST (the
    build report says so where ``index.ivf_nlist`` is lowered: ``ivf_facts``)."""
    nlist = config.ivf_nlist or int(4 * math.sqrt(n))
    return max(1, min(nlist, n // POINTS_PER_LIST or 1))


def ivf_facts(index: faiss.Index, asked: int | None = None, say: Callable[[str], None] | None = None,
              ) -> dict[str, object]:
    """An IVF index's lists and probes as built, for the build report ({} for another kind of index); where
    ``asked`` (``index.ivf_nlist``) was more lists than its tracks train, ``nlist_lowered`` says so (and ``say``)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:  # (flat, HNSW)
        return {}
    facts: dict[str, object] = {"nlist": int(ivf.nlist), "nprobe": int(min(ivf.nprobe, ivf.nlist))}
    if asked is not None and ivf.nlist < asked:
        facts["nlist_lowered"] = (f"index.ivf_nlist = {asked:,} lowered to {ivf.nlist:,} lists: {ivf.ntotal:,} tracks "
                                  f"train at most {ivf.nlist:,} (FAISS wants about {POINTS_PER_LIST} tracks a list)"
                                  + (f"; index.ivf_nprobe = {ivf.nprobe:,} probes all of them (exact search)"
                                     if ivf.nprobe >= ivf.nlist else ""))
        if say is not None:
            say(f"warning: {facts['nlist_lowered']}")
    return facts


IVF_TRAINING_POINTS = 262_144  # k-means points below which no catalog is cut to 64 per list


def ivf_training_size(n: int, nlist: int) -> int:
    """How many vectors the IVF k-means trains on: FAISS's own cap of 256 per list, but at most
    64 per list once that exceeds ``IVF_TRAINING_POINTS``. Training is most of a large build's
    index stage: on the 1M synthetic catalog (4,000 lists, quiet machine) 256 per list trained in
    84 s, 64 in 19 s, recall@10 0.9892 vs 0.9880 (@265: 0.904 vs 0.899); smaller catalogs (the
    Spotify one's new-track index: 299 lists) train as before."""
    return min(n, nlist * 256, max(nlist * 64, IVF_TRAINING_POINTS))


def configure_search(index: faiss.Index, config: IndexConfig) -> None:
    """Apply search-time parameters, which FAISS does not reliably persist. An index of another kind than
    ``config.kind`` (a manifest edited after its build) is a ``ValueError`` naming both."""
    found = type(faiss.downcast_index(index)).__name__
    expected = {"flat": ("IndexFlatIP", "IndexFlat"), "hnsw": ("IndexHNSWFlat",), "ivf": ("IndexIVFFlat",),
                "ivfpq": ("IndexIVFPQ",)}.get(config.kind)
    if expected is not None and found not in expected:
        raise ValueError(f"the file holds a FAISS {found}, but the bundle's config says index.kind = {config.kind!r}")
    if config.kind == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = config.hnsw_ef_search
    elif config.kind in ("ivf", "ivfpq"):
        faiss.extract_index_ivf(index).nprobe = config.ivf_nprobe


def search(index: faiss.Index, queries: np.ndarray, k: int) -> Neighbors:
    """Top-k by cosine for float32 unit queries of shape (n_queries, d)."""
    scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return Neighbors(rows=rows, scores=scores)


def measure_recall(
    index: faiss.Index, vectors: np.ndarray, *, k: int = 10, queries: int = 1000, seed: int = 0,
    search: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> dict[str, float]:
    """Recall@k of ``index`` (searched by ``search(queries, k) -> rows`` when given: the way the
    server searches it) against exact search, on catalog tracks used as queries.

    Returns recall and the median per-query latency of both searches (one thread, one query at a
    time) as measured during the build; the build report is where these belong, not a test.
    """
    find = search or (lambda q, k: index.search(q, k)[1])
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False)
    q = np.ascontiguousarray(vectors[picks], dtype=np.float32)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    truth = exact.search(q, k)[1]
    found = find(q, k)
    hits = sum(len(set(t[t >= 0]) & set(f[f >= 0])) for t, f in zip(truth, found, strict=True))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        lat_exact = _median_single_query_ms(lambda q, k: exact.search(q, k)[1], q[:200], k)
        lat_index = _median_single_query_ms(find, q[:200], k)
    finally:
        faiss.omp_set_num_threads(threads)
    return {f"recall_at_{k}": hits / truth.size, "queries": len(q),
            "exact_query_ms_p50": lat_exact, "index_query_ms_p50": lat_index}


def _median_single_query_ms(find: Callable[[np.ndarray, int], np.ndarray], q: np.ndarray, k: int) -> float:
    times = []
    for row in q:
        t0 = time.perf_counter()
        find(row[None, :], k)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def new_track_recall(index: faiss.Index, vectors: np.ndarray, *, fetch: int, queries: int,
                     seed: int) -> dict[str, float]:
    """The new-track index's recall against exact search at k=10 and at a new track's first fetch,
    searched as the server searches it (engine/_candidates.py ``new_track_source``)."""
    from ._candidates import new_track_source

    source = new_track_source(index, vectors)
    search = source.nearest_batch
    return {**measure_recall(index, vectors, queries=queries, seed=seed, search=search),
            **measure_recall(index, vectors, k=fetch, queries=queries, seed=seed, search=search)}
