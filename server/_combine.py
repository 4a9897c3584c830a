"""Concurrent SimilarTracks calls about new tracks, answered together.

A query about a track the catalog does not hold (raw feature values or a vector, no filter) costs the server
its whole pipeline, most of it fixed per call; ranked together by the numpy code (engine/_similar_many.py) a
batch costs much less per query. With the compiled kernels on, the engine ranks a batch's queries one at a
time, which is cheaper still, and the combiner is then one thread ranking for the others. Handler threads
that arrive with such queries while another batch is being ranked wait together; when it is done, one of
them ranks every query waiting for the same bundle, its own included, and hands each caller its own answer
or error. No thread leads more than the one batch that holds its own
query, and only queries of bounded cost (``Recommender.together``: a page within block 1, no filter, targets
or diversity) come here, so no call waits behind a slow one. The batch size follows the load: one caller
alone is ranked at once, as before. benchmarks/RESULTS.md, "Concurrent new-track calls together", has the
measurements that set the handler threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine import Deadline, DeadlineExceeded, Recommender, SimilarQuery, SimilarResult, deadline_passed

MAX_TOGETHER = 64  # queries ranked in one pass: a batch's cost grows with it, and so does its callers' wait


class _Waiting:
    __slots__ = ("answer", "deadline", "done", "query", "rec")

    def __init__(self, rec: Recommender, query: SimilarQuery, deadline: float | Deadline | None) -> None:
        self.rec, self.query, self.deadline = rec, query, deadline
        self.answer: SimilarResult | Exception | None = None
        self.done = False


class Combiner:
    """Ranks the ``together`` queries of concurrent calls in batches (see the module docstring)."""

    def __init__(self, *, on_batch: Callable[[int], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._busy = False
        self._on_batch = on_batch  # told each batch's size (tests, metrics)

    def similar(self, rec: Recommender, query: SimilarQuery, deadline: float | Deadline | None = None) -> SimilarResult:
        mine = _Waiting(rec, query, deadline)
        with self._cond:
            self._waiting.append(mine)
            while self._busy and not mine.done:
                self._cond.wait()
            if not mine.done:  # nobody is ranking: this thread ranks what waits, its own query first
                self._busy = True
                batch = [w for w in self._waiting if w.rec is rec][:MAX_TOGETHER - 1]
                batch = [mine, *(w for w in batch if w is not mine)]
                taken = set(map(id, batch))
                self._waiting = [w for w in self._waiting if id(w) not in taken]
        if not mine.done:
            try:
                self._rank(rec, batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        answer = mine.answer
        if isinstance(answer, Exception):
            raise answer
        assert answer is not None
        return answer

    def _rank(self, rec: Recommender, batch: list[_Waiting]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(batch))
        now = time.monotonic()
        live = []
        for w in batch:
            if deadline_passed(w.deadline, now):
                w.answer = DeadlineExceeded("deadline exceeded while waiting to be ranked")
            else:
                live.append(w)
        try:
            answers: list[SimilarResult | Exception] = (
                rec.similar_many([w.query for w in live]) if len(live) > 1
                else [rec.similar(w.query) for w in live])
        except Exception as exc:  # each caller of the batch gets it (similar_many returns per-query errors)
            answers = [exc] * len(live)
        for w, a in zip(live, answers, strict=True):
            w.answer = a
        for w in batch:
            w.done = True
