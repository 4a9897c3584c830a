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
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet


class Undecodable:
    """Request bytes that are not the method's message, and why."""

    __slots__ = ("error", "message")

    def __init__(self, message: str, error: str) -> None:
        self.message, self.error = message, error


def decoder(cls: Any) -> Callable[[bytes], Any]:
    """``cls.FromString``, returning an ``Undecodable`` where it raises or where the bytes hold a field the
    message does not have."""
    from_string = cls.FromString
    name = cls.DESCRIPTOR.full_name

    def decode(data: bytes) -> Any:
        try:
            message = from_string(data)
        except Exception as exc:  # google.protobuf.message.DecodeError, or a bad UTF-8 string's error
            return Undecodable(name, str(exc))
        # A message's size counts the unknown fields it keeps: unchanged once they are dropped, there were none
        # (~1 us a request, benchmarks/request_checks.py); only otherwise is the message walked to name one (~3-9 us)
        size = message.ByteSize()
        message.DiscardUnknownFields()
        if message.ByteSize() == size:
            return message
        problem = unknown_field(from_string(data))
        return message if problem is None else Undecodable(name, problem)
    return decode


def unknown_field(message: Message, at: str = "") -> str | None:
    """Where ``message`` (or a message inside it, ``at`` the path to it) holds a field its type does not have, or
    a field of a wire type that is not its declared type's, else None. Protobuf keeps such fields aside and the
    method never sees them, so a newer client's filter, or a ``k`` sent as fixed32, was dropped without a word;
    the HTTP face refuses the same requests as unknown fields or wrong types."""
    unknown = UnknownFieldSet(message)
    if len(unknown):
        number, wire_type = unknown[0].field_number, unknown[0].wire_type
        descriptor = message.DESCRIPTOR
        known = descriptor.fields_by_number.get(number)
        if known is not None:
            return (f"{at}{known.name} (field {number}) came as wire type {wire_type}, not as its type "
                    f"({_TYPE_NAMES.get(known.type, known.type)}) is sent")
        return (f"no field number {number} {f'in {at[:-1]}' if at else 'at its top level'} (this server's "
                f"{descriptor.name} has fields {sorted(descriptor.fields_by_number)}): was it built from a newer "
                ".proto?")
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = ((f"{at}{field.name}[{key!r}].", item) for key, item in value.items())
        elif field.is_repeated:
            items = ((f"{at}{field.name}[{i}].", item) for i, item in enumerate(value))
        else:
            items = iter(((f"{at}{field.name}.", value),))
        for item_at, item in items:
            if (problem := unknown_field(item, item_at)) is not None:
                return problem
    return None


_TYPE_NAMES = {getattr(FieldDescriptor, n): n[5:].lower() for n in dir(FieldDescriptor) if n.startswith("TYPE_")}


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
