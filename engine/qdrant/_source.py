"""The Qdrant candidate source: nearest rows with the filter pushed down, and how it fails.

Which collection: the one the alias names when it holds this bundle; else this bundle's own
collection while retention keeps it (the alias has moved on to another bundle, newer or rolled back to,
that this server has not loaded yet); else none, and every call fails with a message saying which. A
collection "holds this bundle" when its name carries the bundle's digest and its exact count and dimension match.

Failing: any error from the client (unreachable, timed out, collection gone) raises
:class:`BackendUnavailable`; for ``retry_after`` seconds after a failure calls fail at once with
the same message instead of each waiting on a dead server, then the next call (or ``check``, which
the server's health loop runs) tries again. Nothing needs restarting when Qdrant comes back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import numpy as np
from qdrant_client import models

from engine._errors import BackendUnavailable
from engine._loaded import Bundle
from engine._ranking import RowFilter

from ._publish import alias_target, client_address, collection_holds, collection_name, numeric_key
from ._target import DEFAULT_ALIAS

log = logging.getLogger("musicrec.qdrant")
RETRY_AFTER = 1.0


def qdrant_filter(row_filter: RowFilter | None, genre_names: tuple[str, ...] | list[str]) -> models.Filter | None:
    """The part of ``row_filter`` Qdrant can apply (all of it, except ranges on columns whose names
    are not plain keys); the pipeline's mask applies the whole filter again on what comes back."""
    if row_filter is None:
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    if row_filter.exclude_rows.size:
        must_not.append(models.HasIdCondition(has_id=row_filter.exclude_rows.tolist()))
    if row_filter.exclude_songs.size:
        must_not.append(models.FieldCondition(key="song", match=models.MatchAny(any=row_filter.exclude_songs.tolist())))
    if row_filter.include_codes.size:
        must.append(models.FieldCondition(key="genres", match=models.MatchAny(
            any=[genre_names[c] for c in row_filter.include_codes.tolist()])))
    if row_filter.exclude_codes.size:
        must_not.append(models.FieldCondition(key="genres", match=models.MatchAny(
            any=[genre_names[c] for c in row_filter.exclude_codes.tolist()])))
    if row_filter.explicit is not None:
        must.append(models.FieldCondition(key="explicit", match=models.MatchValue(value=int(row_filter.explicit[1]))))
    for name, (_, lo, hi) in zip(row_filter.range_names, row_filter.ranges, strict=False):
        key = numeric_key(name)
        if key is not None:
            must.append(models.FieldCondition(key=key, range=models.Range(
                gte=None if lo == -np.inf else float(lo), lte=None if hi == np.inf else float(hi))))
    if row_filter.moods is not None:
        must.append(models.FieldCondition(key="mood", match=models.MatchAny(any=row_filter.moods[1].tolist())))
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


class QdrantSource:
    """Candidates from the Qdrant collection that holds ``bundle`` (see the module docstring).

    ``client`` is a ``QdrantClient`` (a server by URL, or local mode) or anything with its methods.
    ``serialize`` runs one call at a time (local mode is not made for concurrent callers).
    ``search_params`` go to every search (a server's ``hnsw_ef`` or ``exact``; local mode is
    always exact and warns when given any).
    """

    pushes_filters = True

    def __init__(self, client: Any, bundle: Bundle, *, alias: str = DEFAULT_ALIAS, retry_after: float = RETRY_AFTER,
                 serialize: bool = False, search_params: models.SearchParams | None = None) -> None:
        self.client, self.bundle, self.alias = client, bundle, alias
        self.own = collection_name(bundle, alias)
        self.genre_names = tuple(bundle.tracks.genre_names)
        self.size = len(bundle.vectors)
        self.retry_after, self.search_params = retry_after, search_params
        self.collection: str | None = None  # resolved and verified
        self.error: str | None = None  # why the last attempt failed; None while healthy
        self._failed_at = -np.inf
        self._moved_to: str | None = None  # the alias's other target last logged
        self._state = threading.Lock()
        self._calls = threading.Lock() if serialize else contextlib.nullcontext()

    # -- the seam --------------------------------------------------------------------------------
    def nearest(self, vector: np.ndarray, n: int, row_filter: RowFilter | None = None) -> np.ndarray:
        collection = self._ready()
        limit = min(n, self.size)
        try:
            with self._calls:
                points = self.client.query_points(
                    collection, query=vector.astype(np.float32).tolist(),
                    query_filter=qdrant_filter(row_filter, self.genre_names), limit=limit,
                    search_params=self.search_params, with_payload=False, with_vectors=False).points
        except Exception as exc:
            raise self._failed(exc, f"search in {collection}") from None
        return np.fromiter((int(p.id) for p in points), dtype=np.int64, count=len(points))

    # -- health ----------------------------------------------------------------------------------
    def check(self) -> str | None:
        """Resolve and verify the collection now. None when healthy, else the reason (also kept in
        ``error``); the server's health loop calls this, so recovery needs no request."""
        try:
            self._resolve()
        except BackendUnavailable as exc:
            return str(exc)
        return None

    # -- internals -------------------------------------------------------------------------------
    def _ready(self) -> str:
        with self._state:
            collection, error, failed_at = self.collection, self.error, self._failed_at
        if collection is not None and error is None:
            return collection
        if error is not None and time.monotonic() - failed_at < self.retry_after:
            raise BackendUnavailable(error)  # fail fast while Qdrant is known to be down
        return self._resolve()

    def _resolve(self) -> str:
        try:
            with self._calls:
                target = alias_target(self.client, self.alias)
                if target == self.own:
                    why = collection_holds(self.client, target, self.bundle)
                elif self.client.collection_exists(self.own):
                    why = collection_holds(self.client, self.own, self.bundle)
                    if why is None and target != self._moved_to:  # once per move, not every health check
                        self._moved_to = target
                        # the alias may have moved on to a newer bundle, or back to an older one
                        log.warning("alias %s names %s, not this bundle's collection; serving this bundle's own, %s, "
                                    "until this server loads the bundle the alias names", self.alias, target, self.own)
                else:
                    why = (f"alias {self.alias!r} names {target or 'nothing'} and this bundle's collection "
                           f"{self.own} does not exist: publish the bundle (musicrec publish) or serve the "
                           "bundle the alias holds")
        except Exception as exc:
            raise self._failed(exc, "resolving the collection") from None
        if why is not None:
            raise self._failed(None, why)
        with self._state:
            if self.error is not None:
                log.warning("Qdrant is answering again: serving %s", self.own)
            self.collection, self.error = self.own, None
        return self.own

    def _failed(self, exc: BaseException | None, what: str) -> BackendUnavailable:
        if exc is not None:
            detail = " ".join(str(exc).split())[:200]
            message = (f"Qdrant unavailable at {client_address(self.client)} ({what}: {type(exc).__name__}: "
                       f"{detail}); retrying")
        else:
            message = f"Qdrant collection unusable: {what}"
        with self._state:
            if self.error != message:
                log.error("%s", message)
            self.error, self._failed_at = message, time.monotonic()
            if exc is not None or self.collection is not None:
                self.collection = None  # re-resolve on recovery: the alias may have moved
        return BackendUnavailable(message)
