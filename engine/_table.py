"""The neighbour table: each track's "more like this" ranking head, computed ahead of time.

A by-id query at the bundle's defaults (one catalog seed, no filter, the bundle's genre weight)
is the hot call. Its ranking's block 1 (engine/_ranking.py) depends only on the track, so the
build computes the head of it for every track, by the live query's own stages, and a query walks
the stored head instead of searching. ``musicrec add`` recomputes the entries an update touches
with the same function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import faiss
import numpy as np

from ._arrays import load_npz, save_npz
from ._errors import BundleError
from ._progress import Progress, Ticker
from ._ranking import SLACK, RowFilter, Scoring, Survivors

# Fetches of the live schedule (engine/_ranking.py: first fetch x 4**step) the table follows past the
# first for a track whose first fetch does not settle block 1: a song listed many times near it eats
# the slack. On the Spotify catalog 1.8% of tracks are such, and a by-id query on one searched the
# index live twice (~1 ms on a quiet core, 50x the table's answer).
DEEP_STEPS = 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class NeighbourTable:
    """Per track, the head of block 1 of its by-id ranking at the bundle's defaults (``first_blocks``).

    ``rows``/``scores`` have shape (n_tracks, width); ``lengths[i]`` is block 1's full length and
    ``consumed[i]`` the candidates looked at to fill it, -1 where the table holds no answer.
    """

    rows: np.ndarray
    scores: np.ndarray
    consumed: np.ndarray
    lengths: np.ndarray
    genre_weight: float
    block: int


# Beside the table, for `musicrec add` only (the server never reads it): each track's whole block 1,
# in cosine order (int32, n_tracks x block, -1 past a short block). An update merges new tracks into
# it instead of searching every entry again (engine/_table_update.py). Written with an exact index.
BLOCKS_FILE = "neighbour_blocks.npz"
TABLE_FILE = "neighbours.npz"


def write_table(directory: Path, table: dict[str, np.ndarray]) -> None:
    """``first_blocks``' arrays (with ``genre_weight`` and ``block``) into a bundle directory: the table,
    and its ``block_rows`` when computed into ``BLOCKS_FILE``."""
    table = dict(table)
    blocks = table.pop("block_rows", None)
    save_npz(directory / TABLE_FILE, table)
    if blocks is not None:
        save_npz(directory / BLOCKS_FILE, {"rows": blocks})


def read_blocks(path: Path, n_tracks: int, block: int) -> np.ndarray:
    """``BLOCKS_FILE`` of a bundle directory, checked to be rows of its ``n_tracks`` tracks (-1 past a
    short block): a crafted file whose checksum matches is refused here, not followed."""
    with contextlib.suppress(KeyError):
        rows = load_npz(path / BLOCKS_FILE)["rows"]
        if rows.shape == (n_tracks, block) and rows.dtype.kind == "i" and \
                (not rows.size or (rows.max() < n_tracks and rows.min() >= -1)):
            return rows
    raise BundleError(f"{path / BLOCKS_FILE}: not the table's blocks ({n_tracks} x {block} track rows); "
                      "rebuild the bundle with musicrec index")


def empty_entries(n: int, width: int, block: int | None = None) -> dict[str, np.ndarray]:
    """``first_blocks``' arrays for ``n`` tracks, every entry empty (answered live); ``block``: with
    ``block_rows`` of that width."""
    out = {"rows": np.full((n, width), -1, dtype=np.int32), "scores": np.full((n, width), -np.inf, dtype=np.float32),
           "consumed": np.full(n, -1, dtype=np.int32), "lengths": np.zeros(n, dtype=np.int32)}
    if block is not None:
        out["block_rows"] = np.full((n, block), -1, dtype=np.int32)
    return out


def exact_index(index: faiss.Index) -> bool:
    """A flat index: its k nearest are the exact top of the cosine order (the blocks file's condition)."""
    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


def first_fetch(n_tracks: int, block: int) -> int:
    """A by-id query's first fetch: its block, the slack, and the seed (its one exclusion)."""
    return min(n_tracks, block + SLACK + 1)


# FAISS searches a flat index one (query, row) pair at a time below this many queries per call (its
# ``distance_compute_blas_threshold``, 128,000 in faiss-cpu 1.15), and with one matrix product per block of
# queries above it: on the Spotify catalog (14 dims) 1.1 ms against 0.4 ms of CPU per track for its 265
# nearest, 2 threads (benchmarks/RESULTS.md, "The neighbour table's search"). Live queries take the pair path.
_BLAS_QUERIES = 20
_blas_lock = threading.Lock()


def nearest_candidates(index: faiss.Index, vectors: np.ndarray, fetch: int, *, progress: Progress | None = None,
                       by_products: bool = False) -> np.ndarray:
    """Each of ``vectors``' ``fetch`` nearest rows by ``index``, one batched search per 4,096: as a live query
    searches, or with ``by_products`` by FAISS's matrix-product path (the same rows except where float32
    rounding orders near-ties at a fetch's end otherwise: ``first_blocks`` checks). The path is a FAISS global:
    every search here holds ``_blas_lock``, and one by products puts the threshold back after it."""
    candidates = np.empty((len(vectors), fetch), dtype=np.int64)
    tick = Ticker(progress, "nearest candidates", len(vectors), unit="tracks")
    for start in range(0, len(vectors), 4096):
        queries = np.ascontiguousarray(vectors[start:start + 4096], dtype=np.float32)
        with _blas_lock:
            before = faiss.cvar.distance_compute_blas_threshold
            if by_products:
                faiss.cvar.distance_compute_blas_threshold = _BLAS_QUERIES
            try:
                _, candidates[start:start + 4096] = index.search(queries, fetch)
            finally:
                faiss.cvar.distance_compute_blas_threshold = before
        tick(start + 4096)
    return candidates


def boundary_margin(dims: int) -> float:
    """How far above the fetch's last cosine block 1's last member must be for a search by matrix products to
    hold the live search's candidates up to it: 8x the 6 roundings the argument in ``first_blocks`` adds up
    (FAISS's two ways and numpy's each within ``dims`` float32 units of the product of two unit vectors)."""
    return 8 * 6 * dims * float(np.finfo(np.float32).epsneg)


class Searched:
    """Each of ``vectors[rows]``' first fetch from ``index``, searched when asked for (a slice of rows,
    or an array of positions): ``first_blocks`` walks a chunk at a time, so the table never holds
    every track's candidates at once (int64 x 265 per track: 2.1 GB at 1M tracks, 10.6 GB at 5M).
    Asked for a slice, it starts searching the next slice of the same length in a thread (FAISS
    releases the GIL), so the search of one chunk runs while numpy walks the one before.

    On an inner-product flat index a slice is searched by matrix products (``by_products`` is True), and
    ``live(positions)`` gives those tracks' candidates as a live query's search finds them."""

    def __init__(self, index: faiss.Index, vectors: np.ndarray, fetch: int, rows: np.ndarray | None = None) -> None:
        self.index, self.vectors, self.fetch = index, vectors, fetch
        self.rows = np.arange(len(vectors)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), fetch)
        self.by_products = exact_index(index) and index.metric_type == faiss.METRIC_INNER_PRODUCT
        self._next: tuple[tuple[int, int], Future[np.ndarray]] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def _search(self, which: slice) -> np.ndarray:
        return nearest_candidates(self.index, self.vectors[self.rows[which]], self.fetch, by_products=self.by_products)

    def live(self, positions: np.ndarray) -> np.ndarray:
        """The first fetch of the tracks at ``positions`` as a live query searches it."""
        return nearest_candidates(self.index, self.vectors[self.rows[positions]], self.fetch)

    def __getitem__(self, which: slice | np.ndarray) -> np.ndarray:
        if not isinstance(which, slice):  # the few tracks first_blocks answers one by one, as live queries do
            return self.live(which)
        start, stop, _ = which.indices(len(self.rows))
        ahead, self._next = self._next, None
        found = ahead[1].result() if ahead is not None and ahead[0] == (start, stop) else self._search(which)
        if stop < len(self.rows):
            self._pool = self._pool or ThreadPoolExecutor(1, thread_name_prefix="table-search")
            following = slice(stop, min(len(self.rows), stop + (stop - start)))
            self._next = ((following.start, following.stop), self._pool.submit(self._search, following))
        elif self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        return found


def first_blocks(vectors: np.ndarray, songs: np.ndarray, candidates: np.ndarray | Searched, scoring: Scoring,
                 affinity: np.ndarray | None, block: int, width: int, rows: np.ndarray | None = None, *,
                 progress: Progress | None = None, chunk: int = 1024,
                 deeper: Callable[[np.ndarray, int], np.ndarray] | None = None,
                 blocks: bool = False, out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The table's entries: for each track, the head (``width``) of block 1 of the ranking a by-id
    query at the bundle's defaults gets.

    The live query's stages (engine/_ranking.py: exact float32 cosines, (-cosine, row) order, the
    seed and its song out, one listing per song, block 1, the blended score, a stable sort) on whole
    arrays, a chunk of tracks at a time, ~50x faster than one by one; tracks whose first fetch
    cannot settle block 1 alone go through the live objects one by one (``_one_by_one``).
    tests/engine/test_query.py and test_pipeline.py check the table answers as a live search does.

    ``candidates`` (len(rows), first fetch) holds each track's nearest rows (``nearest_candidates``, or
    ``Searched`` to search them a chunk at a time: on a flat index by matrix products, and a track whose block 1
    ends within ``boundary_margin`` of its fetch's last cosine is searched again as live queries search, or
    ``Merged`` (engine/_table_update.py), whose rows hold, padded with -1 (``padded`` on the object),
    every candidate of each track's ranking up to its block 1's last member, and perhaps some after:
    ``consumed`` then counts in the whole ranking too);
    ``affinity`` (len(rows), n_genres) their genre probabilities; ``rows`` the tracks to compute
    (default: all), every other track is marked ``consumed = -1`` (answered live). ``deeper(vectors,
    fetch)``, the same source's nearest rows at a deeper fetch (``nearest_candidates`` over the same
    index): when given, a track whose full first fetch does not settle block 1 follows the live
    schedule's next fetches (up to ``DEEP_STEPS``) as its query would, and its entry's ``consumed``
    then counts in that deeper fetch (beyond ``candidates.shape[1]``). ``blocks``: also return
    ``block_rows``, each entry's whole block 1 in cosine order (``BLOCKS_FILE``). ``out``: arrays of
    the shapes returned to write ``rows``' entries into (the others are left as they are).
    """
    n = len(vectors)
    if out is None:
        out = empty_entries(n, width, block if blocks else None)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    fetch = candidates.shape[1]
    padded = bool(getattr(candidates, "padded", False))  # -1 ends a row's list, rather than marking a short fetch
    tick = Ticker(progress, "neighbour table", len(rows), unit="tracks")
    slow = np.zeros(len(rows), dtype=bool)
    full_fetch = np.ones(len(rows), dtype=bool)  # the first fetch came back whole (no -1)
    kept: dict[int, np.ndarray] = {}  # first fetches of the tracks left to _one_by_one
    if fetch >= n or fetch < block:
        slow[:] = True
    by_products = bool(getattr(candidates, "by_products", False))
    if by_products:  # the bound holds for unit vectors (cosine indexes); scaled for longer ones
        margin = boundary_margin(vectors.shape[1]) * max(1.0, float(np.einsum("ij,ij->i", vectors, vectors).max(
            initial=0.0)))
    for start in range(0, 0 if slow.all() else len(rows), chunk):
        r = rows[start:start + chunk]
        c = np.asarray(candidates[start:start + chunk]).astype(np.int64)
        pad = c < 0 if padded else None
        bad = np.zeros(len(c), dtype=bool) if padded else (c < 0).any(axis=1)
        slow[start:start + chunk] |= bad
        full_fetch[start:start + chunk] = ~bad
        kept.update(zip((start + np.flatnonzero(bad)).tolist(), c[bad], strict=True))
        c = np.where(bad[:, None], 0, c)
        cos = (vectors[c] * vectors[r][:, None, :]).sum(axis=2, dtype=np.float32)  # as _ranking.cosines
        if pad is not None:
            c[pad], cos[pad] = 0, -np.inf  # sorted last, never kept
        c, cos = cosine_order(c, cos)
        s = songs[c]
        keep = (c != r[:, None]) & (s != songs[r][:, None])
        if pad is not None:
            keep &= cos > -np.inf
        # one listing per song, the nearest: the first kept position of each (track, song). np.nonzero
        # lists (track, position) in order, so a stable sort on track * songs + song orders by (track,
        # song, position) as a three-key lexsort would, ~6x faster.
        qi, pos = np.nonzero(keep)
        ss = s[qi, pos]
        sort = np.argsort(qi * (int(songs.max(initial=0)) + 1) + ss, kind="stable")
        qi, pos, ss = qi[sort], pos[sort], ss[sort]
        first = np.ones(len(qi), dtype=bool)
        first[1:] = (qi[1:] != qi[:-1]) | (ss[1:] != ss[:-1])
        survivor = np.zeros_like(keep)
        survivor[qi[first], pos[first]] = True
        rank = np.cumsum(survivor, axis=1)
        full = rank[:, -1] >= block
        in_block = survivor & (rank <= block)
        ok = full & ~bad
        if not ok.any():
            continue
        take = np.nonzero(in_block[ok])[1].reshape(-1, block)  # positions of block 1, in cosine order
        b_rows = np.take_along_axis(c[ok], take, axis=1)
        b_cos = np.take_along_axis(cos[ok], take, axis=1)
        if by_products:
            # Fetched by matrix products (Searched): a live query's search may end its fetch with other rows
            # where cosines tie within rounding. FAISS's two ways and the cosines here are each within d of the
            # true product (d: dims float32 units). A row outside this fetch then scores at most end + 4d by the
            # live search (end: this fetch's last cosine), a row up to block 1's last (cosine last) at least
            # last - 2d. With last - end > 6d every such row is in the live fetch too, and any row that only one
            # fetch holds sorts after it: block 1 is the live one. A track nearer the line (boundary_margin,
            # 8x that) is searched again as live queries search and answered one by one.
            near = b_cos[:, -1] - cos[ok][:, -1] <= margin
            if near.any():
                again = np.flatnonzero(ok)[near]
                slow[start + again] = True
                ok[again] = False
                take, b_rows, b_cos = take[~near], b_rows[~near], b_cos[~near]
                if not ok.any():
                    continue
        if blocks:
            out["block_rows"][r[ok]] = b_rows
        scores = b_cos
        if scoring.genre_weight > 0 and affinity is not None:
            assert scoring.agreement is not None
            w = scoring.genre_weight
            scores = (1.0 - w) * scores + w * scoring.agreement(affinity[start:start + chunk][ok], b_rows)
        scores = scores.astype(np.float32)
        if scoring.reorders:
            by = np.argsort(-scores, axis=1, kind="stable")
            b_rows, scores = np.take_along_axis(b_rows, by, axis=1), np.take_along_axis(scores, by, axis=1)
        got = min(width, block)
        dest = r[ok]
        out["rows"][dest, :got] = b_rows[:, :got]
        out["scores"][dest, :got] = scores[:, :got]
        out["consumed"][dest] = take[:, -1] + 1
        out["lengths"][dest] = block
        tick(start + chunk)
    if slow.any():  # the rare tracks the first fetch does not settle
        idx = np.flatnonzero(slow)
        # a Searched's positions give the live search's fetch (kept holds the matrix products' one)
        first = np.asarray(candidates[idx]) if slow.all() or by_products else np.stack([kept[i] for i in idx.tolist()])
        _one_by_one(vectors, songs, first, scoring, affinity[idx] if affinity is not None else None,
                    block, width, rows[idx], out)
        if slow.all():
            full_fetch = (first >= 0).all(axis=1)
    if deeper is not None and fetch < n:
        # Deeper only where the first fetch was full: a short answer (an approximate index) ends a live
        # query's walk at once, and a fetch of the whole catalog leaves nothing deeper.
        idx = np.flatnonzero((out["consumed"][rows] < 0) & full_fetch)
        for step in range(1, DEEP_STEPS + 1):
            if not len(idx):
                break
            deep = deeper(vectors[rows[idx]], min(n, fetch * 4 ** step))
            _one_by_one(vectors, songs, deep, scoring, affinity[idx] if affinity is not None else None,
                        block, width, rows[idx], out, steps=step)
            idx = idx[out["consumed"][rows[idx]] < 0]
    return out


def cosine_order(c: np.ndarray, cos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of candidates ``c`` and their cosines in the live order, (-cosine, row): what
    ``np.lexsort((c, -cos), axis=1)`` gives. A stable sort on the cosine alone is nearly free on a
    search's output (already in about that order); only rows where equal cosines leave rows out of
    ascending order are sorted again with both keys (on the 1M synthetic catalog, per 1,024
    tracks: 29 ms for the lexsort, 1 ms for the stable sort)."""
    order = np.argsort(-cos, axis=1, kind="stable")
    c, cos = np.take_along_axis(c, order, axis=1), np.take_along_axis(cos, order, axis=1)
    ties = ((cos[:, 1:] == cos[:, :-1]) & (c[:, 1:] < c[:, :-1])).any(axis=1)
    if ties.any():
        again = np.lexsort((c[ties], -cos[ties]), axis=1)
        c[ties], cos[ties] = np.take_along_axis(c[ties], again, axis=1), np.take_along_axis(cos[ties], again, axis=1)
    return c, cos


def _one_by_one(vectors: np.ndarray, songs: np.ndarray, candidates: np.ndarray, scoring: Scoring,
                affinity: np.ndarray | None, block: int, width: int, rows: np.ndarray,
                out: dict[str, np.ndarray], steps: int = 0) -> None:
    """The same entries, one track at a time through the live query's own objects (Survivors,
    Scoring.sorted_block): for the few tracks the batched stages leave (short first fetches, a
    fetch that covers the whole catalog). ``candidates`` hold each track's fetch at step ``steps`` of
    the live schedule, whose earlier fetches are their heads; a track that needs a later one is left."""
    n = len(vectors)
    for i, row in enumerate(rows.tolist()):
        fixed = _Fixed(candidates[i])
        rf = RowFilter(exclude_rows=np.array([row], np.int64), exclude_songs=songs[row:row + 1].astype(np.int64))
        survivors = Survivors(fixed, n, vectors, songs, vectors[row], rf, block)
        first = survivors.next_block()
        if first is None or survivors._step > steps or (len(first.rows) < block and n > fixed.available):
            continue  # the first fetch did not settle block 1: live queries compute it
        head, scores = scoring.sorted_block(first, affinity[i] if affinity is not None else None)
        got = min(width, len(head))
        out["rows"][row, :got], out["scores"][row, :got] = head[:got], scores[:got]
        out["consumed"][row], out["lengths"][row] = first.consumed, len(head)
        if "block_rows" in out:
            out["block_rows"][row, :len(first.rows)] = first.rows


class _Fixed:
    """A candidate source over one precomputed list (the batched search)."""

    pushes_filters = False

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.available = int((rows >= 0).sum())

    def nearest(self, vector: np.ndarray, n: int) -> np.ndarray:
        if n > len(self.rows):
            return np.full(0, -1, dtype=np.int64)  # cannot answer further: the caller checks _step
        return self.rows[:n]
