"""The stages of one similar-track ranking: survivors in blocks -> score -> select.

The ranking of a query is defined without reference to ``k`` or ``offset``, so a page is a slice
of it and pages never repeat or skip a track:

1. **Survivors.** The catalog in descending cosine to the query vector (ties: lower row first),
   minus the seeds' own songs, excluded ids and tracks the filter rejects, one listing per song
   (the nearest). A candidate source supplies them in fetches of a fixed schedule (``first_fetch
   * 4**j`` rows), so even an approximate index hands out the same survivors whatever the page.
2. **Blocks.** Survivors are cut into consecutive blocks of ``block`` tracks (the bundle's
   ``[similar] candidates``). Each block is scored on its own (cosine blended with genre
   agreement and targets) and sorted by that score, so the scores re-order tracks of similar
   audio closeness and never lift a far track above a near one by more than a block.
3. **Select.** A greedy walk over the sorted blocks applies the artist cap and, with
   ``diversity``, maximal marginal relevance (MMR) within the current block against everything
   chosen so far. The ranking is the sequence this walk emits; a page is ``[offset:offset+k]``.

With genre weight 0 and no targets, the blocks are in cosine order already: the ranking is exact
cosine order. The bundle's neighbour table (engine/_table.py) stores, per track, the head of
block 1 for a by-id query at the bundle's defaults, computed at build time by these stages, so a
hot query walks it instead of recomputing it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from . import _compiled
from ._candidates import CandidateSource, has_scored
from ._errors import DeadlineExceeded

SLACK = 64  # extra rows in the first fetch: room for the seed's other listings and repeated songs
MMR_DEADLINE_EVERY = 64  # picks between deadline checks in the MMR loop


# Not frozen, though nothing changes it: it is built for every query, and a frozen dataclass's
# __init__ costs ~0.25 us more per field (benchmarks/servicer_cost.py measures the request).
@dataclasses.dataclass(kw_only=True)
class RowFilter:
    """Which candidate rows may appear: the seeds' songs and excluded rows never do; the rest
    pass the user's filter. Arrays are the catalog's columns, indexed by row."""

    exclude_rows: np.ndarray  # sorted int64
    exclude_songs: np.ndarray  # sorted int64
    include_codes: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, np.int64))
    exclude_codes: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, np.int64))
    genre_matrix: np.ndarray | None = None
    explicit: tuple[np.ndarray, int] | None = None  # (flag column int8, wanted 0/1)
    ranges: Sequence[tuple[np.ndarray, float, float]] = ()
    range_names: Sequence[str] = ()  # the column of each range, for sources that filter natively
    moods: tuple[np.ndarray, np.ndarray] | None = None  # (labels per row, allowed ids)

    @property
    def user_filtered(self) -> bool:
        """Whether anything beyond the seeds' own exclusion applies."""
        return bool(self.include_codes.size or self.exclude_codes.size or self.explicit is not None
                    or self.ranges or self.moods is not None)

    def mask(self, rows: np.ndarray, songs: np.ndarray) -> np.ndarray:
        keep = np.ones(len(rows), dtype=bool)
        if self.exclude_rows.size:
            keep &= ~np.isin(rows, self.exclude_rows)
        if self.exclude_songs.size:
            keep &= ~np.isin(songs, self.exclude_songs)  # the seed under another id is still the seed
        if self.include_codes.size:
            assert self.genre_matrix is not None
            keep &= self.genre_matrix[np.ix_(rows, self.include_codes)].any(axis=1)
        if self.exclude_codes.size:
            assert self.genre_matrix is not None
            keep &= ~self.genre_matrix[np.ix_(rows, self.exclude_codes)].any(axis=1)
        if self.explicit is not None:
            flags, wanted = self.explicit
            keep &= flags[rows] == wanted  # an unknown flag (-1) matches neither
        for values, lo, hi in self.ranges:
            v = values[rows]
            keep &= (v >= lo) & (v <= hi)
        if self.moods is not None:
            labels, allowed = self.moods
            keep &= np.isin(labels[rows], allowed)
        return keep


@dataclasses.dataclass(frozen=True)
class Block:
    rows: np.ndarray  # survivors, cosine order
    cosine: np.ndarray  # float32
    consumed: int  # candidates looked at (in cosine order) up to this block's last survivor


def cosines(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Exact cosine of ``query`` to ``vectors[rows]``, float32, computed the same way for every
    source and at build time (so the neighbour table equals a live search bit for bit)."""
    # add.reduce: the sums of .sum(axis=1, dtype=np.float32), which the build's batched form computes,
    # without its wrapper. The gather stays an index, not ``take``: with ``serve --processes`` the vectors
    # are the flat index's shared pages, not 4-byte aligned, and ``take`` on them cost 186 us against
    # ~6 us for ``vectors[rows]``.
    return np.add.reduce(vectors[rows] * query, axis=1, dtype=np.float32)


class Survivors:
    """Hands out the survivors of one query in blocks, nearest first (stage 1 and 2 above)."""

    def __init__(self, source: CandidateSource, size: int, vectors: np.ndarray, songs: np.ndarray,
                 query: np.ndarray, row_filter: RowFilter, block: int, *, then: CandidateSource | None = None) -> None:
        """``then``: where the ranking goes on when ``source`` (an approximate index's probed lists) holds
        fewer tracks than a fetch asks for: the next fetches search it, without the songs handed out."""
        self.source, self.size, self.vectors, self.songs = source, size, vectors, songs
        self.then = then
        self.query, self.filter, self.block = query, row_filter, block
        self.first_fetch = block + SLACK + len(row_filter.exclude_rows)
        self._step = 0
        self._rows: np.ndarray | None = None  # the current fetch, canonical cosine order
        self._cos = np.empty(0, np.float32)
        self._order = np.empty(0, np.int64)  # positions of survivors in the current fetch
        self._next = 0
        self._complete = False
        self._used: list[np.ndarray] = []  # songs handed out in earlier blocks

    def fetch_size(self, step: int) -> int:
        return min(self.size, self.first_fetch * 4 ** step)

    def _fetch(self) -> None:
        n = self.fetch_size(self._step)
        f = self.filter
        if has_scored(self.source):  # rows already in canonical order with their cosines (ProbedSource)
            rows, cos = self.source.scored(self.query, n)
            self._complete = n >= self.size or len(rows) < n
            if len(rows) < n and self.then is not None:  # the probed lists are used up (a fetch of the whole too)
                self.source, self.then, self._complete = self.then, None, False
            self._next = 0
            if _compiled.active() and not (self._used or f.exclude_rows.size or f.exclude_songs.size
                                           or f.user_filtered):
                self._rows, self._cos = rows, cos
                self._order = _compiled.kernels().first_listings(rows, self.songs)
                return
            self._keep(rows, cos)
            return
        if self.source.pushes_filters:  # a vector database filters natively
            rows = self.source.nearest(self.query, n, self.filter)
        else:
            rows = self.source.nearest(self.query, n)
        if _compiled.active() and not (self._used or f.exclude_rows.size or f.exclude_songs.size or f.user_filtered):
            # the same rows, cosines and survivors as below, in one compiled call (engine/_compiled.py)
            self._rows, self._cos, self._order = _compiled.kernels().ordered_fetch(rows, self.vectors, self.query,
                                                                                  self.songs)
            self._complete = n >= self.size or len(self._rows) < n
            self._next = 0
            return
        rows = rows[rows >= 0].astype(np.int64)
        self._complete = n >= self.size or len(rows) < n  # the source has nothing further
        cos = cosines(self.vectors, rows, self.query)
        order = np.lexsort((rows, -cos))
        self._keep(rows[order], cos[order])

    def _keep(self, rows: np.ndarray, cos: np.ndarray) -> None:
        """The fetch's rows and cosines, in canonical order, and its survivors: filtered, and each
        song's nearest listing, none handed out before."""
        self._rows, self._cos = rows, cos
        songs = self.songs[self._rows]
        keep = self.filter.mask(self._rows, songs)
        if self._used:
            keep &= ~np.isin(songs, np.concatenate(self._used))
        positions = np.flatnonzero(keep)
        self._order = positions[np.sort(_first_of_each(songs[positions]))]  # one listing per song: the nearest
        self._next = 0

    def next_block(self) -> Block | None:
        """The next block of survivors, or None when the source has no more."""
        while True:
            if self._rows is None:
                self._fetch()
            available = len(self._order) - self._next
            if available >= self.block or self._complete:
                take = self._order[self._next:self._next + self.block]
                if not len(take):
                    return None
                self._next += len(take)
                assert self._rows is not None
                rows = self._rows[take]
                self._used.append(self.songs[rows])
                return Block(rows=rows, cosine=self._cos[take], consumed=int(take[-1]) + 1)
            self._step += 1  # not enough survivors left in this fetch: the next fetch of the schedule
            self._rows = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scoring:
    """Stage 2's score: ``(1-g)*cosine + g*agreement``, then ``(1-t)*that + t*closeness``."""

    genre_weight: float = 0.0
    agreement: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None  # (affinity, rows) -> agreement
    targets: Sequence[tuple[np.ndarray, float, float]] = ()  # (column, target, spread)
    target_weight: float = 0.0

    @property
    def reorders(self) -> bool:
        return self.genre_weight > 0 or bool(self.targets)

    def sorted_block(self, block: Block, affinity: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The block's rows and scores, best first (ties keep cosine order)."""
        scores = block.cosine
        codes = getattr(self.agreement, "codes", None)  # GenreAgreement's, for the compiled form
        if (_compiled.active() and self.genre_weight > 0 and affinity is not None and affinity.ndim == 1
                and affinity.dtype == np.float32 and not self.targets and codes is not None):
            kernels = _compiled.kernels()
            keys, scores = kernels.score_block(block.rows, block.cosine, affinity, codes, self.agreement.n_genres,
                                               self.genre_weight)
            keys.sort()  # numpy's sort, ~3x faster than numba's
            return kernels.in_key_order(keys, block.rows, scores)
        if self.genre_weight > 0 and affinity is not None:
            assert self.agreement is not None
            w = self.genre_weight
            scores = (1.0 - w) * scores + w * self.agreement(affinity, block.rows)
        if self.targets:
            miss = np.zeros(len(block.rows))
            for values, target, spread in self.targets:
                miss += np.minimum(1.0, np.abs(values[block.rows] - target) / spread)
            t = self.target_weight
            scores = (1 - t) * scores + t * (1.0 - miss / len(self.targets))
        scores = scores.astype(np.float32)
        if not self.reorders:
            return block.rows, scores
        order = np.argsort(-scores, kind="stable")
        return block.rows[order], scores[order]


class Selector:
    """Stage 3: the greedy walk (artist cap, MMR) that emits the ranking until ``need`` tracks."""

    def __init__(self, *, need: int, cap: int, diversity: float, artists: Sequence[tuple[str, ...]],
                 vectors: np.ndarray, deadline: float | Deadline | None) -> None:
        self.need, self.cap, self.diversity = need, cap, diversity
        self.artists, self.vectors, self.deadline = artists, vectors, deadline
        self.rows: list[int] = []
        self.scores: list[float] = []
        self.capped = 0
        self._counts: dict[str, int] = {}

    @property
    def done(self) -> bool:
        return len(self.rows) >= self.need

    def _allowed(self, row: int) -> bool:
        cap = self.cap
        return not cap or all(self._counts.get(a, 0) < cap for a in self.artists[row])

    def _take(self, row: int, score: float) -> None:
        self.rows.append(row)
        self.scores.append(score)
        if self.cap:
            for a in self.artists[row]:
                self._counts[a] = self._counts.get(a, 0) + 1

    def feed(self, rows: np.ndarray, scores: np.ndarray) -> None:
        """Walk one sorted block (or the head of one) until ``need`` is reached."""
        check_deadline(self.deadline)
        if self.diversity > 0:
            self._feed_mmr(rows, scores)
            return
        room = self.need - len(self.rows)
        if room <= 0:
            return
        if not self.cap:  # nothing to skip: the walk is a slice
            self.rows += rows[:room].tolist()
            self.scores += scores[:room].tolist()
            return
        out_rows, need = self.rows, self.need
        for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
            if len(out_rows) >= need:
                return
            if self._allowed(row):
                self._take(row, score)
            else:
                self.capped += 1

    def _feed_mmr(self, rows: np.ndarray, scores: np.ndarray) -> None:
        lam = self.diversity
        pool = self.vectors[rows]
        if self.rows:  # redundancy against everything chosen in earlier blocks
            max_sim = (pool @ self.vectors[self.rows].T).max(axis=1).astype(np.float64)
        else:
            max_sim = np.zeros(len(rows))
        relevance = scores.astype(np.float64)
        available = np.ones(len(rows), dtype=bool)
        picks = 0
        while not self.done and available.any():
            mmr = np.where(available, (1 - lam) * relevance - lam * max_sim, -np.inf)
            pos = int(np.argmax(mmr))
            available[pos] = False
            picks += 1
            if picks % MMR_DEADLINE_EVERY == 0:
                check_deadline(self.deadline)
            row = int(rows[pos])
            if not self._allowed(row):
                self.capped += 1
                continue
            self._take(row, float(scores[pos]))
            max_sim = np.maximum(max_sim, pool @ pool[pos])


def _first_of_each(values: np.ndarray) -> np.ndarray:
    """The position of each distinct value's first occurrence (``np.unique(values,
    return_index=True)[1]``, without its per-call overhead: this runs on every live query)."""
    perm = values.argsort(kind="stable")
    ordered = values[perm]
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return perm[first]


class Deadline:
    """When a ranking is to stop: at ``at`` (a ``time.monotonic()`` value; None: no time limit), or at
    once after :meth:`end` (a server ends it when its client cancels the call). Every place that takes
    a deadline takes a plain ``time.monotonic()`` float too."""

    __slots__ = ("at", "ended")

    def __init__(self, at: float | None = None) -> None:
        self.at, self.ended = at, False

    def end(self) -> None:
        self.ended = True


def deadline_passed(deadline: float | Deadline | None, now: float | None = None) -> bool:
    """Whether ``deadline`` (a ``time.monotonic()`` float, a :class:`Deadline` or None) has passed."""
    if deadline is None:
        return False
    if isinstance(deadline, Deadline):
        if deadline.ended:
            return True
        if deadline.at is None:
            return False
        deadline = deadline.at
    return (time.monotonic() if now is None else now) > deadline


def check_deadline(deadline: float | Deadline | None) -> None:
    if deadline_passed(deadline):
        raise DeadlineExceeded("deadline exceeded while ranking; partial work was discarded")
