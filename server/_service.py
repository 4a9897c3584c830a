"""The Recommender servicer: protobuf in, one engine call, protobuf out, errors mapped to statuses.

Engine errors become precise statuses (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED,
UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, PERMISSION_DENIED: ``_classify``); anything else is
a bug, logged with its traceback and returned as INTERNAL, never as UNKNOWN. ``context.abort``
raises, so it is only ever called outside the ``try`` that maps errors. A similar-track ranking
stops at the client's deadline (DEADLINE_EXCEEDED) and, as early, at its cancel (CANCELLED):
``CallDeadline``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from engine import (
    MAX_K,
    MAX_PLAYLIST,
    BackendUnavailable,
    BundleError,
    Deadline,
    DeadlineExceeded,
    InvalidQuery,
    Recommender,
    TrackNotFound,
    compiled_kernels_status,
)
from engine.audio import AudioNotSupported

from . import _audio
from . import _convert as conv
from ._combine import Combiner
from ._generated.musicrec.v1 import recommender_pb2 as pb
from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from ._holder import BundleHolder, NoBundle, ReloadPolicy, ReloadRefused
from ._limits import MAX_MESSAGE_BYTES
from ._metrics import ServerMetrics
from ._wire import TrackBytes, batch_response_bytes, similar_response_bytes

log = logging.getLogger("musicrec.server")
SERVER_VERSION = "0.1.0"


# Status details travel in the trailer (percent-encoded; gRPC's default metadata limit is 8 KiB), so
# a message echoing a huge client value must be cut, or the client sees RESOURCE_EXHAUSTED instead.
MAX_DETAILS_CHARS = 400


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    code, message = _classify(exc)
    if len(message) > MAX_DETAILS_CHARS:
        message = message[:MAX_DETAILS_CHARS - 3] + "..."
    return code, message


def _classify(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, AudioNotSupported):  # an audio clip for a bundle not built from extracted audio
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, _audio.AudioBusy):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, _audio.AudioUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, InvalidQuery):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, TrackNotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, DeadlineExceeded):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, CallCancelled):
        return grpc.StatusCode.CANCELLED, str(exc)
    if isinstance(exc, NoBundle):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, BackendUnavailable):  # the vector database (Qdrant) is down or not this bundle's
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, ReloadRefused):
        return grpc.StatusCode.PERMISSION_DENIED, str(exc)
    if isinstance(exc, BundleError):
        return grpc.StatusCode.FAILED_PRECONDITION, f"bundle refused, the previous one keeps serving: {exc}"
    log.exception("internal error")
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); it was logged on the server"


def _check_deadline(context: grpc.ServicerContext) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the request was processed")


def _deadline(context: grpc.ServicerContext) -> float | None:
    """The client's deadline as a ``time.monotonic()`` value, for the engine's long loops."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class CallCancelled(Exception):
    """The client cancelled the call while the server worked on it (CANCELLED)."""


class CallDeadline(Deadline):
    """The engine's deadline for one call (engine ``Deadline``): the client's, and ended at once when
    the call ends early, remembering whether its client cancelled it. The call's end is grpc's own
    callback (``context.add_callback``): no thread polls."""

    __slots__ = ("_on_end", "cancelled")

    def __init__(self, at: float | None) -> None:
        super().__init__(at)
        self.cancelled = False  # ended by its client's cancel, not by its deadline
        self._on_end: list[Callable[[], object]] = []

    def end(self, *, cancelled: bool = False) -> None:
        self.cancelled = cancelled
        super().end()
        for fn in list(self._on_end):
            fn()

    def on_end(self, fn: Callable[[], object]) -> None:
        """Call ``fn`` when the call ends early (at once if it has): a thread waiting on a worker wakes up."""
        self._on_end.append(fn)
        if self.ended:
            fn()


def _call_deadline(context: grpc.ServicerContext) -> CallDeadline:
    """The deadline the engine ranks against: the client's, passed as soon as the call ends early."""
    deadline = CallDeadline(_deadline(context))

    def ended() -> None:  # grpc runs it when the call ends: cancelled, past its deadline, or answered
        remaining = context.time_remaining()
        deadline.end(cancelled=remaining is None or remaining > 0)

    if not context.add_callback(ended):  # the call has ended already
        ended()
    return deadline


@contextlib.contextmanager
def _stops_when_cancelled(deadline: CallDeadline) -> Iterator[None]:
    """CANCELLED, not DEADLINE_EXCEEDED, for ranking stopped because the client cancelled the call; and
    no ranking at all when it was cancelled before."""
    if deadline.cancelled:
        raise CallCancelled("the client cancelled the call before it was ranked")
    try:
        yield
    except DeadlineExceeded:
        if deadline.cancelled:
            raise CallCancelled("the client cancelled the call; ranking stopped") from None
        raise


def _fits(response: Any, fewer: str) -> bytes:
    """``response``'s bytes (serialized once: gRPC sends bytes as they are) if gRPC may send them; else
    INVALID_ARGUMENT, before gRPC would fail the call on its size (RESOURCE_EXHAUSTED to the client, but OK in the
    server's own log and metrics, and 200 over HTTP)."""
    data = response if isinstance(response, bytes) else response.SerializeToString()
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidQuery(f"the answer would be {len(data):,} bytes, over the {MAX_MESSAGE_BYTES:,}-byte message "
                           f"limit: {fewer}")
    return data


_FEWER = "ask for fewer results (a smaller k) or leave out include_features"


def unary(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: RecommenderServicer, request: Any, context: grpc.ServicerContext) -> Any:
        _check_deadline(context)
        try:
            return method(self, request, context)
        except Exception as exc:
            code, message = _status_of(exc)
        context.abort(code, message)

    return wrapper


def streaming(method: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(method)
    def wrapper(self: RecommenderServicer, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        _check_deadline(context)
        try:
            for item in method(self, request, context):
                if not context.is_active():  # client gone or deadline passed: stop choosing tracks
                    return
                yield item
            return
        except Exception as exc:
            code, message = _status_of(exc)
        context.abort(code, message)

    return wrapper


class RecommenderServicer(pb_grpc.RecommenderServicer):
    def __init__(self, holder: BundleHolder, reload_policy: ReloadPolicy | None = None, *,
                 metrics: ServerMetrics | None = None, audio: _audio.AudioPool | None = None) -> None:
        self.holder = holder
        # exported or not, so audio work can always record into it (see _metrics.py)
        self.metrics = metrics or ServerMetrics(holder, server_version=SERVER_VERSION)
        # audio clips are analysed in worker processes, started when first needed (or warmed at start)
        self.audio = audio or _audio.AudioPool(metrics=self.metrics)
        self.reload_policy = reload_policy or ReloadPolicy.for_server(holder.path)
        self.started = time.monotonic()
        # serialized tracks per live bundle; a reloaded bundle gets its own, the old one is dropped with it
        self._wire: weakref.WeakKeyDictionary[Recommender, TrackBytes] = weakref.WeakKeyDictionary()
        # the live bundle's entry, read without the dictionary's per-lookup weak reference
        self._last_wire: tuple[weakref.ref[Recommender], TrackBytes] | None = None
        self._combiner = Combiner(on_batch=self.metrics.new_track_batch.observe)

    def _track_bytes(self, rec: Recommender) -> TrackBytes:
        last = self._last_wire
        if last is not None and last[0]() is rec:
            return last[1]
        cache = self._wire.get(rec)
        if cache is None:  # two threads may both build one; either is correct
            cache = self._wire.setdefault(rec, TrackBytes(rec.n))
        self._last_wire = (weakref.ref(rec), cache)
        return cache

    @unary
    def SimilarTracks(self, request: pb.SimilarTracksRequest,
                      context: grpc.ServicerContext) -> pb.SimilarTracksResponse:
        rec = self.holder.require()
        clips = _audio.clips_of(request)
        if clips:  # what would be refused is refused before the clips' analysis (seconds of a worker's time)
            _audio.check_clips(rec, clips)
            rec.check_similar(conv.similar_query_from_pb(request, _audio.unanalysed(clips)))
        deadline = _call_deadline(context)
        audio = _audio.audio_seeds(rec, self.audio, clips, deadline) if clips else None
        t0 = time.perf_counter()
        with _stops_when_cancelled(deadline):
            query = conv.similar_query_from_pb(request, audio)  # (the clips are analysed here)
        analysed_ms = (time.perf_counter() - t0) * 1e3 if clips else 0.0
        with _stops_when_cancelled(deadline):
            if rec.together(query):  # a new track's query: ranked with the others waiting (server/_combine.py)
                result = self._combiner.similar(rec, query, deadline)
            else:
                result = rec.similar(query, deadline=deadline)
        if clips:  # took_ms covers the analysis, as ClassifyGenre's does
            result = dataclasses.replace(result, took_ms=result.took_ms + analysed_ms)
        if request.include_features:
            return _fits(conv.similar_response(rec, result, features=True), _FEWER)
        return _fits(similar_response_bytes(self._track_bytes(rec), rec, result), _FEWER)

    @unary
    def BatchSimilarTracks(self, request: pb.BatchSimilarTracksRequest,
                           context: grpc.ServicerContext) -> pb.BatchSimilarTracksResponse:
        t0 = time.perf_counter()
        rec = self.holder.require()
        queries = [conv.similar_query_from_pb(q, where=f"queries[{i}].", audio_here=False)
                   for i, q in enumerate(request.queries)]
        deadline = _call_deadline(context)
        with _stops_when_cancelled(deadline):
            results = rec.similar_batch(queries, deadline=deadline)
        fewer = "split the batch, ask for fewer results (smaller k) or leave out include_features"
        if not any(q.include_features for q in request.queries):
            return _fits(batch_response_bytes(self._track_bytes(rec), rec, results, (time.perf_counter() - t0) * 1e3),
                         fewer)
        return _fits(pb.BatchSimilarTracksResponse(
            responses=[conv.similar_response(rec, r, features=q.include_features)
                       for q, r in zip(request.queries, results, strict=True)],
            took_ms=(time.perf_counter() - t0) * 1e3), fewer)

    @unary
    def ListMoods(self, request: pb.ListMoodsRequest, context: grpc.ServicerContext) -> pb.ListMoodsResponse:
        return pb.ListMoodsResponse(moods=[conv.mood_pb(c) for c in self.holder.require().moods()])

    def _playlist(self, request: pb.MoodPlaylistRequest) -> tuple[Any, int, Iterator[Any]]:
        rec = self.holder.require()
        source = request.WhichOneof("source")
        kwargs: dict[str, Any] = {}
        if source == "mood_id":
            kwargs["mood_id"] = request.mood_id
        elif source == "mood_name":
            kwargs["mood_name"] = request.mood_name
        elif source == "seed_track_id":
            kwargs["seed_track_id"] = request.seed_track_id
        elif source == "target":
            kwargs["target"] = (request.target.valence, request.target.energy)
        mood, entries = rec.playlist(**kwargs, length=request.length, max_per_artist=request.max_per_artist,
                                     shuffle_seed=request.shuffle_seed)
        return rec, mood, entries

    @unary
    def MoodPlaylist(self, request: pb.MoodPlaylistRequest, context: grpc.ServicerContext) -> pb.MoodPlaylistResponse:
        t0 = time.perf_counter()
        rec, mood, entries = self._playlist(request)
        out = [conv.playlist_entry_pb(rec, e.position, e.row, e.transition, features=request.include_features)
               for e in entries]
        return _fits(pb.MoodPlaylistResponse(mood=conv.mood_pb(rec.moods()[mood]), entries=out,
                                             took_ms=(time.perf_counter() - t0) * 1e3),
                     "ask for a shorter playlist (length), leave out include_features, or stream it "
                     "(StreamMoodPlaylist)")

    @streaming
    def StreamMoodPlaylist(self, request: pb.MoodPlaylistRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        rec, _, entries = self._playlist(request)
        for e in entries:
            yield conv.playlist_entry_pb(rec, e.position, e.row, e.transition, features=request.include_features)

    @unary
    def ClassifyGenre(self, request: pb.ClassifyGenreRequest,
                      context: grpc.ServicerContext) -> pb.ClassifyGenreResponse:
        rec = self.holder.require()
        source = request.WhichOneof("input")
        if source is None:
            raise InvalidQuery("input: give exactly one of track_id, features or audio")
        if source == "audio":
            deadline = _call_deadline(context)
            with _stops_when_cancelled(deadline):
                return conv.classification_pb(_audio.classify_audio(
                    rec, self.audio, request.audio, top_k=request.top_k, explain=request.explain, deadline=deadline))
        result = rec.classify(track_id=request.track_id if source == "track_id" else None,
                              features=conv.feature_dict(request.features) if source == "features" else None,
                              top_k=request.top_k, explain=request.explain)
        return conv.classification_pb(result)

    @unary
    def GetTrack(self, request: pb.GetTrackRequest, context: grpc.ServicerContext) -> pb.GetTrackResponse:
        rec = self.holder.require()
        if not request.track_id:
            raise InvalidQuery("track_id: required")
        return pb.GetTrackResponse(track=conv.track_pb(rec, rec.track(request.track_id), features=True))

    @unary
    def ServerInfo(self, request: pb.ServerInfoRequest, context: grpc.ServicerContext) -> pb.ServerInfoResponse:
        rec = self.holder.require()
        m = rec.bundle.manifest
        return pb.ServerInfoResponse(
            bundle_version=rec.bundle.version, bundle_path=str(rec.bundle.path), created_at=m["created_at"],
            tracks=rec.n, genres=len(rec.genre_names), moods=len(rec.moods()),
            index_kind=m["metrics"]["index"]["kind"], vector_dimension=int(rec.bundle.vectors.shape[1]),
            feature_names=rec.feature_names, max_k=MAX_K, max_playlist=MAX_PLAYLIST,
            counts_json=json.dumps(m["counts"]), metrics_json=json.dumps(m["metrics"]),
            uptime_seconds=time.monotonic() - self.started, server_version=SERVER_VERSION,
            default_genre_weight=rec.default_genre_weight, compiled_kernels=compiled_kernels_status(),
            **_audio.info_fields(m))

    @unary
    def ReloadBundle(self, request: pb.ReloadBundleRequest, context: grpc.ServicerContext) -> pb.ReloadBundleResponse:
        # a path is loaded once (if the policy allows it); no path re-reads the configured one
        try:
            path = self.reload_policy.resolve(request.path, context.invocation_metadata()) if request.path else None
            previous, version, changed = self.holder.load(path)
        except (ReloadRefused, BundleError) as exc:  # the operator's log says so too, not only the caller
            current = self.holder.current
            log.warning("ReloadBundle %s refused, still serving %s: %s", request.path or "(the configured bundle)",
                        current.bundle.version if current else "nothing", exc,
                        extra={"event": "reload_refused", "fields": {"path": request.path}})
            raise
        return pb.ReloadBundleResponse(bundle_version=version, previous_version=previous or "", changed=changed)
