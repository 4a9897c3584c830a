"""The neighbour table of an updated catalog (``musicrec add``): recomputed where the update reaches,
kept (renumbered) elsewhere, equal to the table a build would compute over the new catalog with the
same fitted parts (tests/engine/test_update.py, test_deep_table.py).

A track's entry (engine/_table.py) depends on its ranking's candidates up to block 1's last member
in cosine order: the seed and its song's listings, block 1's survivors, and the farther listings of
their songs (``consumed`` of them), every one at least as close as that last member. With an exact
(flat) index the build also stores each track's whole block 1 (``BLOCKS_FILE``), and then:

- an entry changes only if a new track, or a removed one, is at least as close as its block's last
  member: one matrix product of the kept tracks against the few new and removed vectors says which;
- a changed entry's new block 1 lies among its old block and the new tracks that passed its last
  member, and every candidate before the new block's last member is one of those or a listing of one
  of their songs (or of the seed's): ``Merged`` hands ``first_blocks`` exactly that set, so block 1,
  ``consumed`` and the scores come out as a search of the new catalog would give them, without one;
- the rest (new tracks, entries whose block lost a removed track, entries the table did not hold or
  that came from a deeper fetch, which a build follows) are searched as the build searches them.

On the Spotify catalog 1% of new tracks reaches ~90% of the entries (block 1 holds 200 tracks), and a
k-nearest search of every one of them cost most of an update (benchmarks/update_cost.py). Without the
blocks file (an approximate index, or a bundle built before it was written) every kept track's first
fetch is searched to find the entries the update reaches, and those are searched again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss
import numpy as np

from ._ranking import Scoring
from ._table import NeighbourTable, Searched, empty_entries, exact_index, first_blocks, first_fetch, nearest_candidates

# Matrix products (BLAS) and the table's elementwise float32 sums round differently (~1e-7 on unit
# vectors): a new track this much below a block's last cosine still counts as touching it (a superset:
# recomputing an entry that did not change gives the same entry).
MARGIN = 1e-5


def updated_table(old: NeighbourTable, old_blocks: np.ndarray | None, keep: np.ndarray, index: faiss.Index,
                  vectors: np.ndarray, n_kept: int, songs: np.ndarray, scoring: Scoring, proba: np.ndarray | None,
                  removed_vectors: np.ndarray, say: Callable[[str], None],
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The new version's table, with ``block_rows`` (its blocks file) when ``old_blocks`` is given and the
    index is exact. ``keep`` (old tracks) marks the kept ones, which come first in ``vectors`` in their
    old order (``n_kept`` of them), the new tracks after; ``proba`` (n, n_genres) the new version's
    per-track genre probabilities (None when the table's genre weight is 0)."""
    n = len(vectors)
    block, width = old.block, old.rows.shape[1]
    fetch = first_fetch(n, block)
    new_row = np.full(len(keep) + 1, -1, dtype=np.int64)  # old row -> new row; index -1 (no row) -> -1
    new_row[np.flatnonzero(keep)] = np.arange(n_kept)
    old_of = np.flatnonzero(keep)
    merging = old_blocks is not None and exact_index(index) and fetch < n
    merged = np.empty(0, dtype=np.int64)
    out = empty_entries(n, width, block if merging else None)
    if merging:
        assert old_blocks is not None
        blocks = new_row[old_blocks[old_of]]  # a removed member -> -1
        consumed = old.consumed[old_of]
        known = (consumed > 0) & (old.lengths[old_of] == block) & (blocks[:, -1] >= 0)
        at = np.flatnonzero(known)
        threshold = np.full(n_kept, np.inf, dtype=np.float32)
        threshold[at] = (vectors[at] * vectors[blocks[at, -1]]).sum(axis=1, dtype=np.float32) - MARGIN
        hit_rows, hit_new = [], []  # (kept track, new track) pairs: the new track passed the block's last
        by_removal = np.zeros(n_kept, dtype=bool)
        gone = np.ascontiguousarray(removed_vectors, dtype=np.float32)
        for start in range(0, n_kept, 8192):
            stop = min(n_kept, start + 8192)
            r, c = np.nonzero(vectors[start:stop] @ vectors[n_kept:].T >= threshold[start:stop, None])
            hit_rows.append(r + start)
            hit_new.append(c + n_kept)
            if len(gone):
                by_removal[start:stop] = (vectors[start:stop] @ gone.T >= threshold[start:stop, None]).any(axis=1)
        pairs = (np.concatenate(hit_rows), np.concatenate(hit_new))
        touched = ~known | by_removal
        touched[pairs[0]] = True
        # a block that lost a member, or came from a deeper fetch: searched, as a build would
        merged = np.flatnonzero(touched & known & ~by_removal & (consumed <= fetch))

        candidates = Merged(vectors, songs, merged, blocks[merged], threshold[merged], *pairs, fetch)

        def merge(part: slice) -> None:
            rows = merged[part]
            first_blocks(vectors, songs, candidates.part(part), scoring, proba[rows] if proba is not None else None,
                         block, width, rows, blocks=True, out=out)

        # two halves on two threads: the walk is numpy on whole arrays, which releases the GIL
        half = (len(merged) + 1) // 2
        with ThreadPoolExecutor(2, thread_name_prefix="table-merge") as pool:
            list(pool.map(merge, (slice(0, half), slice(half, len(merged)))))
        # a block that now reaches past the first fetch: searched below, to follow the deeper fetches
        merged = merged[(out["consumed"][merged] > 0) & (out["consumed"][merged] <= fetch)]
    else:
        touched = _touched_by_search(old, keep, index, vectors, n_kept, fetch, removed_vectors)
    is_searched = np.zeros(n, dtype=bool)
    is_searched[:n_kept] = touched
    is_searched[n_kept:] = True
    is_searched[merged] = False
    searched = np.flatnonzero(is_searched)
    say(f"neighbour table: {len(merged) + len(searched):,} of {n:,} tracks recomputed ({n - n_kept:,} new; "
        f"{len(merged):,} merged with the new tracks, {len(searched):,} searched)")
    if len(searched):
        first_blocks(vectors, songs, Searched(index, vectors, fetch, searched), scoring,
                     proba[searched] if proba is not None else None, block, width, searched,
                     deeper=lambda v, deep: nearest_candidates(index, v, deep), blocks=merging, out=out)
    # untouched tracks: their old entries, renumbered (the tracks their entry depends on are the same)
    untouched = np.flatnonzero(~touched)
    src = old_of[untouched]
    out["rows"][untouched] = new_row[old.rows[src]].astype(np.int32)
    out["scores"][untouched] = old.scores[src]
    out["consumed"][untouched] = old.consumed[src]
    out["lengths"][untouched] = old.lengths[src]
    if merging:
        assert old_blocks is not None
        out["block_rows"][untouched] = new_row[old_blocks[src]].astype(np.int32)
    table = {**out, "genre_weight": np.asarray(old.genre_weight, dtype=np.float64),
             "block": np.asarray(block, dtype=np.int64)}
    return table, {"recomputed": len(merged) + len(searched), "recomputed_by_search": len(searched),
                   "recomputed_by_merge": len(merged), "renumbered": len(untouched), "tracks": n}


def _touched_by_search(old: NeighbourTable, keep: np.ndarray, index: faiss.Index, vectors: np.ndarray,
                       n_kept: int, fetch: int, removed_vectors: np.ndarray) -> np.ndarray:
    """Kept tracks whose entry an update may change, found by searching every kept track's first fetch in
    the new index (no ``last`` stored, or an approximate index, whose fetch is not a cosine range):
    a new track before the ``consumed``-th old candidate, a removed track at least as close as it, an
    entry the table did not hold or that came from a deeper fetch."""
    consumed = old.consumed[np.flatnonzero(keep)].astype(np.int64)
    candidates = nearest_candidates(index, vectors[:n_kept], fetch)
    is_new = candidates >= n_kept
    old_seen = np.cumsum(~is_new, axis=1)  # old candidates up to and including each position
    touched = (consumed < 0) | (consumed > fetch) | (is_new & (old_seen <= consumed[:, None])).any(axis=1)
    if len(removed_vectors):
        # a removed track was among the first `consumed` if it is at least as close as the consumed-th old
        # candidate now (which lies at or beyond the old one: a superset)
        at = np.minimum(np.argmax(old_seen >= np.maximum(consumed, 1)[:, None], axis=1), fetch - 1)
        kth = (vectors[:n_kept] * vectors[candidates[np.arange(n_kept), at]]).sum(axis=1)
        for start in range(0, n_kept, 8192):
            stop = min(n_kept, start + 8192)
            touched[start:stop] |= (vectors[start:stop] @ removed_vectors.T >= kth[start:stop, None] - 1e-6).any(axis=1)
    return touched


class Merged:
    """For ``first_blocks``: the candidates each of ``rows``' new block 1 is decided by, padded with -1
    (``padded``), unordered: every listing at least as close as its old block's last member (cosine
    ``thresholds``, lowered by ``MARGIN``) of the songs of its old block (``blocks``), of the new tracks
    that passed that member (``pair_rows``/``pair_new``: kept track, new track) and of its own song.

    The new block is the first ``block`` songs among the old block's and those new tracks' (no other
    song can pass the old last member), and every candidate before its last member is the seed, a
    survivor or a farther listing of one of those songs: all in this set, and nothing in the set comes
    before that member that is not in the ranking before it, so positions count as in a search.

    One difference in kind: where tracks with equal cosines (identical vectors: one recording listed as
    several songs) straddle the first fetch's end, a search keeps the ones FAISS picks and this set
    orders them by row. On the Spotify catalog (1% added) that moved the stored block's last member
    of 5 of 77,520 merged tracks and no served entry; entries from deeper fetches, where such runs are
    what made them deep, are searched (merging them changed 8 served entries)."""

    padded = True

    def __init__(self, vectors: np.ndarray, songs: np.ndarray, rows: np.ndarray, blocks: np.ndarray,
                 thresholds: np.ndarray, pair_rows: np.ndarray, pair_new: np.ndarray, fetch: int) -> None:
        self.vectors, self.rows, self.blocks, self.thresholds = vectors, rows, blocks, thresholds
        self.shape = (len(rows), fetch)
        order = np.argsort(pair_rows, kind="stable")
        self.pair_rows, self.pair_new = pair_rows[order], pair_new[order]
        _, self.song = np.unique(songs, return_inverse=True)  # songs as 0..n_songs-1
        self.n_songs = int(self.song.max(initial=0)) + 1
        self.listings = np.argsort(self.song, kind="stable")  # tracks grouped by song: song s's are
        self.listed = np.concatenate([[0], np.cumsum(np.bincount(self.song, minlength=self.n_songs))])  # [s]:[s+1]

    def part(self, which: slice) -> Merged:
        """The same candidates for ``rows[which]`` only (the song grouping shared, not recomputed)."""
        out = copy.copy(self)
        out.rows, out.blocks, out.thresholds = self.rows[which], self.blocks[which], self.thresholds[which]
        out.shape = (len(out.rows), self.shape[1])
        return out

    def __getitem__(self, which: slice) -> np.ndarray:
        start, stop, _ = which.indices(len(self.rows))
        r = self.rows[start:stop]
        local = np.arange(len(r))
        lo, hi = np.searchsorted(self.pair_rows, [r[0], r[-1] + 1]) if len(r) else (0, 0)
        new_at = np.searchsorted(r, self.pair_rows[lo:hi])
        keep_new = r[np.minimum(new_at, len(r) - 1)] == self.pair_rows[lo:hi]  # pairs of rows in this chunk
        owner = np.concatenate([np.repeat(local, self.blocks.shape[1]), new_at[keep_new], local])
        member = np.concatenate([self.blocks[start:stop].ravel(), self.pair_new[lo:hi][keep_new], r])
        # each (track, song) once (a sort: np.unique's hashing was 10x slower here), then every listing of the song
        key = np.sort(owner * self.n_songs + self.song[member])
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
        owner, song = np.divmod(key, self.n_songs)
        first = self.listed[song]
        count = self.listed[song + 1] - first
        owner = np.repeat(owner, count)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        track = self.listings[np.repeat(first, count) + offset]
        near = (self.vectors[track] * self.vectors[r[owner]]).sum(axis=1, dtype=np.float32) \
            >= self.thresholds[start:stop][owner]
        owner, track = owner[near], track[near]
        per_row = np.bincount(owner, minlength=len(r))
        padded = np.full((len(r), int(per_row.max(initial=0))), -1, dtype=np.int64)
        padded[owner, np.arange(len(owner)) - np.repeat(np.cumsum(per_row) - per_row, per_row)] = track
        return padded
