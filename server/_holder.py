"""The live bundle: loaded and verified off to the side, then swapped in with one assignment; and
which bundles a client may ask for.

A request reads ``holder.current`` once and works on that Recommender to the end, so a reload
never changes a bundle under a request in flight; the old bundle is freed when the last request
holding it finishes.

The configured path (usually a ``current`` symlink) is the source of truth: the watcher and SIGHUP
always re-read it. A ``ReloadBundle`` naming a path loads that bundle once; it serves until the
configured pointer next changes or the next reload without a path.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine import Bundle, BundleError, CandidateSource, CheckedSource, InvalidQuery, Recommender, load_bundle, shown

log = logging.getLogger("musicrec.server")

Metadata = Sequence[tuple[str, Any]]


class NoBundle(RuntimeError):
    """No bundle is loaded yet (the server answers UNAVAILABLE)."""


class BundleLoadError(BundleError):
    """Loading a bundle failed with something other than the engine's own ``BundleError`` (a
    library error, a key missing from an old manifest, a bug). Still a refusal: a running server
    keeps its bundle and answers FAILED_PRECONDITION, ``musicrec serve`` exits 2 with this message."""


class BackendNotReady(BundleError):
    """A bundle that loads, but whose candidate source cannot answer yet (with ``--backend qdrant``: its
    collection is not published, or not whole). A running server keeps the bundle it serves; the watcher swaps
    the new one in once its source answers, without loading it again."""


@dataclasses.dataclass(frozen=True)
class LoadAttempt:
    """The last load attempt, for the metrics: swapped in or refused, how long, when (Unix time)."""

    ok: bool
    seconds: float
    finished_at: float


class ReloadRefused(Exception):
    """A ``ReloadBundle`` path this caller may not load (the server answers PERMISSION_DENIED)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReloadPolicy:
    """Which bundles a ``ReloadBundle`` call naming a path may load.

    The path must resolve (symlinks and ``..`` followed) inside ``root``; a relative path is taken from
    ``root``. An explicit root (``--bundle-root``) is the operator saying where bundles live, so whoever may
    call ReloadBundle at all may name one there. Without it the root is only a guess (the directory holding the
    configured bundle), so a path also needs an admin token, and with no admin tokens configured
    path reloads are off. ``is_admin`` is None when no admin tokens are configured.
    """

    root: Path | None
    explicit: bool
    is_admin: Callable[[Metadata], bool] | None = None

    @classmethod
    def for_server(cls, bundle: str | os.PathLike[str] | None, *, root: str | os.PathLike[str] | None = None,
                   is_admin: Callable[[Metadata], bool] | None = None) -> ReloadPolicy:
        if root is not None:
            return cls(root=Path(os.path.realpath(root)), explicit=True, is_admin=is_admin)
        default = Path(os.path.realpath(bundle)).parent if bundle is not None else None
        return cls(root=default, explicit=False, is_admin=is_admin)

    def resolve(self, path: str, metadata: Metadata) -> str:
        """The real path of ``path`` if this caller may load it, else raise ``ReloadRefused`` (or
        ``InvalidQuery``, INVALID_ARGUMENT, for a path no file can have)."""
        if not self.explicit:
            if self.is_admin is None:
                raise ReloadRefused(
                    "ReloadBundle with a path is off on this server; start it with --bundle-root DIR to allow "
                    "bundles under DIR, or with --admin-token TOKEN to let admins load bundles under "
                    f"{self.root or 'the configured bundle directory'}; a reload without a path re-reads "
                    "the configured bundle")
            if not self.is_admin(metadata):
                raise ReloadRefused("ReloadBundle with a path needs an admin token (the server has no --bundle-root)")
        if (nul := path.find("\0")) >= 0:  # no file name holds one, and os.path.realpath raises ValueError on it
            raise InvalidQuery(f"path: contains a NUL byte (at character {nul}); no bundle path can hold one")
        # a relative path is under the root, not under the server's working directory (which a caller cannot know)
        resolved = os.path.realpath(os.path.join(self.root, path) if self.root is not None else path)
        if self.root is None or not Path(resolved).is_relative_to(self.root):
            raise ReloadRefused(f"ReloadBundle path {shown(path, 200)} is outside the bundle root "
                                f"{self.root or '(none: no bundle configured)'} (symlinks and '..' resolved)")
        return resolved


class BundleHolder:
    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 source_factory: Callable[[Bundle], CandidateSource] | None = None, share_pages: bool = False) -> None:
        self.path = Path(path) if path is not None else None  # the configured pointer; never replaced
        # the candidate source each loaded bundle gets (Qdrant); None: the bundle's own FAISS index
        self.source_factory = source_factory
        self.share_pages = share_pages  # load_bundle(share_pages=...): replicas share the index pages
        self.current: Recommender | None = None
        # since start: bundles swapped in and loads refused (any caller), and checks of the watcher
        self.loaded = 0
        self.refused = 0
        self.watch_checks = 0
        self.last_load: LoadAttempt | None = None
        self._pointer_seen: str | None = None  # where the configured path led at its last load attempt
        self._waiting: Recommender | None = None  # loaded from there, its source not ready yet (BackendNotReady)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        # called with each newly loaded Recommender, after the swap (e.g. warming the audio workers)
        self.on_loaded: list[Callable[[Recommender], None]] = []

    def current_version(self) -> str | None:
        """The id of the bundle being served (``Bundle.version``), or None."""
        rec = self.current
        return rec.bundle.version if rec is not None else None

    def require(self) -> Recommender:
        rec = self.current
        if rec is None:
            raise NoBundle("no bundle is loaded yet; retry shortly")
        return rec

    def load(self, path: str | os.PathLike[str] | None = None) -> tuple[str | None, str, bool]:
        """Load ``path`` once, or by default the configured path (re-resolving a ``current``
        symlink), and swap it in. Returns (previous version, new version, changed). Any failure
        raises a ``BundleError`` and the previous bundle keeps serving."""
        with self._lock:
            target = Path(path) if path is not None else self.path
            if target is None:
                raise NoBundle("no bundle path configured")
            resolved = os.path.realpath(target)
            if path is None:  # seen, whether it loads or not: the watcher waits for the next change
                self._pointer_seen = resolved
                self._waiting = None
            old = self.current
            old_version = old.bundle.version if old is not None else None
            started = time.perf_counter()
            try:
                bundle = load_bundle(resolved, share_pages=self.share_pages)
                rec = Recommender(bundle, source=self.source_factory(bundle) if self.source_factory else None)
                rec.warm_compiled()
            except BundleError:
                self.refused += 1
                self._attempted(started, ok=False)
                raise
            except Exception as exc:
                self.refused += 1
                self._attempted(started, ok=False)
                # A running server keeps serving and the client only sees a status, so the traceback
                # goes to the log; at start-up `musicrec serve` prints the one-line reason and exits.
                log.log(logging.ERROR if old is not None else logging.DEBUG,
                        "refused bundle %s: unexpected %s while loading it", resolved, type(exc).__name__,
                        exc_info=True)
                reason = " ".join(str(exc).split())[:300]
                raise BundleLoadError(f"{resolved}: cannot be loaded ({type(exc).__name__}: {reason})") from exc
            # a running server keeps answering from what it has: a bundle whose collection is not there yet
            # (published after the link moved, or a publish cut short) would answer nothing that needs a search
            if old is not None and (problem := _source_problem(rec)) is not None:
                self.refused += 1
                self._attempted(started, ok=False)
                if path is None:
                    self._waiting = rec
                raise BackendNotReady(f"{resolved}: its candidate source cannot answer yet ({problem}); the "
                                      f"previous bundle keeps serving" + (", and this one is swapped in once it can"
                                                                          if path is None and self._watcher else ""))
            return self._swap(rec, resolved, old_version, started)

    def _swap(self, rec: Recommender, resolved: str, old_version: str | None,
              started: float) -> tuple[str | None, str, bool]:
        """Serve ``rec`` from now on (the caller holds the lock)."""
        changed = old_version != rec.bundle.version
        self._waiting = None  # any swap ends a wait: a bundle loaded by path is not replaced by the one waiting
        self.current = rec  # the swap: one reference assignment
        self.loaded += 1
        self._attempted(started, ok=True)
        for hook in self.on_loaded:
            hook(rec)
        log.info("bundle %s loaded from %s: %d tracks, %d moods, %d genres%s", rec.bundle.version, resolved,
                 rec.n, len(rec.moods()), len(rec.genre_names), "" if changed else " (unchanged)",
                 extra={"event": "bundle_loaded", "fields": {"bundle_id": rec.bundle.version, "tracks": rec.n,
                                                             "seconds": round(self.last_load.seconds, 3)
                                                             if self.last_load else None}})
        return old_version, rec.bundle.version, changed

    def _swap_waiting(self) -> None:
        """The watcher's turn on a bundle refused as BackendNotReady: swapped in once its source answers."""
        with self._lock:
            rec = self._waiting
            if rec is None or _source_problem(rec) is not None:
                return
            self._waiting = None
            old = self.current
            self._swap(rec, str(rec.bundle.path), old.bundle.version if old is not None else None,
                       time.perf_counter())

    def _attempted(self, started: float, *, ok: bool) -> None:
        self.last_load = LoadAttempt(ok=ok, seconds=time.perf_counter() - started, finished_at=time.time())

    def watch(self, interval: float) -> None:
        """Poll the configured path (typically a ``current`` symlink) and reload when it points
        somewhere new. A bundle that fails to load is logged and skipped until the link changes."""
        def loop() -> None:
            while not self._stop.wait(interval):
                self.watch_checks += 1
                if self.path is None:
                    continue
                if os.path.realpath(self.path) == self._pointer_seen:
                    if self._waiting is not None:
                        self._swap_waiting()
                    continue
                try:
                    self.load()
                except Exception as exc:  # a bad bundle must never take the server down
                    log.error("refused new bundle at %s, still serving %s: %s", self._pointer_seen,
                              self.current.bundle.version if self.current else "nothing", exc,
                              extra={"event": "bundle_refused"})

        self._watcher = threading.Thread(target=loop, name="bundle-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()


def _source_problem(rec: Recommender) -> str | None:
    """Why ``rec``'s candidate source cannot answer now (a Qdrant collection missing or not whole, Qdrant down);
    None when it can, or when the source is the bundle's own index."""
    return rec.source.check() if isinstance(rec.source, CheckedSource) else None
