"""musicrec add --qdrant-path: the new version's collection made from the base's by copy-on-write
(kept points copied under their new rows, removed ones left out, added ones upserted), verified,
then the alias swapped; Qdrant-backed answers of the new bundle equal its FAISS answers, a removed
id never appears, and a replica still on the base bundle keeps its own collection."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("qdrant_client")

from engine import BundleError, Recommender, Seed, SimilarQuery, TrackFilter, load_bundle, synthetic_catalog
from engine.qdrant import QdrantSource, alias_target, collection_name, connect
from musicrec.cli import main


@pytest.fixture(scope="module")
def update(small_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qdrant-update")
    store = root / "qdrant"
    added = synthetic_catalog(60, seed=4)
    added = added[~added["track_id"].str.startswith("bad")]  # the generator's deliberately bad rows
    added.to_csv(root / "added.csv", index=False)
    base = load_bundle(small_bundle_dir)
    # rows 2 and 150 among them: every kept row after 2 is renumbered
    (root / "remove.txt").write_text("\n".join(str(base.tracks.ids[r]) for r in (2, 150, 399)) + "\n")
    assert main(["publish", str(small_bundle_dir), "--qdrant-path", str(store), "--alias", "music", "--quiet"]) == 0
    assert main(["add", str(root / "added.csv"), "--to", str(small_bundle_dir), "--out", str(root / "v2"),
                 "--remove-ids", str(root / "remove.txt"), "--qdrant-path", str(store), "--alias", "music",
                 "--batch", "64", "--quiet", "--json", str(root / "report.json")]) == 0
    return {"root": root, "store": store, "base": small_bundle_dir, "new": root / "v2"}


def test_the_update_writes_a_new_collection_and_swaps_the_alias(update: dict[str, Path]) -> None:
    base, new = load_bundle(update["base"]), load_bundle(update["new"])
    report = json.loads((update["root"] / "report.json").read_text())["qdrant"]
    n_added = new.manifest["update"]["added"]
    assert n_added > 0 and report["upserted"] == n_added
    assert report["copied"] == len(base.vectors) - 3 and report["removed"] == 3
    assert report["renumbered"] == len(base.vectors) - 3 - 2  # every kept row after row 2 moved
    assert report["base_collection"] == collection_name(base, "music")
    assert report["collection"] == collection_name(new, "music") != report["base_collection"]
    client = connect(path=update["store"])
    try:
        assert alias_target(client, "music") == collection_name(new, "music")
        assert client.count(collection_name(new, "music"), exact=True).count == len(new.vectors)
        # the base collection is untouched: a replica still on the base bundle reads it
        assert client.count(collection_name(base, "music"), exact=True).count == len(base.vectors)
    finally:
        client.close()


def test_qdrant_answers_equal_faiss_answers_of_the_new_bundle(update: dict[str, Path]) -> None:
    # without the neighbour table, so every query reaches the candidate source
    new = dataclasses.replace(load_bundle(update["new"]), neighbours=None)
    removed = set((update["root"] / "remove.txt").read_text().split())
    exact = Recommender(new)
    client = connect(path=update["store"])
    try:
        qdrant = Recommender(new, source=QdrantSource(client, new, alias="music", serialize=True))
        n = len(new.vectors)
        seeds = [0, 1, 150, n - 1, n - 20]  # kept rows before and after the renumbering, and added tracks
        for row in seeds:
            for f in (TrackFilter(), TrackFilter(ranges={"energy": (0.3, None)})):
                query = SimilarQuery(seeds=[Seed(track_id=exact.ids[row])], k=15, filter=f)
                want, got = exact.similar(query), qdrant.similar(query)
                assert len(want.rows) == 15
                assert [exact.ids[r] for r in got.rows] == [exact.ids[r] for r in want.rows]
                assert not {exact.ids[r] for r in got.rows} & removed
    finally:
        client.close()


def test_an_update_of_another_base_is_refused(update: dict[str, Path]) -> None:
    # the new version is not an update of itself: nothing is written, the alias stays
    from engine.qdrant import publish_update

    client = connect(path=update["store"])
    try:
        with pytest.raises(BundleError, match="is not an update of"):
            publish_update(update["new"], update["new"], client, alias="music")
        assert alias_target(client, "music") == collection_name(load_bundle(update["new"]), "music")
    finally:
        client.close()
