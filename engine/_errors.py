"""Errors raised by the engine.

Each error subclasses both :class:`EngineError` (so the server can map the whole family to
a status code) and the builtin that generic callers would expect.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigError(EngineError, ValueError):
    """A configuration value or config file is invalid."""


class CatalogError(EngineError, ValueError):
    """The input catalog (CSV) cannot be used: missing file, columns, bad values."""


class BundleError(EngineError, RuntimeError):
    """A bundle cannot be written or loaded."""


class BundleIntegrityError(BundleError):
    """A bundle file is missing, unexpected, or does not match its recorded checksum."""


class BundleVersionError(BundleError):
    """A bundle was written in a format version this engine cannot read."""


class BundleNotFound(BundleError):
    """The path given as a bundle does not exist or is not a directory (bad input: the CLI exits 2)."""


class NotFittedError(EngineError, AttributeError):
    """A model was used before it was fitted or loaded."""


class TrackNotFound(EngineError, KeyError):
    """A track id is not in the catalog."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else "track not found"


class InvalidQuery(EngineError, ValueError):
    """A query is malformed: unknown feature, non-finite value, wrong dimension, bad k."""


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for echoing client input in messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


class DeadlineExceeded(EngineError, TimeoutError):
    """A query ran past the deadline its caller gave; its partial work is discarded."""


class BackendUnavailable(EngineError, ConnectionError):
    """The vector database behind the candidate source cannot answer (unreachable, or its
    collection does not match the loaded bundle); the server answers UNAVAILABLE and retries."""


def install_hint(extra: str) -> str:
    """The command that installs musicrec's optional ``extra`` into the Python running now. musicrec
    is not on PyPI, so a bare ``pip install 'musicrec[x]'`` would fetch nothing (or someone else's
    package): from a checkout (an editable install) the hint names this interpreter and the checkout;
    elsewhere (an image built from the Dockerfile) how to build it with the extra."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():
        return f"{sys.executable or 'python3'} -m pip install -e '{root}[{extra}]'"
    return (f"install musicrec with its {extra} extra (from the checkout: pip install '.[{extra}]'; the container "
            f"image: docker build --build-arg EXTRAS=fast,{extra})")
