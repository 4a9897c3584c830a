"""The server over a bundle of the real Spotify dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from server import RunningServer, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def real_server(real_bundle_dir: Path) -> Iterator[tuple[RunningServer, pb_grpc.RecommenderStub]]:
    srv = create_server(real_bundle_dir, "127.0.0.1:0")
    with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        yield srv, pb_grpc.RecommenderStub(ch)
    srv.stop(0)


def test_real_catalog_over_grpc(real_server: tuple[RunningServer, pb_grpc.RecommenderStub]) -> None:
    srv, stub = real_server
    rec = srv.holder.require()
    info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10)
    assert info.tracks == rec.n > 80_000 and info.genres == 114
    # a classical track's neighbours lean classical far above the 1/114 base rate
    row = next(i for i, g in enumerate(rec.genres) if g == ("classical",))
    r = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=rec.ids[row])], k=50,
                                                   max_per_artist=3), timeout=10)
    assert len(r.results) == 50 and rec.ids[row] not in [x.track.track_id for x in r.results]
    acoustic_like = {"classical", "piano", "opera", "new-age", "ambient", "sleep", "study", "guitar", "acoustic"}
    share = sum(bool(set(x.track.genres) & acoustic_like) for x in r.results) / 50
    assert share > 0.3
    artists = [a for x in r.results for a in x.track.artists]
    assert max(artists.count(a) for a in set(artists)) <= 3
    c = stub.ClassifyGenre(pb.ClassifyGenreRequest(track_id=rec.ids[row], top_k=5, explain=True), timeout=10)
    assert len(c.genres) == 5 and len(c.contributions) == 14
    moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=10).moods
    p = stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_id=moods[0].mood_id, length=25), timeout=10)
    assert len(p.entries) == 25 and len({e.track.track_id for e in p.entries}) == 25
    songs = {(e.track.name.casefold(), tuple(e.track.artists)) for e in p.entries}
    assert len(songs) == 25  # no song twice under different ids
