"""Qdrant Edge (``qdrant-edge-py``): the Qdrant engine itself (Rust), in-process, one shard on disk.

The same payloads and the same pushed-down filter as the client source (engine/qdrant/_source.py),
through Qdrant's real filtering and HNSW code rather than local mode's Python re-implementation:
the contract suite runs over it to show that the production engine's filter semantics (keyword
``MatchAny``, integer ``MatchValue``, float ``Range``, ``must_not``, ``HasId``) give the pipeline
what it expects. It is also a fast embedded source (benchmarks/backends.py). One shard, no
aliases or replicas: a server-side deployment uses a Qdrant cluster through ``QdrantSource``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine._loaded import Bundle
from engine._ranking import RowFilter

from ._publish import numeric_key, point_batches

INDEXED = {"genres": "Keyword", "song": "Integer", "mood": "Integer", "explicit": "Integer"}


class EdgeSource:
    """Candidates from a Qdrant Edge shard holding ``bundle`` (``EdgeSource.create`` writes one)."""

    pushes_filters = True

    def __init__(self, shard: Any, bundle: Bundle) -> None:
        import qdrant_edge

        self.qe, self.shard = qdrant_edge, shard
        self.genre_names = tuple(bundle.tracks.genre_names)
        self.size = len(bundle.vectors)

    @classmethod
    def create(cls, bundle: Bundle, path: str | os.PathLike[str], *, batch: int = 2048) -> EdgeSource:
        """Write ``bundle``'s points and payload indexes into a new shard at ``path``, optimized."""
        import qdrant_edge as qe

        shard = qe.EdgeShard.create(str(Path(path)), qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=bundle.vectors.shape[1], distance=qe.Distance.Cosine)))
        numeric = [numeric_key(n) for n in bundle.preprocessor.feature_names]
        for key, kind in [*INDEXED.items(), *((k, "Float") for k in numeric if k is not None)]:
            shard.update(qe.UpdateOperation.create_field_index(key, getattr(qe.PayloadSchemaType, kind)))
        for points in point_batches(bundle, batch):
            shard.update(qe.UpdateOperation.upsert_points([
                qe.Point(id=i, vector=v, payload=p)
                for i, v, p in zip(points.ids, points.vectors, points.payloads, strict=True)]))
        shard.optimize()
        return cls(shard, bundle)

    def edge_filter(self, f: RowFilter | None) -> Any:
        """The same conditions as ``qdrant_filter``, in qdrant-edge's types."""
        qe = self.qe
        if f is None:
            return None
        must: list[Any] = []
        must_not: list[Any] = []
        if f.exclude_rows.size:
            must_not.append(qe.HasIdCondition(set(f.exclude_rows.tolist())))
        if f.exclude_songs.size:
            must_not.append(qe.FieldCondition("song", match=qe.MatchAny(f.exclude_songs.tolist())))
        if f.include_codes.size:
            must.append(qe.FieldCondition("genres", match=qe.MatchAny([self.genre_names[c]
                                                                       for c in f.include_codes.tolist()])))
        if f.exclude_codes.size:
            must_not.append(qe.FieldCondition("genres", match=qe.MatchAny([self.genre_names[c]
                                                                           for c in f.exclude_codes.tolist()])))
        if f.explicit is not None:
            must.append(qe.FieldCondition("explicit", match=qe.MatchValue(int(f.explicit[1]))))
        for name, (_, lo, hi) in zip(f.range_names, f.ranges, strict=False):
            key = numeric_key(name)
            if key is not None:
                must.append(qe.FieldCondition(key, range=qe.RangeFloat(
                    gte=None if lo == -np.inf else float(lo), lte=None if hi == np.inf else float(hi))))
        if f.moods is not None:
            must.append(qe.FieldCondition("mood", match=qe.MatchAny(f.moods[1].tolist())))
        if not must and not must_not:
            return None
        return qe.Filter(must=must or None, must_not=must_not or None)

    def nearest(self, vector: np.ndarray, n: int, row_filter: RowFilter | None = None) -> np.ndarray:
        qe = self.qe
        points = self.shard.query(qe.QueryRequest(
            limit=min(n, self.size), query=qe.Query.Nearest(vector.astype(np.float32).tolist()),
            filter=self.edge_filter(row_filter), with_payload=False, with_vector=False))
        return np.fromiter((int(p.id) for p in points), dtype=np.int64, count=len(points))

    def close(self) -> None:
        self.shard.close()

