"""musicrec gRPC server (package musicrec.v1): ``create_server`` for embedding and tests,
``musicrec serve`` / ``musicrec query`` on the command line."""

from ._app import RunningServer, ServerOptions, create_server, serve_forever

__all__ = ["RunningServer", "ServerOptions", "create_server", "serve_forever"]
