"""Follow the README as a newcomer does: its ```bash blocks in order, in a scratch copy of the repository
beside the dataset (``../shared/data``), each block one ``bash -e`` script run from the copy's root.

What is changed from the text, and why (nothing else is):
- installs (``python3.11 -m venv .venv && .venv/bin/pip install ...``) are left out: the copy's ``.venv`` is
  the venv running these tests, which has every extra installed;
- ``.venv/bin/python -m pytest`` is left out: this is that run;
- the README's ports (gRPC 50051, HTTP 8080, metrics 9464) become free ports, and ``musicrec query`` lines
  get ``--address`` with the gRPC one: a server someone else runs on them must not answer (or block) these;
- a block right after ``<!-- not run by tests: REASON -->`` is not run (say why: it needs docker, a file
  the repository does not have...); a block using npm is skipped when npm is not installed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests._ports import unused_ports

BLOCK = re.compile(r"(?:<!-- not run by tests: (?P<why>.*?) -->\n)?```bash\n(?P<body>.*?)```", re.S)
INSTALL = re.compile(r"^python3\.11 -m venv \.venv && \.venv/bin/pip install [^&]*(?:&& )?")
BLOCK_TIMEOUT = 3 * 3600  # a real-data build on a busy 2-core machine can take most of an hour


@dataclasses.dataclass
class Block:
    index: int
    body: str
    skip: str | None
    script: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    ran: bool = False


README_PORTS = ("50051", "8080", "9464")


def runnable(body: str, ports: dict[str, int]) -> str:
    """The block as a script: the changes listed in the module docstring, nothing else. ``ports`` maps
    each of README_PORTS to the port used instead."""
    lines = []
    for line in body.splitlines():
        line = INSTALL.sub("", line)
        if not line.strip() or line.strip().startswith(".venv/bin/python -m pytest"):
            continue
        for readme_port, port in ports.items():
            line = re.sub(rf"\b{readme_port}\b", str(port), line)
        if "musicrec query" in line and "--address" not in line:
            command, hash_, comment = line.partition("  #")
            line = f"{command.rstrip()} --address 127.0.0.1:{ports['50051']}" + (hash_ + comment if hash_ else "")
        lines.append(line)
    return "\n".join(lines) + "\n"


class ReadmeRun:
    """The README's blocks, run in order, each at most once, as far as the callers ask."""

    def __init__(self, repo: Path, scratch: Path, data: Path) -> None:
        self.root = scratch / "main"
        tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                                 capture_output=True, text=True, check=True).stdout.split("\0")
        for name in filter(None, tracked):
            source = repo / name
            if source.is_file():
                target = self.root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        self.copied = {p.name for p in self.root.iterdir()}  # the repository's own top-level entries
        (self.root / ".venv").symlink_to(Path(sys.prefix))
        self.has_data = data.is_file()
        if self.has_data:
            (scratch / "shared" / "data").mkdir(parents=True)
            (scratch / "shared" / "data" / "spotify_tracks.csv").symlink_to(data.resolve())
        text = (self.root / "README.md").read_text(encoding="utf-8")
        self.blocks = [Block(i, m.group("body"), m.group("why")) for i, m in enumerate(BLOCK.finditer(text))]
        self.next = 0

    def run_through(self, wanted: str) -> Block:
        """Run blocks in order up to and including the first whose text contains ``wanted``."""
        target = next((b for b in self.blocks if wanted in b.body), None)
        if target is None:
            raise LookupError(f"no README bash block contains {wanted!r}")
        while self.next <= target.index:
            self._run(self.blocks[self.next])
            self.next += 1
        return target

    def run_all(self) -> list[Block]:
        self.run_through(self.blocks[-1].body)
        return self.blocks

    def _run(self, block: Block) -> None:
        import pytest

        if block.skip is None and "npm " in block.body and shutil.which("npm") is None:
            block.skip = "npm is not installed"
        if block.skip is not None:
            return
        if "../shared/data" in block.body and not self.has_data:
            pytest.skip(f"README block {block.index} needs the real dataset (not found; set MUSICREC_DATA)")
        # a block that fails must not leave its server running (and this run waiting on its output)
        ports = dict(zip(README_PORTS, unused_ports(len(README_PORTS)), strict=True))
        block.script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + runnable(block.body, ports)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "MUSICREC_DATA")}
        t0 = time.monotonic()
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.script], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False)
        block.seconds = time.monotonic() - t0
        block.stdout, block.stderr, block.ran = done.stdout, done.stderr, True
        if done.returncode != 0:
            raise AssertionError(f"README block {block.index} failed (exit {done.returncode}):\n{block.script}\n"
                                 f"--- stdout (end) ---\n{done.stdout[-4000:]}\n--- stderr (end) ---\n"
                                 f"{done.stderr[-4000:]}")
