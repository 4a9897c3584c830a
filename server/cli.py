"""The server's commands for ``musicrec``: ``serve`` (server/_cli_serve.py), ``query``
(server/_cli_query.py, its tables in _cli_format.py), ``bench`` (server/_cli_bench.py) and ``health``
(server/_probe.py), one module each, each with its parser and its command.

The ``musicrec`` command (musicrec/cli.py) adds these beside the indexer's, and builds every parser whatever
the command (``musicrec index`` too), so none of these modules imports grpc, protobuf or the engine at the top:
a command imports what it needs when it runs. ``demo_queries`` is the second half of ``musicrec demo``
(musicrec/_demo.py).
"""

from __future__ import annotations

from typing import Any

from . import _cli_bench, _cli_query, _cli_serve, _probe
from ._cli_query import demo_queries
from ._table import output_width

__all__ = ["add_parsers", "demo_queries", "output_width"]


def add_parsers(sub: Any) -> None:
    """Add ``serve``, ``query``, ``bench`` and ``health`` to the ``musicrec`` subcommands ``sub``."""
    _cli_serve.add_parser(sub)
    _cli_query.add_parser(sub)
    _cli_bench.add_parser(sub)
    _probe.add_parser(sub)
