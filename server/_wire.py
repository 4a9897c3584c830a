"""Hand-assembled SimilarTracksResponse (and BatchSimilarTracksResponse) bytes for the hot path.

Building ten ``Track`` messages per response cost more than the search itself. Each track's
serialized ``Track`` is cached the first time it is returned, and a response is assembled by
concatenating length-delimited fields: the protobuf wire format is a concatenation of fields, so
the bytes are exactly what ``SimilarTracksResponse.SerializeToString()`` would produce for the same
message (tests parse them with the generated classes and compare). Only responses without
per-track features take this path.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from engine import Recommender, SimilarResult

from . import _convert as conv
from ._generated.musicrec.v1 import recommender_pb2 as pb


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


_SCORE_TAG = _varint((2 << 3) | 5)  # ScoredTrack.score: float, fixed32
_pack_float = struct.Struct("<f").pack


class TrackBytes:
    """Per row, a ``SimilarTracksResponse.results`` entry up to its score, cached on first use (one
    bundle's worth at most): the ScoredTrack's tag and length, its ``track`` field, the score's tag.
    The score's 4 bytes are all that differ between responses.

    It holds no reference to its Recommender: it is the value of a WeakKeyDictionary keyed by the
    Recommender, and a value that referenced its key would keep every replaced bundle alive."""

    def __init__(self, n_tracks: int) -> None:
        self._cache: list[bytes | None] = [None] * n_tracks

    def scored_prefix(self, rec: Recommender, row: int) -> bytes:
        cached = self._cache[row]
        if cached is None:  # similar_response_bytes reads _cache itself first
            track = _length_delimited(1, conv.track_pb(rec, row).SerializeToString())  # ScoredTrack.track
            length = len(track) + len(_SCORE_TAG) + 4
            cached = _varint((1 << 3) | 2) + _varint(length) + track + _SCORE_TAG
            self._cache[row] = cached
        return cached


_ZERO = _pack_float(0.0)
_pack_double = struct.Struct("<d").pack
_NO_DOUBLE = _pack_double(0.0)
_TOOK_TAG = _varint((1 << 3) | 1)  # SearchStats.took_ms: double, fixed64
_EXAMINED_TAG = _varint(2 << 3)  # SearchStats.candidates_examined: uint32, varint
_FILTERED_TAG = _varint(3 << 3)  # SearchStats.candidates_filtered: uint32, varint
_EXHAUSTED = _varint(4 << 3) + b"\x01"  # SearchStats.exhausted: true


def similar_response_bytes(tracks: TrackBytes, rec: Recommender, result: SimilarResult) -> bytes:
    rows = result.rows.tolist()
    # the scores' float32 bytes, 4 per result, as protobuf writes a float field
    packed = np.ascontiguousarray(result.scores, dtype="<f4").tobytes()
    if len(packed) != 4 * len(rows):
        raise ValueError(f"{len(rows)} rows but {len(packed) // 4} scores")
    cache, prefix = tracks._cache, tracks.scored_prefix
    parts = []
    for i, row in enumerate(rows):
        score = packed[4 * i:4 * i + 4]
        if score == _ZERO:
            parts.append(_zero_scored(rec, row))
        else:
            parts.append((cache[row] or prefix(rec, row)) + score)
    for seed in result.unknown_seed_ids:
        parts.append(_length_delimited(2, seed.encode()))  # unknown_seed_ids
    parts.append(_length_delimited(3, _stats_bytes(result)))
    return b"".join(parts)


def batch_response_bytes(tracks: TrackBytes, rec: Recommender, results: Sequence[SimilarResult],
                         took_ms: float) -> bytes:
    """A BatchSimilarTracksResponse: each answer as ``similar_response_bytes`` builds it, then ``took_ms``."""
    parts = [_length_delimited(1, similar_response_bytes(tracks, rec, r)) for r in results]
    took = _pack_double(took_ms)
    if took != _NO_DOUBLE:
        parts.append(_BATCH_TOOK_TAG + took)
    return b"".join(parts)


_BATCH_TOOK_TAG = _varint((2 << 3) | 1)  # BatchSimilarTracksResponse.took_ms: double, 64-bit


def _stats_bytes(result: SimilarResult) -> bytes:
    """``SearchStats(...).SerializeToString()`` for the result's statistics, built by hand (proto3
    leaves zeros out; a double is zero only as +0.0). Counts outside uint32 go through protobuf,
    which refuses them as it always did."""
    examined, filtered = result.examined, result.filtered
    if not (0 <= examined < 1 << 32 and 0 <= filtered < 1 << 32):
        return pb.SearchStats(took_ms=result.took_ms, candidates_examined=examined, candidates_filtered=filtered,
                              exhausted=result.exhausted).SerializeToString()
    took = _pack_double(result.took_ms)
    out = _TOOK_TAG + took if took != _NO_DOUBLE else b""
    if examined:
        out += _EXAMINED_TAG + _varint(examined)
    if filtered:
        out += _FILTERED_TAG + _varint(filtered)
    if result.exhausted:
        out += _EXHAUSTED
    return out


def _zero_scored(rec: Recommender, row: int) -> bytes:
    """A result scored +0.0: proto3 leaves a zero scalar out, so its ScoredTrack is shorter than
    the cached prefix says (-0.0 has a sign bit set and is written like any other score)."""
    return _length_delimited(1, pb.ScoredTrack(track=conv.track_pb(rec, row)).SerializeToString())
