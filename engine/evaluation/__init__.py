"""What the benchmarks (and notebooks) measure with: the engine's own evaluation parts, public.

``import engine`` does not load this package; it re-exports, unchanged, the pieces the build uses
internally, so that code outside the engine need not import a private module for them (some benchmarks
still import private modules, for parts too narrow to make public):

- the genre classifier's honest protocol: ``held_out_split`` (deduplicated songs, grouped by
  primary artist; the benchmarks test on ``HELD_OUT_FRACTION`` of them), ``evaluate_genre_classifier``,
  ``genre_metrics``, ``subset_labels``; the build's cross-fitting (``cross_fit``, its folds
  ``assign_folds`` over ``split_groups`` keys, ``split_name``);
- moods: ``mood_space`` (the weighted space moods are named in) and ``mood_table``;
- the genre re-ranking of similar tracks: ``GenreAgreement``, ``hybrid_scores``, ``rerank_table``;
- the ranking's stages, so a profiler can time them one by one: ``Survivors`` (exact cosines,
  filter, one listing per song) and ``Selector`` (artist cap, MMR, page);
- ``song_keys`` (one key per song across its listings) and ``synthetic_features`` (a planted
  feature matrix for scale tests).

    from engine.evaluation import evaluate_genre_classifier, held_out_split
"""

from engine._catalog import song_keys
from engine._crossfit import assign_folds, cross_fit, split_name
from engine._genre import (
    HELD_OUT_FRACTION,
    evaluate_genre_classifier,
    genre_metrics,
    held_out_split,
    split_groups,
    subset_labels,
)
from engine._moodreport import mood_table
from engine._moodspace import mood_space
from engine._ranking import Selector, Survivors
from engine._rerank import GenreAgreement, hybrid_scores, rerank_table
from engine._synthetic import synthetic_features

__all__ = [
    "HELD_OUT_FRACTION",
    "GenreAgreement",
    "Selector",
    "Survivors",
    "assign_folds",
    "cross_fit",
    "evaluate_genre_classifier",
    "genre_metrics",
    "held_out_split",
    "hybrid_scores",
    "mood_space",
    "mood_table",
    "rerank_table",
    "song_keys",
    "split_groups",
    "split_name",
    "subset_labels",
    "synthetic_features",
]
