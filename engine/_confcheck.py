"""The ranges of the numeric config keys, checked by one piece of code for every section.

Each section's ``__post_init__`` (engine/_config.py, engine/_moodconfig.py, engine/_schema.py) calls
``check_spans`` with a table of ``Span`` by key. A key in its table must lie in its span (or be one of the span's
named other values: "auto", None, 0 for "off"); every other float, and every float in a table such as
``[moods.weights]``, must still be finite. NaN compares false with everything, so a NaN learning rate or epsilon
would pass a check written as ``if value < 0`` and reach XGBoost or HDBSCAN, and a NaN or an infinity in the
manifest is not strict JSON: no key documents either as meaningful, so every float key refuses both, naming it.
Integers are at most INT32_MAX unless their span says otherwise: XGBoost, FAISS and scikit-learn take them as C ints.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigError

INT32_MAX = 2**31 - 1
FLOAT32_MAX = 3.4028234663852886e38  # float32's largest: XGBoost's parameters, and what a bundle's arrays hold


@dataclasses.dataclass(frozen=True)
class Span:
    """What one numeric key may hold: from ``low`` to ``high`` (None: unbounded; ``open_low``/``open_high``: the
    bound itself excluded), whole numbers where a bound is an ``int``, or one of ``also`` (said as ``say``, e.g.
    "0 (automatic)"; default the values' reprs)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    also: tuple[Any, ...] = ()
    say: str = ""

    @property
    def whole(self) -> bool:
        return any(type(bound) is int for bound in (self.low, self.high))

    def text(self) -> str:
        """The span as a message says it: "in (0, 1]", ">= 1", "0 (automatic) or 2..20", "'auto' or >= 2"."""
        low, high = self.low, self.high
        if low is not None and high is not None:
            span = (f"{low}..{high}" if self.whole and not (self.open_low or self.open_high) else
                    f"in {'(' if self.open_low else '['}{low:g}, {high:g}{')' if self.open_high else ']'}")
        elif low is not None:
            span = f"{'>' if self.open_low else '>='} {low:g}"
        else:
            span = f"{'<' if self.open_high else '<='} {high:g}"
        other = self.say or " or ".join(repr(a) for a in self.also if a is not None)  # (a file cannot say None)
        return f"{other} or {span}" if other else span

    def holds(self, value: Any) -> bool:
        if any(_same(value, a) for a in self.also):
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.whole and type(value) is not int:
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)


def _same(value: Any, other: Any) -> bool:
    """``value`` is ``other``: the same string or None, or the same number (0 and 0.0 alike, never a bool)."""
    if other is None or isinstance(other, str):
        return value == other and type(value) is type(other)
    return not isinstance(value, bool) and isinstance(value, int | float) and value == other


def check_spans(config: Any, section: str, spans: Mapping[str, Span]) -> None:
    """ConfigError naming the first key of the dataclass ``config`` (a ``section`` of the config) out of its span in
    ``spans``, or, for a key without one, the first float (or float in a table) that is NaN or infinite."""
    for field in dataclasses.fields(config):
        value, key = getattr(config, field.name), f"{section}.{field.name}"
        span = spans.get(field.name)
        if span is not None:
            check_value(value, key, span)
        elif isinstance(value, Mapping):
            for name, item in value.items():
                check_finite(item, f"{key}.{name}")
        else:
            check_finite(value, key)


def check_value(value: Any, key: str, span: Span) -> None:
    """ConfigError naming ``key`` when ``value`` is out of ``span``."""
    if not span.holds(value):
        infinite = isinstance(value, float) and math.isinf(value) and (span.low is None or span.high is None)
        raise ConfigError(f"{key} must be {span.text()}{' and finite' if infinite else ''}, got {value!r}")
    if span.whole and span.high is None and type(value) is int and value > INT32_MAX:
        raise ConfigError(f"{key} must be {span.text()} and at most {INT32_MAX:,}, got {value:,}")


def check_finite(value: Any, key: str) -> None:
    """ConfigError when ``value`` is a float that is NaN or infinite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
