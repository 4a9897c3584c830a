"""One clip -> rows of descriptors (whole, or one row per fixed-length segment), shared by
``musicrec extract`` and the server's audio queries, so both analyse audio identically."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine._errors import CatalogError, EngineError

from ._columns import EXTRACTOR_NAME, EXTRACTOR_VERSION, ExtractorParams
from ._decode import BadAudio, check_usable, decode


class AudioNotSupported(EngineError, RuntimeError):
    """An audio query against a bundle that was not built from this extractor's output."""


@dataclasses.dataclass(frozen=True)
class Analysed:
    """Descriptor rows of one clip (one per segment, or one for the whole clip)."""

    rows: list[dict[str, float]]
    starts: list[float]  # start of each row's audio, seconds
    lengths: list[int]  # samples of each row's audio, at the extractor's rate
    seconds: float  # the clip's duration
    clipped_fraction: float
    silent_segments: int = 0


def segment_seconds_problem(value: object) -> str | None:
    """Why ``value`` cannot be a segment length, or None when it can: None (whole files) or a finite
    number of seconds over 0. The one check of ``run_extraction`` and ``musicrec extract
    --segment-seconds``: a NaN or inf would otherwise reach the CSV's resume record."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return None
    return f"must be a finite number of seconds over 0, got {value!r}"


def segments(y: np.ndarray, sr: int, seconds: float | None) -> list[tuple[float, np.ndarray]]:
    """``(start in seconds, samples)`` of consecutive ``seconds``-long pieces of ``y``; a remainder
    shorter than a segment is left out, and a clip shorter than one segment is one piece.
    ``seconds`` None: the whole clip."""
    if not seconds:
        return [(0.0, y)]
    step = round(seconds * sr)
    count = len(y) // step
    if count == 0:
        return [(0.0, y)]
    return [(i * seconds, y[i * step:(i + 1) * step]) for i in range(count)]


def analyse(data: bytes, params: ExtractorParams, *, segment_seconds: float | None = None,
            name: str = "clip", max_seconds: float | None = None) -> Analysed:
    """Decode ``data`` and describe it. Raises :class:`BadAudio` naming why it cannot be analysed.
    With ``segment_seconds``, a silent segment (a quiet intro) is left out and counted."""
    from ._analysis import describe

    decoded = decode(data, params.sample_rate, name=name, max_seconds=max_seconds)
    check_usable(decoded.y, decoded.sr, min_seconds=params.min_seconds, silence_dbfs=params.silence_dbfs,
                 name=name)
    rows, starts, lengths, silent = [], [], [], 0
    for start, piece in segments(decoded.y, decoded.sr, segment_seconds):
        try:
            check_usable(piece, decoded.sr, min_seconds=min(params.min_seconds, len(piece) / decoded.sr),
                         silence_dbfs=params.silence_dbfs)
        except BadAudio:
            silent += 1
            continue
        rows.append(describe(piece, decoded.sr, params))
        starts.append(start)
        lengths.append(len(piece))
    if not rows:  # the sound is only in a partial segment at the end, or every full segment is quiet
        raise BadAudio("silent", f"{name}: every {segment_seconds:g} s segment is silent")
    return Analysed(rows=rows, starts=starts, lengths=lengths, seconds=decoded.seconds,
                    clipped_fraction=decoded.clipped_fraction, silent_segments=silent)


def warm_up(params: ExtractorParams | None = None) -> float:
    """Make numba compile (or load from its cache) librosa's kernels now rather than in the first
    real request (a short synthetic clip through the analysis, once per process). Returns the seconds
    taken (about 0 when this process is warm already)."""
    import time

    from ._analysis import compile_kernels

    t0 = time.perf_counter()
    compile_kernels(params or ExtractorParams())
    return time.perf_counter() - t0


# -- provenance: the sidecar beside the CSV, and the bundle manifest's "audio" block --------------

def sidecar_path(csv_path: str | os.PathLike[str]) -> Path:
    """``features.csv`` -> ``features.extraction.json`` (the extraction report and the extractor)."""
    path = Path(csv_path)
    return path.with_name(path.stem + ".extraction.json")


def read_provenance(csv_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The extractor block and segment length recorded beside ``csv_path`` by ``musicrec extract``,
    for the bundle manifest; None when the CSV did not come from the extractor."""
    side = sidecar_path(csv_path)
    if not side.is_file():
        return None
    try:
        report = json.loads(side.read_text(encoding="utf-8"))
        extractor = report["extractor"]
        ExtractorParams.from_json(extractor["params"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{side}: not a readable extraction report ({exc}); re-run musicrec extract "
                          "or move the file away") from None
    if report.get("output") != Path(csv_path).name:
        return None  # a report about another CSV
    return {"extractor": extractor, "segment_seconds": report.get("segment_seconds"),
            "sidecar": side.name}


def bundle_extractor(manifest: dict[str, Any]) -> tuple[ExtractorParams, float | None]:
    """The extractor parameters and segment length an audio query against this bundle must use.
    Raises :class:`AudioNotSupported` when the bundle was not built from extracted audio, or by an
    extractor version this code does not implement."""
    audio = manifest.get("audio")
    if not audio:
        raise AudioNotSupported("this bundle was not built from audio extracted by `musicrec extract`, so an "
                                "audio clip cannot be placed among its tracks; send track ids or feature values")
    extractor = audio["extractor"]
    if extractor.get("name") != EXTRACTOR_NAME or extractor.get("version") != EXTRACTOR_VERSION:
        raise AudioNotSupported(f"this bundle's audio was extracted by {extractor.get('name')} version "
                                f"{extractor.get('version')}; this server implements {EXTRACTOR_NAME} version "
                                f"{EXTRACTOR_VERSION}")
    return ExtractorParams.from_json(extractor["params"]), audio.get("segment_seconds")

