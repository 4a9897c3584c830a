"""Services registered from their descriptors, with request bytes that are not the method's message refused as
INVALID_ARGUMENT.

gRPC's own deserializer raises on such bytes (a string field that is not UTF-8, a field cut short), and gRPC then
answers INTERNAL, logs a traceback and runs no interceptor's accounting of the call. Here the deserializer hands
the method an ``Undecodable`` instead, and the method refuses it like any bad request: counted, logged, its status
the client's error. The Recommender and grpc.health.v1 (which takes calls without a token) are registered so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc


class Undecodable:
    """Request bytes that are not the method's message, and why."""

    __slots__ = ("error", "message")

    def __init__(self, message: str, error: str) -> None:
        self.message, self.error = message, error


def decoder(cls: Any) -> Callable[[bytes], Any]:
    """``cls.FromString``, returning an ``Undecodable`` where it raises."""
    from_string = cls.FromString
    name = cls.DESCRIPTOR.full_name

    def decode(data: bytes) -> Any:
        try:
            return from_string(data)
        except Exception as exc:  # google.protobuf.message.DecodeError, or a bad UTF-8 string's error
            return Undecodable(name, str(exc))
    return decode


def _refuse(request: Undecodable, context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                  f"the request is not a valid {request.message} message: {request.error}"[:400])


def _unary(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        if type(request) is Undecodable:
            _refuse(request, context)
        return behaviour(request, context)
    return call


def _streaming(behaviour: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if type(request) is Undecodable:
            _refuse(request, context)
        yield from behaviour(request, context)
    return call


def add_service(server: grpc.Server, service: Any, messages: Any, servicer: Any) -> None:
    """Register ``servicer``'s methods of ``service`` (a service descriptor; its messages are in the module
    ``messages``) as the generated ``add_..._to_server`` would, except that undecodable requests are refused, and
    a method may return its response already serialized (bytes: the Recommender's hot path, server/_wire.py)."""
    handlers = {}
    for method in service.methods:
        to_bytes = getattr(messages, method.output_type.name).SerializeToString
        behaviour = getattr(servicer, method.name)
        make, wrap = (grpc.unary_stream_rpc_method_handler, _streaming) if method.server_streaming else \
            (grpc.unary_unary_rpc_method_handler, _unary)
        handlers[method.name] = make(
            wrap(behaviour), request_deserializer=decoder(getattr(messages, method.input_type.name)),
            response_serializer=lambda message, to_bytes=to_bytes: message if isinstance(message, bytes)
            else to_bytes(message))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
