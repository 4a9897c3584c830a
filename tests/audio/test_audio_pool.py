"""The server's audio worker pool when a worker dies (server/_audio.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from server._audio import AudioPool


def test_a_worker_that_died_before_the_call_is_unavailable_then_replaced(extracted: tuple[list, Path]) -> None:
    """A pool whose worker died while idle (after warming, or while warming in the background) is broken
    before the next call submits: that call gets AudioUnavailable naming the kernel cache, never a raw
    BrokenProcessPool, and the call after it gets new workers."""
    from engine.audio import ExtractorParams
    from server._audio import AudioUnavailable

    tracks, _ = extracted
    clip = tracks[0].path.read_bytes()
    params = ExtractorParams().to_json()
    audio = AudioPool(workers=1)
    try:
        pool = audio.start(wait=True)
        for process in list(pool._processes.values()):  # type: ignore[attr-defined]
            os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not pool._broken and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        with pytest.raises(AudioUnavailable, match="numba's cache of librosa's compiled kernels"):
            audio.analyse([clip], params, None, None)
        rows = audio.analyse([clip], params, None, time.monotonic() + 120)
        assert len(rows) == 1 and rows[0] and "tempo" in rows[0][0]
    finally:
        audio.close()
