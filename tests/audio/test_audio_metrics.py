"""Audio queries move the audio metrics: one extraction observed per clip, the queue depth up while a
clip is analysed and back to 0 after (README "Operating")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc  # noqa: TID251  (a gRPC client of the server, like tests/server)
import pytest

from server import ServerOptions, create_server
from server._audio import AudioPool
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from tests.server.conftest import wait_until
from tests.server.test_metrics import Scrape


def test_an_audio_query_is_counted_and_timed(audio_bundle: Path, extracted: tuple[list, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    tracks, _ = extracted
    srv = create_server(audio_bundle, "127.0.0.1:0", ServerOptions(metrics_port=0, audio_workers=1))
    port = srv.metrics_port or 0
    depth_while_analysed: list[float] = []
    original = AudioPool._release

    # read when the worker is done with the clip, just before the slot is released: a scrape when the server started
    # waiting for the result raced the worker (a fast clip was done, its depth back to 0, in a clean-clone run)
    def observed(self: AudioPool, future: Any) -> None:
        depth_while_analysed.append(Scrape(port).value("musicrec_audio_queue_depth"))
        original(self, future)

    monkeypatch.setattr(AudioPool, "_release", observed)
    try:
        assert Scrape(port).value("musicrec_audio_extraction_seconds_count") == 0
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(audio=tracks[0].path.read_bytes())], k=5),
                               timeout=60)
            # the first clip's slot is released by its future's callback, which may run after the answer went out:
            # the second clip, sent before that, was counted beside it (a run read [2, 1])
            wait_until(lambda: len(depth_while_analysed) == 1, "the first clip's slot released")
            stub.ClassifyGenre(pb.ClassifyGenreRequest(audio=tracks[1].path.read_bytes(), top_k=3), timeout=60)
        wait_until(lambda: len(depth_while_analysed) == 2, "both clips' slots released")
        s = Scrape(port)
        assert depth_while_analysed == [1, 1]
        assert s.value("musicrec_audio_queue_depth") == 0
        assert s.value("musicrec_audio_extraction_seconds_count") == 2
        assert s.value("musicrec_audio_extraction_seconds_sum") > 0
        assert s.rpc("musicrec_rpc_requests_total", "SimilarTracks", "OK") == 1
        assert s.rpc("musicrec_rpc_requests_total", "ClassifyGenre", "OK") == 1
    finally:
        srv.stop(0)

