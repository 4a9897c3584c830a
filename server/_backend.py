"""Serving from Qdrant (``musicrec serve --backend qdrant``): a candidate source per loaded bundle,
and a health loop that follows the backend.

The bundle still comes from disk, verified (preprocessing, moods, classifier, track table, the
neighbour table); only the similar-track candidates come from Qdrant, from the collection that
holds this bundle (engine/qdrant/_source.py says how it is found by alias). When Qdrant cannot
answer, the server stays up: SimilarTracks calls that need a search answer UNAVAILABLE with the
reason, health says NOT_SERVING so balancers move away, and both recover on their own when
Qdrant answers again. Calls that need no search still answer: moods, playlists, genres, tracks,
and "more like this track" without filters (the bundle's neighbour table holds those).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine import Bundle, CandidateSource, CheckedSource

if TYPE_CHECKING:
    from engine.qdrant import QdrantTarget

    from ._app import RunningServer

log = logging.getLogger("musicrec.server")


@dataclasses.dataclass(frozen=True, kw_only=True)
class QdrantBackend:
    """Where the collections are (``target``: a server, or local mode on disk for tests, one machine,
    one process per path; the alias as given to ``musicrec publish``; a server's HNSW breadth, the
    fetch size always at least used) and seconds per request when the target names none."""

    target: QdrantTarget
    timeout: float = 2.0
    retry_after: float = 1.0
    client: Any = None  # an already made client (tests); else one is made from the target

    def source_factory(self) -> Callable[[Bundle], CandidateSource]:
        """One client for the server's life (made without a request, so a Qdrant that is down at
        start does not stop the server); a source per loaded bundle."""
        from qdrant_client import models

        from engine.qdrant import QdrantSource

        target = self.target
        client = self.client if self.client is not None else target.connect(default_timeout=self.timeout)
        local = target.url is None
        params = models.SearchParams(hnsw_ef=target.hnsw_ef) if target.hnsw_ef and not local else None

        def make(bundle: Bundle) -> CandidateSource:
            source = QdrantSource(client, bundle, alias=target.alias, retry_after=self.retry_after,
                                  serialize=local, search_params=params)
            source.check()  # resolve now if it can; a failure is logged, kept and retried
            return source

        return make


def watch_backend(running: RunningServer, interval: float) -> threading.Thread:
    """Every ``interval`` s: check the current bundle's source and set health SERVING or NOT_SERVING
    (until the server starts stopping, when shutdown owns health)."""

    def loop() -> None:
        last: bool | None = None
        while not running.stopping.is_set():
            rec = running.holder.current
            ok = rec is not None
            if rec is not None and isinstance(rec.source, CheckedSource):
                problem = rec.source.check()
                ok = problem is None
                if not ok and last is not False:
                    log.error("health NOT_SERVING: %s", problem, extra={"event": "backend_unavailable"})
                elif ok and last is False:
                    log.warning("health SERVING: the backend answers again", extra={"event": "backend_recovered"})
            if not running.stopping.is_set():
                running.set_serving(ok)
            last = ok
            running.stopping.wait(interval)

    thread = threading.Thread(target=loop, name="backend-health", daemon=True)
    thread.start()
    return thread
