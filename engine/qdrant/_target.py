"""Where a command finds its Qdrant collections, and the rules its options follow: one definition for
``musicrec publish`` and ``add`` (indexer/_scale.py), ``musicrec serve --backend qdrant``
(server/_cli_serve.py) and a notebook, so the commands cannot drift apart in what they accept.

Each command keeps its own flag names, defaults and exit codes: :meth:`QdrantTarget.problem` names
the flags it is given (``flags``), and a timeout left at None is the command's own default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from qdrant_client import QdrantClient

from engine._errors import ConfigError

DEFAULT_ALIAS = "musicrec"  # the alias servers read and the prefix of the collection names
MAX_TIMEOUT = 1_000_000.0  # seconds: a bound that only refuses a typo (the server's deadlines share it)
_ALIAS = re.compile(r"[A-Za-z0-9_.-]{1,200}")
# a notebook's names for the options; each command passes its own flags
FIELDS = {"url": "url", "path": "path", "alias": "alias", "api_key_env": "api_key_env", "timeout": "timeout"}
# what local mode lacks, per option only a server takes (hnsw_ef: only where the command offers it)
_SERVER_ONLY = (("api_key_env", "API key"), ("timeout", "requests to time out"), ("hnsw_ef", "HNSW graph to search"))


@dataclasses.dataclass(frozen=True, kw_only=True)
class QdrantTarget:
    """A Qdrant server (``url``) or local mode on disk (``path``), the ``alias`` read or written, the
    environment variable holding the server's API key, seconds per request (None: the caller's default)
    and a server's HNSW search breadth (serve only)."""

    url: str | None = None
    path: Path | None = None
    alias: str = DEFAULT_ALIAS
    api_key_env: str | None = None
    timeout: float | None = None
    hnsw_ef: int | None = None

    def problem(self, flags: Mapping[str, str] = FIELDS) -> str | None:
        """Why these options cannot work together, or None: checked before any work, without a request.
        ``flags`` names each option as the command spells it (``{"url": "--qdrant", ...}``); an option
        missing from it is one the command does not offer."""
        if (self.url is None) == (self.path is None):
            return f"give exactly one of {flags['url']} URL or {flags['path']} DIR"
        given = [flags[name] for name, _ in _SERVER_ONLY if name in flags and getattr(self, name) is not None]
        if self.path is not None and given:  # else ignored: local mode makes no requests
            lacks = [what for name, what in _SERVER_ONLY if name in flags]
            one = len(given) == 1
            return (f"{', '.join(given)} {'applies' if one else 'apply'} to a Qdrant server ({flags['url']} URL) "
                    f"only: local mode ({flags['path']}) has no {', no '.join(lacks[:-1])} and no {lacks[-1]}; "
                    f"leave {'it' if one else 'them'} out")
        if self.timeout is not None and not (math.isfinite(self.timeout) and 0 < self.timeout <= MAX_TIMEOUT):
            # NaN or 0: every request fails or never ends
            return (f"{flags['timeout']} must be a number of seconds over 0 and at most {MAX_TIMEOUT:,.0f}, "
                    f"got {self.timeout}")
        if not _ALIAS.fullmatch(self.alias):
            return (f"{flags['alias']} {self.alias[:60]!r}: give 1 to 200 letters, digits, '_', '-' or '.' (it also "
                    "prefixes the collection names)")
        if self.url is not None and (problem := url_problem(self.url)) is not None:
            return f"{flags['url']} {self.url[:200]!r}: {problem}"
        if self.api_key_env and not os.environ.get(self.api_key_env):
            return f"{flags['api_key_env']} {self.api_key_env}: the variable is not set"
        return None

    def connect(self, *, default_timeout: float = 5.0) -> QdrantClient:
        """A client for this target (:func:`connect`: no request is made), after :meth:`problem` passed;
        a problem is a :class:`ConfigError`."""
        if (problem := self.problem()) is not None:
            raise ConfigError(f"Qdrant target: {problem}")
        api_key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return connect(url=self.url, path=self.path, api_key=api_key,
                       timeout=default_timeout if self.timeout is None else self.timeout)


def url_problem(url: str) -> str | None:
    """What keeps ``url`` from being a Qdrant server's address (``http://HOST:PORT`` or ``https://...``, a path
    for a prefix), or None: checked before a client is made, as the client takes an empty URL for
    ``localhost:6333`` and a malformed one fails at its first request, or with a parser's traceback."""
    if not url.strip():
        return "empty (an unset variable?); give the server's URL, e.g. http://localhost:6333"
    if url != url.strip() or any(c.isspace() or not c.isprintable() for c in url):
        return "holds spaces or control characters; give the server's URL, e.g. http://localhost:6333"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unclosed IPv6 bracket
        return f"not a URL ({exc})"
    if "://" not in url:  # without one, the client picks http, or https when an API key is given: say which
        return "no scheme: give http:// or https:// (e.g. http://localhost:6333)"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme[:20]!r}: give http:// or https:// (e.g. http://localhost:6333)"
    if "@" in parts.netloc:
        return "holds a user or password, which the client would not send (Qdrant takes an API key instead, read " \
               "from an environment variable)"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "holds a query or fragment ('?', '#'), which the client would not send"
    host = parts.hostname or ""
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"host [{host}] is not an IPv6 address"
    elif not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?", host):
        return f"host {host!r} is not a host name or an IP address" if host else "no host (e.g. http://localhost:6333)"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or parts.netloc.endswith(":"):
        return f"port {parts.netloc.rpartition(':')[2]!r} is not a number from 1 to 65535"
    return None


def connect(*, url: str | None = None, path: str | os.PathLike[str] | None = None, api_key: str | None = None,
            timeout: float = 5.0) -> QdrantClient:
    """A client for a Qdrant server (``url``) or local mode on disk (``path``; the Qdrant API in
    pure Python, made for tests, one process at a time per path). Makes no request: a server that
    is down is found at the first call, never here. A ``url`` that is not a server's address
    (:func:`url_problem`) is a :class:`ConfigError`."""
    if (url is None) == (path is None):
        raise ValueError("give exactly one of url or path")
    if url is not None:
        problem = url_problem(url)
        if problem is not None:
            raise ConfigError(f"Qdrant URL {url[:200]!r}: {problem}")
        # the client takes whole seconds: a fraction is rounded up, never down to a shorter deadline
        return QdrantClient(url=url, api_key=api_key, timeout=max(1, math.ceil(timeout)), check_compatibility=False)
    return QdrantClient(path=str(path))
