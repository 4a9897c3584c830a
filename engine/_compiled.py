"""Compiled kernels for the one-query path of a track the catalog does not hold (numba, optional).

A SimilarTracks or ClassifyGenre call seeded by raw features runs about sixty small numpy calls
whose fixed cost, not their arithmetic, is most of the call: the seed's transform and unit vector,
the candidates' exact cosines, their canonical order and one listing per song, the block's genre
agreement and sort, and the classifier's trees (benchmarks/RESULTS.md, "The new-track path
compiled"). Each kernel here does one of those stages in one call, **with the same arithmetic in
the same order**, so it gives the numpy code's answers bit for bit:

- float sums are numpy's: ``np.add.reduce`` over a row starts from 0 and adds the row pairwise
  (eight running sums for rows of 8 or more, :func:`_row_sum`), not left to right;
- orders are stable, as ``np.lexsort`` and ``argsort(kind="stable")`` are: unique keys (the value,
  then the row or position) sorted, by numpy's sort where the keys come back to Python (numba's sort
  is ~3x slower on a few hundred keys);
- the PCA projection stays numpy's matrix product (BLAS sums in an order of its own), between
  two kernels;
- transcendental functions (``log1p``, ``sin``, ``cos``) are numpy's, worked out before the seed's
  kernel (``Preprocessor.seed_row_arrays``): on a machine with AVX-512 numpy's float64 ``log1p`` is its own
  loop and differs from the C library's, which numba calls, by an ulp on some values (sin and cos may too);
  :func:`activate` checks the seed's transform against numpy's before it turns the kernels on, and leaves
  them off when they differ.

The new-track candidate scan (engine/_candidates.py ``ProbedSource``: the probed inverted lists'
cosines, across many tracks at once in the same order of sums, and the top of them) is one kernel too.
tests/engine/test_compiled.py and tests/engine/test_probed.py check every kernel against the numpy code.
The numpy code stays the reference and the path of builds (their new-track scans excepted, which run
the scan kernel too), of batches when the kernels are off (engine/_similar_many.py), of calls with
filters or targets, of bundles whose vectors have more than 128 dimensions (numpy sums such rows in
halves), and of every call when numba is not installed (the ``fast`` extra) or ``MUSICREC_COMPILED=0``.
Nothing compiles at import:
:func:`activate` (the server calls it before serving) compiles or loads the kernels from numba's cache,
one process at a time
(engine/audio/_kernels.py: numba's cache is not safe when two processes write it at once).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

log = logging.getLogger("musicrec.engine")
LOCK_TIMEOUT_OFF = "off: another process held numba's compile lock too long (the server's log names it)"

_LOCK = threading.Lock()
_kernels: Any = None  # engine/_compiled_kernels.py once activated
_why_off = "not activated"


def active() -> bool:
    """Whether the compiled kernels are in use in this process."""
    return _kernels is not None


def status() -> str:
    """"on", or why the kernels are off (for logs and ServerInfo-style reports)."""
    return "on" if _kernels is not None else _why_off


def activate() -> bool:
    """Compile (or load from numba's cache) every kernel, check them, and turn them on for this
    process. Returns whether they are on; never raises: without numba, or with
    ``MUSICREC_COMPILED=0``, or when a check fails, the numpy code serves and :func:`status` says why."""
    global _kernels, _why_off
    with _LOCK:
        if _kernels is not None:
            return True
        if os.environ.get("MUSICREC_COMPILED", "1").strip() == "0":
            _why_off = "off: MUSICREC_COMPILED=0"
            return False
        from .audio import _kernels as numba_cache  # numba's cache directory and compile lock

        numba_cache.use_own_cache()
        try:
            from . import _compiled_kernels as compiled
        except ImportError:
            _why_off = "off: numba is not installed (musicrec's fast extra)"  # a client reads this: no paths
            return False
        try:
            with numba_cache.compile_lock():
                problem = _self_check(compiled)
        except numba_cache.CompileLockTimeout as exc:  # another process holds it, stopped or stuck: numpy serves
            log.warning("compiled kernels off: %s; the numpy code serves", exc)
            _why_off = LOCK_TIMEOUT_OFF  # a client reads this: the path and the holder stay in the log
            return False
        if problem:
            _why_off = f"off: {problem}"
            log.warning("compiled kernels %s; the numpy code serves", _why_off)
            return False
        _kernels = compiled
        return True


def deactivate() -> None:
    """Back to the numpy code (tests compare the two)."""
    global _kernels, _why_off
    with _LOCK:
        _kernels, _why_off = None, "off: deactivated"


def kernels() -> Any:
    """engine/_compiled_kernels.py (only while :func:`active`)."""
    assert _kernels is not None, "compiled kernels are not active"
    return _kernels


def _self_check(compiled: Any) -> str | None:
    """Run every kernel once (compiling it) and check the seed's transform against numpy's on this
    machine; None when they agree, else what differs."""
    from ._preprocess import Preprocessor

    rng = np.random.default_rng(0)
    raw = np.concatenate([rng.uniform(-3.0, 3.0, 256), rng.uniform(0.0, 1e6, 256), np.arange(24.0)])
    names = [f"f{j}" for j in range(len(raw))]
    pre = Preprocessor(feature_names=names, transforms={n: ("log1p", "none", "cyclic:12")[j % 3]
                                                        for j, n in enumerate(names)})
    plan = pre.seed_row_arrays(raw)
    width = plan[-1]
    _, z, _ = compiled.seed_row(raw, *plan, np.zeros(width), np.ones(width))
    if not np.array_equal(z, pre.transform_features(raw[None, :])[0]):
        return "the seed's transform differs from numpy's on this machine"
    vectors = rng.standard_normal((64, 14)).astype(np.float32)
    rows, cos, _ = compiled.ordered_fetch(np.arange(64, dtype=np.int64), vectors, vectors[0],
                                          np.arange(64, dtype=np.int64) // 2)
    # the new-track source's scan (its arrays are its own, one layout for every bundle)
    offsets = np.array([0, 30, 64], np.int64)
    keys = compiled.probed_keys(np.ascontiguousarray(vectors[:2].T).ravel(), offsets, np.arange(64, dtype=np.int64),
                                np.concatenate([vectors[:30].T.ravel(), vectors[30:].T.ravel()]), vectors[0], 1, 10)
    compiled.split_keys(np.sort(keys))
    compiled.unit_vector(rng.standard_normal(14))
    keys, scores = compiled.score_block(rows, cos, np.full(4, 0.25, np.float32), np.zeros((64, 2), np.int32), 4, 0.5)
    compiled.in_key_order(np.sort(keys), rows, scores)
    leaves = np.ones((3, 4), np.float32)
    compiled.forest_margin(np.zeros(2, np.float32), np.zeros(1, np.int64), np.zeros(3, np.int64),
                              np.zeros(3, np.float32), np.zeros(3, np.bool_), np.zeros(3, np.int64),
                              np.zeros(3, np.int64), leaves, np.zeros(4, np.float32), 1)
    return None


class _Unsupported(Exception):
    """A bundle the kernels cannot give numpy's bits for."""


def warm(view: Any, agreement: Any) -> None:
    """Compile or load the kernels' forms for one bundle's arrays now, under numba's compile lock,
    rather than in the first request: numba compiles a function per array layout, and a flat index
    shared between processes (``serve --processes``) is not aligned. ``view`` is the bundle's
    CatalogView, ``agreement`` its GenreAgreement (or None)."""
    global _kernels, _why_off
    if _kernels is None:
        return
    from .audio import _kernels as numba_cache

    try:
        with numba_cache.compile_lock():
            _warm(view, agreement)
    except _Unsupported as exc:  # a bundle the kernels cannot copy numpy for: the numpy code serves it
        log.warning("compiled kernels off for this bundle: %s", exc)
        with _LOCK:
            _kernels, _why_off = None, f"off: a loaded bundle has {exc}"
    except numba_cache.CompileLockTimeout as exc:
        log.warning("compiled kernels off: %s; the numpy code serves", exc)
        with _LOCK:
            _kernels, _why_off = None, LOCK_TIMEOUT_OFF
    except Exception:  # a kernel that cannot compile for this bundle: the numpy code serves, never a refused load
        log.warning("compiled kernels failed to warm for this bundle; off, the numpy code serves", exc_info=True)
        with _LOCK:
            _kernels, _why_off = None, "off: they failed to compile for a loaded bundle (see the log)"


def _warm(view: Any, agreement: Any) -> None:
    kernels = _kernels
    assert kernels is not None
    from ._candidates import PAIRWISE_BLOCK

    widest = max(view.vectors.shape[1], agreement.codes.shape[1] if agreement is not None else 0)
    if widest > PAIRWISE_BLOCK:  # numpy sums such rows in halves; the kernels' sums copy shorter rows only
        raise _Unsupported(f"rows of {widest} values (the kernels copy numpy's sums for up to {PAIRWISE_BLOCK})")
    inputs, vectors, _ = view.feature_seeds(np.asarray(view.bundle.tracks.features[:1], dtype=np.float64))
    rows, cos, _ = kernels.ordered_fetch(np.arange(min(view.n, 8), dtype=np.int64), view.vectors, vectors[0], view.song)
    kernels.first_listings(rows, view.song)
    classifier = view.bundle.classifier
    if classifier is not None:
        proba = classifier.predict_proba(inputs)[0]
        if agreement is not None:
            keys, scores = kernels.score_block(rows, cos, proba, agreement.codes, len(proba), 0.5)
            kernels.in_key_order(np.sort(keys), rows, scores)
