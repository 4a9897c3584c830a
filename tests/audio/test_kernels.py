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
        import time
        from engine.audio import _kernels
        def warm():
            with open({str(log)!r}, "a") as fh:
                fh.write(f"start {{time.monotonic()}}\\n"); fh.flush(); time.sleep(0.6)
                fh.write(f"end {{time.monotonic()}}\\n")
        _kernels.ensure_compiled(warm)
        _kernels.ensure_compiled(warm)  # once per process
    """
    procs = [_python(code, _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    events = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end", "start", "end"]  # never two warm-ups at once
    assert float(events[2][1]) >= float(events[1][1])
    assert (tmp_path / "cache" / _kernels.LOCK_NAME).exists()


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


def test_cached_says_whether_the_kernels_were_compiled_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    assert not _kernels.cached()  # no directory yet
    (tmp_path / "nb" / "librosa").mkdir(parents=True)
    (tmp_path / "nb" / _kernels.LOCK_NAME).touch()
    assert not _kernels.cached()  # a lock file is not a kernel
    (tmp_path / "nb" / "librosa" / "beat.__beat_track_dp-558.py311.nbi").touch()
    assert _kernels.cached()
