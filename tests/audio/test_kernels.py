"""librosa's numba kernels are compiled by one process at a time, into musicrec's own cache
(engine/audio/_kernels.py: numba's cache breaks when two processes compile a gufunc at once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.audio import _kernels

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def test_two_processes_warm_up_one_after_the_other(tmp_path: Path) -> None:
    log = tmp_path / "log"
    code = f"""
        import os, time
        from engine.audio import _kernels
        def warm():
            with open({str(log)!r}, "a") as fh:
                fh.write(f"start {{os.getpid()}}\\n"); fh.flush()
                time.sleep(0.6)  # a window for the other process to start its own warm-up, were it not locked out
                fh.write(f"end {{os.getpid()}}\\n")
        _kernels.ensure_compiled(warm)
        _kernels.ensure_compiled(warm)  # once per process
    """
    procs = [_python(code, _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    events = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end", "start", "end"]  # never two warm-ups at once
    pids = [pid for _, pid in events]  # each process's warm-up ended before the other's started, once each
    assert pids[0] == pids[1] != pids[2] == pids[3] and {pids[0], pids[2]} == {str(p.pid) for p in procs}
    assert (tmp_path / ("cache" + _kernels.LOCK_SUFFIX)).exists()  # beside the cache: deleting it keeps the lock


def test_engine_audio_points_numba_at_musicrec_s_cache_unless_told(tmp_path: Path) -> None:
    code = """
        import os, engine.audio, numba
        print(os.environ["NUMBA_CACHE_DIR"]); print(numba.config.CACHE_DIR)
    """
    p = _python(code, _env(HOME=str(tmp_path)))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    own = str(tmp_path / ".cache" / "musicrec" / "numba")
    assert out.split() == [own, own]
    assert not Path(own).exists()  # importing creates nothing; the first compile does
    p = _python(code, _env(HOME=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "theirs")))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.split() == [str(tmp_path / "theirs")] * 2


def test_a_warm_up_runs_once_and_again_after_a_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_kernels, "_ready", False)
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise RuntimeError("no")

    def warm() -> None:
        calls.append("warm")
        _kernels.ensure_compiled(warm)  # describe() inside the warm-up comes back here: no recursion

    with pytest.raises(RuntimeError):
        _kernels.ensure_compiled(failing)
    _kernels.ensure_compiled(warm)
    _kernels.ensure_compiled(warm)
    assert calls == ["failing", "warm"]


def test_a_dead_worker_s_message_names_the_cache_to_delete(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    assert str(tmp_path / "nb") in _kernels.died_hint()
    monkeypatch.delenv("NUMBA_CACHE_DIR")  # numba imported before engine.audio: librosa's own __pycache__
    assert "librosa's __pycache__" in _kernels.died_hint()


def test_the_temporary_fallback_is_private_or_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_kernels.tempfile, "gettempdir", lambda: str(tmp_path))
    path = _kernels._private_tmp()
    assert path == tmp_path / f"musicrec-numba-{os.getuid()}" and (path.stat().st_mode & 0o777) == 0o700
    path.chmod(0o777)  # as if planted by another user for everyone to write: numba would load its files as code
    assert _kernels._private_tmp() is None


_FORK_DURING_WARM_UP = """
import fcntl, os, select, threading, time
from engine.audio import _kernels

started = threading.Event()
def slow():
    started.set(); time.sleep(1.0)
warming = threading.Thread(target=_kernels.ensure_compiled, args=(slow,))
warming.start(); started.wait()
ready, done = os.pipe()
pid = os.fork()  # while another thread holds both locks
if pid == 0:
    _kernels.ensure_compiled(lambda: None)  # without the fork hook: waits forever on an inherited thread lock
    os.write(done, b"x")
    time.sleep(3.0)  # alive, and without the fork hook holding a copy of the flock's descriptor
    os._exit(0)
warming.join()
if not select.select([ready], [], [], 30)[0]:  # a hang guard
    print("child-hung")
else:
    fd = os.open(_kernels.lock_path(), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the child is still alive here
        print("free")
    except BlockingIOError:
        print("held")
os.kill(pid, 9)
os.waitpid(pid, 0)
"""


def test_a_process_forked_during_a_warm_up_neither_hangs_nor_keeps_the_lock(tmp_path: Path) -> None:
    p = _python(_FORK_DURING_WARM_UP, _env(NUMBA_CACHE_DIR=str(tmp_path / "cache")))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.split() == ["free"]  # the child warmed up, and the lock is free once the parent's warm-up ended


def test_cached_says_whether_the_kernels_were_compiled_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    assert not _kernels.cached()  # no directory yet
    (tmp_path / "nb" / "librosa").mkdir(parents=True)
    (tmp_path / "nb" / "README").touch()
    assert not _kernels.cached()  # only numba's index files count
    (tmp_path / "nb" / "librosa" / "beat.__beat_track_dp-558.py311.nbi").touch()
    assert _kernels.cached()
