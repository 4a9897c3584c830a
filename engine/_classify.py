"""Genre classification of a catalog track or raw feature values, optionally explained.

By id, a catalog track's probabilities are its out-of-fold ones (from the fold model that never saw it); by
features or audio, the shipped model's. An explanation is always the shipped model's: each feature's part in its
margin for the top genre (engine/_explain.py for the trees; with a linear part blended in, engine/_linear.py, each
part at its weight, so the parts and the bias still add up to the margin)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping

import numpy as np

from ._errors import InvalidQuery
from ._explain import PathExplainer
from ._families import family_matrix
from ._view import CatalogView

DEFAULT_TOP_K = 5


@dataclasses.dataclass(frozen=True)
class Classification:
    genres: list[tuple[str, float]]
    contributions: list[tuple[str, float]]
    bias: float
    known_genres: tuple[str, ...]
    took_ms: float
    families: list[tuple[str, float]] = dataclasses.field(default_factory=list)


class GenreClassify:
    def __init__(self, view: CatalogView) -> None:
        self.view = view
        self.classifier = view.bundle.classifier
        self._explainer: PathExplainer | None = None  # parsed on the first explain: seconds for big models
        self._explainer_lock = threading.Lock()
        self._families = family_matrix(view.genre_names)

    def check(self, top_k: int) -> int:
        """``top_k`` as asked (0: 5, or every genre of a catalog with fewer), or InvalidQuery: out of range, or a
        bundle without a classifier (the reason its build gave: no labels, one genre, disabled)."""
        if self.classifier is None:
            skipped = ((self.view.bundle.manifest.get("metrics") or {}).get("genre") or {}).get("skipped")
            raise InvalidQuery(f"this bundle has no genre classifier ({skipped or 'its build trained none'})")
        n_genres = len(self.view.genre_names)
        top_k = top_k or min(DEFAULT_TOP_K, n_genres)
        if not 1 <= top_k <= n_genres:
            raise InvalidQuery(f"top_k: must be 1..{n_genres}, got {top_k}")
        return top_k

    def classify(self, *, track_id: str | None = None, features: Mapping[str, float] | None = None,
                 top_k: int = 0, explain: bool = False) -> Classification:
        """Top genres; ``top_k`` 0 means 5, or every genre of a catalog with fewer."""
        t0 = time.perf_counter()
        view, classifier = self.view, self.classifier
        top_k = self.check(top_k)
        if (track_id is None) == (features is None):
            raise InvalidQuery("input: give exactly one of track_id or features")
        known: tuple[str, ...] = ()
        if track_id is not None:
            row = view.row(track_id)
            x = view.model_inputs(view.bundle.tracks.features[row:row + 1])
            known = view.genres[row]
        else:
            x = view.model_seed(features or {}, "features")
        # a catalog track's probabilities come from a model that never saw it (its fold's: engine/_crossfit.py), as
        # by-id "more like this" re-ranks with; the shipped model, trained on it, would be all but certain of its genre
        held_out = view.bundle.genre_proba if track_id is not None else None
        if held_out is not None:
            proba = held_out[row].astype(np.float64)
            proba /= proba.sum()  # stored as float16: they summed to 1 within ~3e-4
        else:
            proba = classifier.predict_proba(x)[0]
        top = np.argsort(-proba, kind="stable")[:top_k]
        contributions: list[tuple[str, float]] = []
        bias = 0.0
        if explain:
            bias, contrib = self._explain_with().explain(x[0], int(top[0]))
            if (linear := classifier.linear_) is not None:  # the blend's margin: each part at its weight
                linear_bias, linear_contrib = linear.contributions(x[0], int(top[0]))
                w = linear.weight
                bias, contrib = (1 - w) * bias + w * linear_bias, (1 - w) * contrib + w * linear_contrib
            names = classifier.feature_names
            order = np.argsort(-np.abs(contrib), kind="stable")
            contributions = [(names[i], float(contrib[i])) for i in order]
        families: list[tuple[str, float]] = []
        if self._families is not None:
            matrix, family_names = self._families
            family_proba = proba @ matrix
            best = np.argsort(-family_proba, kind="stable")[:top_k]
            families = list(zip([family_names[i] for i in best.tolist()], family_proba[best].tolist(), strict=True))
        genre_names = view.genre_names
        genres = list(zip([genre_names[i] for i in top.tolist()], proba[top].tolist(), strict=True))
        return Classification(genres=genres,
                              contributions=contributions, bias=float(bias), known_genres=known,
                              took_ms=(time.perf_counter() - t0) * 1e3, families=families)

    def _explain_with(self) -> PathExplainer:
        with self._explainer_lock:
            if self._explainer is None:
                assert self.classifier is not None
                self._explainer = PathExplainer(self.classifier.model_)
            return self._explainer

