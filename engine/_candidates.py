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
"""

from __future__ import annotations

from typing import Protocol

import faiss
import numpy as np


class CandidateSource(Protocol):
    """Rows nearest a query vector (``pushes_filters``: see the module docstring)."""

    def nearest(self, vector: np.ndarray, n: int) -> np.ndarray:
        """Up to ``n`` row numbers, nearest first; -1 marks "no more" (a source may pad).

        ``vector`` is a unit float32 vector of shape (dim,).
        """
        ...


class IndexSource:
    """The bundle's FAISS index (flat, HNSW, IVF or IVF-PQ)."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        self.size = int(index.ntotal)
        hnsw = faiss.downcast_index(index)
        # HNSW answers short (hundreds of 1,000 asked) when k is well above efSearch, which the
        # pipeline would read as "no more": a deep fetch widens the beam to k for that search
        self._ef = int(hnsw.hnsw.efSearch) if isinstance(hnsw, faiss.IndexHNSW) else None

    def nearest(self, vector: np.ndarray, n: int) -> np.ndarray:
        return self.nearest_batch(vector[None, :], n)[0]

    def nearest_batch(self, vectors: np.ndarray, n: int) -> np.ndarray:
        """``nearest`` for each row of ``vectors`` (n_queries, dim), one search."""
        k = min(n, self.size)
        if self._ef is not None and k > self._ef:
            _, rows = self.index.search(vectors, k, params=faiss.SearchParametersHNSW(efSearch=k))
        else:
            _, rows = self.index.search(vectors, k)
        return rows


def use_one_search_thread() -> None:
    """Serving: one FAISS thread per request. Two threads on two cores make p99 spike whenever
    anything else runs (measured: 16-35 ms), and requests already run in parallel."""
    faiss.omp_set_num_threads(1)
