"""Decoding: bytes or a file -> mono float32 samples at the extractor's rate (soundfile + soxr).

Nothing here analyses music. Every way a file can fail is one :class:`BadAudio` reason, so a
batch run can count them and a server can name the problem:

- ``not audio``: no audio format recognised (a text file, an image);
- ``unsupported``: a recognised audio container this build cannot decode (MP4/AAC, WMA, MIDI...);
- ``corrupt``: a supported format whose header or data cannot be decoded, or whose samples are
  not finite or far past full scale (over :data:`MAX_SAMPLE`);
- ``truncated``: the file ends before the audio its header declares (or is empty);
- ``too short``: decodes, but lasts less than the extractor's ``min_seconds``;
- ``silent``: decodes, but its loudest sample is below ``silence_dbfs`` (:func:`check_usable`), or it holds
  no sound at all (a constant signal: every sample one value, a DC offset or a file stuck at full scale);
- ``too long``: lasts more than the caller's ``max_seconds`` (the server's cap: a few MiB of FLAC
  can hold hours of near-constant audio, which would fill a worker's memory once decoded).
"""

from __future__ import annotations

import dataclasses
import io
import struct

import numpy as np

from engine._errors import InvalidQuery

REASONS = ("not audio", "unsupported", "corrupt", "truncated", "too short", "silent", "too long")

# Formats libsndfile 1.2 (bundled with soundfile >= 0.12) decodes, by their first bytes.
_SUPPORTED_MAGIC = (
    (b"RIFF", 0, "WAV"), (b"RF64", 0, "WAV"), (b"fLaC", 0, "FLAC"), (b"OggS", 0, "OGG"), (b"ID3", 0, "MP3"),
    (b"FORM", 0, "AIFF"), (b".snd", 0, "AU"), (b"caff", 0, "CAF"),
)  # fmt: skip
SUPPORTED_FORMATS = tuple(dict.fromkeys(name for _, _, name in _SUPPORTED_MAGIC))  # WAV, FLAC, ... in order
_UNSUPPORTED_MAGIC = (
    (b"ftyp", 4, "MP4/M4A (AAC or ALAC)"), (b"MThd", 0, "MIDI (a score, not a recording)"),
    (b"\x30\x26\xb2\x75", 0, "ASF/WMA"), (b"MAC ", 0, "Monkey's Audio"), (b"wvpk", 0, "WavPack"),
    (b"#!AMR", 0, "AMR"), (b".RMF", 0, "RealAudio"), (b"\x1aE\xdf\xa3", 0, "Matroska/WebM"),
)  # fmt: skip
BLOCK_FRAMES = 1 << 16
# The largest sample magnitude accepted (+120 dBFS). Integer formats decode within +-1; float ones
# can hold anything, but a real recording stays within about +-1 (a few dB over when clipped hot).
# The analysis squares spectra in float32 and overflows to "Input must be finite" from about 1e16,
# so a finite but absurd sample (1e30) is corrupt data, refused here with ten orders of margin.
MAX_SAMPLE = 1e6
# libsndfile's frame count for a FLAC whose STREAMINFO says "total samples unknown" (0, what streaming encoders
# write): no real clip comes near it (2**40 frames: 289 days at 44.1 kHz), so a count above it means unknown
UNKNOWN_FRAMES = 1 << 40
UNKNOWN_LENGTH_BLOCK = 1024  # frames per read of such a file: its last read errs, so at most this much is lost


class BadAudio(InvalidQuery):
    """A clip that cannot be analysed, with one of :data:`REASONS` and a message naming the problem.

    Subclasses :class:`InvalidQuery`, so a server answers INVALID_ARGUMENT."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Mono samples at ``sr`` (float32, shape (n_samples,)) and facts about the source."""

    y: np.ndarray
    sr: int
    source_format: str
    source_rate: int
    channels: int
    clipped_fraction: float  # share of source samples at full scale (|x| >= 0.999)

    @property
    def seconds(self) -> float:
        return len(self.y) / self.sr


def sniff(data: bytes) -> tuple[str, str]:
    """``("supported" | "unsupported" | "unknown", format name)`` from the first bytes."""
    for magic, offset, name in _SUPPORTED_MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return "supported", name
    for magic, offset, name in _UNSUPPORTED_MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return "unsupported", name
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        if data[1] & 0x06 == 0:  # MPEG sync with layer bits 00: an ADTS AAC stream
            return "unsupported", "AAC (ADTS)"
        return "supported", "MP3"
    return "unknown", ""


class _Tracked(io.BytesIO):
    """Remembers how far the decoder read: a decode error at the very end means the file was cut."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return out

    def readinto(self, buffer: object) -> int:
        n = super().readinto(buffer)  # type: ignore[arg-type]
        self.furthest = max(self.furthest, self.tell())
        return n


def decode(data: bytes, sr: int, *, name: str = "clip", max_seconds: float | None = None) -> Decoded:
    """Decode WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, AU or CAF ``data`` to mono at ``sr``.

    Raises :class:`BadAudio` (reasons ``not audio``, ``unsupported``, ``corrupt``, ``truncated``).
    Duration and level are not judged here (see :func:`check_usable`), except ``max_seconds``:
    a longer clip is refused as ``too long`` before (or while) it is decoded.
    """
    import soundfile as sf

    if not data:
        raise BadAudio("truncated", f"{name} is empty (0 bytes)")
    kind, fmt = sniff(data)
    if kind == "unsupported":
        raise BadAudio("unsupported", f"{name} is {fmt}, which this build cannot decode "
                                      "(supported: WAV, FLAC, OGG, MP3, AIFF, AU, CAF)")
    stream = _Tracked(data)
    # each block is mixed to mono as it is read, its checks counted as it goes: a few MiB of FLAC at 192 kHz and
    # 8 channels decode to GBs of float32 if every channel is held (the same values as mixing the whole at once)
    blocks: list[np.ndarray] = []
    frames = clipped = 0
    peak, peak_at = 0.0, 0
    try:
        with sf.SoundFile(stream) as f:
            fmt, rate, channels, declared = f.format, int(f.samplerate), int(f.channels), int(f.frames)
            step = BLOCK_FRAMES
            if declared >= UNKNOWN_FRAMES:  # not in the header: the file's end is the clip's end, and libsndfile
                declared, step = 0, UNKNOWN_LENGTH_BLOCK  # errs on the read that crosses it, losing that read
            limit = None if max_seconds is None else int(max_seconds * rate)
            if limit is not None and declared > limit:
                seconds = f"{declared / rate:.4f}".rstrip("0").rstrip(".")  # 600 s and a frame is not "600 s"
                raise BadAudio("too long", f"{name} lasts {seconds} s; at most {max_seconds:g} s")
            try:
                while True:
                    block = f.read(step, dtype="float32", always_2d=True)
                    if not len(block):
                        break
                    if not np.isfinite(block).all():
                        raise BadAudio("corrupt", f"{name} holds non-finite samples (NaN or infinity)")
                    magnitude = np.abs(block)
                    at = int(magnitude.argmax())
                    if magnitude.flat[at] > peak:
                        peak, peak_at = float(magnitude.flat[at]), frames + at // channels
                    clipped += int(np.count_nonzero(magnitude >= 0.999))
                    blocks.append(block.mean(axis=1) if channels > 1 else block[:, 0])
                    frames += len(block)
                    if limit is not None and frames > limit:
                        raise BadAudio("too long", f"{name} lasts more than {max_seconds:g} s")
            except (sf.LibsndfileError, RuntimeError) as exc:
                if fmt == "FLAC" and stream.furthest >= len(data) and declared == 0 and frames:
                    pass  # an unknown-length FLAC's decoder errs at its end: what it decoded is the clip
                elif fmt == "FLAC" and stream.furthest >= len(data):
                    raise BadAudio("truncated", f"{name} ends after {frames / rate:.1f} s of the "
                                                f"{declared / rate:.1f} s its header declares") from None
                else:
                    raise BadAudio("corrupt", f"{name}: {fmt} data cannot be decoded after {frames / rate:.1f} s "
                                              f"({_first_line(exc)})") from None
    except sf.LibsndfileError as exc:
        if kind == "unknown":
            raise BadAudio("not audio", f"{name} is not in any audio format (first bytes {data[:8]!r})") from None
        raise BadAudio("corrupt", f"{name} looks like {fmt} but cannot be opened ({_first_line(exc)})") from None
    missing = _declared_but_missing(data, fmt, frames, declared)
    if missing:
        raise BadAudio("truncated", f"{name} {missing}")
    if frames == 0:
        raise BadAudio("too short", f"{name} holds no audio frames")
    if peak > MAX_SAMPLE:
        raise BadAudio("corrupt", f"{name} holds a sample of magnitude {peak:.3g} (at {peak_at / rate:.2f} s); "
                                  f"full scale is 1 and at most {MAX_SAMPLE:g} is accepted")
    y = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    del blocks
    if y.min() == y.max():  # one value throughout, however loud: no sound (a DC offset, a file stuck at full scale)
        raise BadAudio("silent", f"{name} holds no sound: every sample is {float(y[0]):.3g} (a constant signal)")
    clipped_fraction = clipped / (frames * channels)
    if rate != sr:
        import soxr

        y = soxr.resample(y, rate, sr, quality="HQ").astype(np.float32, copy=False)
    return Decoded(y=np.ascontiguousarray(y, dtype=np.float32), sr=sr, source_format=fmt, source_rate=rate,
                   channels=channels, clipped_fraction=clipped_fraction)


def check_usable(y: np.ndarray, sr: int, *, min_seconds: float, silence_dbfs: float, name: str = "clip") -> None:
    """Refuse a clip that is too short to analyse or silent (:class:`BadAudio`)."""
    seconds = len(y) / sr
    if seconds < min_seconds:
        raise BadAudio("too short", f"{name} lasts {seconds:.2f} s; at least {min_seconds:g} s are needed")
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    if peak_db < silence_dbfs:
        raise BadAudio("silent", f"{name} is silent: its loudest sample is {peak_db:.0f} dBFS "
                                 f"(below {silence_dbfs:g} dBFS)")


def _declared_but_missing(data: bytes, fmt: str, frames: int, declared: int) -> str | None:
    """Why a decodable file is incomplete, or None. libsndfile shortens a cut WAV silently, and an
    Ogg stream cut before its last page decodes up to the cut."""
    if fmt in _SAMPLE_BYTES:
        found = _SAMPLE_BYTES[fmt](data)
        if found is not None:
            offset, size = found
            if size not in (0, 0xFFFFFFFF) and offset + size > len(data):
                return (f"ends {offset + size - len(data):,} bytes before the end of the audio its header "
                        f"declares ({max(0, len(data) - offset):,} of {size:,} bytes of samples present)")
        if fmt in ("WAV", "WAVEX"):
            return None
    elif fmt == "OGG":
        return None if _ogg_complete(data) else "ends before the Ogg stream's last page (the file was cut)"
    if declared > 0 and frames < 0.99 * declared:  # (where the header's frames are libsndfile's own reading)
        return f"decodes to {frames:,} frames of the {declared:,} its header declares"
    return None


def _wav_data_chunk(data: bytes) -> tuple[int, int] | None:
    """(offset of the samples, declared size) of a RIFF/WAVE file's ``data`` chunk."""
    if data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"data":
            return pos + 8, size
        pos += 8 + size + (size & 1)
    return None


def _rf64_data_chunk(data: bytes) -> tuple[int, int] | None:
    """As ``_wav_data_chunk`` for RF64, whose ``data`` chunk says 0xFFFFFFFF and whose ``ds64`` chunk, first after
    the header, holds the 64-bit size."""
    if data[8:16] != b"WAVEds64" or len(data) < 36:
        return None
    found = _wav_data_chunk(data)
    return None if found is None else (found[0], struct.unpack("<Q", data[28:36])[0])


def _aiff_sound_chunk(data: bytes) -> tuple[int, int] | None:
    """(offset, declared size) of an AIFF/AIFF-C file's sample bytes: its ``SSND`` chunk's, past the chunk's own
    offset and block-size fields (big-endian chunks, padded to even sizes)."""
    if data[:4] != b"FORM" or data[8:12] not in (b"AIFF", b"AIFC"):
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        if chunk == b"SSND":
            return pos + 16, max(0, size - 8)
        pos += 8 + size + (size & 1)
    return None


def _au_data(data: bytes) -> tuple[int, int] | None:
    """(offset, declared size) of a Sun/NeXT ``.au`` file's samples (0xFFFFFFFF: size unknown)."""
    if data[:4] != b".snd" or len(data) < 12:
        return None
    offset, size = struct.unpack(">II", data[4:12])
    return offset, size


# the formats whose header declares how many bytes of samples follow, and where to read that
_SAMPLE_BYTES = {"WAV": _wav_data_chunk, "WAVEX": _wav_data_chunk, "RF64": _rf64_data_chunk, "AIFF": _aiff_sound_chunk,
                 "AU": _au_data}


def _ogg_complete(data: bytes) -> bool:
    """True when the last Ogg page is whole and flagged end-of-stream."""
    last = data.rfind(b"OggS")
    if last < 0 or last + 27 > len(data):
        return False
    header_type, segments = data[last + 5], data[last + 26]
    if last + 27 + segments > len(data):
        return False
    length = 27 + segments + sum(data[last + 27:last + 27 + segments])
    return last + length <= len(data) and bool(header_type & 0x04)


def _first_line(exc: BaseException) -> str:
    """The first line of a decoder error, without soundfile's "Error opening <..._Tracked object at
    0x...>: " prefix (the in-memory stream's repr; the callers' messages name the file)."""
    text = str(getattr(exc, "error_string", None) or exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
