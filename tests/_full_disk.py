"""A full disk for report files: ``full_disk(monkeypatch)`` sends every write of engine/_files.py ``write_output``
to Linux's /dev/full, so each fails with ENOSPC (the tests that use it skip without /dev/full)."""

from __future__ import annotations

import builtins
import os

import pytest


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def full_open(fd: int, *args: object, **kwargs: object) -> object:
        os.close(fd)
        return builtins.open("/dev/full", *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("engine._files.open", full_open, raising=False)
