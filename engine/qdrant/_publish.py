"""Publishing a bundle into Qdrant: a collection per bundle, verified, then an atomic alias swap.

A collection is named after the bundle it holds (``<alias>-<created_at>-<tracks.npz digest>``),
so a server can tell whether a collection holds its bundle, and a re-publish of the same bundle
finds it. The order of a publish is what makes it safe to kill at any moment:

1. create the collection and its payload indexes (before the points: Qdrant builds filterable
   HNSW links while points arrive), upload the points in batches;
2. verify: the exact count equals the bundle's tracks, and a sample of vectors reads back equal;
3. swap the alias in one ``update_collection_aliases`` call (delete + create, applied atomically);
4. retention: keep ``keep`` of this alias's collections, the live one first, then the one the alias named before,
   then the newest others; delete the rest (``retain``).

Killed before 3, the alias still names the previous complete collection; the partial collection
is found incomplete by the next publish of that bundle and rewritten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from engine._errors import BackendUnavailable, BundleError
from engine._loaded import Bundle, load_bundle
from engine._view import CatalogView

from ._target import DEFAULT_ALIAS

DEFAULT_KEEP = 2  # the live collection and the one before it (a rollback is an alias swap)
BATCH = 512
VERIFY_SAMPLE = 32
NUMERIC_PREFIX = "num"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_NAME = r"-(\d{8}T\d{6})-([0-9a-f]{12})"


def client_address(client: Any) -> str:
    """Where ``client`` sends its requests, as an error names it: the server's URL, or the local store's path."""
    try:
        options = client.init_options
    except Exception:  # a stand-in client (tests) without qdrant-client's options
        options = None
    options = options if isinstance(options, dict) else {}
    if options.get("url"):
        return str(options["url"])
    if options.get("path"):
        return f"local mode at {options['path']}"
    location, host = options.get("location"), options.get("host")
    return "local mode in memory" if location == ":memory:" else str(location or host or "an unnamed client")


def collection_name(bundle: Bundle, alias: str = DEFAULT_ALIAS) -> str:
    """The collection that holds ``bundle``: the alias, the bundle's creation time and digest."""
    created = dt.datetime.fromisoformat(bundle.manifest["created_at"]).astimezone(dt.UTC)
    return f"{alias}-{created:%Y%m%dT%H%M%S}-{bundle.manifest['files']['tracks.npz'][:12]}"


def numeric_key(name: str) -> str | None:
    """The payload key of a numeric column, or None when its name cannot be a Qdrant key path
    (such a column is stored but filtered by the pipeline's mask only)."""
    return f"{NUMERIC_PREFIX}.{name}" if _PLAIN_KEY.fullmatch(name) else None


def point_batches(bundle: Bundle, batch: int = BATCH) -> Iterator[models.Batch]:
    """The bundle's points: id = row, the unit vector, and the payload filters are pushed down to."""
    view = CatalogView(bundle)
    for start in range(0, view.n, batch):
        rows = range(start, min(view.n, start + batch))
        yield models.Batch(ids=list(rows), vectors=bundle.vectors[start:start + len(rows)].tolist(),
                           payloads=payloads(view, rows))


def payloads(view: CatalogView, rows: Iterable[int]) -> list[dict[str, Any]]:
    """The payload of each of ``rows`` of ``view``'s bundle (what filters are pushed down to)."""
    flags = view.flag_explicit
    numeric = {name: values for name, values in view.numeric.items() if _PLAIN_KEY.fullmatch(name)}
    out = []
    for row in rows:
        payload: dict[str, Any] = {
            "row": row, "track_id": view.ids[row], "song": view.song_list[row], "genres": list(view.genres[row]),
            "artists": list(view.artists[row]), "mood": view.mood_ids[row],
            # a NaN is absent: a range never matches it, as the mask's comparisons never do
            NUMERIC_PREFIX: {k: float(v[row]) for k, v in numeric.items() if np.isfinite(v[row])}}
        if flags is not None:
            payload["explicit"] = int(flags[row])  # -1 unknown matches neither true nor false
        out.append(payload)
    return out


def _payload_indexes(bundle: Bundle) -> dict[str, models.PayloadSchemaType]:
    view_numeric = list(bundle.preprocessor.feature_names) + [
        c for c, v in bundle.tracks.metadata.items() if v.dtype.kind in "fiu" and v.dtype != np.int8]
    out = {"genres": models.PayloadSchemaType.KEYWORD, "artists": models.PayloadSchemaType.KEYWORD,
           "song": models.PayloadSchemaType.INTEGER, "mood": models.PayloadSchemaType.INTEGER,
           "explicit": models.PayloadSchemaType.INTEGER}
    for name in view_numeric:
        if (key := numeric_key(name)) is not None:
            out[key] = models.PayloadSchemaType.FLOAT
    return out


@dataclasses.dataclass(frozen=True)
class PublishReport:
    collection: str
    alias: str
    points: int
    previous: str | None  # the collection the alias named before, if any
    reused: bool  # the collection was already complete (a re-publish of the same bundle)
    removed: list[str]  # collections deleted by the retention rule
    seconds: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def alias_target(client: QdrantClient, alias: str) -> str | None:
    """The collection ``alias`` names, or None."""
    for a in client.get_aliases().aliases:
        if a.alias_name == alias:
            return a.collection_name
    return None


def published_collections(client: QdrantClient, alias: str) -> list[str]:
    """This alias's bundle collections, oldest first (by bundle creation time)."""
    pattern = re.compile(re.escape(alias) + _NAME)
    names = [c.name for c in client.get_collections().collections if pattern.fullmatch(c.name)]
    return sorted(names, key=lambda n: pattern.fullmatch(n).group(1))  # type: ignore[union-attr]


def collection_holds(client: QdrantClient, name: str, bundle: Bundle) -> str | None:
    """None when collection ``name`` holds all of ``bundle``'s points with its dimension; else why not."""
    info = client.get_collection(name)
    vectors = info.config.params.vectors
    size = getattr(vectors, "size", None)
    dim = bundle.vectors.shape[1]
    count = client.count(name, exact=True).count
    if size != dim or count != len(bundle.vectors):
        return (f"collection {name} holds {count:,} points of {size} dims, the bundle has {len(bundle.vectors):,} "
                f"of {dim} (an interrupted publish, or not this bundle's collection)")
    return None


def publish_bundle(bundle: Bundle | str | os.PathLike[str], client: QdrantClient, *, alias: str = DEFAULT_ALIAS,
                   keep: int = DEFAULT_KEEP, batch: int = BATCH,
                   progress: Callable[[str], None] | None = None) -> PublishReport:
    """Write ``bundle`` into its own collection, verify it, swap ``alias`` to it, apply retention.

    Raises :class:`BundleError` for a bundle that cannot be loaded or a collection that does not
    verify, and :class:`BackendUnavailable` when Qdrant cannot be reached.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (the live collection), got {keep}")
    say = progress or (lambda _m: None)
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(Path(bundle))
    name = collection_name(bundle, alias)
    n = len(bundle.vectors)
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        reused = False
        if client.collection_exists(name):
            why = collection_holds(client, name, bundle)
            if why is None:
                reused = True
                say(f"collection {name} already holds this bundle; not rewritten")
            else:
                say(f"{why}: deleting it and writing it again")
                client.delete_collection(name)
        if not reused:
            create_collection(client, name, bundle)
            seconds["create"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            done = 0
            for points in point_batches(bundle, batch):
                client.upsert(name, points=points, wait=True)
                done += len(points.ids)
                say(f"uploaded {done:,}/{n:,} points to {name}")
            seconds["upload"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        why = collection_holds(client, name, bundle)
        if why is not None:
            raise BundleError(f"publish did not verify: {why}; the alias {alias!r} was not moved")
        check_vectors(client, name, bundle)
        seconds["verify"] = round(time.perf_counter() - t0, 3)
        previous, removed = go_live(client, alias, name, keep, say, seconds)
    except BundleError:
        raise
    except Exception as exc:  # the client's own transport errors, whatever the transport
        raise transport_failure(exc, "publish", alias, client) from exc
    return PublishReport(collection=name, alias=alias, points=n, previous=previous, reused=reused,
                         removed=removed, seconds=seconds)


def create_collection(client: QdrantClient, name: str, bundle: Bundle) -> None:
    """An empty collection for ``bundle``'s vectors (cosine) with its payload indexes (made before
    the points: Qdrant builds filterable HNSW links while points arrive)."""
    config = models.VectorParams(size=bundle.vectors.shape[1], distance=models.Distance.COSINE)
    client.create_collection(name, vectors_config=config)
    with warnings.catch_warnings():  # local mode says its payload indexes are no-ops; a server builds them
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for key, kind in _payload_indexes(bundle).items():
            client.create_payload_index(name, key, field_schema=kind, wait=True)


def go_live(client: QdrantClient, alias: str, name: str, keep: int, say: Callable[[str], None],
            seconds: dict[str, float]) -> tuple[str | None, list[str]]:
    """Point ``alias`` at the verified collection ``name``, then apply retention (publish and update alike).
    Returns the previous target and the collections retention deleted; the swap's time goes in ``seconds``."""
    t0 = time.perf_counter()
    previous = swap_alias(client, alias, name, say)
    seconds["swap"] = round(time.perf_counter() - t0, 3)
    retired = retain(client, alias, keep, live=name, previous=previous)
    for r in retired:
        say(f"retention (keep {keep}): deleted {r}")
    return previous, retired


def transport_failure(exc: Exception, during: str, alias: str, client: Any) -> BackendUnavailable:
    """A client transport error (whatever the transport) as the error publish and update raise, naming where the
    client sends its requests (an empty or mistyped address fails as "Connection refused" too)."""
    return BackendUnavailable(f"Qdrant failed during {during} at {client_address(client)} ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]}); the alias {alias!r} is unchanged "
                              "unless the swap was reported")


def swap_alias(client: QdrantClient, alias: str, name: str, say: Callable[[str], None]) -> str | None:
    """Point ``alias`` at collection ``name`` in one call (applied atomically); returns the
    collection it named before."""
    previous = alias_target(client, alias)
    if previous != name:
        ops: list[Any] = []
        if previous is not None:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        ops.append(models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name,
                                                                               alias_name=alias)))
        client.update_collection_aliases(change_aliases_operations=ops)
        say(f"alias {alias} -> {name} (was {previous or 'unset'})")
    return previous


def check_vectors(client: QdrantClient, name: str, bundle: Bundle) -> None:
    rng = np.random.default_rng(0)
    rows = rng.choice(len(bundle.vectors), size=min(VERIFY_SAMPLE, len(bundle.vectors)), replace=False)
    got = client.retrieve(name, ids=[int(r) for r in rows], with_vectors=True, with_payload=["row"])
    if len(got) != len(rows):
        raise BundleError(f"publish did not verify: {len(got)} of {len(rows)} sampled points read back from {name}")
    for point in got:
        row = int(point.id)  # type: ignore[arg-type]
        stored = np.asarray(point.vector, dtype=np.float32)
        if point.payload is None or point.payload.get("row") != row or \
                not np.allclose(stored, bundle.vectors[row], atol=1e-5):
            raise BundleError(f"publish did not verify: point {row} of {name} does not hold the bundle's vector")


def retain(client: QdrantClient, alias: str, keep: int, *, live: str, previous: str | None = None) -> list[str]:
    """Delete this alias's collections beyond ``keep``, kept in this order: the live one, the one the alias named
    before it (servers still on that bundle read it, and a rollback is an alias swap), then the newest others by
    bundle creation time (by age alone, a rolled-back alias's base, or the live one, went before a newer bundle
    nothing serves, or a collection a killed publish left half-written)."""
    names = published_collections(client, alias)  # oldest first
    first = [c for c in (live, previous) if c is not None and c in names]
    order = list(dict.fromkeys([*first, *reversed(names)]))
    removed = [c for c in names if c in order[keep:]]
    for name in removed:
        client.delete_collection(name)
    return removed
