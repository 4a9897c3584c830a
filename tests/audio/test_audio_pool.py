"""The server's audio worker pool when a worker dies (server/_audio.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server._audio import AudioPool
from tests.server.conftest import wait_until


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


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AudioPool, threading.Event]]:
    """An AudioPool whose clips are "analysed" in a thread until the gate opens (no worker processes)."""
    import server._audio

    gate = threading.Event()

    def analyse(clip: bytes, params: object, segment_seconds: object, name: str) -> list[dict[str, float]]:
        gate.wait(10)
        return [{"clip": float(len(clip))}]

    monkeypatch.setattr(server._audio, "_analyse", analyse)
    audio = AudioPool(workers=1, max_clips=3)
    threads = ThreadPoolExecutor(1)
    monkeypatch.setattr(audio, "start", lambda wait: threads)
    yield audio, gate
    gate.set()
    threads.shutdown(wait=True)


def test_a_clip_past_its_deadline_holds_its_slot_until_its_worker_is_done(
        gated: tuple[AudioPool, threading.Event]) -> None:
    # its slot was freed at once: callers past their deadline queued clips the limit never saw, and the next
    # caller waited behind them (a 5 s clip took 14.6 s); a clip the call's end finds still queued is dropped
    from engine import DeadlineExceeded
    from server._audio import AudioBusy

    audio, gate = gated
    with pytest.raises(DeadlineExceeded):
        audio.analyse([b"a", b"bb", b"c"], {}, None, time.monotonic() + 0.05)  # "a" runs, "bb" and "c" wait
    assert audio._slots._value == 2  # type: ignore[attr-defined]  # only the running clip's slot is held
    with pytest.raises(AudioBusy):
        audio.analyse([b"ccc", b"d", b"e"], {}, None, None)
    gate.set()
    wait_until(lambda: audio._slots._value == 3, "the clips' slots to be free once analysed")  # type: ignore[attr-defined]
    assert audio.analyse([b"dddd"], {}, None, None) == [[{"clip": 4.0}]]


def test_a_call_cancelled_while_its_clip_waits_frees_its_thread_and_the_queued_clip(
        gated: tuple[AudioPool, threading.Event]) -> None:
    """The handler thread waited for the analysis to its end, and a clip still queued behind another was analysed
    for a client long gone (an audit, 2026-12-07): the call's end now wakes the wait and drops the queued clip."""
    from engine import DeadlineExceeded
    from server._service import CallDeadline

    audio, gate = gated
    call = CallDeadline(None)  # no deadline: only the call's end stops the wait
    failed: list[BaseException] = []

    def ask() -> None:
        try:
            audio.analyse([b"a", b"bb"], {}, None, call)  # one thread "analyses": "a" runs, "bb" waits
        except BaseException as exc:  # kept for the assertion
            failed.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    wait_until(lambda: audio._slots._value == 1, "both clips to be submitted")  # type: ignore[attr-defined]
    call.end(cancelled=True)  # the client cancels; the gate stays shut: "a" is still being analysed
    asker.join(5)
    assert not asker.is_alive() and len(failed) == 1 and isinstance(failed[0], DeadlineExceeded)
    # "bb" never started: cancelled, its slot free at once; "a" holds its slot until its analysis ends
    wait_until(lambda: audio._slots._value == 2, "the queued clip's slot to be free")  # type: ignore[attr-defined]
    gate.set()
    wait_until(lambda: audio._slots._value == 3, "the running clip's slot to be free once analysed")  # type: ignore[attr-defined]


def test_more_clips_than_the_server_takes_at_once_is_invalid_not_busy(
        gated: tuple[AudioPool, threading.Event]) -> None:
    from engine import InvalidQuery

    audio, _ = gated
    with pytest.raises(InvalidQuery, match=r"4 audio clips in one request, but this server analyses at most 3 at "
                                           r"once \(--audio-max-clips\); send fewer per request"):
        audio.analyse([b"a", b"b", b"c", b"d"], {}, None, None)


def test_the_audio_limit_leaves_a_handler_thread_free() -> None:
    assert AudioPool(max_clips=4, handler_threads=4).max_clips == 3
    assert AudioPool(max_clips=2, handler_threads=16).max_clips == 2
    assert AudioPool(max_clips=4, handler_threads=1).max_clips == 4  # one thread: none to keep free
    lowered = AudioPool(max_clips=4, handler_threads=4)
    with pytest.raises(Exception, match=r"at most 3 at once \(--audio-max-clips 4, lowered under the 4 of --workers\)"):
        lowered.analyse([b"a"] * 4, {}, None, None)


def test_no_workers_start_once_the_pool_is_closed() -> None:
    # a call that arrived after close() spawned a new pool that nothing stopped
    from server._audio import AudioUnavailable

    audio = AudioPool(workers=1)
    audio.close()
    with pytest.raises(AudioUnavailable, match="the server is stopping"):
        audio.start(wait=False)


def test_a_clip_waiting_when_the_server_stops_is_unavailable_not_internal(
        gated: tuple[AudioPool, threading.Event]) -> None:
    # a pool shut down under a waiting call raised CancelledError: INTERNAL, "a bug"
    from server._audio import AudioUnavailable

    audio, gate = gated
    with ThreadPoolExecutor(1) as caller:
        call = caller.submit(audio.analyse, [b"a", b"b"], {}, None, None)  # the second clip waits for the first
        wait_until(lambda: audio._slots._value == 1, "both clips to be taken")  # type: ignore[attr-defined]
        pool = audio.start(wait=False)
        audio._pool = pool  # type: ignore[assignment]  (what close() shuts down)
        audio.close()
        gate.set()
        with pytest.raises(AudioUnavailable, match="the server is stopping"):
            call.result(10)
