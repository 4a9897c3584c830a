"""``musicrec extract``: audio files and folders -> a features CSV (see engine/audio/_batch.py).

Exit status: 0 every file extracted (or already in the CSV); 3 finished, but some files were
skipped (each listed with its reason in the extraction report beside the CSV), or a folder could not be
listed; 2 bad input (no such input, no file in the folders given, an --out that cannot be written, a label
table that cannot be read or matches no file, an existing CSV written by another extractor or with another
segment length: the CSV and its report are left as they were); 1 a write failed midway (a full disk: the rows
written before are kept whole; re-run the same command to resume); 130 interrupted (everything written so far
is kept: re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_SKIPPED = 3
# --workers: each worker is a spawned Python process of ~430 MiB (the engine and librosa; measured in
# benchmarks/RESULTS.md) doing CPU-bound analysis, so past the machine's cores more only costs memory.
# 256 is above the core count of the largest common servers and refuses a typo that would spawn
# thousands of processes; the default (one per core) is held to it too.
MAX_WORKERS = 256


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "extract", help="audio files -> a features CSV (GTZAN-layout descriptors, librosa)",
        description="Analyse audio files (WAV, FLAC, OGG, MP3, AIFF, AU, CAF; any rate, mono or stereo) into one "
                    "CSV row per track, or per segment, named like the GTZAN feature tables (filename, length, "
                    "chroma_stft_mean, ..., mfcc20_var, label) plus tempo confidence, beat strength, onset rate, "
                    "key/mode, loudness, flatness, contrast and chroma bins. Resumable: re-running skips files "
                    "already in the CSV. Bad files are counted and listed in <out stem>.extraction.json. Exit "
                    "status 3 means it finished with some files skipped. Needs the audio extra.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, help="CSV to write or extend (resume)")
    p.add_argument("--segment-seconds", type=_segment_seconds, metavar="S",
                   help="cut each file into S-second segments, one row each instead of one per file (column song "
                        "names the file)")
    p.add_argument("--label-from", default="folder", metavar="folder|tag|none|FILE.csv",
                   help="genre label: the parent folder's name (default), the genre tag, none, or a CSV with "
                        "filename,label columns")
    p.add_argument("--workers", type=_workers, default=min(os.cpu_count() or 1, MAX_WORKERS),
                   help=f"worker processes, up to {MAX_WORKERS} (default: one per core; 0: in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_extract)


def _segment_seconds(text: str) -> float:
    """--segment-seconds: run_extraction's own check, made while parsing, so a bad value is refused
    before the CSV or its report is written."""
    from engine.audio import segment_seconds_problem  # the engine loads only when the flag is given

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text.strip()!r} is not a number") from None
    problem = segment_seconds_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def _workers(text: str) -> int:
    """--workers: 0 (in this process) to MAX_WORKERS."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text.strip()!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (in this process) or more, got {value}")
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS}, got {value}")
    return value


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _progress_line(state: Any) -> str:
    elapsed = max(time.monotonic() - state.started, 1e-9)
    rate = state.files / elapsed
    eta = (state.total - state.files) / rate if rate > 0 else 0.0
    return (f"\r[{state.files:>{len(str(state.total))}}/{state.total}] {rate:5.1f} files/s, "
            f"{state.audio_seconds / elapsed:5.0f}x real time, ETA {_duration(eta)}, "
            f"{state.extracted} extracted, {state.already} already done, {state.skipped} skipped ")


def cmd_extract(args: argparse.Namespace) -> int:
    try:
        from engine.audio import run_extraction
    except ImportError as exc:  # pragma: no cover - depends on the install
        from engine import install_hint
        print(f"musicrec extract: error: the audio extra is not installed ({exc}); "
              f"{install_hint('audio')}", file=sys.stderr)
        return 2
    show = not args.quiet and sys.stderr.isatty()
    last = [0.0]

    def progress(state: Any) -> None:
        now = time.monotonic()
        if show and (now - last[0] > 0.25 or state.files == state.total):
            last[0] = now
            print(_progress_line(state), end="", file=sys.stderr, flush=True)

    from engine.audio import kernels_cached

    if not args.quiet and not kernels_cached() and all(p.exists() for p in args.inputs):
        print("musicrec extract: first analysis with this cache: librosa's kernels are compiled before the first "
              "file (about 30 s, once)", file=sys.stderr)
    try:
        report = run_extraction(args.inputs, args.out, segment_seconds=args.segment_seconds,
                                label_from=args.label_from, workers=args.workers, progress=progress)
    except KeyboardInterrupt:
        print(f"\nmusicrec extract: interrupted; every row written to {args.out} is kept: run the same command "
              "again to resume", file=sys.stderr)
        return 130
    if show:
        print(file=sys.stderr)
    from engine.audio import sidecar_path

    # CPU time of the files' decoding and analysis, summed over the workers: neither their start nor a first compile
    rate = (f" (decoding and analysis {report.cpu_seconds:.1f} CPU-s over the workers: "
            f"{report.audio_seconds / report.cpu_seconds:.0f}x real time per core)") if report.cpu_seconds else ""
    print(f"{report.files_found} files: {report.extracted} extracted ({report.rows_written} rows), "
          f"{report.already_extracted} already in {args.out}, {report.skipped_count} skipped; "
          f"{report.rows_total} rows in all; {report.audio_seconds:.0f} s of audio in {report.wall_seconds:.1f} s"
          f"{rate}")
    if report.duplicates:
        print(f"{len(report.duplicates)} file(s) repeat the content of another file and were not repeated "
              f"(listed under duplicates in {sidecar_path(args.out)})")
    if report.changed_files:  # a second row of one id would have kept the first, stale one in the bundle
        shown = ", ".join(report.changed_files[:3]) + (", ..." if len(report.changed_files) > 3 else "")
        print(f"{len(report.changed_files)} file(s) changed since they were extracted ({shown}): their "
              f"{report.rows_dropped} old row(s) were taken out of {args.out}")
    if report.folders_skipped:
        print(f"musicrec extract: warning: {len(report.folders_skipped)} folder(s) not walked (listed under "
              f"folders_skipped in {sidecar_path(args.out)}):", file=sys.stderr)
        _first_ten([f"{item['path']}: {item['reason']}" for item in report.folders_skipped])
    if report.label_rows_unmatched:
        shown = report.label_rows_unmatched_shown
        more = ", ..." if report.label_rows_unmatched > len(shown) else ""
        print(f"musicrec extract: warning: {report.label_rows_unmatched} row(s) of {args.label_from} name no file "
              f"found, so their labels were not used: {', '.join(repr(n) for n in shown)}{more} (listed under "
              f"label_rows_unmatched_shown in {sidecar_path(args.out)})", file=sys.stderr)
    if report.silent_segments_left_out:
        print(f"{report.silent_segments_left_out} silent segment(s) left out")
    if report.decoder_output:
        print(f"the decoder wrote messages while reading {len(report.decoder_output)} file(s) (libmpg123 on an "
              f"MP3 frame it could not read, say); each file's are under decoder_output in {sidecar_path(args.out)}:",
              file=sys.stderr)
        _first_ten([f"{item['path']}: {item['lines']} line(s), first: {item['first'][0]}"
                    for item in report.decoder_output])
    if report.skipped_count:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.skipped.items())
        print(f"finished with {report.skipped_count} file(s) skipped ({reasons}); each is listed with its "
              f"reason in {sidecar_path(args.out)}", file=sys.stderr)
        _first_ten([f"{item['reason']}: {item['detail']}" for item in report.skipped_files])
        return EXIT_SKIPPED
    if any(item["reason"].startswith("cannot be listed") for item in report.folders_skipped):
        return EXIT_SKIPPED  # the files in a folder that could not be listed were not extracted
    return 0


def _first_ten(lines: list[str]) -> None:
    """The first ten of a list the extraction report holds whole, on stderr."""
    for line in lines[:10]:
        print(f"  {line}", file=sys.stderr)
    if len(lines) > 10:
        print(f"  ... and {len(lines) - 10} more", file=sys.stderr)
