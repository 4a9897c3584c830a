"""musicrec gRPC server (package musicrec.v1): ``create_server`` for embedding and tests,
``musicrec serve`` / ``musicrec query`` on the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import RunningServer, ServerOptions, ServerStartError, create_server, serve_forever

__all__ = ["RunningServer", "ServerOptions", "ServerStartError", "create_server", "serve_forever"]


# The public names load ``_app`` (and with it grpc, protobuf and the engine) on first use rather than
# on import (PEP 562): the ``musicrec`` command builds ``server.cli``'s parsers for every command, ``musicrec
# index`` too, and that import runs this file; a build must neither need grpc nor wait seconds for it.
def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _app

    value = getattr(_app, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
