"""Extraction over many files: inputs -> one CSV row per track (or per segment), resumable.

- Files are read from the given files and folders (hidden files aside); a file's id is its path
  relative to the folder given (with several inputs, prefixed by the folder's name)
  (engine/audio/_inputs.py).
- Each file is keyed by the sha256 of its bytes. Rows go to the CSV with one ``write`` per file,
  as soon as the file is done, so an interrupted run loses nothing it wrote; a re-run skips every
  file whose content is already in the CSV (a half-written last line from a kill is cut first).
- A file that cannot be analysed never stops the run: it is counted under its reason
  (engine/audio/_decode.py) and listed in the extraction report, the JSON sidecar beside the CSV,
  which also records the extractor's version and parameters for the bundle. What a decoder prints while
  it reads a file (libmpg123 on a damaged frame) is listed there under that file (``decoder_output``).
- Files are analysed in a process pool (spawned workers warm librosa's JIT once each; what a
  worker does is engine/audio/_worker.py). This module is the parent side: the CSV, the report
  and the pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from engine._errors import CatalogError, ConfigError, EngineError

from ._columns import ExtractorParams, extractor_info
from ._decode import REASONS
from ._extract import segment_seconds_problem, sidecar_path
from ._inputs import LABEL_SOURCES, Job, find_files, read_label_table
from ._kernels import died_hint
from ._output import append_rows, check_output, drop_rows, start_output, write_report
from ._worker import ANALYSIS_FAILED, FileResult, extract_file, init_worker


@dataclasses.dataclass
class Progress:
    """What a progress display needs; ``files`` counts files dealt with in this run."""

    files: int = 0
    total: int = 0
    extracted: int = 0
    already: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    started: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass
class ExtractionReport:
    output: str
    extractor: dict[str, Any]
    segment_seconds: float | None
    label_from: str
    inputs: list[str]
    status: str = "running"
    started_at: str = ""
    files_found: int = 0
    extracted: int = 0
    already_extracted: int = 0
    duplicates: list[dict[str, str]] = dataclasses.field(default_factory=list)
    # files whose content changed since the CSV's rows of them were extracted: those rows were taken out
    changed_files: list[str] = dataclasses.field(default_factory=list)
    rows_dropped: int = 0
    # folders under the inputs not walked: a link making a loop or a second way to one, one that cannot be listed
    folders_skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    # --label-from FILE.csv: how many of its rows name no file found, and the first of them
    label_rows_unmatched: int = 0
    label_rows_unmatched_shown: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_files: list[dict[str, str]] = dataclasses.field(default_factory=list)
    # files whose decoding wrote to stderr (libmpg123 on a damaged MP3 frame): path, how many lines, the first ones
    decoder_output: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    silent_segments_left_out: int = 0
    rows_written: int = 0
    rows_total: int = 0
    audio_seconds: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    workers: int = 0
    worker_peak_rss_mib: float = 0.0

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["skipped_count"] = self.skipped_count
        out["realtime_factor_per_core"] = round(self.audio_seconds / self.cpu_seconds, 1) if self.cpu_seconds else None
        return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _match_labels(labels: dict[str, str], jobs: list[Job], report: ExtractionReport, table: str) -> None:
    """Count the rows of a label table that name no file found; refuse a table none of whose rows does."""
    names = {job.id for job in jobs} | {job.path.name for job in jobs}
    unmatched = [name for name in labels if name not in names]
    if len(unmatched) == len(labels):
        raise CatalogError(f"{table}: none of its {len(labels)} row(s) names a file found (such as "
                           f"{unmatched[0]!r}; files found: {', '.join(repr(j.id) for j in jobs[:3])}"
                           f"{', ...' if len(jobs) > 3 else ''}); the filename column takes a file's id (its path "
                           "under the folder given) or its bare name")
    report.label_rows_unmatched = len(unmatched)
    report.label_rows_unmatched_shown = unmatched[:10]


def run_extraction(
    inputs: Sequence[Path], out: Path, *, params: ExtractorParams | None = None,
    segment_seconds: float | None = None, label_from: str = "folder", workers: int = 2,
    progress: Callable[[Progress], None] | None = None,
) -> ExtractionReport:
    """Extract every file under ``inputs`` into ``out`` (appending to it when it exists).

    ``label_from``: ``folder`` (the parent folder's name), ``tag`` (the genre tag), ``none``, or
    the path of a CSV with ``filename,label`` columns. ``workers`` 0 runs in this process.
    Raises :class:`ConfigError` for a ``segment_seconds`` that is not None or a finite number over
    0, :class:`CatalogError` for bad inputs (no file found among them included), before anything is
    written; bad files are counted, never raised.
    """
    params = params or ExtractorParams()
    problem = segment_seconds_problem(segment_seconds)
    if problem is not None:
        raise ConfigError(f"segment_seconds (None for whole files) {problem}")
    if segment_seconds is not None:
        segment_seconds = float(segment_seconds)  # a plain float in the resume record, whatever number came
    if segment_seconds is not None and segment_seconds < params.min_seconds:
        raise CatalogError(f"--segment-seconds {segment_seconds:g} is below the extractor's minimum clip "
                           f"length of {params.min_seconds:g} s")
    labels = None
    if label_from not in LABEL_SOURCES:
        labels = read_label_table(Path(label_from))
    report = ExtractionReport(output=out.name, extractor=extractor_info(params), segment_seconds=segment_seconds,
                              label_from=label_from, inputs=[str(p) for p in inputs], workers=workers,
                              started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    jobs = find_files(inputs, exclude=[out, sidecar_path(out)], folders_skipped=report.folders_skipped)
    report.files_found = len(jobs)
    check_output(out)
    if labels is not None:
        _match_labels(labels, jobs, report, label_from)
    done, files, report.rows_total = start_output(out, report)
    stale: dict[str, set[str]] = {}  # file id -> the contents of it the CSV holds that are no longer its own
    state = Progress(total=len(jobs))
    t0 = time.monotonic()
    fd = os.open(out, os.O_WRONLY | os.O_APPEND)
    try:
        for job, _sha, result, same_as in _run(jobs, done, files, stale, labels, label_from, segment_seconds,
                                               params, workers):
            state.files += 1
            if result is None and same_as:
                report.duplicates.append({"path": str(job.path), "same_as": same_as})
            elif result is None:
                report.already_extracted += 1
                state.already += 1
            elif result.reason and not result.rows:
                report.skipped[result.reason] = report.skipped.get(result.reason, 0) + 1
                report.skipped_files.append({"path": str(job.path), "reason": result.reason,
                                             "detail": result.message,
                                             **({"traceback": result.traceback} if result.traceback else {})})
                state.skipped += 1
            else:
                try:
                    append_rows(fd, result.lines.encode("utf-8"), out)  # whole rows or none
                except OSError as exc:  # a disk that filled: no bug, and nothing written is lost
                    raise EngineError(f"cannot write {out}: {exc.strerror or exc}; the {report.rows_written} rows "
                                      "written before are kept: make room and run the same command again to "
                                      "resume") from None
                report.extracted += 1
                report.rows_written += result.rows
                report.rows_total += result.rows
                report.silent_segments_left_out += result.silent_segments
                state.extracted += 1
            if result is not None and result.said:
                report.decoder_output.append({"path": str(job.path), "lines": result.said_lines, "first": result.said,
                                              "extracted": not (result.reason and not result.rows)})
            if result is not None:
                report.audio_seconds += result.seconds
                state.audio_seconds += result.seconds
                report.cpu_seconds += result.cpu_seconds
                report.worker_peak_rss_mib = max(report.worker_peak_rss_mib, result.peak_rss_mib)
            if progress:
                progress(state)
        if stale:  # whole or not at all; a run stopped before this takes them out next time
            report.changed_files = sorted(stale)
            report.rows_dropped = drop_rows(out, stale)
            report.rows_total -= report.rows_dropped
        report.status = "finished"
    except BrokenProcessPool:
        report.status = "interrupted"
        raise EngineError(f"a worker process died (out of memory on a very long file, or killed); the "
                          f"{report.rows_written} rows written are kept: run the same command again to resume, "
                          f"with --workers 1 if memory is short; {died_hint()}") from None
    except BaseException:
        report.status = "interrupted"
        raise
    finally:
        os.close(fd)
        report.wall_seconds = round(time.monotonic() - t0, 2)
        report.audio_seconds, report.cpu_seconds = round(report.audio_seconds, 2), round(report.cpu_seconds, 2)
        report.worker_peak_rss_mib = round(report.worker_peak_rss_mib, 1)
        order = (*REASONS, "unreadable", ANALYSIS_FAILED)
        report.skipped = {r: report.skipped[r] for r in order if r in report.skipped}
        try:
            write_report(out, report)
        except OSError as exc:  # raised below, unless the run already failed (that error is the one to tell)
            unwritten = exc
        else:
            unwritten = None
    if unwritten is not None:
        raise EngineError(f"cannot write {unwritten.filename}: {unwritten.strerror or unwritten}; the CSV's "
                          f"{report.rows_total} rows are complete: make room and run the same command again to "
                          "write the report (every file is found done)")
    return report


def _run(jobs: list[Job], done: dict[str, str], files: dict[str, set[str]], stale: dict[str, set[str]],
         labels: dict[str, str] | None, label_from: str, segment_seconds: float | None, params: ExtractorParams,
         workers: int) -> Iterator[tuple[Job, str, FileResult | None, str]]:
    """(job, sha256, result, same_as) per file: result None when its content is already in the CSV as this file's
    (same_as "") or another's, or was met earlier in this run (same_as names that file). ``done`` and ``files`` are
    the CSV's contents by hash and by file; a file whose content the CSV holds other than its own is noted in
    ``stale``. Files are hashed lazily and at most 2 per worker are in flight, so memory stays flat on any number
    of files."""
    seen: dict[str, str] = {}  # content met in this run -> the first file's id

    def fresh(job: Job) -> tuple[str, str | None]:
        """(sha, None) for new content, else (sha, same_as)."""
        try:
            if not job.path.is_file():  # never opened (a FIFO would block): the worker says what it is
                return "", None
            sha = _sha256(job.path)
        except OSError:
            return "", None  # the worker reports it as unreadable
        old = files.get(job.id, set()) - {sha}
        if old:  # changed since: a second row of its id, which the index would take as the first (stale) one
            stale[job.id] = old
        if sha in seen:
            return sha, seen[sha]
        if sha in done:  # its own rows, or a copy of (or a new name for) a file extracted before ("": not known)
            return sha, "" if done[sha] in ("", job.id) else done[sha]
        seen[sha] = job.id
        return sha, None

    if workers <= 0:
        init_worker(params.to_json(), warm=False)
        warm = False
        for job in jobs:
            sha, same_as = fresh(job)
            if same_as is None:
                if not warm:  # as a pool's workers do: numba's load is not counted as the first file's analysis
                    init_worker(params.to_json())
                    warm = True
                yield job, sha, extract_file(job, sha, label_from, labels, segment_seconds, 1), ""
            else:
                yield job, sha, None, same_as
        return
    context = multiprocessing.get_context("spawn")  # never fork a process that may hold threads
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker,
                                initargs=(params.to_json(),)) as pool:
        in_flight: dict[cf.Future[FileResult], tuple[Job, str]] = {}
        queue = iter(jobs)
        try:
            for job in queue:
                sha, same_as = fresh(job)
                if same_as is not None:
                    yield job, sha, None, same_as
                    continue
                in_flight[pool.submit(extract_file, job, sha, label_from, labels, segment_seconds, workers)] = \
                    (job, sha)
                while len(in_flight) >= 2 * workers:
                    yield from _completed(in_flight)
            while in_flight:
                yield from _completed(in_flight)
        except BaseException:
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _completed(in_flight: dict[cf.Future[FileResult], tuple[Job, str]],
               ) -> Iterator[tuple[Job, str, FileResult, str]]:
    finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
    for future in finished:
        job, sha = in_flight.pop(future)
        yield job, sha, future.result(), ""
