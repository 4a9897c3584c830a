"""librosa's numba kernels: compiled by one process at a time, into musicrec's own cache.

librosa compiles its beat tracker, peak pickers and a few more with numba and caches the machine
code on disk (``cache=True``). Numba's cache is not safe when two processes compile the same gufunc
at once (numba issue #10128, open in numba 0.68): the cache can be left with one process's gufunc
wrapper and the other's kernel, and every later process that loads it dies with SIGSEGV. That is
what ``musicrec extract`` risked on a fresh install, its two workers compiling at the same moment
(two fresh processes calling ``librosa.beat.beat_track`` at once: one of three trials crashed and
left a cache on which every later call crashed).

So every process compiles or loads the kernels before its first analysis (:func:`ensure_compiled`,
called by ``describe``) while holding an exclusive lock on the cache directory: the first process
compiles them (26-30 s on the machine this was measured on), the others wait and then load them
(3-4 s). The cache is musicrec's own directory (:func:`cache_dir`: ``$NUMBA_CACHE_DIR`` when set,
else ``~/.cache/musicrec/numba``), set before librosa is imported (:func:`use_own_cache`, at the
import of ``engine.audio``), so a cache broken by another program's concurrent runs is not ours,
and deleting that directory is always a safe reset.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".musicrec-compile.lock"

_THREADS = threading.RLock()  # re-entrant: the warm-up's own describe() comes back through ensure_compiled
_ready = False
_busy = False


def _default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "musicrec" / "numba"


def _writable(path: Path) -> bool:
    """Whether ``path`` could be created and written (checked on its nearest existing ancestor; nothing is
    created at import: numba and :func:`compile_lock` make the directory when they need it)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def use_own_cache() -> None:
    """Point numba's cache at :func:`cache_dir` unless ``NUMBA_CACHE_DIR`` is set. Only a process
    that has not imported numba yet takes it (numba reads the variable once); worker processes
    spawned later inherit it. A home that cannot be written falls back to the temporary directory."""
    if os.environ.get("NUMBA_CACHE_DIR") or "numba" in sys.modules:
        return
    for path in (_default_dir(), Path(tempfile.gettempdir()) / f"musicrec-numba-{os.getuid()}"):
        if _writable(path):
            os.environ["NUMBA_CACHE_DIR"] = str(path)
            return


def cache_dir() -> Path:
    """Where this process's numba caches librosa's kernels (and where the compile lock lives)."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or _default_dir())


@contextlib.contextmanager
def compile_lock() -> Iterator[None]:
    """Exclusive across processes (``flock`` on a file in :func:`cache_dir`; released if the
    holder dies). Without ``fcntl`` (not POSIX) or a writable directory: no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - POSIX only
        yield
        return
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure_compiled(warm: Callable[[], object]) -> None:
    """Run ``warm`` (one short analysis, which makes numba compile or load every kernel) once per
    process, holding :func:`compile_lock`. Calls from inside ``warm`` return at once."""
    global _ready, _busy
    if _ready:
        return
    with _THREADS:
        if _ready or _busy:
            return
        _busy = True
        try:
            with compile_lock():
                warm()
            _ready = True
        finally:
            _busy = False


def cached() -> bool:
    """Whether :func:`cache_dir` holds compiled kernels already (else the first analysis compiles them)."""
    directory = cache_dir()
    return directory.is_dir() and next(directory.rglob("*.nbi"), None) is not None


def died_hint() -> str:
    """What to say when an audio worker process dies without an error."""
    return (f"if it died as it started, numba's cache of librosa's compiled kernels may be broken: delete "
            f"{cache_dir()} (it is rebuilt on the next run, ~30 s)")
