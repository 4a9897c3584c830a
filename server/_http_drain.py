"""ASGI middleware: a request answered before its body was read has the rest of the body read and dropped first.

uvicorn closes the connection after such an answer (413 for a body over the limit, 401, 415, 404, a 405 from
a route that takes no body), and closing a socket with unread bytes resets it: a client still sending, as
Python's urllib does until its whole body is out, gets "connection reset" and never reads the answer (the
413 of a 7 MB body was lost so). So before the answer's first byte, what is left of the body is read and
dropped, up to ``DRAIN_BYTES`` and ``DRAIN_SECONDS``; past either (or with a larger Content-Length) the
answer goes as it is and the client may see the reset. A client that sent ``Expect: 100-continue`` and has not
been asked for its body has sent none of it: it gets the answer at once, not an invitation to upload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 5.0


class DrainUnreadBody:
    """Wraps an ASGI app (``HttpFace.app``): see the module's docstring."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received_all = False
        began = False  # asked for any of the body: uvicorn sends "100 Continue" to a client that waits for it
        waits_to_send = any(name == b"expect" and value.lower() == b"100-continue"
                            for name, value in scope.get("headers", ()))

        async def receiving() -> Message:
            nonlocal received_all, began
            began = True
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                received_all = True
            return message

        async def sending(message: Message) -> None:
            nonlocal received_all
            if message["type"] == "http.response.start" and not received_all:
                received_all = True
                if not (waits_to_send and not began):  # a client waiting for "100 Continue" has sent nothing
                    await _drain(receive, _declared(scope))
            await send(message)

        await self.app(scope, receiving, sending)


def _declared(scope: MutableMapping[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _drain(receive: Receive, declared: int | None) -> None:
    if declared is not None and declared > DRAIN_BYTES:
        return
    read = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # http.disconnect
                read += len(message.get("body", b""))
                if not message.get("more_body", False) or read > DRAIN_BYTES:
                    return
    except TimeoutError:
        return
