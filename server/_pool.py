"""The gRPC server's handler threads, watched for the calls that end while they wait for one.

gRPC hands an accepted call to this pool, and the thread that takes it first receives its request: a call whose
deadline passed, or whose client cancelled, while it waited is dropped there and its handler is never called. The
client saw DEADLINE_EXCEEDED, but the observer (server/_observe.py), which measures and logs inside the handler, saw
no call at all: under overload, the calls an operator most needs to count were missing from the metrics and the
request log. The pool runs each call's task and tells the observer of those whose handler did not run.

gRPC submits ``(context.run, <its in-pool function>, rpc_event, state, behavior, ...)``. These are private arguments,
read only to find the call's deadline, peer and metadata, whether gRPC answered it itself, and its handler (the
observer's wrapper, which names the method); tests/server/test_metrics.py fails on a gRPC that changes them, rather
than such calls going uncounted quietly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

from ._observe import CallObserver, handled


class RpcPool(futures.ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` for ``grpc.server`` that reports the calls it dropped unhandled to ``observer``."""

    def __init__(self, observer: CallObserver, *, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.observer = observer

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        event = args[1] if len(args) > 2 else None
        if getattr(event, "call_details", None) is None:  # not a call's task
            return super().submit(fn, *args, **kwargs)
        return super().submit(self._run, time.perf_counter(), fn, args, kwargs)

    def _run(self, queued: float, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        handled.ran = False
        try:
            return fn(*args, **kwargs)
        finally:
            if not handled.ran:
                self.observer.dropped(args[1], args[2], args[3], time.perf_counter() - queued)
