"""The worst requests the documented limits allow, and what each costs the server.

Starts `musicrec serve` on a bundle in its own process and sends, one at a time, each request
below at its limits (engine/_similar.py: k <= 1000, offset + k <= 2000, 500 seeds, batches of 256
queries and 20,000 tracks of depth; playlists of 500). Reports the server's own time (the
response's took_ms) and the client's wall time, median and max over --repeat runs, beside the
floor (grpc.health.v1 Check) measured in the same run.

    python benchmarks/worst_case.py BUNDLE [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from _timing import timed_us  # benchmarks/_timing.py
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._spawn import start_server_process


def requests(stub: pb_grpc.RecommenderStub) -> dict[str, tuple[str, Any]]:
    moods = stub.ListMoods(pb.ListMoodsRequest()).moods
    ids = [e.track.track_id for m in moods
           for e in stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_id=m.mood_id, length=100)).entries]
    seed = ids[0]
    track = stub.GetTrack(pb.GetTrackRequest(track_id=seed)).track
    info = stub.ServerInfo(pb.ServerInfoRequest())
    values = {n: track.features[n] for n in info.feature_names}
    by_features = pb.Seed(features=pb.FeatureValues(values=values))
    smallest = min(moods, key=lambda m: m.size)

    def similar(**kw: Any) -> pb.SimilarTracksRequest:
        return pb.SimilarTracksRequest(**kw)

    deep = dict(k=1000, offset=1000)
    return {
        "by id, k 10 (the hot path)": ("SimilarTracks", similar(seeds=[pb.Seed(track_id=seed)], k=10)),
        "by id, depth 2000": ("SimilarTracks", similar(seeds=[pb.Seed(track_id=seed)], **deep)),
        "by features, depth 2000, diversity 0.5": (
            "SimilarTracks", similar(seeds=[by_features], diversity=0.5, **deep)),
        "depth 2000, diversity 1, artist cap 1": (
            "SimilarTracks", similar(seeds=[pb.Seed(track_id=seed)], diversity=1.0, max_per_artist=1, **deep)),
        "500 feature seeds, depth 2000, targets": (
            "SimilarTracks", similar(seeds=[by_features] * 250 + [pb.Seed(track_id=i) for i in ids[:250]],
                                     targets={"energy": 0.9, "valence": 0.1}, **deep)),
        "smallest mood + rare genre filter, depth 2000": (
            "SimilarTracks", similar(seeds=[pb.Seed(track_id=seed)], filter=pb.Filter(
                mood_ids=[smallest.mood_id], include_genres=[g.genre for g in smallest.top_genres[-1:]]), **deep)),
        "batch of 10 x depth 2000, diversity 0.5": (
            "BatchSimilarTracks", pb.BatchSimilarTracksRequest(queries=[
                similar(seeds=[pb.Seed(track_id=i)], diversity=0.5, **deep) for i in ids[:10]])),
        "batch of 256 x k 78 by features": (
            "BatchSimilarTracks", pb.BatchSimilarTracksRequest(queries=[
                similar(seeds=[by_features], k=78) for _ in range(256)])),
        "playlist of 500": ("MoodPlaylist", pb.MoodPlaylistRequest(mood_id=moods[0].mood_id, length=500)),
        "classify by features, explained": (
            "ClassifyGenre", pb.ClassifyGenreRequest(features=pb.FeatureValues(values=values), explain=True)),
    }


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], list[float]]:
    wall, server = [], []
    for _ in range(repeat):
        us, response = timed_us(call)
        wall.append(us / 1e3)
        took = getattr(response, "took_ms", None)
        if took is None and hasattr(response, "stats"):
            took = response.stats.took_ms
        server.append(float(took) if took is not None else float("nan"))
    return wall, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    with start_server_process(args.bundle) as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.RecommenderStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        floor, _ = timed(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=10), 200)
        floor_ms = statistics.median(floor)
        for label, (method, request) in requests(stub).items():
            rpc = getattr(stub, method)
            timed(lambda rpc=rpc, request=request: rpc(request, timeout=60), 1)  # warm caches
            wall, server = timed(lambda rpc=rpc, request=request: rpc(request, timeout=60), args.repeat)
            rows.append({"request": label, "rpc": method, "wall_ms_p50": statistics.median(wall),
                         "wall_ms_max": max(wall), "server_ms_p50": statistics.median(server),
                         "wall_p50_vs_floor": statistics.median(wall) / floor_ms})
            print(f"{label:48s} {rows[-1]['wall_ms_p50']:9.2f} ms p50  {rows[-1]['wall_ms_max']:9.2f} ms max  "
                  f"server {rows[-1]['server_ms_p50']:9.2f} ms", flush=True)
    print(f"floor (health check) p50 {floor_ms:.3f} ms")
    print(f"command: python benchmarks/worst_case.py {args.bundle} --repeat {args.repeat}")
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}")
    if args.json:
        args.json.write_text(json.dumps({"floor_ms_p50": floor_ms, "requests": rows,
                                         "machine": platform.platform()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
