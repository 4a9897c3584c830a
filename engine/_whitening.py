"""Whether a catalog's vectors are whitened, measured on its own labels (``[preprocess] whiten = "auto"``).

Whitening (engine/_preprocess.py) makes every direction of the catalog's spread count alike in cosine. On the
librosa-style tables measured it raised audio-only retrieval on every split (benchmarks/RESULTS.md, "Retrieval
defaults" and "Whitening that a small catalog can afford"): their descriptors are correlated, and the directions
of large spread there are mostly level and recording, not genre. It is a bet on that: where a catalog's genres
differ along its directions of large spread, whitening shrinks them to the size of the noise around them (a
table of independent descriptors, each shifted by genre, gave 0.6968-0.7123 whitened against 0.9917-0.9955 not
on three such tables: "Whitening measured per catalog" in RESULTS).

So the audio preset asks for ``"auto"``: the build fits the vectors both ways, scores each by audio-only
genre-precision@10 with up to 3,000 labelled tracks as "more like this" queries (exact cosine, the query's
own song left out, as the build's own similar-tracks evaluation does), and whitens unless the plain vectors
score higher. Both figures go into the manifest and the report. The choice is made on the queries it is scored
on, so the chosen figure is mildly optimistic, as a tuned capacity's is. Without labels (fewer than
``MIN_QUERIES`` labelled tracks) it whitens, the measured default; where the shrinkage makes whitening a
rotation (as many dimensions as tracks) there is nothing to choose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._catalog import Catalog
from ._preprocess import Preprocessor
from ._rerank import GenreAgreement, audio_only_precision, eval_queries

MIN_QUERIES = 100  # fewer labelled tracks than this say too little to overrule the measured default


def choose_whitening(catalog: Catalog, fit: Callable[[bool], Preprocessor], songs: np.ndarray, *,
                     block: int, seed: int) -> tuple[Preprocessor, dict[str, Any]]:
    """The fitted Preprocessor to ship and what decided it. ``fit(whiten)`` fits one on the catalog."""
    whitened = fit(True)
    labelled = np.flatnonzero(np.diff(catalog.genre_indptr) > 0)
    if whitened.whiten_shrinkage_ >= 1:
        return whitened, {"whitened": True, "measured": False,
                          "why": "as many dimensions as tracks, or more: whitening is a rotation here"}
    if len(labelled) < MIN_QUERIES or len(catalog.genre_names) < 2:
        few = (f"{len(labelled):,} labelled tracks, under the {MIN_QUERIES} it measures with"
               if len(catalog.genre_names) > 1 else "one genre or none: every neighbour would share it")
        return whitened, {"whitened": True, "measured": False,
                          "why": f"{few}: whitened, the audio preset's measured default"}
    plain = fit(False)
    queries = eval_queries(labelled, seed)
    genres = catalog.genre_matrix()
    agreement = GenreAgreement(catalog.genre_indptr, catalog.genre_codes, len(catalog.genre_names))
    scores = {name: audio_only_precision(prep.embed(catalog.features), queries, genres, songs, agreement, block)
              for name, prep in (("whitened", whitened), ("not_whitened", plain))}
    keep = not scores["not_whitened"] > scores["whitened"]
    return (whitened if keep else plain), {
        "whitened": keep, "measured": True, "queries": len(queries),
        "genre_precision_at_10_whitened": scores["whitened"],
        "genre_precision_at_10_not_whitened": scores["not_whitened"]}
