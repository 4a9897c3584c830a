"""``StreamMoodPlaylist`` over HTTP (server/_http.py routes the call here): ``application/x-ndjson``, one
PlaylistEntry per line as it is chosen. The first entry is chosen before the status line, so an error up to there
is an ordinary error response; after it the status line is gone, and an error, a deadline (``Grpc-Timeout``) or the
server's stop ends the stream with a line ``{"error": {...}}``, or cuts it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message

from ._http_json import HTTP_STATUS, CallAborted, HttpContext, message_json
from ._observe import HttpCall

if TYPE_CHECKING:
    from starlette.responses import Response

    from ._http import HttpFace

NDJSON = "application/x-ndjson"


async def ndjson_response(face: HttpFace, handler: Callable[..., Iterator[Message]], message: Message,
                          context: HttpContext, call: HttpCall) -> Response:
    """The streaming call ``handler(message, context)`` as NDJSON, holding one of ``face``'s call slots until the
    stream ends; ``call`` is finished then, with the status the stream ended on."""
    from starlette.responses import StreamingResponse

    face.take_slot()
    loop = asyncio.get_running_loop()
    entries = handler(message, context)
    end = object()
    released = False
    ended: tuple[grpc.StatusCode, str | None] = (grpc.StatusCode.CANCELLED, "the client left")

    def release(finish: bool = True) -> None:
        nonlocal released
        if not released:
            released = True
            context.cancelled = True  # a stream left early stops choosing tracks
            face.pool.submit(entries.close)
            face.release_slot()
            if finish:
                call.finish(*ended)

    try:
        first = await loop.run_in_executor(face.pool, next, entries, end)
        if first is end and context.time_remaining() == 0:  # (the servicer stops quietly at a deadline)
            raise CallAborted(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline (Grpc-Timeout) passed before "
                                                                 "the first entry")
    except BaseException:
        release(finish=False)  # an ordinary error response: the face's _call counts it by its status
        raise

    async def lines() -> AsyncIterator[str]:
        nonlocal ended
        item = first
        try:
            while item is not end:
                yield message_json(item) + "\n"
                item = await loop.run_in_executor(face.pool, next, entries, end)
            if context.time_remaining() == 0:  # the servicer stops choosing quietly there (_service.streaming)
                raise CallAborted(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline (Grpc-Timeout) passed "
                                                                     "before the playlist was complete")
            ended = (grpc.StatusCode.OK, None)
        except CallAborted as exc:
            ended = (exc.code, exc.message)
            yield json.dumps({"error": {"code": HTTP_STATUS.get(exc.code, 500), "status": exc.code.name,
                                        "message": exc.message}}) + "\n"
        finally:
            release()

    class Stream(StreamingResponse):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            nonlocal ended
            try:
                await super().__call__(scope, receive, send)
            except asyncio.CancelledError:  # the server's grace ran out mid-stream: the body is cut (its
                # status line is long gone), counted as gRPC counts a call its stop cancels
                ended = (grpc.StatusCode.UNAVAILABLE, "the server stopped before the stream finished")
            finally:  # also when the body was never iterated (the client left at once)
                release()

    call.deferred = True  # finished by release(), when the stream ends
    return Stream(lines(), media_type=NDJSON)
