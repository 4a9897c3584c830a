"""Audio in: decode recordings and describe them with librosa (the optional ``audio`` extra).

Importing this package loads neither librosa nor soundfile; the functions that need them import
them when called, so the schema preset and bundle code can read the column names on a lean install.

    from engine.audio import ExtractorParams, analyse
    rows = analyse(open("song.flac", "rb").read(), ExtractorParams()).rows   # one dict of descriptors

Decoding (``decode``: soundfile, mono mix, soxr resampling) is separate from analysis
(``describe(y, sr, params)``); ``musicrec extract`` runs both over files in a process pool
(``run_extraction``). ``write_corpus`` and ``song`` synthesize planted-style recordings (``STYLES``)
for tests and benchmarks.
"""

import numpy as np

from . import _kernels
from ._batch import ExtractionReport, run_extraction
from ._columns import (
    DESCRIPTOR_DOCS,
    DESCRIPTORS,
    EXTRA_FEATURES,
    EXTRACTOR_NAME,
    EXTRACTOR_VERSION,
    GTZAN_FEATURES,
    METADATA_COLUMNS,
    ExtractorParams,
    csv_columns,
    extractor_info,
)
from ._decode import REASONS, BadAudio, Decoded, check_usable, decode, sniff
from ._extract import (
    Analysed,
    AudioNotSupported,
    analyse,
    bundle_extractor,
    read_provenance,
    segment_seconds_problem,
    segments,
    sidecar_path,
    warm_up,
)
from ._kernels import CompileLockTimeout, died_hint
from ._kernels import cached as kernels_cached


def __getattr__(name: str) -> object:
    """The test-music synthesizer (``STYLES``, ``song``, ``write_corpus``) loads on first use, so that
    ``python -m engine.audio._synth`` runs it as a script without runpy's warning that the package
    had already imported it."""
    if name in ("STYLES", "song", "write_corpus"):
        from . import _synth

        return getattr(_synth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def describe(y: np.ndarray, sr: int, params: ExtractorParams) -> dict[str, float]:
    """Every descriptor of mono ``y`` at ``sr`` (see engine/audio/_analysis.py); loads librosa."""
    from ._analysis import describe as _describe

    return _describe(y, sr, params)


__all__ = [
    "DESCRIPTORS",
    "DESCRIPTOR_DOCS",
    "EXTRACTOR_NAME",
    "EXTRACTOR_VERSION",
    "EXTRA_FEATURES",
    "GTZAN_FEATURES",
    "METADATA_COLUMNS",
    "REASONS",
    "STYLES",
    "Analysed",
    "AudioNotSupported",
    "BadAudio",
    "CompileLockTimeout",
    "Decoded",
    "ExtractionReport",
    "ExtractorParams",
    "analyse",
    "bundle_extractor",
    "check_usable",
    "csv_columns",
    "decode",
    "describe",
    "died_hint",
    "extractor_info",
    "kernels_cached",
    "read_provenance",
    "run_extraction",
    "segment_seconds_problem",
    "segments",
    "sidecar_path",
    "sniff",
    "song",
    "warm_up",
    "write_corpus",
]

# Before librosa (and so numba) is imported, which no import above does: engine/audio/_kernels.py.
_kernels.use_own_cache()
