"""Audio queries: clips decoded and described in a process pool, then asked like feature seeds.

The CPU work (decoding, librosa) runs in worker processes, not on the gRPC handler threads; a handler
thread waits for its clips. Audio has its own concurrency limit: ``max_clips`` clips being analysed or
waiting at once, one more gets RESOURCE_EXHAUSTED at once, and ``create_server`` lowers it below the handler
threads (``--workers`` - 1), so waiting clips never hold every handler thread and other RPCs keep theirs. A
clip holds its slot until its worker is done with it, even when its caller's deadline passed.
Workers are spawned (never forked from a process with gRPC threads) and warm librosa's JIT when
they start; ``create_server`` starts and warms them before serving when the bundle is an audio
bundle, so the first caller does not pay the ~10-20 s of numba compilation.

Each clip is analysed with the parameters recorded in the bundle (engine/audio), and its
descriptors enter the engine as ``Seed(features=...)``: the similar-track pipeline is the same
as for any feature seed. With a bundle of segments the clip is cut the same way and each segment
is a seed (SimilarTracks) or a vote (ClassifyGenre: the mean of the segments' probabilities).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from engine import Classification, Deadline, DeadlineExceeded, EngineError, InvalidQuery, Recommender, Seed

from ._limits import MAX_AUDIO_BYTES

log = logging.getLogger("musicrec.server")

MAX_CLIPS_PER_REQUEST = 4
# Decoded length cap: 3 MiB of FLAC can hold hours of near-constant audio; 10 minutes of mono 22.05 kHz
# is ~50 MB of samples plus ~4x that in spectrograms, what one worker may hold.
MAX_CLIP_SECONDS = 600.0
DEFAULT_AUDIO_WORKERS = 1
DEFAULT_MAX_CLIPS = 4


class AudioBusy(EngineError, RuntimeError):
    """Every audio slot is taken: RESOURCE_EXHAUSTED."""


class AudioUnavailable(EngineError, RuntimeError):
    """The audio extra is not installed, or a worker died: UNAVAILABLE."""


# what a client is told when close() has run (the server is stopping), whichever step of the call it reached
STOPPING = "the server is stopping; retry on another server"
# what a client is told when the workers' warm-up gave up on numba's compile lock (the log names the holder)
LOCK_UNAVAILABLE = ("this server's audio workers could not start: another process held numba's compile lock too "
                    "long (the server's log names it); retry later")


def _analyse(clip: bytes, params: dict[str, Any], segment_seconds: float | None,
             name: str = "the clip") -> list[dict[str, float]]:
    """Worker side: the descriptor rows of one clip (raises BadAudio for a bad clip, and the warm-up's
    CompileLockTimeout in a worker whose warm-up gave up)."""
    from engine.audio import ExtractorParams, analyse

    return analyse(clip, ExtractorParams.from_json(params), segment_seconds=segment_seconds, name=name,
                   max_seconds=MAX_CLIP_SECONDS).rows


def _warm(params: dict[str, Any]) -> None:
    from engine.audio import CompileLockTimeout, ExtractorParams, warm_up

    # a give-up on the compile lock raised here would break the pool: the worker's tasks raise it instead, at once
    # (engine/audio/_kernels.py remembers it)
    with contextlib.suppress(CompileLockTimeout):
        warm_up(ExtractorParams.from_json(params))


def _died_hint() -> str:
    from engine.audio import died_hint  # the audio extra's package, imported only when audio is in use

    return died_hint()


def _ready() -> int:
    """A worker's first task: its pid once warm, else the warm-up's give-up on the compile lock, raised."""
    import os

    from engine.audio import ExtractorParams, warm_up

    warm_up(ExtractorParams())  # at once: warm already, or the give-up _warm swallowed
    return os.getpid()


class AudioPool:
    """Worker processes for audio analysis and the limit on clips in flight."""

    def __init__(self, workers: int = DEFAULT_AUDIO_WORKERS, max_clips: int = DEFAULT_MAX_CLIPS,
                 metrics: Any = None, *, handler_threads: int | None = None) -> None:
        self.workers = max(1, workers)
        self.max_clips = max(1, max_clips)
        self.limit_source = "--audio-max-clips"
        self.limit_note = ""  # said once the workers start (a server that never analyses audio says nothing)
        if handler_threads is not None and handler_threads >= 2 and self.max_clips > handler_threads - 1:
            self.max_clips = handler_threads - 1  # one handler thread always free of waiting clips
            self.limit_source = f"--audio-max-clips {max_clips}, lowered under the {handler_threads} of --workers"
            self.limit_note = (f"; at most {self.max_clips} clip(s) at once ({self.limit_source}, so other calls keep "
                               "a handler thread)")
        self._closing = False
        self._slots = threading.BoundedSemaphore(self.max_clips)
        self._lock = threading.Lock()
        self._pool: cf.ProcessPoolExecutor | None = None
        self._warming: list[cf.Future[int]] = []
        self._created = 0.0
        self.metrics = metrics
        self.warm_seconds: float | None = None

    def start(self, *, wait: bool) -> cf.ProcessPoolExecutor:
        """Spawn the workers, each warming librosa as it starts (once: later calls do nothing); with
        ``wait``, return once all are warm. Returns the pool."""
        from engine.audio import ExtractorParams

        with self._lock:
            if self._closing:  # close() ran: no new workers that nothing would stop
                raise AudioUnavailable(STOPPING)
            if self._pool is None:
                try:
                    import librosa  # noqa: F401  (fail here, clearly, when the extra is missing)
                except ImportError:
                    raise AudioUnavailable("this server cannot analyse audio: musicrec's audio extra is not "
                                           "installed on it") from None
                self._pool = cf.ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_warm, initargs=(ExtractorParams().to_json(),))
                # one task per worker: the pool spawns a process for each, and each warms up first
                self._warming = [self._pool.submit(_ready) for _ in range(self.workers)]
                self._created = time.perf_counter()
            pool, warming = self._pool, self._warming
        if wait and self.warm_seconds is None:
            try:
                for f in warming:
                    f.result()
            except BrokenProcessPool:
                self._discard(pool)  # the next call spawns new workers
                raise AudioUnavailable(f"an audio worker died while it warmed up; {_died_hint()}") from None
            except EngineError as exc:  # CompileLockTimeout, the one a warm-up raises
                raise self._gave_up(pool, exc) from None
            self.warm_seconds = time.perf_counter() - self._created
            log.info("audio: %d worker(s) warm in %.1f s%s", self.workers, self.warm_seconds, self.limit_note)
        return pool

    def bundle_loaded(self, rec: Recommender) -> None:
        """BundleHolder hook: a hot-reloaded audio bundle warms the workers in the background, so its
        first audio call does not pay the JIT."""
        if "audio" in rec.bundle.manifest:
            try:
                self.start(wait=False)
            except AudioUnavailable as exc:
                log.warning("audio queries will be refused: %s", exc)

    def close(self) -> None:
        """Stop the workers now: a clip still being analysed when the server stops is not waited for (its
        caller, cancelled by gRPC's grace, gets UNAVAILABLE), so the process exits within ``--grace``."""
        with self._lock:
            pool, self._pool, self._closing = self._pool, None, True
        if pool is not None:
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:  # (ProcessPoolExecutor.terminate_workers arrives in Python 3.14)
                with contextlib.suppress(Exception):
                    process.terminate()

    def _discard(self, pool: cf.ProcessPoolExecutor) -> None:
        """Close ``pool`` (broken) unless another call has already replaced it with a new one."""
        with self._lock:
            if self._pool is not pool:
                return
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def _gave_up(self, pool: cf.ProcessPoolExecutor, exc: Exception) -> AudioUnavailable:
        """The workers gave up on numba's compile lock: the next call spawns new ones (which wait for it again);
        the lock's path and holder go to the log, the client gets LOCK_UNAVAILABLE."""
        self._discard(pool)
        log.error("audio workers could not warm up: %s", exc)
        return AudioUnavailable(LOCK_UNAVAILABLE)

    def analyse(self, clips: Sequence[bytes], params: dict[str, Any], segment_seconds: float | None,
                deadline: float | Deadline | None) -> list[list[dict[str, float]]]:
        """Descriptor rows of each clip, analysed in parallel. Raises AudioBusy when fewer than
        ``len(clips)`` slots are free, DeadlineExceeded past ``deadline`` (``time.monotonic()``, or a ``Deadline``:
        a call's, with ``on_end``, also once the call ends early)."""
        if len(clips) > self.max_clips:  # a retry could never succeed: not RESOURCE_EXHAUSTED
            raise InvalidQuery(f"seeds: {len(clips)} audio clips in one request, but this server analyses at most "
                               f"{self.max_clips} at once ({self.limit_source}); send fewer per request")
        for i, clip in enumerate(clips):
            if not clip:
                raise InvalidQuery(f"audio clip {i}: empty")
            if len(clip) > MAX_AUDIO_BYTES:
                raise InvalidQuery(f"audio clip {i}: {len(clip):,} bytes, at most {MAX_AUDIO_BYTES:,} (3 MiB); send "
                                   "a shorter clip or a compressed format (FLAC, OGG, MP3)")
        taken = 0
        try:
            for _ in clips:
                if not self._slots.acquire(blocking=False):
                    raise AudioBusy(f"the server is analysing {self.max_clips} audio clips already (its audio "
                                    "limit); retry later")
                taken += 1
                if self.metrics is not None:
                    self.metrics.audio_queue_depth.inc()
            pool = self.start(wait=False)
            futures: list[cf.Future[list[dict[str, float]]]] = []
            try:
                for i, clip in enumerate(clips):
                    name = "the clip" if len(clips) == 1 else f"audio clip {i}"
                    futures.append(pool.submit(_analyse, clip, params, segment_seconds, name))
                    futures[-1].add_done_callback(self._release)  # held until the worker is done with the clip
                    taken -= 1
            except RuntimeError:  # BrokenProcessPool: a worker died before this call (while it warmed up, say)
                if self._closing:  # or close() shut the pool down between start() and the submit
                    raise AudioUnavailable(STOPPING) from None
                self._discard(pool)
                raise AudioUnavailable(f"an audio worker died; retry (new workers start); {_died_hint()}") from None
            try:
                return [self._result(pool, f, deadline) for f in futures]
            except BaseException:  # the call's other clips still queued are dropped too, their slots freed
                for future in futures:
                    future.cancel()  # (no effect on one a worker analyses: it holds its slot to its end)
                raise
        finally:
            for _ in range(taken):  # slots no submitted clip holds
                self._release(None)

    def _release(self, _: object) -> None:
        self._slots.release()
        if self.metrics is not None:
            self.metrics.audio_queue_depth.dec()

    def _result(self, pool: cf.ProcessPoolExecutor, future: cf.Future[list[dict[str, float]]],
                deadline: float | Deadline | None) -> list[dict[str, float]]:
        at = deadline.at if isinstance(deadline, Deadline) else deadline
        # (a call without a deadline has gRPC's "infinite" one, some 9e9 s away: past what a lock's wait takes)
        timeout = None if at is None else min(max(0.0, at - time.monotonic()), threading.TIMEOUT_MAX)
        t0 = time.perf_counter()
        on_end = getattr(deadline, "on_end", None)  # a call's deadline, ended at once when its client cancels
        try:
            if on_end is not None and not future.done():  # wait for the clip or the call's end, whichever comes
                woke = threading.Event()
                future.add_done_callback(lambda _: woke.set())
                on_end(woke.set)
                if not woke.wait(timeout) or not future.done():
                    raise cf.TimeoutError
            rows = future.result(timeout=timeout)
        except cf.TimeoutError:
            # a clip still queued is dropped, its slot freed; one a worker analyses goes on, holding its slot
            future.cancel()
            raise DeadlineExceeded("deadline exceeded while the audio clip was analysed") from None
        except cf.CancelledError:  # the pool was shut down under it: close(), or a dead or stuck pool replaced
            raise AudioUnavailable(STOPPING if self._closing else
                                   "the audio workers were replaced (one died, or could not warm up) before this "
                                   "clip's turn; retry") from None
        except BrokenProcessPool:
            if self._closing:  # close() stopped the worker that had it
                raise AudioUnavailable(STOPPING) from None
            self._discard(pool)  # the next call spawns new workers
            raise AudioUnavailable(f"an audio worker died (out of memory?); retry (new workers start); "
                                   f"{_died_hint()}") from None
        except Exception as exc:
            from engine.audio import CompileLockTimeout  # (a worker's warm-up gave up: the audio extra is here)

            if not isinstance(exc, CompileLockTimeout):
                raise  # BadAudio and the rest: the clip's own answer
            raise self._gave_up(pool, exc) from None
        if self.metrics is not None:
            self.metrics.audio_extraction_seconds.observe(time.perf_counter() - t0)
        return rows


def info_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """ServerInfo's audio fields: the extractor a clip is analysed with, and the segment length."""
    audio = manifest.get("audio")
    if not audio:
        return {}
    extractor = audio["extractor"]
    return {"audio_extractor": f"{extractor['name']}/{extractor['version']}",
            "audio_segment_seconds": audio.get("segment_seconds") or 0.0}


def clips_of(request: Any) -> list[bytes]:
    """The audio clips of a SimilarTracksRequest (seeds, then negative seeds), in order. The same clip as a seed
    and a negative seed is refused, as the same track id is (the two cancel: the answer was the seed's alone)."""
    seeds = [s.audio if s.WhichOneof("kind") == "audio" else None for s in request.seeds]
    clips = [clip for clip in seeds if clip is not None]
    positive = len(clips)
    for j, seed in enumerate(request.negative_seeds):
        if seed.WhichOneof("kind") == "audio":
            if seed.audio in clips[:positive]:
                raise InvalidQuery(f"negative_seeds[{j}].audio: the same clip is seeds[{seeds.index(seed.audio)}]"
                                   ".audio: give a clip as one or the other")
            clips.append(seed.audio)
    return clips


def _extraction(rec: Recommender) -> tuple[dict[str, Any], float | None]:
    from engine.audio import bundle_extractor

    params, segment_seconds = bundle_extractor(rec.bundle.manifest)  # AudioNotSupported otherwise
    return params.to_json(), segment_seconds


def _feature_rows(rec: Recommender, rows: list[dict[str, float]]) -> list[dict[str, float]]:
    missing = [n for n in rec.feature_names if n not in rows[0]] if rows else []
    if missing:
        from engine.audio import AudioNotSupported

        raise AudioNotSupported(f"this bundle's features {missing[:5]} are not produced by the audio extractor")
    return [{n: row[n] for n in rec.feature_names} for row in rows]


def check_clips(rec: Recommender, clips: Sequence[bytes]) -> None:
    """Refuse clips this bundle cannot take (AudioNotSupported) or too many of them, before any is analysed."""
    _extraction(rec)
    if len(clips) > MAX_CLIPS_PER_REQUEST:
        raise InvalidQuery(f"seeds: {len(clips)} audio clips, at most {MAX_CLIPS_PER_REQUEST} per request")


def unanalysed(clips: Sequence[bytes]) -> Iterator[list[Seed]]:
    """A stand-in seed per clip, for checking the rest of a request before the clips are analysed
    (``Recommender.check_similar`` reads no feature seed)."""
    return iter([[Seed(features={})] for _ in clips])


def audio_seeds(rec: Recommender, pool: AudioPool, clips: Sequence[bytes],
                deadline: float | Deadline | None) -> Iterator[list[Seed]]:
    """One list of feature seeds per clip (one per segment), in the clips' order."""
    check_clips(rec, clips)
    params, segment_seconds = _extraction(rec)
    for rows in pool.analyse(clips, params, segment_seconds, deadline):
        yield [Seed(features=f) for f in _feature_rows(rec, rows)]


def classify_audio(rec: Recommender, pool: AudioPool, clip: bytes, *, top_k: int, explain: bool,
                   deadline: float | Deadline | None) -> Classification:
    """Genres of a clip: the classifier's probabilities of its descriptors, or with segments the
    mean over its segments (the per-song vote the build evaluates); explained by the segment
    most confident in the winning genre."""
    import numpy as np

    t0 = time.perf_counter()
    params, segment_seconds = _extraction(rec)
    top_k = rec.check_classify(top_k)  # before the analysis: a refused call costs no worker time
    names = list(rec.genre_names)
    (rows,) = pool.analyse([clip], params, segment_seconds, deadline)
    rows = _feature_rows(rec, rows)
    if len(rows) == 1:
        result = rec.classify(features=rows[0], top_k=top_k, explain=explain)
        return _with_time(result, t0)
    each = [rec.classify(features=r, top_k=len(names)) for r in rows]
    every = [dict(c.genres) for c in each]
    proba = np.array([[c[g] for g in names] for c in every]).mean(axis=0)
    order = np.argsort(-proba, kind="stable")
    winner = names[int(order[0])]
    best = max(range(len(rows)), key=lambda i: every[i][winner])
    base = rec.classify(features=rows[best], top_k=top_k, explain=explain)
    families: dict[str, float] = {}
    for c in each:
        for family, p in c.families:
            families[family] = families.get(family, 0.0) + p / len(rows)
    return _with_time(Classification(
        genres=[(names[i], float(proba[i])) for i in order[:top_k]], contributions=base.contributions,
        bias=base.bias, known_genres=(), took_ms=0.0,
        families=sorted(families.items(), key=lambda kv: -kv[1])[:top_k]), t0)


def _with_time(result: Classification, t0: float) -> Classification:
    import dataclasses

    return dataclasses.replace(result, took_ms=(time.perf_counter() - t0) * 1e3)
