"""Candidate sources: where the similar-track pipeline gets tracks near a query vector.

A source answers one question, "the ``n`` catalog rows nearest this unit vector, best first",
and nothing else: the pipeline recomputes every cosine from the bundle's own vectors, filters,
scores and selects, so any source (FAISS in-process today, a vector database tomorrow) gives
the same ranking for the same candidates. Filters a source can apply natively are a speed-up for
that source, never a change in the answer.

Filter push-down: a source whose ``pushes_filters`` is true is called ``nearest(vector, n,
row_filter)`` and returns only rows that pass ``row_filter`` (all of it or any part it can
express); the pipeline still applies the whole mask, so the answer is the same. Only the stats
differ: ``examined``/``filtered`` count the candidates the pipeline saw, and a pushed-down filter
hides the rows it rejected (on such a source ``filtered`` holds only what the source let through
and the pipeline then dropped).

What else the pipeline uses when a source has it, each a protocol of its own below: ``scored``
(rows already ranked with their cosines: ``ScoredSource``), ``nearest_batch`` (many queries in one
search: ``BatchSource``) and ``check`` (health, for a source that can fail: ``CheckedSource``).
The ranking asks per fetch, so it asks with ``has_scored``/``has_batch`` (an attribute lookup) rather
than ``isinstance`` on the protocol, which costs 5-12 us on Python 3.11 (more than a fetch of a small
catalog); elsewhere ``isinstance`` reads best.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeGuard, runtime_checkable

import faiss
import numpy as np

if TYPE_CHECKING:
    from ._ranking import RowFilter


class CandidateSource(Protocol):
    """Rows nearest a query vector: all a source must have."""

    pushes_filters: bool  # whether ``nearest`` takes the row filter and applies it (the module docstring)

    def nearest(self, vector: np.ndarray, n: int, row_filter: RowFilter | None = None) -> np.ndarray:
        """Up to ``n`` row numbers, nearest first; -1 marks "no more" (a source may pad).

        ``vector`` is a unit float32 vector of shape (dim,). ``row_filter`` is passed only when
        ``pushes_filters`` is true (a source that pushes none may leave the parameter out).
        """
        ...


@runtime_checkable
class ScoredSource(Protocol):
    """A source that ranks its own rows: the pipeline takes them as they come, and scores nothing again."""

    def scored(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` rows in canonical order (cosine descending, then row) and their float32 cosines,
        the pipeline's own sums (engine/_ranking.py ``cosines``); fewer when the source has no more."""
        ...


@runtime_checkable
class BatchSource(Protocol):
    """A source that searches many queries at once: new-track queries without filters are ranked together
    (engine/_similar_many.py), and evaluations fetch every query's first candidates in one search."""

    def nearest_batch(self, vectors: np.ndarray, n: int) -> np.ndarray:
        """``nearest`` for each row of ``vectors`` (n_queries, dim): rows of shape (n_queries, k), -1 padded."""
        ...


@runtime_checkable
class CheckedSource(Protocol):
    """A source that can fail apart from the bundle (a vector database): the server's health follows it."""

    def check(self) -> str | None:
        """None when the source can answer now, else why not (a reload refuses a bundle whose source fails)."""
        ...


def has_scored(source: object) -> TypeGuard[ScoredSource]:
    """``isinstance(source, ScoredSource)`` at the cost of an attribute lookup (the ranking asks per fetch)."""
    return hasattr(source, "scored")


def has_batch(source: object) -> TypeGuard[BatchSource]:
    """``isinstance(source, BatchSource)`` at the cost of an attribute lookup (asked per query)."""
    return hasattr(source, "nearest_batch")


class IndexSource:
    """The bundle's FAISS index (flat, HNSW, IVF or IVF-PQ)."""

    pushes_filters = False

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        self.size = int(index.ntotal)
        hnsw = faiss.downcast_index(index)
        # HNSW answers short (hundreds of 1,000 asked) when k is well above efSearch, which the
        # pipeline would read as "no more": a deep fetch widens the beam to k for that search
        self._ef = int(hnsw.hnsw.efSearch) if isinstance(hnsw, faiss.IndexHNSW) else None

    def nearest(self, vector: np.ndarray, n: int, row_filter: RowFilter | None = None) -> np.ndarray:
        return self.nearest_batch(vector[None, :], n)[0]

    def nearest_batch(self, vectors: np.ndarray, n: int) -> np.ndarray:
        """``nearest`` for each row of ``vectors`` (n_queries, dim), one search."""
        k = min(n, self.size)
        if self._ef is not None and k > self._ef:
            _, rows = self.index.search(vectors, k, params=faiss.SearchParametersHNSW(efSearch=k))
        else:
            _, rows = self.index.search(vectors, k)
        return rows


class ProbedSource:
    """An inverted-file (IVF-Flat, inner product) index searched the pipeline's own way: the
    ``nprobe`` lists whose centroids are nearest (cosine descending, then list number), and of their
    tracks the ``n`` nearest in canonical order (cosine descending, then row), every cosine the
    pipeline's own float32 sum (``cosines`` in engine/_ranking.py).

    It probes the lists FAISS probes (unless two centroids' cosines tie within FAISS's last bit) and
    ranks their tracks by the cosines the pipeline then uses (FAISS's own inner products can differ
    in the last bit, so at the edge of the fetch the two may keep different tracks of near-equal
    cosine). It hands the pipeline its rows already
    ordered and scored (``scored``), so they are not scored twice, and runs as one compiled kernel
    when engine/_compiled.py is active (the numpy code below is the reference, identical bit for
    bit: tests/engine/test_probed.py). New-track queries use it (engine/_similar.py)."""

    pushes_filters = False

    def __init__(self, index: faiss.Index, vectors: np.ndarray) -> None:
        found = faiss.try_extract_index_ivf(index)
        ivf = faiss.downcast_index(found) if found is not None else index
        if not isinstance(ivf, faiss.IndexIVFFlat) or ivf.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise TypeError(f"ProbedSource reads an inner-product IVF-Flat index, not {type(ivf).__name__}")
        if vectors.shape[1] > PAIRWISE_BLOCK:
            raise ValueError(f"ProbedSource sums rows of up to {PAIRWISE_BLOCK} dimensions as numpy does, "
                             f"not {vectors.shape[1]}")
        self.size, self.nprobe, self.dims = int(ivf.ntotal), int(ivf.nprobe), int(ivf.d)
        self.centroids = np.ascontiguousarray(ivf.quantizer.reconstruct_n(0, ivf.nlist), dtype=np.float32)
        sizes = [ivf.invlists.list_size(c) for c in range(ivf.nlist)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.list_rows = np.concatenate([faiss.rev_swig_ptr(ivf.invlists.get_ids(c), size).copy()
                                         for c, size in enumerate(sizes)] + [np.empty(0, np.int64)]).astype(np.int64)
        by_list = np.asarray(vectors[self.list_rows], dtype=np.float32)  # the bundle's own values, list by list
        # each list one contiguous block of its tracks' values, dimension by dimension (``_block``)
        spans = zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist(), strict=True)
        self.blocks = np.concatenate([by_list[a:b].T.ravel() for a, b in spans] + [np.empty(0, np.float32)])
        self.centroid_block = np.ascontiguousarray(self.centroids.T).ravel()

    def nearest(self, vector: np.ndarray, n: int, row_filter: RowFilter | None = None) -> np.ndarray:
        rows, _ = self.scored(vector, n)
        return np.concatenate([rows, np.full(min(n, self.size) - len(rows), -1, np.int64)])

    def nearest_batch(self, vectors: np.ndarray, n: int) -> np.ndarray:
        """``nearest`` for each row of ``vectors`` (n_queries, dim), padded with -1 to min(n, size)."""
        if not len(vectors):
            return np.empty((0, min(n, self.size)), np.int64)
        return np.stack([self.nearest(v, n) for v in vectors])

    def scored(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` rows in canonical order and their float32 cosines (fewer when the probed
        lists hold fewer tracks)."""
        from . import _compiled  # the ranking's switch (a late import: _compiled's kernels import numba)

        query = np.ascontiguousarray(vector, dtype=np.float32)
        if n <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        if _compiled.active():
            kernels = _compiled.kernels()
            keys = kernels.probed_keys(self.centroid_block, self.offsets, self.list_rows, self.blocks, query,
                                       self.nprobe, n)
            keys.sort()
            return kernels.split_keys(keys)
        centroid_cos = np.add.reduce(self.centroids * query, axis=1, dtype=np.float32)
        probe = np.argsort(-centroid_cos, kind="stable")[:self.nprobe]  # ties: the lower list first
        rows = np.concatenate([self.list_rows[self.offsets[c]:self.offsets[c + 1]] for c in probe.tolist()])
        cos = column_cosines(np.concatenate([self._block(c) for c in probe.tolist()], axis=1), query)
        if n < len(cos):  # the n-th largest cosine bounds the answer: sort only what reaches it
            reach = np.flatnonzero(cos >= -np.partition(-cos, n - 1)[n - 1])
            rows, cos = rows[reach], cos[reach]
        top = np.lexsort((rows, -cos))[:n]
        return rows[top], cos[top]


    def _block(self, c: int) -> np.ndarray:
        """List ``c``'s tracks as a (dims, tracks) view of ``blocks``."""
        a, b = int(self.offsets[c]), int(self.offsets[c + 1])
        return self.blocks[a * self.dims:b * self.dims].reshape(self.dims, b - a)


def column_cosines(columns: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``cosines`` (engine/_ranking.py) of tracks given as ``columns`` (dims x tracks, float32): each
    track's products summed in numpy's pairwise order for a row (under 8 dimensions left to right,
    else eight running sums combined, then the rest), computed across all tracks at once."""
    products = columns * query[:, None]
    d = len(query)
    zero = np.float32(0.0)
    if d < 8:
        total = np.zeros(columns.shape[1], np.float32)
        for t in range(d):
            total += products[t]
        return zero + total
    acc = products[:8]  # the running sums, in place (products is this call's own)
    whole = d - d % 8
    for start in range(8, whole, 8):
        acc += products[start:start + 8]
    a = acc  # ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), in place
    np.add(a[0], a[1], out=a[0]), np.add(a[2], a[3], out=a[2]), np.add(a[4], a[5], out=a[4])
    np.add(a[6], a[7], out=a[6]), np.add(a[0], a[2], out=a[0]), np.add(a[4], a[6], out=a[4])
    total = np.add(a[0], a[4], out=a[0])
    for t in range(whole, d):
        total += products[t]
    return zero + total


# numpy sums a row of up to this many values with eight running sums, and a longer one in halves
# (its pairwise_sum's block): the scans here and the kernels copy the first order only
PAIRWISE_BLOCK = 128


def new_track_source(index: faiss.Index, vectors: np.ndarray) -> IndexSource | ProbedSource:
    """The source of the new-track queries: an IVF-Flat index searched as ``ProbedSource`` does (up
    to ``PAIRWISE_BLOCK`` dimensions); any other kind (HNSW), or wider vectors, through FAISS."""
    try:
        return ProbedSource(index, vectors)
    except (TypeError, ValueError):  # its checks come before any work
        return IndexSource(index)


def use_one_search_thread() -> None:
    """Serving: one FAISS thread per request. Two threads on two cores make p99 spike whenever
    anything else runs (measured: 16-35 ms), and requests already run in parallel."""
    faiss.omp_set_num_threads(1)
