"""XGBoost's model file (``genre_model.ubj``, Universal Binary JSON) read without XGBoost.

A server only evaluates the trees (engine/_forest.py) and explains them (engine/_explain.py), and both
read the model's JSON document. Importing XGBoost to parse it cost 1.4 s of a server's 2.3 s import on
2 cores (XGBoost imports scikit-learn whenever it is installed), so the document is read here instead:
the same objects as ``json.loads(booster.save_raw("json"))``, except that typed arrays (the trees' node
fields) come as numpy arrays of their stored type. Nothing in the file is executed; a file that is not
UBJSON of this shape raises ValueError naming the offset.

The format (ubjson.org, as XGBoost writes it): a value is a one-byte type marker then its payload,
numbers big-endian; object keys are length-prefixed strings without a marker; a container may give
its element type (``$``) and count (``#``) up front, else it ends at ``]`` or ``}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_SCALARS = {marker: np.dtype(code) for marker, code in
            {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8", b"d": ">f4", b"D": ">f8"}.items()}
_MAX_DEPTH = 64  # a model document is a few levels deep; deeper is a damaged or hostile file


def loads_model(data: bytes) -> dict[str, Any]:
    """The model document of an XGBoost UBJSON file's bytes, as described in the module docstring."""
    value, end = _Reader(data).value(0, 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the model document (offset {end})")
    if not isinstance(value, dict) or not isinstance(value.get("learner"), dict):
        raise ValueError("the file is not an XGBoost model (no learner)")
    return value


def as_printed(values: np.ndarray) -> np.ndarray:
    """float32 values as float64 the way XGBoost's JSON gives them: each float32 printed as the shortest
    decimal that reads back as itself, read as float64 (numpy prints float32 so too). Code that did its
    arithmetic in float64 on the JSON's numbers gets the same numbers from the binary file."""
    return np.asarray(values, dtype=np.float32).astype(str).astype(np.float64)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def _take(self, pos: int, n: int) -> tuple[bytes, int]:
        if n < 0 or pos + n > len(self.data):
            raise ValueError(f"the model file ends inside a value (offset {pos}, {n} bytes wanted)")
        return self.data[pos:pos + n], pos + n

    def _marker(self, pos: int) -> tuple[bytes, int]:
        marker, pos = self._take(pos, 1)
        while marker == b"N":  # no-op
            marker, pos = self._take(pos, 1)
        return marker, pos

    def _scalar(self, marker: bytes, pos: int) -> tuple[Any, int]:
        if marker in _SCALARS:
            raw, pos = self._take(pos, _SCALARS[marker].itemsize)
            return np.frombuffer(raw, dtype=_SCALARS[marker])[0].item(), pos
        if marker == b"Z":
            return None, pos
        if marker == b"T":
            return True, pos
        if marker == b"F":
            return False, pos
        if marker == b"C":
            raw, pos = self._take(pos, 1)
            return raw.decode("utf-8"), pos
        raise ValueError(f"unknown UBJSON type {marker!r} at offset {pos - 1}")

    def _count(self, pos: int) -> tuple[int, int]:
        marker, pos = self._marker(pos)
        n, pos = self._scalar(marker, pos)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"a bad length at offset {pos}")
        return n, pos

    def _string(self, pos: int) -> tuple[str, int]:
        n, pos = self._count(pos)
        raw, pos = self._take(pos, n)
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError as e:
            raise ValueError(f"a string that is not UTF-8 at offset {pos - n}") from e

    def value(self, pos: int, depth: int, marker: bytes | None = None) -> tuple[Any, int]:
        if marker is None:
            marker, pos = self._marker(pos)
        if marker == b"S":
            return self._string(pos)
        if marker in (b"[", b"{"):
            if depth >= _MAX_DEPTH:
                raise ValueError(f"containers nested over {_MAX_DEPTH} deep at offset {pos - 1}")
            return self._container(marker == b"{", pos, depth + 1)
        return self._scalar(marker, pos)

    def _container(self, is_object: bool, pos: int, depth: int) -> tuple[Any, int]:
        kind: bytes | None = None
        count: int | None = None
        if self.data[pos:pos + 1] == b"$":
            kind, pos = self._take(pos + 1, 1)
            if self.data[pos:pos + 1] != b"#":
                raise ValueError(f"a typed container without a count at offset {pos}")
        if self.data[pos:pos + 1] == b"#":
            count, pos = self._count(pos + 1)
        if not is_object and kind in _SCALARS and count is not None:  # a typed array: the trees' node fields
            dtype = _SCALARS[kind]
            raw, pos = self._take(pos, count * dtype.itemsize)
            return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("=")), pos
        items: Any = {} if is_object else []
        i = 0
        while count is None or i < count:
            if count is None:
                if self.data[pos:pos + 1] == (b"}" if is_object else b"]"):
                    return items, pos + 1
                if pos >= len(self.data):
                    raise ValueError(f"the model file ends inside a container (offset {pos})")
            if is_object:
                key, pos = self._string(pos)
                items[key], pos = self.value(pos, depth, kind)
            else:
                item, pos = self.value(pos, depth, kind)
                items.append(item)
            i += 1
        return items, pos
