"""A ``musicrec add`` update carried to Qdrant: the new bundle version's collection made from the
base version's by copy-on-write, then the alias swap.

Why copy-on-write and not the live collection updated in place: point ids are bundle rows, and
rows are renumbered past a removed track (engine/_update.py keeps the old order and appends), so
an in-place upsert/delete would change what the points of the *live* collection mean under every
replica still serving the base bundle (it maps point ids to its own rows). Here the base collection
is only read; the new version gets its own collection, named after its bundle as ``publish`` names
them, so every server reads the collection of the bundle it has loaded (engine/qdrant/_source.py):

1. the base bundle's collection must hold the base bundle (exact count, dimension, name);
2. a new collection with the payload indexes; the kept tracks' points are copied from the base
   collection (their vectors read back from Qdrant, not recomputed) under their new row ids with
   the new version's payloads (row, song key and mood counts may change); the removed tracks'
   points are not copied, which is the delete; the added tracks' points are upserted from the new
   bundle;
3. verified: the exact count, a sample of vectors equal to the new bundle's, and no removed track
   id in the collection (a payload filter on ``track_id``);
4. the alias swapped in one call, then retention as ``publish`` applies it.

Killed before 4, the alias still names the base collection; rerunning the update (or ``musicrec
publish NEW``) finds the new collection incomplete and writes it again. Cost: every point of the new
version is written once (as a publish writes them), the base's kept points are read once; what is
saved is reading and serializing the kept vectors from the bundle, nothing more. An update that
writes only the changed points needs point ids that survive renumbering and a per-version marker
on each point (not built: see docs/SCALING.md).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from engine._errors import BundleError
from engine._loaded import Bundle, load_bundle
from engine._view import CatalogView

from ._publish import (
    BATCH,
    DEFAULT_KEEP,
    check_vectors,
    collection_holds,
    collection_name,
    create_collection,
    go_live,
    payloads,
    transport_failure,
)
from ._target import DEFAULT_ALIAS


@dataclasses.dataclass(frozen=True)
class UpdateReport:
    """What an update wrote to Qdrant."""

    base_collection: str
    collection: str
    alias: str
    points: int  # in the new collection
    copied: int  # kept tracks' points copied from the base collection (renumbered where rows moved)
    renumbered: int  # of those, points whose id (row) changed
    upserted: int  # added tracks' points written from the new bundle
    removed: int  # base points not carried over (tracks removed by the update)
    previous: str | None  # the collection the alias named before
    reused: bool  # the new collection was already complete (a rerun)
    retired: list[str]  # collections deleted by the retention rule
    seconds: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def row_map(base: Bundle, new: Bundle) -> np.ndarray:
    """``kept[i]`` = the base row of the new version's row ``i``, for its first ``len(kept)`` rows
    (the kept tracks, in their old order); the rows after them are the added tracks.

    Raises :class:`BundleError` when ``new`` is not an update of ``base`` (musicrec add's manifest)."""
    update = new.manifest.get("update")
    if not update or update.get("base", {}).get("version") != base.version:
        made_from = (update or {}).get("base", {}).get("version", "no base: a full build")
        raise BundleError(f"{new.path} is not an update of {base.path} (its base version is {made_from}, "
                          f"{base.path} is {base.version}); publish it whole with musicrec publish")
    n_kept = len(new.tracks) - int(update["added"])
    base_ids = base.tracks.ids.astype(str)
    new_ids = new.tracks.ids.astype(str)
    kept = np.flatnonzero(np.isin(base_ids, new_ids[:n_kept]))
    if len(kept) != n_kept or not np.array_equal(base_ids[kept], new_ids[:n_kept]):
        raise BundleError(f"{new.path}: its first {n_kept:,} tracks are not {base.path}'s kept tracks in order")
    return kept


def publish_update(base: Bundle | str | os.PathLike[str], new: Bundle | str | os.PathLike[str],
                   client: QdrantClient, *, alias: str = DEFAULT_ALIAS, keep: int = DEFAULT_KEEP,
                   batch: int = BATCH, progress: Callable[[str], None] | None = None) -> UpdateReport:
    """Write the collection of ``new`` (a ``musicrec add`` version of ``base``) from ``base``'s
    collection by copy-on-write, verify it, swap ``alias`` to it, apply retention (module docstring).

    Raises :class:`BundleError` when ``new`` is not an update of ``base``, when ``base``'s collection
    is missing or incomplete (publish it first), or when the new collection does not verify; and
    :class:`BackendUnavailable` when Qdrant cannot be reached.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (the live collection), got {keep}")
    say = progress or (lambda _m: None)
    base = base if isinstance(base, Bundle) else load_bundle(Path(base))
    new = new if isinstance(new, Bundle) else load_bundle(Path(new))
    kept = row_map(base, new)
    n, n_kept = len(new.vectors), len(kept)
    base_name, name = collection_name(base, alias), collection_name(new, alias)
    new_ids = set(new.tracks.ids.astype(str).tolist())
    gone = [t for t in np.delete(base.tracks.ids.astype(str), kept).tolist() if t not in new_ids]
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        check_base_collection(client, base, alias)
        why = collection_holds(client, base_name, base)
        if why is not None:
            raise BundleError(f"the base collection cannot be copied: {why}")
        reused = False
        if client.collection_exists(name):
            if collection_holds(client, name, new) is None:
                reused = True
                say(f"collection {name} already holds this version; not rewritten")
            else:
                say(f"collection {name} is incomplete (an interrupted update): deleting it and writing it again")
                client.delete_collection(name)
        renumbered = int(np.count_nonzero(kept != np.arange(n_kept)))
        if not reused:
            view = CatalogView(new)
            create_collection(client, name, new)
            seconds["create"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            for start in range(0, n_kept, batch):
                rows = range(start, min(n_kept, start + batch))
                source = kept[rows.start:rows.stop].tolist()
                old = {int(p.id): p.vector for p in client.retrieve(  # type: ignore[arg-type]
                    base_name, ids=source, with_vectors=True, with_payload=False)}
                if len(old) != len(rows):
                    raise BundleError(f"the base collection {base_name} lost points while it was copied "
                                      f"({len(old)} of {len(rows)} read back)")
                points = models.Batch(ids=list(rows), vectors=[old[r] for r in source], payloads=payloads(view, rows))
                client.upsert(name, points=points, wait=True)
                say(f"copied {rows.stop:,}/{n_kept:,} kept points from {base_name}")
            seconds["copy"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            for start in range(n_kept, n, batch):
                rows = range(start, min(n, start + batch))
                points = models.Batch(ids=list(rows), vectors=new.vectors[rows.start:rows.stop].tolist(),
                                      payloads=payloads(view, rows))
                client.upsert(name, points=points, wait=True)
                say(f"upserted {rows.stop - n_kept:,}/{n - n_kept:,} added points")
            seconds["upsert"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        why = collection_holds(client, name, new)
        if why is not None:
            raise BundleError(f"update did not verify: {why}; the alias {alias!r} was not moved")
        check_vectors(client, name, new)
        if gone:
            left = client.count(name, exact=True, count_filter=models.Filter(must=[models.FieldCondition(
                key="track_id", match=models.MatchAny(any=gone))])).count
            if left:
                raise BundleError(f"update did not verify: {left} removed track(s) are still in {name}; "
                                  f"the alias {alias!r} was not moved")
        seconds["verify"] = round(time.perf_counter() - t0, 3)
        previous, retired = go_live(client, alias, name, keep, say, seconds)
    except BundleError:
        raise
    except Exception as exc:  # the client's own transport errors, whatever the transport
        raise transport_failure(exc, "the update", alias, client) from exc
    return UpdateReport(base_collection=base_name, collection=name, alias=alias, points=n, copied=n_kept,
                        renumbered=renumbered, upserted=n - n_kept, removed=len(base.vectors) - n_kept,
                        previous=previous, reused=reused, retired=retired, seconds=seconds)


def check_base_collection(client: QdrantClient, base: Any, alias: str = DEFAULT_ALIAS) -> None:
    """Raise :class:`BundleError` when the collection of ``base`` (a bundle, or anything with its ``manifest``:
    ``musicrec add`` asks before its work, from the manifest alone) is not in Qdrant."""
    name = collection_name(base, alias)
    if not client.collection_exists(name):
        raise BundleError(f"the base bundle's collection {name} is not in Qdrant (retention removed it, or the base "
                          "was never published): publish the base first, or publish the new bundle whole with "
                          "musicrec publish")
