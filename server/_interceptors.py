"""Cross-cutting checks that run before a servicer method: bearer-token auth.

(The concurrency limit is gRPC's own ``maximum_concurrent_rpcs``, see _app.py: only gRPC sees the
calls that wait for a handler thread.)"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

# Health checks must work for load balancers without a token. Reflection is not exempt: with auth on, the API's
# schema is for callers with a token (grpcurl passes it: -H 'authorization: Bearer T').
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)
ADMIN_METHODS = frozenset({"/musicrec.v1.Recommender/ReloadBundle"})


def _rejecting(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that fails the call with ``code``."""
    def reject(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    def reject_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        context.abort(code, message)
        yield  # pragma: no cover  (makes this a generator, as the stream handler type requires)

    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(reject_stream, **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(lambda it, ctx: reject(None, ctx), **kw)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(lambda it, ctx: reject_stream(None, ctx), **kw)
    return grpc.unary_unary_rpc_method_handler(reject, **kw)


# The scheme in any case (auth schemes are case-insensitive, RFC 9110 11.1: "bearer" was refused), then one or more
# spaces; the token is the rest, as given.
_BEARER = re.compile(r"bearer +(\S.*)", re.IGNORECASE | re.ASCII | re.DOTALL)


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> bytes:
    """The token of ``authorization: Bearer <token>`` metadata, or b"" when there is none or more than one
    authorization entry (which of them counts is not for the server to guess: a dict kept the last one)."""
    headers = [value for key, value in metadata or () if key == "authorization"]
    if len(headers) != 1:
        return b""
    header = headers[0]
    match = _BEARER.fullmatch(header) if isinstance(header, str) else None
    return match.group(1).encode() if match else b""


class BearerAuth(grpc.ServerInterceptor):
    """``authorization: Bearer <token>`` metadata. Read tokens may query; admin tokens may also
    reload. Errors say nothing about the catalog."""

    def __init__(self, read_tokens: Sequence[str], admin_tokens: Sequence[str] = ()) -> None:
        self.read = [t.encode() for t in read_tokens]
        self.admin = [t.encode() for t in admin_tokens]

    @staticmethod
    def _matches(token: bytes, allowed: list[bytes]) -> bool:
        # compare against every token so the time taken does not reveal which one is close
        return any([hmac.compare_digest(token, a) for a in allowed])

    def is_admin(self, metadata: Sequence[tuple[str, Any]] | None) -> bool:
        """Whether ``metadata`` carries an admin token (also asked by ReloadBundle about paths)."""
        return self._is_admin_token(bearer_token(metadata))

    def _is_admin_token(self, token: bytes) -> bool:
        return bool(token) and self._matches(token, self.admin)

    def refusal(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> tuple[grpc.StatusCode, str] | None:
        """Why a call of ``method`` (``/package.Service/Method``) with ``metadata`` is refused, or None.
        The HTTP/JSON face (server/_http.py) asks the same question, so both faces refuse alike."""
        if method.startswith(EXEMPT_PREFIXES):
            return None
        token = bearer_token(metadata)
        is_admin = self._is_admin_token(token)
        if not token or not (is_admin or self._matches(token, self.read)):
            return (grpc.StatusCode.UNAUTHENTICATED,
                    "missing or invalid bearer token (metadata 'authorization: Bearer <token>')")
        if method in ADMIN_METHODS and not is_admin:
            return grpc.StatusCode.PERMISSION_DENIED, "this call needs an admin token"
        return None

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return handler
        refused = self.refusal(details.method, details.invocation_metadata)
        return handler if refused is None else _rejecting(handler, *refused)
