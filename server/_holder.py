"""The live bundle: loaded and verified off to the side, then swapped in with one assignment.

A request reads ``holder.current`` once and works on that Recommender to the end, so a reload
never changes a bundle under a request in flight; the old bundle is freed when the last request
holding it finishes.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from engine import load_bundle
from engine import Recommender

log = logging.getLogger("musicrec.server")


class NoBundle(RuntimeError):
    """No bundle is loaded yet (the server answers UNAVAILABLE)."""


class BundleHolder:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.current: Recommender | None = None
        self._resolved: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def require(self) -> Recommender:
        rec = self.current
        if rec is None:
            raise NoBundle("no bundle is loaded yet; retry shortly")
        return rec

    def load(self, path: str | os.PathLike[str] | None = None) -> tuple[str | None, str, bool]:
        """Load ``path`` (default: the configured path, re-resolving a ``current`` symlink) and
        swap it in. Returns (previous version, new version, changed). On any error the previous
        bundle keeps serving and the error propagates."""
        with self._lock:
            target = Path(path) if path is not None else self.path
            if target is None:
                raise NoBundle("no bundle path configured")
            resolved = os.path.realpath(target)
            old = self.current
            old_version = old.bundle.version if old is not None else None
            rec = Recommender(load_bundle(resolved))
            changed = old_version != rec.bundle.version
            self.current = rec  # the swap: one reference assignment
            self._resolved = resolved
            if path is not None:
                self.path = Path(path)
            log.info("bundle %s loaded from %s: %d tracks, %d moods, %d genres%s", rec.bundle.version, resolved,
                     rec.n, len(rec.moods()), len(rec.genre_names), "" if changed else " (unchanged)")
            return old_version, rec.bundle.version, changed

    def watch(self, interval: float) -> None:
        """Poll the configured path (typically a ``current`` symlink) and reload when it points
        somewhere new. A bundle that fails to load is logged and skipped until the link changes."""
        def loop() -> None:
            failed: str | None = None
            while not self._stop.wait(interval):
                if self.path is None:
                    continue
                resolved = os.path.realpath(self.path)
                if resolved in (self._resolved, failed):
                    continue
                try:
                    self.load()
                    failed = None
                except Exception as exc:  # a bad bundle must never take the server down
                    failed = resolved
                    log.error("refused new bundle at %s, still serving %s: %s", resolved,
                              self.current.bundle.version if self.current else "nothing", exc)

        self._watcher = threading.Thread(target=loop, name="bundle-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
