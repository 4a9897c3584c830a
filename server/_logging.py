"""Log output of ``musicrec serve``: one JSON object per line, or readable text (the default on a terminal).

Every record has ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``event`` (a stable
name to filter on, ``"log"`` for free-text lines) and ``message``; structured fields passed as
``extra={"event": NAME, "fields": {...}}`` become keys of the JSON object, or ``key=value`` pairs
after the text message. Nothing here ever sees request metadata or bodies: callers pass only the
fields they choose (see server/_observe.py), so a token cannot reach the log by accident.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _iso_time(created: float) -> str:
    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": _iso_time(record.created), "level": record.levelname.lower(),
                               "logger": record.name, "event": getattr(record, "event", "log"),
                               "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with any structured fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        pairs = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and v != "")
        return f"{head} {pairs}{newline}{rest}"


def resolve_format(requested: str | None, stream: TextIO | None = None) -> str:
    """``requested``, or by default text on a terminal and JSON anywhere else (containers, files, pipes)."""
    if requested:
        return requested
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure(log_format: str | None = None, *, level: int = logging.INFO, stream: TextIO | None = None) -> str:
    """Send the process's log records to ``stream`` (stderr) in ``log_format``; returns the format used."""
    chosen = resolve_format(log_format, stream)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return chosen
