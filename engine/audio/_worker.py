"""The worker side of an extraction run (engine/audio/_batch.py): one file -> the CSV text of its
rows, in a spawned process that fixed its parameters once (``init_worker``). A bad file is an
answer with a reason, never an exception; so is a file whose analysis fails unexpectedly."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine._inputfile import special_kind

from ._columns import ExtractorParams
from ._decode import BadAudio
from ._extract import analyse
from ._inputs import Job, read_tags, readable
from ._kernels import CompileLockTimeout

_PARAMS: ExtractorParams | None = None
# the reason of a file whose analysis raised what no check foresaw (a bug, or a file it cannot handle):
# that file is skipped with its traceback in the extraction report, and the run goes on
ANALYSIS_FAILED = "analysis failed"


def init_worker(params_json: dict[str, Any], warm: bool = True) -> None:
    """Process-pool initializer: fix the parameters and pay numba's compile once per worker."""
    global _PARAMS
    _PARAMS = ExtractorParams.from_json(params_json)
    if warm:
        from ._extract import warm_up

        # a give-up on the compile lock raised here would break the whole pool (read as a worker that died):
        # every file raises it instead, at once (engine/audio/_kernels.py remembers it)
        with contextlib.suppress(CompileLockTimeout):
            warm_up(_PARAMS)


@dataclasses.dataclass
class FileResult:
    id: str
    lines: str = ""  # CSV text of the file's rows
    rows: int = 0
    reason: str = ""
    message: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    silent_segments: int = 0
    traceback: str = ""  # for ANALYSIS_FAILED
    said: list[str] = dataclasses.field(default_factory=list)  # what the decoder wrote to stderr (_decoder_output)
    said_lines: int = 0


# A worker's peak memory grows by about 1,000 MiB per 10 minutes of audio over its ~430 MiB of libraries (README,
# "Memory": 1,432 MiB for 10 minutes of mono FLAC with --workers 1, measured 2026-12-06). The workers' libraries
# and one file decoding may take three quarters of the memory this process may use
_MIB_PER_SECOND, _LIBRARIES_MIB, _MEMORY_SHARE = 1000 / 600, 430, 0.75


def longest_seconds(workers: int) -> float:
    """The longest recording a worker decodes (at least 10 minutes, the server's limit): one file of that length
    beside the ``workers``' libraries fits in the memory this process may use (the machine's, or its container's
    limit). Longer ones are skipped as too long: a 220 KB WAV whose header said 3 Hz decoded to 10 hours, and the
    kernel killed the run. Two such files at once can still fill the memory: the README says to use fewer workers."""
    total_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    try:  # a container's limit (cgroup v2), when it is lower
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        total_mib = min(total_mib, int(limit) / 2**20) if limit.isdigit() else total_mib
    except OSError:
        pass
    return max(600.0, (_MEMORY_SHARE * total_mib - _LIBRARIES_MIB * max(1, workers)) / _MIB_PER_SECOND)


def extract_file(job: Job, sha: str, label_from: str, labels: dict[str, str] | None,
                 segment_seconds: float | None, workers: int = 1) -> FileResult:
    """Analyse one file into CSV text (worker side; never raises for a bad file). ``workers``: how many analyse
    at once, which bounds the length of a file each may decode (``longest_seconds``)."""
    params = _PARAMS or ExtractorParams()
    cpu0 = time.process_time()
    result = FileResult(job.id)
    try:
        if not job.path.is_file():  # never opened: a FIFO would block the run
            raise OSError(f"not a regular file ({special_kind(job.path)})")
        data = job.path.read_bytes()
        with _decoder_output(result):
            analysed = analyse(data, params, segment_seconds=segment_seconds, name=readable(job.path.name),
                               max_seconds=round(longest_seconds(workers)))
    except CompileLockTimeout:  # not this file's fault: the run stops, saying why
        raise
    except BadAudio as exc:
        result.reason, result.message = exc.reason, exc.message
        if exc.reason == "too long":
            result.message += (f" for {max(1, workers)} worker(s) in this machine's memory (a worker takes about "
                               "1 GB per 10 minutes decoded): split the file, or run with fewer --workers")
    except OSError as exc:
        result.reason, result.message = "unreadable", f"{readable(job.path.name)}: {exc.strerror or exc}"
    except Exception as exc:
        result.reason = ANALYSIS_FAILED
        result.message = (f"{readable(job.path.name)}: unexpected {type(exc).__name__} in the analysis "
                          f"({' '.join(str(exc).split())[:200]}); its traceback is in the extraction report")
        result.traceback = traceback.format_exc()
    else:
        tags = read_tags(job.path)
        label = {"folder": readable(job.path.parent.name), "tag": tags["genre"], "none": ""}.get(label_from, "")
        if labels is not None:
            label = labels.get(job.id, labels.get(job.path.name, ""))
        title = tags["title"] or job.id.rsplit(".", 1)[0]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for i, (row, start, n) in enumerate(zip(analysed.rows, analysed.starts, analysed.lengths, strict=True)):
            seconds = n / params.sample_rate
            row_id = f"{job.id}#{i}" if segment_seconds else job.id
            writer.writerow([row_id, n, *(f"{v:.9g}" for v in row.values()), label, title, tags["artist"],
                             tags["album"], job.id, i if segment_seconds else "", f"{start:g}", f"{seconds:.3f}",
                             f"{analysed.clipped_fraction:.6g}", sha])
        result.lines, result.rows = buf.getvalue(), len(analysed.rows)
        result.seconds, result.silent_segments = analysed.seconds, analysed.silent_segments
    result.cpu_seconds = time.process_time() - cpu0
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


SAID_SHOWN = 3  # distinct lines of a file's decoder output kept, each cut to SAID_WIDTH characters
SAID_WIDTH = 200
SAID_READ = 64 * 1024  # of the output, the bytes read for them (the rest is only counted)


@contextlib.contextmanager
def _decoder_output(result: FileResult) -> Iterator[None]:
    """Capture what the analysis writes to the process's stderr (file descriptor 2) into ``result``.

    libmpg123, inside libsndfile, prints its complaints about a damaged MP3 frame straight to stderr
    ("[src/libmpg123/layer3.c:...] error: part2_3_length ... too large"); from a worker they reached the
    user among other files' output with no file named. Captured here, one file at a time (a worker analyses
    one file at once), the extraction report lists them under the file (engine/audio/_batch.py).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            size = sink.tell()
            if size:
                sink.seek(0)
                head = sink.read(SAID_READ).decode("utf-8", "replace")
                sink.seek(0)
                result.said_lines = sum(chunk.count(b"\n") for chunk in iter(lambda: sink.read(1 << 20), b""))
                lines = [line.strip() for line in head.splitlines() if line.strip()]
                result.said_lines = max(result.said_lines, len(lines))
                result.said = [line[:SAID_WIDTH] for line in dict.fromkeys(lines)][:SAID_SHOWN]


