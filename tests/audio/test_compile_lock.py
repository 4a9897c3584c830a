"""numba's compile lock held by another process (engine/audio/_kernels.py): the wait is said, naming the holder,
and given up on after LOCK_WAIT_SECONDS; then the server's query kernels go off (the numpy code serves), an
extraction stops with the error rather than skipping files, and an audio worker refuses its work."""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine import _compiled as compiled
from engine.audio import CompileLockTimeout, ExtractorParams, _kernels, _worker
from engine.audio._inputs import Job
from engine.audio._synth import STYLES, chord_pad, write_corpus
from musicrec.cli import EXIT_FAILED, main
from server import _audio as server_audio
from tests.audio.conftest import encode

WAITING = "waiting for numba's compile lock"


class Held:
    """The compile lock, held here through an open file description of its own (flock conflicts with it even
    in this process)."""

    def __init__(self) -> None:
        path = _kernels.lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd: int | None = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Held]:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))  # the lock beside it: this test's own
    monkeypatch.setattr(_kernels, "LOCK_NOTICE_SECONDS", 0.05)
    monkeypatch.setattr(_kernels, "LOCK_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(_kernels, "_gave_up", None)  # what a test's give-up leaves is undone after it
    lock = Held()
    yield lock
    lock.release()


def holder() -> str:
    """How the messages name this process: by pid where /proc/locks tells it (some file systems' device numbers
    do not match it)."""
    return f"pid {os.getpid()} (" if _kernels.lock_holders(_kernels.lock_path()) else "another process"


def test_a_held_lock_is_said_then_given_up_on_naming_its_holder(held: Held, caplog: pytest.LogCaptureFixture) -> None:
    with (caplog.at_level(logging.WARNING, "musicrec.engine"), pytest.raises(CompileLockTimeout) as given_up,
          _kernels.compile_lock()):
        pytest.fail("a held lock was taken")
    assert holder() in str(given_up.value) and str(_kernels.lock_path()) in str(given_up.value)
    said = [r.getMessage() for r in caplog.records if WAITING in r.getMessage()]
    assert len(said) == 1 and holder() in said[0]  # once, however long the wait


def test_a_lock_released_during_the_wait_is_taken(held: Held, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "LOCK_WAIT_SECONDS", 120.0)  # a hang guard only
    threading.Timer(0.3, held.release).start()
    with _kernels.compile_lock():
        probe = os.open(_kernels.lock_path(), os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # held by this block now
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)


def test_the_query_kernels_go_off_and_say_why_without_the_holder(held: Held, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.setattr(compiled, "_kernels", None)  # restored after: whatever this process had
    monkeypatch.setattr(compiled, "_why_off", compiled._why_off)
    assert compiled.activate() is False
    assert compiled.status() == compiled.LOCK_TIMEOUT_OFF  # a client reads it: no path, no command line
    # a bundle's warm-up (server reload) under the same lock: off too, and the numpy code serves it
    monkeypatch.setattr(compiled, "_kernels", object())
    compiled.warm(None, None)
    assert compiled.status() == compiled.LOCK_TIMEOUT_OFF


def test_an_extraction_stops_with_the_error_rather_than_skip_files(held: Held, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(_kernels, "_ready", False)  # this process compiles (or loads) them again
    music = tmp_path / "music"
    write_corpus(music, styles=STYLES[:1], artists_per_style=1, songs_per_artist=2, seconds=2.0)
    assert main(["extract", str(music), "--out", str(tmp_path / "f.csv"), "--workers", "0", "--quiet"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "musicrec extract: error: numba's compile lock" in err and holder() in err
    assert "analysis failed" not in err


def test_a_worker_that_could_not_warm_up_refuses_every_file(held: Held, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """A raising pool initializer breaks the whole pool, which would read as a worker that died: the
    initializers swallow the give-up, which the process remembers, and each task raises it at once."""
    monkeypatch.setattr(_kernels, "_ready", False)
    monkeypatch.setattr(_worker, "_PARAMS", None)
    clip = tmp_path / "a.wav"
    clip.write_bytes(encode(chord_pad(57, True, 4.0).astype(np.float32)))
    _worker.init_worker(ExtractorParams().to_json())  # `musicrec extract --workers N`
    monkeypatch.setattr(_kernels, "LOCK_WAIT_SECONDS", 3600.0)  # a task that waited again would hang: it raises
    with pytest.raises(CompileLockTimeout):
        _worker.extract_file(Job(clip, "a.wav"), "0" * 64, "folder", None, None)
    server_audio._warm(ExtractorParams().to_json())  # the server's audio workers
    with pytest.raises(CompileLockTimeout):
        server_audio._ready()
    with pytest.raises(CompileLockTimeout):
        server_audio._analyse(clip.read_bytes(), ExtractorParams().to_json(), None)


def test_the_server_refuses_the_audio_call_unavailable_without_the_holder() -> None:
    """The error a worker raised reaches the call as AudioUnavailable (UNAVAILABLE), its lock path and holder in
    the log only; a bad clip's own error still passes through."""
    pool = server_audio.AudioPool(workers=1)
    gave_up: cf.Future[list[dict[str, float]]] = cf.Future()
    gave_up.set_exception(CompileLockTimeout("numba's compile lock /x has been held by pid 1 (init) for over 600 s"))
    with pytest.raises(server_audio.AudioUnavailable) as refused:
        pool._result(object(), gave_up, None)  # type: ignore[arg-type]
    assert str(refused.value) == server_audio.LOCK_UNAVAILABLE and "pid" not in str(refused.value)
    bad: cf.Future[list[dict[str, float]]] = cf.Future()
    bad.set_exception(ValueError("the clip's own"))
    with pytest.raises(ValueError, match="the clip's own"):
        pool._result(object(), bad, None)  # type: ignore[arg-type]
