"""What ``musicrec add`` takes in (split from engine/_update.py): the file's tracks cleaned with the bundle's own
cleaning (engine/_ingest.py, the same as ``musicrec index``), minus the ones it refuses, counted by reason with
their first ids; and the ids to remove, read from ``--remove-ids``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._catalog import Catalog
from ._errors import CatalogError
from ._ingest import read_catalog
from ._inputfile import read_regular_file
from ._loaded import Bundle

REFUSED_IDS_SHOWN = 5  # per reason a track was refused, the ids the report names
# a track whose value lies so far beyond the fitted scaling (3e38 where the catalog spreads 0.2) that its mood-space
# point or mood-map position overflows float32, what moods and the map hold; a refit would scale it
BEYOND_SCALING = "outside_the_fitted_scaling"
# a track whose every transformed feature is the catalog's fitted mean has no direction from it, so no cosine to
# any track (a feature query there is refused the same way: engine/_view.py)
AT_THE_MEAN = "exactly_at_the_fitted_mean"


def new_tracks(bundle: Bundle, csv: str | os.PathLike[str], kept_ids: np.ndarray
               ) -> tuple[Catalog | None, dict[str, int], dict[str, Any]]:
    """The file's tracks, cleaned with the bundle's schema, minus refused ones (counted by reason)."""
    old = bundle.tracks
    # the file's metadata read as the bundle types it, not from its own cells: a column of blanks, or of "7"s
    # in a text column, is still the bundle's flag (unknown) or text ("7", not 7.0)
    new = read_catalog(csv, bundle.config.schema, metadata_types={c: v.dtype for c, v in old.metadata.items()})
    missing = [c for c in old.metadata if c not in new.metadata]
    if missing:
        raise CatalogError(f"{csv}: column(s) {missing} of the bundle are missing from the added file")
    rep = new.report
    ingest = {"rows_read": rep.rows_read, "tracks": rep.tracks, "dropped": rep.dropped,
              "dropped_rows": rep.dropped_rows, "imputed": rep.imputed,
              "exact_duplicates": rep.exact_duplicates, "duplicates_merged": rep.id_duplicates_merged,
              "id_conflicts": rep.id_conflicts}
    ok = np.ones(len(new), dtype=bool)
    refused: dict[str, int] = {}
    ingest["refused_ids"] = examples = {}  # the first few ids of each reason, for the report

    def refuse(mask: np.ndarray, reason: str) -> None:
        nonlocal ok
        mask = mask & ok
        if mask.any():
            refused[reason] = int(mask.sum())
            examples[reason] = [str(t) for t in new.ids[mask][:REFUSED_IDS_SHOWN]]
            ok &= ~mask

    refuse(np.isin(new.ids.astype(str), kept_ids.astype(str)), "already_in_bundle")
    unknown = sorted(set(new.genre_names) - set(old.genre_names))
    if unknown:
        codes = [new.genre_names.index(g) for g in unknown]
        refuse(new.genre_matrix()[:, codes].any(axis=1),
               f"unknown_genre ({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''})")
    finite, directed = placeable(bundle, new.features)
    refuse(~finite, BEYOND_SCALING)
    refuse(~directed, AT_THE_MEAN)
    if not ok.any():
        return None, refused, ingest
    code_of = {g: i for i, g in enumerate(old.genre_names)}
    remap = np.array([code_of.get(g, -1) for g in new.genre_names], dtype=np.int64)
    rows = np.flatnonzero(ok)
    starts, ends = new.genre_indptr[rows], new.genre_indptr[rows + 1]
    codes = [remap[new.genre_codes[s:e]] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in codes])]).astype(old.genre_indptr.dtype)
    metadata = {c: new.metadata[c][rows] for c in old.metadata}
    accepted = Catalog(ids=new.ids[rows], feature_names=old.feature_names, features=new.features[rows],
                       genre_names=old.genre_names, genre_indptr=indptr,
                       genre_codes=(np.concatenate(codes) if codes else np.empty(0)).astype(old.genre_codes.dtype),
                       metadata=metadata, report=rep, artists_column=old.artists_column,
                       artist_separator=old.artist_separator)
    return accepted, refused, ingest


def placeable(bundle: Bundle, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of raw ``features`` (each value within float32's range: the cleaning's ``FEATURE_LIMIT``), whether
    the bundle's fitted parts place it in finite numbers, computed as the update computes them: its vector, its
    mood-space point (``MoodSpace.project``, float32) and its mood-map position (``MoodMap.place``, float32); and
    whether its vector has a direction (not the zero vector of a track exactly at the fitted mean)."""
    prep = bundle.preprocessor
    with np.errstate(over="ignore", invalid="ignore"):  # (an overflow is what is asked about)
        points = bundle.moods.space.project(prep.standardize(features))
        vectors = prep.embed(features).astype(np.float32)
        finite = np.isfinite(points).all(axis=1) & np.isfinite(vectors).all(axis=1)
        if bundle.mood_map is not None:
            finite &= np.isfinite(bundle.mood_map.place(points)).all(axis=1)
    return finite, vectors.any(axis=1) | ~finite


def read_remove_ids(path: Path) -> list[str]:
    """The ids of a ``--remove-ids`` file, one per line (blank lines skipped); a file that cannot be read or is
    not UTF-8 text is a :class:`CatalogError` naming it."""
    try:
        text = read_regular_file(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"--remove-ids {path}: not UTF-8 text (byte {exc.start}: {exc.reason}); re-save the file "
                           "as UTF-8") from None
    except OSError as exc:
        raise CatalogError(f"--remove-ids {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def refused_text(refused: Mapping[str, int], examples: Mapping[str, Sequence[str]]) -> str:
    """``refused`` (count by reason) as a reader reads it, each reason with its first ids."""
    parts = []
    for reason, n in refused.items():
        ids = list(examples.get(reason, ()))
        shown_ids = f": {', '.join(ids)}{', ...' if n > len(ids) else ''}" if ids else ""
        parts.append(f"{n:,} {reason.replace('_', ' ')}{shown_ids}")
    return "; ".join(parts)
