"""The web console's own endpoints under /console/api/ (HTTP only; see server/_http.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._holder import BundleHolder
    from ._http import HttpFace


class ConsoleApi:
    def __init__(self, holder: BundleHolder, face: HttpFace) -> None:
        self.holder = holder
        self.face = face

    def routes(self) -> list[Any]:
        return []
