"""librosa's numba kernels: compiled by one process at a time, into musicrec's own cache.

librosa compiles its beat tracker, peak pickers and a few more with numba and caches the machine
code on disk (``cache=True``). Numba's cache is not safe when two processes compile the same gufunc
at once (numba issue #10128, open in numba 0.68): the cache can be left with one process's gufunc
wrapper and the other's kernel, and every later process that loads it dies with SIGSEGV. That is
what ``musicrec extract`` risked on a fresh install, its two workers compiling at the same moment
(two fresh processes calling ``librosa.beat.beat_track`` at once: one of three trials crashed and
left a cache on which every later call crashed).

So every process compiles or loads the kernels before its first analysis (:func:`ensure_compiled`,
called by ``describe``) while holding an exclusive lock (a file beside the cache directory): the first process
compiles them (26-30 s on the machine this was measured on), the others wait and then load them
(3-4 s). A process that waits says so after ``LOCK_NOTICE_SECONDS``, naming the lock's holder (``/proc/locks``),
and gives up after ``LOCK_WAIT_SECONDS`` with :class:`CompileLockTimeout`: a holder that is stopped (Ctrl-Z) or
stuck would otherwise hold every later process at its first analysis or query, silently.

The cache is musicrec's own directory (:func:`cache_dir`: ``$NUMBA_CACHE_DIR`` when set, else
``~/.cache/musicrec/numba``), set before librosa is imported (:func:`use_own_cache`, at the import of
``engine.audio``), so a cache broken by another program's concurrent runs is not ours, and deleting that
directory is always a safe reset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from engine._errors import EngineError

log = logging.getLogger("musicrec.engine")

LOCK_SUFFIX = ".musicrec-compile.lock"  # beside the cache directory, so deleting the directory keeps the lock
LOCK_NOTICE_SECONDS = 5.0  # a wait this long is said, once, with the holder's pid
LOCK_WAIT_SECONDS = 600.0  # 20 times the slowest compile measured (30 s): a holder this slow is stopped or stuck
LOCK_POLL_SECONDS = 0.05


class CompileLockTimeout(EngineError, RuntimeError):
    """Another process held the compile lock for over ``LOCK_WAIT_SECONDS``."""

_THREADS = threading.RLock()  # re-entrant: a warm-up that calls ensure_compiled again returns at once
_ready = False
_gave_up: CompileLockTimeout | None = None  # raised again at once by every later ensure_compiled of this process
_busy = False
_lock_fd: int | None = None  # the flock's descriptor while held


def _after_fork_in_child() -> None:
    """A child forked while this process warmed up inherits a held thread lock (its owner thread is gone) and
    the flock's descriptor (which would keep the lock held after the parent releases it): start afresh."""
    global _THREADS, _busy, _lock_fd
    _THREADS = threading.RLock()
    _busy = False
    if _lock_fd is not None:
        os.close(_lock_fd)  # the child's copy only: the parent's keeps its lock until it closes its own
        _lock_fd = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "musicrec" / "numba"


def _writable(path: Path) -> bool:
    """Whether ``path`` could be created and written (checked on its nearest existing ancestor; nothing is
    created at import: numba and :func:`compile_lock` make the directory when they need it)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _private_tmp() -> Path | None:
    """``$TMPDIR/musicrec-numba-<uid>``, created 0700 and owned by this user, else None: numba loads its
    cache files as code, so a directory another user could have planted there is never used."""
    path = Path(tempfile.gettempdir()) / f"musicrec-numba-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
    except OSError:
        return None
    mine = stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
    return path if mine else None


def use_own_cache() -> None:
    """Point numba's cache at :func:`cache_dir` unless ``NUMBA_CACHE_DIR`` is set. Only a process
    that has not imported numba yet takes it (numba reads the variable once); worker processes
    spawned later inherit it. A home that cannot be written falls back to a private directory under
    the temporary directory (else numba's own default: librosa's ``__pycache__``)."""
    if os.environ.get("NUMBA_CACHE_DIR") or "numba" in sys.modules:
        return
    path = _default_dir() if _writable(_default_dir()) else _private_tmp()
    if path is not None:
        os.environ["NUMBA_CACHE_DIR"] = str(path)


def cache_dir() -> Path:
    """Where this process's numba caches librosa's kernels (and where the compile lock lives)."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or _default_dir())


def lock_path() -> Path:
    """The compile lock's file: beside :func:`cache_dir` (``numba`` -> ``numba.musicrec-compile.lock``)."""
    directory = cache_dir()
    return directory.with_name(directory.name + LOCK_SUFFIX)


@contextlib.contextmanager
def compile_lock() -> Iterator[None]:
    """Exclusive across processes (``flock`` on :func:`lock_path`; released if the holder dies).
    Without ``fcntl`` (not POSIX) or a lock file that can be opened, there is no lock: then numba
    cannot write that directory either, and each process compiles for itself."""
    global _lock_fd
    fd = None
    try:
        import fcntl

        path = lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except (ImportError, OSError):
        pass
    if fd is None:
        yield
        return
    owner = os.getpid()
    try:
        _lock_fd = fd  # before the wait: a child forked during it closes its copy too (_after_fork_in_child)
        _acquire(fcntl, fd, path)
        yield
    finally:
        _lock_fd = None
        if os.getpid() == owner:  # a child forked inside this block closed its copy already
            os.close(fd)  # closing releases the lock


def _acquire(fcntl: ModuleType, fd: int, path: Path) -> None:
    """``flock`` ``fd`` exclusively, polling, so a long wait is said and a hopeless one ends (module docstring)."""
    started, told = time.monotonic(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - started
        if not told and waited >= LOCK_NOTICE_SECONDS:  # said before any give-up, however late this thread runs
            log.warning("waiting for numba's compile lock %s, held by %s (a first compile takes about 30 s; this "
                        "gives up after %.0f s)", path, holders_text(path), LOCK_WAIT_SECONDS)
            told = True
        if waited >= LOCK_WAIT_SECONDS:
            raise CompileLockTimeout(
                f"numba's compile lock {path} has been held by {holders_text(path)} for over {waited:.0f} s (compiling "
                "librosa's and musicrec's kernels takes about 30 s on a fresh install): if that process is stopped "
                "(Ctrl-Z) or stuck, resume or end it, then run this again")
        time.sleep(LOCK_POLL_SECONDS)


def lock_holders(path: Path) -> list[int]:
    """The pids ``/proc/locks`` (Linux) names as holding a ``flock`` on ``path``; [] where it cannot tell."""
    try:
        st = os.stat(path)
        table = Path("/proc/locks").read_text()
    except OSError:
        return []
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    for line in table.splitlines():  # "1: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF"; waiters have "->"
        fields = line.split()
        # pid 0: an owner gone or in another pid namespace, which cannot be named
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == where and fields[4].isdigit() and int(fields[4]):
            pids.append(int(fields[4]))
    return pids


def holders_text(path: Path) -> str:
    """"pid 1234 (python -m musicrec.cli extract ...)" for each holder, or "another process"."""
    named = []
    for pid in lock_holders(path):
        if _parent(pid) in (os.getpid(), os.getppid()):  # a spawned worker's command line says nothing to a reader
            named.append(f"pid {pid} (another worker process of this same run, compiling first)")
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = ""
        named.append(f"pid {pid}" + (f" ({command[:120]})" if command else ""))
    return ", ".join(named) or "another process"


def _parent(pid: int) -> int | None:
    """``pid``'s parent process (Linux's /proc), or None."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def ensure_compiled(warm: Callable[[], object]) -> None:
    """Run ``warm`` (one short analysis, which makes numba compile or load every kernel) once per
    process, holding :func:`compile_lock`. Calls from inside ``warm`` return at once. A process that gave up on
    the lock (:class:`CompileLockTimeout`) raises that again at once on every later call, rather than wait as long
    again for each file or clip: a pool worker swallows it in its initializer and its every task stops with it."""
    global _ready, _busy, _gave_up
    if _ready:
        return
    if _gave_up is not None:
        raise _gave_up
    with _THREADS:
        if _ready or _busy:
            return
        _busy = True
        try:
            with compile_lock():
                warm()
            _ready = True
        except CompileLockTimeout as exc:
            _gave_up = exc
            raise
        finally:
            _busy = False


def cached() -> bool:
    """Whether :func:`cache_dir` holds compiled kernels already (else the first analysis compiles them)."""
    directory = cache_dir()
    return directory.is_dir() and next(directory.rglob("*.nbi"), None) is not None


def died_hint() -> str:
    """What to say when an audio worker process dies without an error."""
    where = (str(cache_dir()) if os.environ.get("NUMBA_CACHE_DIR") else
             "the *.nbi and *.nbc files under librosa's __pycache__ folders (NUMBA_CACHE_DIR is not set)")
    return (f"if it died as it started, numba's cache of librosa's compiled kernels may be broken: delete "
            f"{where}; it is rebuilt on the next run, ~30 s")
