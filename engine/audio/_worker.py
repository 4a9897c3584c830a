"""The worker side of an extraction run (engine/audio/_batch.py): one file -> the CSV text of its
rows, in a spawned process that fixed its parameters once (``init_worker``). A bad file is an
answer with a reason, never an exception; so is a file whose analysis fails unexpectedly."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import resource
import stat
import time
import traceback
from pathlib import Path
from typing import Any

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


def extract_file(job: Job, sha: str, label_from: str, labels: dict[str, str] | None,
                 segment_seconds: float | None) -> FileResult:
    """Analyse one file into CSV text (worker side; never raises for a bad file)."""
    params = _PARAMS or ExtractorParams()
    cpu0 = time.process_time()
    result = FileResult(job.id)
    try:
        if not job.path.is_file():  # never opened: a FIFO would block the run
            raise OSError(f"not a regular file ({_kind(job.path)})")
        data = job.path.read_bytes()
        analysed = analyse(data, params, segment_seconds=segment_seconds, name=readable(job.path.name))
    except CompileLockTimeout:  # not this file's fault: the run stops, saying why
        raise
    except BadAudio as exc:
        result.reason, result.message = exc.reason, exc.message
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


def _kind(path: Path) -> str:
    """What a path that is not a regular file is, for the skip's message."""
    if path.is_symlink() and not path.exists():
        return "a link to a missing file"
    mode = path.lstat().st_mode if path.exists() or path.is_symlink() else 0
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or other special file"
