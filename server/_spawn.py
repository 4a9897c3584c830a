"""A musicrec server in a child process, for tests and benchmarks: ``musicrec serve --port 0``
started from this interpreter's environment, its port read from the log line that announces it."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def start_server_process(bundle: str | os.PathLike[str], *args: str,
                         timeout: float = 120) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run ``musicrec serve --port 0`` on ``bundle`` in its own process; yield it and its port once it
    logs its address (stderr stays readable). The process is terminated on exit. With ``--processes N``
    in ``args`` it yields once the first of the N logs its address; the others may still be loading."""
    musicrec = Path(sys.executable).with_name("musicrec")
    cmd = [str(musicrec), "serve", "--bundle", str(bundle), "--port", "0", *args]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    raise RuntimeError(f"musicrec serve exited with {proc.returncode} before serving")
                match = re.search(r"serving musicrec.v1.Recommender on [\d.]+:(\d+)", line)
                if match:
                    yield proc, int(match.group(1))
                    return
            raise TimeoutError(f"musicrec serve did not log its address within {timeout} s")
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
