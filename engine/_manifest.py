"""The shapes of manifest.json that the report reads (``musicrec report``, its HTML, the console's report) and that
``musicrec add`` reads of its base (``update``), checked once, when a bundle's manifest is read (engine/_bundle.py
``read_verified_manifest``).

The manifest has no checksum of its own: a hand edit that is still valid JSON (``metrics.moods`` a list, a count
as text, an unknown mood-cell kind) is refused here, naming the key and what it should be, instead of failing in
the report with a bare AttributeError, TypeError or KeyError. A key marked ``?`` may be missing (older bundles
lack it, or the build had nothing to say); where present it must have its shape. Keys not listed are not read by
the report, or only through ``in``/``.get`` with a fallback, and are not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._errors import BundleIntegrityError


@dataclasses.dataclass(frozen=True)
class _Leaf:
    what: str
    test: Callable[[Any], bool]


NUMBER = _Leaf("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool))
WHOLE = _Leaf("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool))
TEXT = _Leaf("text", lambda v: isinstance(v, str))
OBJECT = _Leaf("an object", lambda v: isinstance(v, dict))


@dataclasses.dataclass(frozen=True)
class Maybe:  # null, or the shape
    shape: Any


@dataclasses.dataclass(frozen=True)
class ListOf:
    item: Any


@dataclasses.dataclass(frozen=True)
class MapOf:  # an object whose every value has the shape
    value: Any


@dataclasses.dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]


def _shapes() -> dict[str, Any]:
    from ._moodgeometry import SMOOTHERS
    from ._moodreport import MOOD_KINDS

    moods = {
        "clusters": WHOLE, "core_coverage": NUMBER, "fit_tracks": WHOLE, "dbcv_sample?": Maybe(NUMBER),
        "silhouette": Maybe(NUMBER), "sampled?": Maybe(TEXT), "too_few_tracks?": Maybe(TEXT),
        "smoothing_neighbours?": WHOLE, "smoothing_neighbours_requested?": WHOLE,
        "coassoc?": Maybe({"cells?": OneOf(tuple(MOOD_KINDS)), "moods?": Maybe(TEXT), "assign?": Maybe(TEXT),
                           "ks?": ListOf(Any), "octant_axes?": WHOLE}),
        "consensus?": Maybe(OBJECT), "method?": Maybe({"smoother?": OneOf(("none", *SMOOTHERS))}),
        "floor_lowered?": Maybe(OBJECT), "space?": Maybe({"kind?": TEXT, "features?": ListOf(TEXT), "why?": TEXT}),
        "current_regime?": Maybe(OBJECT), "stability?": Maybe(OBJECT), "against_current?": Maybe(OBJECT),
        "spread?": Maybe(MapOf(OBJECT)), "vocabulary?": Maybe(ListOf({"word": TEXT, "means": TEXT})),
    }
    return {
        "counts": {
            "rows_read": WHOLE, "exact_duplicates": WHOLE, "duplicates_merged": WHOLE, "multi_genre_tracks": WHOLE,
            "tracks": WHOLE, "dropped": MapOf(WHOLE), "dropped_rows?": MapOf(ListOf(WHOLE)), "imputed": MapOf(WHOLE),
            "flag_blanks?": MapOf(WHOLE),
            "unlabelled?": WHOLE, "missing_metadata?": WHOLE, "blank_cells?": MapOf(WHOLE), "id_conflicts?": WHOLE,
            "case_only_genres?": ListOf(ListOf(TEXT)), "skipped_columns?": ListOf(TEXT),
        },
        "metrics": {
            "pca": {"input_dimensions": WHOLE, "components": WHOLE, "explained_variance": NUMBER,
                    "explained_variance_ratio?": ListOf(NUMBER), "constant_features?": ListOf(TEXT),
                    "whitening?": Maybe(OBJECT), "whiten_shrinkage?": Maybe(NUMBER), "fit_tracks?": WHOLE},
            "index": {"kind": TEXT, "tracks": WHOLE, "dim": WHOLE, "recall_at_10?": NUMBER, "queries?": WHOLE,
                      "new_track_index?": Maybe(OBJECT), "nlist?": WHOLE, "nprobe?": WHOLE, "nlist_lowered?": TEXT},
            "moods": moods,
            "genre?": Maybe({"skipped?": TEXT, "n_genres?": WHOLE, "test_tracks?": WHOLE, "rounds?": WHOLE,
                             "tuning?": Maybe(OBJECT), "families?": Maybe(OBJECT), "per_song?": Maybe(OBJECT)}),
            "similar?": OBJECT,
        },
        # what `musicrec add` writes, and reads back from its base for the next update's drift check
        "update?": {"added": WHOLE, "removed": WHOLE, "base": {"path": TEXT, "tracks": WHOLE},
                    "since_full_build?": {"added": WHOLE, "removed": WHOLE, "base_tracks": WHOLE},
                    "drift?": Maybe({"verdict?": Maybe(TEXT)})},
        "timings_seconds?": MapOf(NUMBER), "build_seconds?": NUMBER, "peak_memory_mib?": NUMBER,
    }


# a scored genre section (no "skipped"): what its report lines read
_SCORED_GENRE = {"n_genres": WHOLE, "test_tracks": WHOLE, "multi_strategy": TEXT, "rounds": WHOLE,
                 "macro_f1": NUMBER}


def check_manifest_shapes(manifest: Mapping[str, Any], path: Path) -> None:
    """Raise :class:`BundleIntegrityError` naming the first key of ``manifest`` whose shape the report cannot read."""
    _check(manifest, _shapes(), "", path)
    genre = manifest["metrics"].get("genre")
    if genre and "skipped" not in genre:
        _check(genre, _SCORED_GENRE, "metrics.genre", path)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    for leaf in (WHOLE, NUMBER, TEXT, OBJECT):
        if leaf.test(value):
            return leaf.what
    return "a list" if isinstance(value, list) else type(value).__name__


def _refuse(path: Path, where: str, said: str) -> None:
    raise BundleIntegrityError(f"{path}: {where or 'the manifest'} {said}; the manifest was edited or is damaged: "
                               "rebuild the bundle")


def _check(value: Any, shape: Any, where: str, path: Path) -> None:
    if shape is Any:
        return
    if isinstance(shape, Maybe):
        if value is not None:
            _check(value, shape.shape, where, path)
    elif isinstance(shape, OneOf):
        if value not in shape.values:
            _refuse(path, where, f"is {value!r}, expected one of {', '.join(map(repr, shape.values))}")
    elif isinstance(shape, _Leaf):
        if not shape.test(value):
            _refuse(path, where, f"is {_kind(value)}, expected {shape.what}")
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            _refuse(path, where, f"is {_kind(value)}, expected a list")
        for i, item in enumerate(value):
            _check(item, shape.item, f"{where}[{i}]", path)
    elif not isinstance(value, dict):
        _refuse(path, where, f"is {_kind(value)}, expected an object")
    elif isinstance(shape, MapOf):
        for key, item in value.items():
            _check(item, shape.value, f"{where}.{key}" if where else key, path)
    else:
        for key, inner in shape.items():
            name = key.removesuffix("?")
            dotted = f"{where}.{name}" if where else name
            if name in value:
                _check(value[name], inner, dotted, path)
            elif not key.endswith("?"):
                _refuse(path, dotted, "is missing")
