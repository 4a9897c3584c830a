"""Plain-text tables for `musicrec query`: columns as wide as their widest cell, two spaces apart, and
narrowed to fit the terminal (a cut cell ends in "…", so it never runs into the next column)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

GAP = "  "
MIN_WIDTH = 6  # a flexible column never narrows below this (or its header)
MAX_COLUMNS = 10_000  # a $COLUMNS past this is no terminal's width


def output_width() -> int | None:
    """The terminal's width when stdout is one; else $COLUMNS if set; else None (no limit: piped
    output is for reading in full or for other programs). A $COLUMNS that is not a width in
    1..MAX_COLUMNS written in ASCII digits is ignored, as an unset one."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    # "²" passes isdigit() but not int(), and int() refuses more than 4,300 digits
    if columns.isascii() and columns.isdigit() and len(columns) <= len(str(MAX_COLUMNS)):
        return int(columns) if 0 < int(columns) <= MAX_COLUMNS else None
    return None


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = (),
          flexible: Sequence[int] = (), width: int | None = None) -> list[str]:
    """Lines of a table. ``right``: indexes of right-aligned columns; ``flexible``: columns that may be
    narrowed (widest first) when the table is wider than ``width``."""
    widths = [max([len(headers[i])] + [len(r[i]) for r in rows]) for i in range(len(headers))]
    if width is not None:
        excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
        while excess > 0:
            shrinkable = [i for i in flexible if widths[i] > max(MIN_WIDTH, len(headers[i]))]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda i: widths[i])
            widths[widest] -= 1
            excess -= 1

    def cell(text: str, i: int) -> str:
        if len(text) > widths[i]:
            text = text[:widths[i] - 1] + "…"
        return text.rjust(widths[i]) if i in right else text.ljust(widths[i])

    return [GAP.join(cell(text, i) for i, text in enumerate(line)).rstrip() for line in [headers, *rows]]
