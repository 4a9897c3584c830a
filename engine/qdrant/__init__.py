"""Qdrant as the similar-track candidate source, and publishing bundles into it (the optional
``qdrant`` extra: ``pip install 'musicrec[qdrant]'``).

Importing ``engine`` never loads this package: qdrant-client brings protobuf and grpc with it,
and the engine stays transport-free for everyone who does not ask for Qdrant.

    from qdrant_client import QdrantClient
    from engine import Recommender, load_bundle
    from engine.qdrant import QdrantSource, publish_bundle

    client = QdrantClient(url="http://qdrant:6333")          # or QdrantClient(":memory:") in tests
    publish_bundle("bundles/v2", client, alias="musicrec")    # collection per bundle, alias swapped
    publish_update("bundles/v2", "bundles/v3", client)        # a musicrec add version, copy-on-write
    bundle = load_bundle("bundles/v2")
    rec = Recommender(bundle, source=QdrantSource(client, bundle, alias="musicrec"))

    target = QdrantTarget(url="http://qdrant:6333", api_key_env="QDRANT_API_KEY")  # the commands' own rules
    if (problem := target.problem()) is None:
        client = target.connect()

What Qdrant does and what stays in musicrec: Qdrant stores each bundle's vectors (cosine) and
payloads (row, track id, song key, genres, artists, explicit flag, mood, numeric columns) and
answers "the ``n`` nearest rows that pass this filter" with the filter pushed down
(``MatchAny``/``Range``/``must_not``/``HasIdCondition``). Everything after that (exact cosines from
the bundle's vectors, the mask, one listing per song, genre agreement, targets, negative seeds,
the artist cap, MMR, paging) is the same pipeline as on FAISS (engine/_ranking.py), so both give
the same ranking for the same candidates. Qdrant's own recommend, group-by and MMR are not used:
their scores and tie rules differ from the bundle's ranking, and one definition of the ranking
is what keeps pages slices of one list on every source.

``EdgeSource`` (engine/qdrant/_edge.py, the ``qdrant-edge-py`` package) runs the same payloads and
filters through the Qdrant engine itself, in-process: the contract suite uses it where it is installed.
"""

from ._edge import EdgeSource
from ._publish import (
    PublishReport,
    alias_target,
    client_address,
    collection_name,
    point_batches,
    publish_bundle,
    published_collections,
)
from ._source import QdrantSource, qdrant_filter
from ._target import DEFAULT_ALIAS, QdrantTarget, connect, url_problem
from ._update import UpdateReport, check_base_collection, publish_update

__all__ = [
    "DEFAULT_ALIAS",
    "EdgeSource",
    "PublishReport",
    "QdrantSource",
    "QdrantTarget",
    "UpdateReport",
    "alias_target",
    "check_base_collection",
    "client_address",
    "collection_name",
    "connect",
    "point_batches",
    "publish_bundle",
    "publish_update",
    "published_collections",
    "qdrant_filter",
    "url_problem",
]
