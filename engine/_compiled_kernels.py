"""The compiled kernels of engine/_compiled.py (numba): imported only when they are activated, so
importing the engine never imports numba. Each is the numpy code's arithmetic in the numpy code's
order; engine/_compiled.py says how, tests/engine/test_compiled.py checks it."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit


@njit(cache=True)
def row_sum(p: np.ndarray, zero: Any) -> Any:
    """``np.add.reduce`` of a contiguous row: ``zero`` (the sum's type) plus numpy's pairwise sum
    (rows under 8 left to right; longer rows in eight running sums, then the tail; numpy's
    ``pairwise_sum`` for rows of up to 128, which covers every row here)."""
    n = p.shape[0]
    if n < 8:
        res = zero
        for i in range(n):
            res += p[i]
        return zero + res
    r0, r1, r2, r3, r4, r5, r6, r7 = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
    i = 8
    whole = n - n % 8
    while i < whole:
        r0 += p[i]
        r1 += p[i + 1]
        r2 += p[i + 2]
        r3 += p[i + 3]
        r4 += p[i + 4]
        r5 += p[i + 5]
        r6 += p[i + 6]
        r7 += p[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += p[i]
        i += 1
    return zero + res


@njit(cache=True)
def descending_keys(values: np.ndarray, ties: Any = None) -> np.ndarray:
    """Unique uint64 keys whose ascending order is ``values`` (float32) descending, equal values by
    ``ties`` (non-negative ints under 2**32; default their positions): the high half is -value's
    bits made to sort as unsigned integers (-0.0 counted as 0.0, as comparisons count it), the low
    half the tie-breaker. One plain sort of these is a stable sort by -value."""
    n = values.shape[0]
    bits = (-(values + np.float32(0.0))).view(np.uint32)
    keys = np.empty(n, np.uint64)
    for i in range(n):
        b = np.uint64(bits[i])
        b = b ^ np.uint64(0xFFFFFFFF) if b & np.uint64(0x80000000) else b | np.uint64(0x80000000)
        low = np.uint64(i) if ties is None else np.uint64(ties[i])
        keys[i] = (b << np.uint64(32)) | low
    return keys


@njit(cache=True)
def seed_row(raw: np.ndarray, same_src: np.ndarray, same_dst: np.ndarray, logs: np.ndarray, log_dst: np.ndarray,
             sines: np.ndarray, sin_dst: np.ndarray, cosines: np.ndarray, cos_dst: np.ndarray, width: int,
             mean: np.ndarray, scale: np.ndarray) -> Any:
    """``Preprocessor.transform_features`` of one finite raw row, its float32 cast (the classifier's
    inputs) and whether that is finite, and the standardized row ``(t - mean) / scale``. The row's
    log1p, sin and cos come in worked out by numpy (``Preprocessor.seed_row_arrays``): with AVX-512, numpy's
    own log1p loop differs from the C library's by an ulp on some values."""
    t = np.empty(width)
    for i in range(same_src.shape[0]):
        t[same_dst[i]] = raw[same_src[i]]
    for i in range(log_dst.shape[0]):
        t[log_dst[i]] = logs[i]
    for i in range(sin_dst.shape[0]):
        t[sin_dst[i]] = sines[i]
        t[cos_dst[i]] = cosines[i]
    inputs = np.empty(width, np.float32)
    z = np.empty(width)
    finite = True
    for j in range(width):
        inputs[j] = np.float32(t[j])
        if not np.isfinite(inputs[j]):
            finite = False
        z[j] = (t[j] - mean[j]) / scale[j]
    return inputs, z, finite


@njit(cache=True)
def unit_vector(x: np.ndarray) -> Any:
    """``l2_normalize`` of one float64 row (engine/_preprocess.py, ``unit_rows``): divided by its
    largest magnitude, then by its norm, cast to float32; a zero, inf or NaN row gives zeros.
    Returns the vector and whether any of it is non-zero."""
    d = x.shape[0]
    out = np.zeros(d, np.float32)
    largest = 0.0
    for j in range(d):
        a = abs(x[j])
        if a > largest or np.isnan(a):
            largest = a
    if not 0.0 < largest < np.inf:
        return out, False
    y = np.empty(d)
    squares = np.empty(d)
    for j in range(d):
        y[j] = x[j] / largest
        squares[j] = y[j] * y[j]
    norm = np.sqrt(row_sum(squares, 0.0))
    nonzero = False
    for j in range(d):
        out[j] = np.float32(y[j] / norm)
        if out[j] != 0:
            nonzero = True
    return out, nonzero


@njit(cache=True)
def ordered_fetch(fetched: np.ndarray, vectors: np.ndarray, query: np.ndarray, songs: np.ndarray) -> Any:
    """``Survivors._fetch`` with nothing excluded or filtered (engine/_ranking.py): the fetched rows
    (-1s dropped) in canonical order (cosine descending, then row), their float32 cosines, and
    the positions of each song's nearest listing, ascending."""
    n = 0
    for i in range(fetched.shape[0]):
        if fetched[i] >= 0:
            n += 1
    rows = np.empty(n, np.int64)
    n = 0
    for i in range(fetched.shape[0]):
        if fetched[i] >= 0:
            rows[n] = fetched[i]
            n += 1
    d = query.shape[0]
    cos = np.empty(n, np.float32)
    products = np.empty(d, np.float32)
    for i in range(n):
        v = vectors[rows[i]]
        for t in range(d):
            products[t] = v[t] * query[t]
        cos[i] = row_sum(products, np.float32(0.0))
    # np.lexsort((rows, -cos)): one sort of unique keys, cosine descending, then row
    order = np.argsort(descending_keys(cos, rows))
    rows, cos = rows[order], cos[order]
    return rows, cos, first_listings(rows, songs)


@njit(cache=True)
def first_listings(rows: np.ndarray, songs: np.ndarray) -> np.ndarray:
    """The positions in ``rows`` (canonical order) of each song's nearest listing, ascending: the
    positions whose song no earlier position has, found with a small open-addressing set of the
    songs seen (no sort: numba's sorts cost ~10 us for a few hundred keys). Song numbers are
    non-negative (-1 marks an empty slot); numbers equal modulo the set's size share a probe chain,
    which costs time, never a wrong answer (a catalog's songs are numbered 0, 1, 2, ...)."""
    n = rows.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    seen = np.full(size, -1, np.int64)
    positions = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        song = songs[rows[i]]
        slot = (song * 0x9E3779B1) & (size - 1)
        while seen[slot] != -1 and seen[slot] != song:
            slot = (slot + 1) & (size - 1)
        if seen[slot] == -1:
            seen[slot] = song
            positions[m] = i
            m += 1
    return positions[:m]


@njit(cache=True)
def probed_keys(centroid_block: np.ndarray, offsets: np.ndarray, list_rows: np.ndarray, blocks: np.ndarray,
               query: np.ndarray, nprobe: int, n: int) -> Any:
    """``ProbedSource.scored`` (engine/_candidates.py) up to the order: the ``nprobe`` lists whose
    centroids are nearest (cosine descending, then list), and of their tracks the ``n`` nearest
    (cosine descending, then row) as ``descending_keys``, in no order (numpy's sort orders them,
    ~3x faster than numba's; ``split_keys`` reads them). Every cosine is ``cosines``' float32
    pairwise sum (engine/_ranking.py), computed across many tracks at once in the same order of
    sums: ``blocks`` holds each list's tracks as one contiguous block, dimension by dimension
    (``ProbedSource.blocks``), ``centroid_block`` the centroids so."""
    d = query.shape[0]
    nlist = offsets.shape[0] - 1
    centroid_cos = np.empty(nlist, np.float32)
    _column_cosines(centroid_block, nlist, query, centroid_cos, 0)
    probe = smallest_keys(descending_keys(centroid_cos), nprobe) & np.uint64(0xFFFFFFFF)  # in any order
    m = 0
    for p in range(probe.shape[0]):
        m += offsets[probe[p] + 1] - offsets[probe[p]]
    cos = np.empty(m, np.float32)
    rows = np.empty(m, np.int64)
    at = 0
    for p in range(probe.shape[0]):
        a, b = offsets[probe[p]], offsets[probe[p] + 1]
        _column_cosines(blocks[a * d:b * d], b - a, query, cos, at)
        rows[at:at + b - a] = list_rows[a:b]
        at += b - a
    return smallest_keys(descending_keys(cos, rows), n)


@njit(cache=True)
def split_keys(keys: np.ndarray) -> Any:
    """The rows and float32 cosines that ``descending_keys(cos, rows)`` made ``keys`` of: each key
    holds its row and its cosine's bits (exact: a pipeline cosine is never -0.0, as it ends in 0.0 +
    the sum), so the rows' vectors are not read again."""
    k = keys.shape[0]
    top = np.empty(k, np.int64)
    high = np.empty(k, np.uint32)
    for i in range(k):
        top[i] = np.int64(keys[i] & np.uint64(0xFFFFFFFF))
        h = keys[i] >> np.uint64(32)
        high[i] = np.uint32(h & np.uint64(0x7FFFFFFF) if h & np.uint64(0x80000000) else h ^ np.uint64(0xFFFFFFFF))
    return top, -high.view(np.float32)


@njit(cache=True)
def smallest_keys(keys: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` smallest of the unique ``keys``, in no particular order (``np.partition(keys, n -
    1)[:n]`` as a set), by radix selection 11 bits at a time from the top: each round counts the
    pool's keys by their next 11 bits, keeps the keys below the bucket that holds the n-th, and
    makes that bucket the next round's pool, until the whole bucket is needed or few keys are left
    to order. numba's partition took ~50 of the scan's ~80 us on 5,000 probed tracks."""
    m = keys.shape[0]
    if n >= m:
        return keys.copy()
    chosen = np.empty(n, np.uint64)
    taken = 0
    pool = keys
    shift = np.uint64(53)
    mask = np.uint64(2047)
    counts = np.empty(2048, np.int64)
    while True:
        counts[:] = 0
        for i in range(pool.shape[0]):
            counts[(pool[i] >> shift) & mask] += 1
        need = n - taken
        bucket, below = 0, 0
        while below + counts[bucket] < need:
            below += counts[bucket]
            bucket += 1
        edge = np.empty(counts[bucket], np.uint64)
        e = 0
        at = np.uint64(bucket)
        for i in range(pool.shape[0]):
            digit = (pool[i] >> shift) & mask
            if digit < at:
                chosen[taken] = pool[i]
                taken += 1
            elif digit == at:
                edge[e] = pool[i]
                e += 1
        if taken + e == n:
            chosen[taken:] = edge
            return chosen
        if e <= 16 or shift < np.uint64(11):  # the bucket's smallest by insertion
            for i in range(1, e):
                x, j = edge[i], i - 1
                while j >= 0 and edge[j] > x:
                    edge[j + 1] = edge[j]
                    j -= 1
                edge[j + 1] = x
            chosen[taken:] = edge[:n - taken]
            return chosen
        pool = edge
        shift -= np.uint64(11)


@njit(cache=True)
def _column_cosines(block: np.ndarray, m: int, query: np.ndarray, out: np.ndarray, at: int) -> None:
    """``row_sum`` of ``track * query`` for each of the ``m`` tracks in ``block`` (their values
    dimension by dimension: ``block[t * m + i]`` is track i's dimension t), into ``out[at:]``: the
    same sums in the same order, with the loop over tracks innermost (on 1-D slices, so that no
    index needs a wraparound check) so that it runs in vector registers."""
    d = query.shape[0]
    zero = np.float32(0.0)
    o = out[at:at + m]
    if d < 8:
        for i in range(m):
            o[i] = zero
        for t in range(d):
            q, c = query[t], block[t * m:(t + 1) * m]
            for i in range(m):
                o[i] += c[i] * q
        for i in range(m):
            o[i] = zero + o[i]
        return
    acc = np.empty((8, m), np.float32)
    for t in range(8):
        q, c, r = query[t], block[t * m:(t + 1) * m], acc[t]
        for i in range(m):
            r[i] = c[i] * q
    whole = d - d % 8
    for start in range(8, whole, 8):
        for t in range(8):
            q, c, r = query[start + t], block[(start + t) * m:(start + t + 1) * m], acc[t]
            for i in range(m):
                r[i] += c[i] * q
    r0, r1, r2, r3, r4, r5, r6, r7 = acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]
    for i in range(m):
        o[i] = ((r0[i] + r1[i]) + (r2[i] + r3[i])) + ((r4[i] + r5[i]) + (r6[i] + r7[i]))
    for t in range(whole, d):
        q, c = query[t], block[t * m:(t + 1) * m]
        for i in range(m):
            o[i] += c[i] * q
    for i in range(m):
        o[i] = zero + o[i]


@njit(cache=True)
def score_block(rows: np.ndarray, cos: np.ndarray, proba: np.ndarray, codes: np.ndarray, n_genres: int,
                 weight: float) -> Any:
    """``Scoring.sorted_block`` with genre agreement and no targets: ``(1-w) * cosine + w *
    min(1, the seed's probability summed over the track's genres)`` in float32, and the scores'
    ``descending_keys`` (``GenreAgreement``'s padded codes: a code of ``n_genres`` reads 0). Their
    numpy sort is the stable sort best first (``in_key_order`` reads it)."""
    k = rows.shape[0]
    width = codes.shape[1]
    w = np.float32(weight)
    keep = np.float32(1.0 - weight)
    values = np.empty(width, np.float32)
    scores = np.empty(k, np.float32)
    for i in range(k):
        track_codes = codes[rows[i]]
        for t in range(width):
            g = track_codes[t]
            values[t] = proba[g] if g < n_genres else np.float32(0.0)
        agree = row_sum(values, np.float32(0.0))
        if agree > np.float32(1.0):
            agree = np.float32(1.0)
        scores[i] = keep * cos[i] + w * agree
    return descending_keys(scores), scores


@njit(cache=True)
def in_key_order(keys: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> Any:
    """``rows`` and ``scores`` in the order of ``keys``, sorted ``descending_keys`` of the scores
    (their low halves are positions): ``argsort(-scores, kind="stable")`` applied to both."""
    k = keys.shape[0]
    out_rows = np.empty(k, rows.dtype)
    out_scores = np.empty(k, scores.dtype)
    for i in range(k):
        at = keys[i] & np.uint64(0xFFFFFFFF)
        out_rows[i] = rows[at]
        out_scores[i] = scores[at]
    return out_rows, out_scores




@njit(cache=True)
def forest_margin(x: np.ndarray, root: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
                   default_left: np.ndarray, left: np.ndarray, right: np.ndarray, leaf_value: np.ndarray,
                   base_margin: np.ndarray, depth: int) -> Any:
    """``CompiledForest.predict_margin`` of one float32 row for trees with vector leaves
    (engine/_forest.py): each tree descended ``depth`` levels (a missing value goes its node's
    default way), the leaf vectors summed in tree order, then added to the base margin."""
    n_trees = root.shape[0]
    out = leaf_value.shape[1]
    total = np.zeros(out, np.float32)
    for tree in range(n_trees):
        node = root[tree]
        for _ in range(depth):
            v = x[feature[node]]
            go_left = default_left[node] if np.isnan(v) else v < threshold[node]
            node = left[node] if go_left else right[node]
        leaf = leaf_value[node]
        if tree == 0:
            for j in range(out):
                total[j] = leaf[j]
        else:
            for j in range(out):
                total[j] += leaf[j]
    margin = np.empty(out, np.float32)
    for j in range(out):
        margin[j] = base_margin[j] + total[j]
    return margin
