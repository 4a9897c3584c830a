"""The HTTP face's framing (server/_http.py has the rules): request JSON -> the proto's message,
message -> response JSON, gRPC status -> HTTP status, and ``HttpContext``, the stand-in for grpc's
``ServicerContext`` that lets a call run the servicer gRPC runs. No web framework here: the routes
that use these are in server/_http.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ._cli_numbers import shown_number
from ._generated.musicrec.v1 import recommender_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["Recommender"]

# gRPC status -> HTTP status (google.rpc.Code's documented HTTP mapping).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# HTTP status -> the name an error response gives it, for errors of the HTTP framing that no gRPC status names.
STATUS_NAMES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "INVALID_ARGUMENT", 415: "UNSUPPORTED_MEDIA_TYPE",
                500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE"}


class CallAborted(Exception):
    """What ``HttpContext.abort`` raises: the status the servicer chose."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class HttpContext:
    """The part of ``grpc.ServicerContext`` the servicer uses, for a call that came over HTTP."""

    def __init__(self, metadata: Sequence[tuple[str, str]], deadline: float | None) -> None:
        self._metadata = tuple(metadata)
        self._deadline = deadline  # time.monotonic()
        self._cancelled = False
        self._callbacks: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        """The client went away (a stream left early stops choosing tracks)."""
        return self._cancelled

    @cancelled.setter
    def cancelled(self, value: bool) -> None:
        if value and not self._cancelled:
            self._cancelled = True
            for callback in self._callbacks:
                callback()

    def add_callback(self, callback: Callable[[], object]) -> bool:
        """As grpc's: ``callback`` runs when the call ends early (here: when marked cancelled); False,
        without keeping it, when it has already. A unary call's client leaving is not seen over HTTP,
        so it runs to its deadline as before."""
        if self._cancelled:
            return False
        self._callbacks.append(callback)
        return True

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise CallAborted(code, details)

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def is_active(self) -> bool:
        return not self.cancelled and (self._deadline is None or time.monotonic() < self._deadline)


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    path: str  # /musicrec.v1.Recommender/Name: what auth rules name
    request: type[Message]
    response: type[Message]
    streaming: bool


METHODS = {m.name: Method(m.name, f"/{SERVICE.full_name}/{m.name}", getattr(pb, m.input_type.name),
                          getattr(pb, m.output_type.name), m.server_streaming) for m in SERVICE.methods}


def message_json(message: Message) -> str:
    """A message as the HTTP face answers it: the proto's field names, zero values included."""
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None, ensure_ascii=False,
                                     always_print_fields_with_no_presence=True)


def message_dict(message: Message) -> dict[str, Any]:
    """``message_json`` as a dict (for comparing the faces, and for JSON built around messages)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


class BadRequest(Exception):
    """A request the HTTP framing refuses before the servicer sees it (400 or 413)."""

    def __init__(self, http: int, message: str) -> None:
        super().__init__(message)
        self.http = http
        self.message = message


_JSON_TYPE = re.compile(r"application/(?:json|[!#$%&'*+.^_`|~0-9a-z-]+\+json)")  # RFC 6839's +json suffix
# Types clients send JSON under by default: curl -d (form) and a browser's fetch of a string (text/plain).
# The face read them as JSON before it looked at Content-Type, so they still are: a body that is not
# JSON gets the usual 400.
_READ_AS_JSON = ("application/x-www-form-urlencoded", "text/plain")


def unsupported_media_type(content_type: str | None) -> str | None:
    """Why a request body declared as ``content_type`` is refused (415), or None when it is read as
    JSON: ``application/json``, any ``application/*+json``, the two types of _READ_AS_JSON, or no
    header at all, parameters (``charset``) aside. Anything else (XML, multipart, ...) is refused."""
    if content_type is None:
        return None
    media_type = content_type.partition(";")[0].strip().lower()
    if _JSON_TYPE.fullmatch(media_type) or media_type in _READ_AS_JSON:
        # a charset parameter is read past: JSON is UTF-8, and RFC 8259 says a charset has no effect on a
        # compliant receiver (Apache HttpClient and Spring send "text/plain; charset=ISO-8859-1" by default);
        # bytes that are not UTF-8 are the usual 400
        return None
    return (f"Content-Type {media_type[:100]!r} is not supported: send the request as application/json "
            "(or another application/*+json type)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadRequest(400, f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def parse_request(body: bytes, cls: type[Message], max_message_bytes: int) -> Message:
    """The request message from a JSON body; ``BadRequest`` (400 or 413) for anything else."""
    name = cls.DESCRIPTOR.name
    if not body.strip():
        return cls()
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_int=_json_int,
                          parse_float=_json_float)
    except UnicodeDecodeError:
        raise BadRequest(400, "the request body is not UTF-8 text") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise BadRequest(400, f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(400, "the request body nests too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(400, f"the request body must be a JSON object (a {name}), not {_json_type(data)}")
    _check_shapes(data, cls.DESCRIPTOR, name)
    message = cls()
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        text = _parse_problem(" ".join(str(exc).split()))
        raise BadRequest(400, f"not a valid {name}: {text[:400]}") from None
    if message.ByteSize() > max_message_bytes:
        raise BadRequest(413, f"the {name} is {message.ByteSize():,} bytes as a protobuf message, over the "
                              f"{max_message_bytes:,}-byte limit")
    return message


_NUMBER_TEXT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|-?Infinity|NaN")  # ASCII digits only


def _check_shapes(data: dict[str, Any], descriptor: Descriptor, at: str) -> None:
    """What protobuf's ParseDict lets through or words as its own internals, refused as 400 naming the field: a
    field given twice under its two JSON names (``includeGenres`` and ``include_genres``: the last one won,
    the other was dropped), a message field that is not a JSON object (``"filter": []`` parsed as an empty
    filter; ``"filter": "jazz"`` was "no field 'j'"), a list or map that is not one, a null inside one, a number
    field given what is not a number of its range (``_check_number``) and a bytes field given what is not base64
    text (``_check_base64``)."""
    seen: dict[str, str] = {}
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key) or _by_json_name(descriptor).get(key)
        if field is None:
            continue  # ParseDict names an unknown field, with the message's fields
        where = f"{at}.{field.name}"
        if field.name in seen:
            raise BadRequest(400, f"{where} is given twice, as {seen[field.name]!r} and {key!r}: give it once")
        seen[field.name] = key
        if value is None:
            continue  # the JSON mapping's "absent"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if not isinstance(value, dict):
                raise BadRequest(400, f"{where} must be a JSON object (a map), not {_json_type(value)}")
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                _check_value(v, value_field, f"{where}[{k[:40]!r}]")
        elif field.is_repeated:
            if not isinstance(value, list):
                raise BadRequest(400, f"{where} must be a JSON array, not {_json_type(value)}")
            for i, v in enumerate(value):
                _check_value(v, field, f"{where}[{i}]")
        else:
            _check_value(value, field, where)


def _check_value(value: Any, field: FieldDescriptor, where: str) -> None:
    if value is None:
        raise BadRequest(400, f"{where} is null: an entry of a list or a map needs a value")
    if field.message_type is not None:
        if not isinstance(value, dict):
            raise BadRequest(400, f"{where} must be a JSON object (a {field.message_type.name}), not "
                                  f"{_json_type(value)}")
        _check_shapes(value, field.message_type, where)
    elif isinstance(value, _LongNumber):
        raise BadRequest(400, f"{where} is out of range{_for_field(field)}: {value.shown}")
    elif field.type == field.TYPE_BYTES:
        _check_base64(value, where)
    elif field.cpp_type in _INTEGERS or field.cpp_type in _FLOAT_MAX:
        _check_number(value, field, where)


# Integers longer than this are out of range for every field: a double holds up to ~1.8e308 (309
# digits), and int() would refuse over 4,300 digits with advice meant for the server's code.
_MAX_DIGITS = len(str(int(sys.float_info.max)))
_INTEGERS = frozenset({FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT32,
                       FieldDescriptor.CPPTYPE_UINT64})
_INTEGER_DIGITS = 20  # uint64's largest, 18446744073709551615: more digits are out of every integer field's range
_FLOAT_MAX = {FieldDescriptor.CPPTYPE_DOUBLE: sys.float_info.max, FieldDescriptor.CPPTYPE_FLOAT: 3.4028234663852886e38}
_TYPE_NAMES = {getattr(FieldDescriptor, n): n[5:].lower() for n in dir(FieldDescriptor) if n.startswith("TYPE_")}


class _LongNumber:
    """A JSON integer of more than _MAX_DIGITS digits, kept unread (``_json_int``) so that the field
    it was given for is named when it is refused."""

    def __init__(self, text: str) -> None:
        self.shown = shown_number(text)


def _json_int(text: str) -> int | _LongNumber:
    return _LongNumber(text) if len(text.lstrip("-")) > _MAX_DIGITS else int(text)


class _Underflow(float):
    """A JSON number read as 0.0 that is not 0 (``1e-400``): a float field takes it as 0.0, as any rounding, but an
    integer field would take it as 0, its "unset"."""

    def __new__(cls, text: str) -> _Underflow:
        number = super().__new__(cls, 0.0)
        number.text = text
        return number


def _json_float(text: str) -> float:
    number = float(text)
    return _Underflow(text) if number == 0 and any(c in "123456789" for c in text.partition("e")[0].partition("E")[0]) \
        else number


def _for_field(field: FieldDescriptor) -> str:
    numeric = field.cpp_type in _INTEGERS or field.cpp_type in _FLOAT_MAX
    return f" for a {_TYPE_NAMES[field.type]} field" if numeric else ""


def _check_number(value: Any, field: FieldDescriptor, where: str) -> None:
    """What ParseDict reads into a number field that the JSON mapping does not give it: true/false (Python's
    bool is an int, so ``"diversity": true`` was 1.0), number text Python's ``int``/``float`` read but the
    mapping does not (``"1_0"``, ``" 10"``), and a number too large for the field (read as infinity by a
    float field, or refused with Python's own wording)."""
    if isinstance(value, bool):
        raise BadRequest(400, f"{where} must be a number, not true/false")
    if isinstance(value, str):
        if not _NUMBER_TEXT.fullmatch(value):
            raise BadRequest(400, f"{where} must be a number, not the text {value[:40]!r}")
        if value.lstrip("-") in ("Infinity", "NaN"):
            return  # the mapping's own spellings of these
    elif not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        return  # not a number (ParseDict names the field), or JSON's 1e400: ParseDict says to quote "Infinity"
    limit = _FLOAT_MAX.get(field.cpp_type)
    if limit is None and isinstance(value, _Underflow):
        raise BadRequest(400, f"{where} must be an integer, not {shown_number(value.text)}")
    if limit is None:  # an integer field: ParseDict names one out of range, but in Python's words past 4,300 digits
        text = str(value)
        if re.fullmatch(r"-?[0-9]+", text) and len(text.lstrip("-").lstrip("0")) > _INTEGER_DIGITS:
            raise BadRequest(400, f"{where} is out of range{_for_field(field)}: {shown_number(text)}")
        return
    try:
        number = float(value)
    except OverflowError:  # an int of more digits than a double holds
        number = math.inf
    if abs(number) > limit:
        raise BadRequest(400, f"{where} is out of range{_for_field(field)}: {shown_number(str(value))}")


_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="


def _check_base64(value: Any, where: str) -> None:
    """A bytes field is base64 text, standard or URL-safe, padded or not (the JSON mapping), on one line:
    ParseDict's decoder drops any other character unseen (``"!!"`` was an empty clip) and counts a line break
    into the padding ("Incorrect padding"), and a number or a list failed with Python's wording ("has no len()")."""
    if not isinstance(value, str):
        raise BadRequest(400, f"{where} must be base64 text, not {_json_type(value)}")
    if not value.isascii() or value.encode("ascii").translate(None, _BASE64_CHARS):
        at = next(i for i, c in enumerate(value) if not c.isascii() or c.encode() not in _BASE64_CHARS)
        raise BadRequest(400, f"{where} must be base64 text: {value[at]!r} (character {at}) is not base64")
    data = value
    unpadded = data.rstrip("=")
    if "=" in unpadded or len(data) - len(unpadded) > 2:
        raise BadRequest(400, f"{where} must be base64 text: '=' only pads its end, at most twice")
    if len(unpadded) % 4 == 1:
        raise BadRequest(400, f"{where} must be base64 text: {len(unpadded):,} characters is one more than a "
                              "multiple of 4, which no bytes encode (was it cut short?)")


def _by_json_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    return {f.json_name: f for f in descriptor.fields}


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false", int: "a number",
            float: "a number", _LongNumber: "a number", type(None): "null"}.get(type(value), type(value).__name__)


_NO_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "([^"]*)" at "([^"]*)"')
_AT = re.compile(r" at ([A-Z]\w*(?:\.\w+|\[\d+\])+)")


def _parse_problem(text: str) -> str:
    """protobuf's ParseDict message in the request's own words: field names as the proto spells them
    (snake_case, as the README and the responses use), not the JSON mapping's lowerCamelCase."""
    match = _NO_FIELD.search(text)
    if match:
        full, field, at = match.groups()
        try:
            fields = ", ".join(f.name for f in descriptor_pool.Default().FindMessageTypeByName(full).fields)
        except KeyError:
            return text
        known = f"its fields: {fields}" if fields else "it has no fields"
        return f"{_snake_path(at)} has no field {field!r}; {known}"
    return _AT.sub(lambda m: " at " + _snake_path(m.group(1)), text)


def _snake_path(path: str) -> str:
    """``SimilarTracksRequest.seeds[0].trackId`` -> ``SimilarTracksRequest.seeds[0].track_id``."""
    head, _, rest = path.partition(".")
    return head + ("." + re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), rest) if rest else "")


_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def parse_grpc_timeout(value: str | None) -> float | None:
    """Seconds of a ``Grpc-Timeout`` header (``<digits><H|M|S|m|u|n>``), or None when absent."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d{1,8})([HMSmun])\s*", value)
    if not match:
        raise BadRequest(400, f"Grpc-Timeout {value!r}: expected up to 8 digits and a unit H, M, S, m, u or n "
                              "(e.g. 500m for 500 ms)")
    return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]
