"""Hand-assembled SimilarTracksResponse bytes for the hot path.

Building ten ``Track`` messages per response cost more than the search itself. Each track's
serialized ``Track`` is cached the first time it is returned, and a response is assembled by
concatenating length-delimited fields: the protobuf wire format is a concatenation of fields, so
the bytes are exactly what ``SimilarTracksResponse.SerializeToString()`` would produce for the same
message (tests parse them with the generated classes and compare). Only responses without
per-track features take this path.
"""

from __future__ import annotations

import struct

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
        if cached is None:
            track = _length_delimited(1, conv.track_pb(rec, row).SerializeToString())  # ScoredTrack.track
            length = len(track) + len(_SCORE_TAG) + 4
            cached = _varint((1 << 3) | 2) + _varint(length) + track + _SCORE_TAG
            self._cache[row] = cached
        return cached


_ZERO = _pack_float(0.0)


def similar_response_bytes(tracks: TrackBytes, rec: Recommender, result: SimilarResult) -> bytes:
    prefix, pack = tracks.scored_prefix, _pack_float
    parts = [prefix(rec, row) + packed if (packed := pack(score)) != _ZERO else _zero_scored(rec, row)
             for row, score in zip(result.rows.tolist(), result.scores.tolist(), strict=True)]
    for seed in result.unknown_seed_ids:
        parts.append(_length_delimited(2, seed.encode()))  # unknown_seed_ids
    stats = pb.SearchStats(took_ms=result.took_ms, candidates_examined=result.examined,
                           candidates_filtered=result.filtered, exhausted=result.exhausted)
    parts.append(_length_delimited(3, stats.SerializeToString()))
    return b"".join(parts)


def _zero_scored(rec: Recommender, row: int) -> bytes:
    """A result scored +0.0: proto3 leaves a zero scalar out, so its ScoredTrack is shorter than
    the cached prefix says (-0.0 has a sign bit set and is written like any other score)."""
    return _length_delimited(1, pb.ScoredTrack(track=conv.track_pb(rec, row)).SerializeToString())
