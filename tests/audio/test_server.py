"""Audio over gRPC: extract -> index -> serve -> audio queries over a real channel."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest

from engine import build_bundle
from engine.audio._synth import STYLES, song
from musicrec.cli import main
from server import RunningServer, ServerOptions
from server._audio import MAX_AUDIO_BYTES
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from tests._serving import serving
from tests.audio.conftest import SR, audio_config, encode


# The module's server (``running``, ``stub``: tests/conftest.py) serves the audio bundle.
@pytest.fixture(scope="module")
def server_bundle(audio_bundle: Path) -> Path:
    return audio_bundle


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    return ServerOptions(audio_workers=1, audio_max_clips=4)


def new_song(style_name: str, seed: int = 999) -> bytes:
    style = next(s for s in STYLES if s.name == style_name)
    y = song(style, bpm=sum(style.bpm) / 2, root=style.roots[0], seconds=5.0, seed=seed, brightness=0.95)
    return encode(y, SR, "FLAC", "PCM_16")


def rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open() as fh:
        return list(csv.DictReader(fh))


def test_the_server_warmed_its_audio_workers_at_start(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    assert running.audio is not None and running.audio.warm_seconds is not None
    info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10)
    assert info.audio_extractor == "musicrec-librosa/1" and info.audio_segment_seconds == 0


def test_an_audio_seed_finds_its_own_recording_first(stub: pb_grpc.RecommenderStub,
                                                     extracted: tuple[list, Path]) -> None:
    tracks, features_csv = extracted
    track = next(t for t in tracks if t.style == "folk")
    response = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(audio=track.path.read_bytes())], k=10,
                                                          genre_weight=0.0), timeout=60)
    first = response.results[0]  # by cosine alone
    assert first.track.track_id == f"folk/{track.path.name}" and first.score > 0.99
    # the same answer as the features the extractor wrote for that file (rounded to 9 digits in the CSV)
    row = next(r for r in rows(features_csv) if r["filename"] == first.track.track_id)
    info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10)
    seed = pb.Seed(features=pb.FeatureValues(values={n: float(row[n]) for n in info.feature_names}))
    by_features = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[seed], k=10, genre_weight=0.0), timeout=10)
    assert [r.track.track_id for r in by_features.results] == [r.track.track_id for r in response.results]


def test_a_new_recording_is_placed_among_its_style(stub: pb_grpc.RecommenderStub) -> None:
    # no deadline, as most clients send: gRPC's "infinite" one overflowed the wait for the clip (INTERNAL, and the
    # clip held its slot to its end); the run's own timeout stops a hang here
    response = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(audio=new_song("rock"))], k=10))
    genres = [g for r in response.results for g in r.track.genres]
    assert genres.count("rock") >= 6, genres
    classified = stub.ClassifyGenre(pb.ClassifyGenreRequest(audio=new_song("electronic"), top_k=3, explain=True))
    assert classified.genres[0].genre == "electronic" and len(classified.genres) == 3
    assert classified.contributions
    # a clip and another clip as its negative seed: refused once, when the request's check compared the clips'
    # stand-ins (each an empty set of values) as the same values
    away = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(audio=new_song("rock"))], k=5,
                                                      negative_seeds=[pb.Seed(audio=new_song("folk"))]))
    assert len(away.results) == 5


@pytest.mark.parametrize(("clip", "problem"), [
    (b"this is a text file, not a recording\n" * 5, "not audio"),
    (encode(np.zeros(3 * SR, dtype=np.float32)), "silent"),
    (encode((0.3 * np.sin(np.arange(SR // 2) / 5)).astype(np.float32)), "too short"),
    (b"RIFF" + bytes(MAX_AUDIO_BYTES), "at most"),
    (encode(np.full(11 * 60 * 8000, 0.01, dtype=np.float32), 8000, "FLAC", "PCM_16"), "too long"),
    (encode(np.r_[0.3 * np.sin(np.arange(3 * SR) / 5), 1e30].astype(np.float32), SR, "WAV", "FLOAT"),
     "corrupt: the clip holds a sample of magnitude 1e+30"),  # finite, but it overflowed inside librosa: INTERNAL
])
def test_bad_clips_are_invalid_argument_naming_the_problem(stub: pb_grpc.RecommenderStub, clip: bytes,
                                                           problem: str) -> None:
    for call in (lambda: stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(audio=clip)]), timeout=60),
                 lambda: stub.ClassifyGenre(pb.ClassifyGenreRequest(audio=clip), timeout=60)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert problem in err.value.details()


def test_the_rest_of_an_audio_request_is_checked_before_its_clips_are_analysed(
        running: RunningServer, stub: pb_grpc.RecommenderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad top_k, filter, k, diversity or unknown track id was refused only after the clip's analysis (seconds of
    a worker's time, holding an audio slot); and a seed's error named its place after the clips' segments."""
    assert running.audio is not None

    def analyse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the clip was analysed")

    monkeypatch.setattr(running.audio, "analyse", analyse)
    clip = pb.Seed(audio=new_song("folk"))
    cases = [
        (stub.ClassifyGenre, pb.ClassifyGenreRequest(audio=clip.audio, top_k=99), "INVALID_ARGUMENT", "top_k: must be"),
        (stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[clip], filter=pb.Filter(include_genres=["nope"])),
         "INVALID_ARGUMENT", "unknown genre"),
        (stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[clip], k=5000), "INVALID_ARGUMENT", "k: must be 1..1000"),
        (stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[clip], diversity=5), "INVALID_ARGUMENT", "diversity"),
        (stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[clip, pb.Seed(track_id="nope")]), "NOT_FOUND",
         "seeds[1].track_id: track 'nope' is not in the catalog"),
        (stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[clip], negative_seeds=[pb.Seed()]), "INVALID_ARGUMENT",
         "negative_seeds[0]: give exactly one of track_id, features, vector or audio"),
        # the two cancelled: the answer was the seed's alone, as for one track id in both lists (refused)
        (stub.SimilarTracks, pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=running.holder.require().ids[0]), clip],
                                                     negative_seeds=[clip]), "INVALID_ARGUMENT",
         "negative_seeds[0].audio: the same clip is seeds[1].audio: give a clip as one or the other"),
    ]
    for call, request, code, message in cases:
        with pytest.raises(grpc.RpcError) as err:
            call(request, timeout=10)
        assert (err.value.code().name, message in err.value.details()) == (code, True), err.value.details()


def test_audio_beyond_the_limit_is_resource_exhausted(running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    assert running.audio is not None
    for _ in range(running.audio.max_clips):
        running.audio._slots.acquire()
    try:
        with pytest.raises(grpc.RpcError) as err:
            stub.ClassifyGenre(pb.ClassifyGenreRequest(audio=new_song("folk")), timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stub.ServerInfo(pb.ServerInfoRequest(), timeout=10).tracks == 60  # the fast RPCs still answer
    finally:
        for _ in range(running.audio.max_clips):
            running.audio._slots.release()


def test_audio_against_a_bundle_of_other_numbers_is_failed_precondition(extracted: tuple[list, Path],
                                                                         audio_bundle: Path, tmp_path: Path) -> None:
    """... and a hot reload to an audio bundle warms the audio workers then, not in its first call."""
    _, features_csv = extracted
    bare = tmp_path / "elsewhere.csv"  # the same table without its extraction report: numbers from elsewhere
    shutil.copy(features_csv, bare)
    with bare.open() as fh:
        header = next(csv.reader(fh))
    build_bundle(bare, tmp_path / "b", audio_config(header).replace(genre={"enabled": False}))
    with serving(tmp_path / "b") as served:
        srv, stub = served.server, served.stub
        with pytest.raises(grpc.RpcError) as err:
            stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(audio=new_song("folk"))]), timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "musicrec extract" in err.value.details()
        assert stub.ServerInfo(pb.ServerInfoRequest(), timeout=10).audio_extractor == ""
        assert srv.audio is not None and srv.audio._pool is None  # no audio bundle: no workers
        srv.holder.load(audio_bundle)
        assert srv.audio._pool is not None and len(srv.audio._warming) == 1  # warming before any call
        answer = stub.ClassifyGenre(pb.ClassifyGenreRequest(audio=new_song("folk")), timeout=120)
        assert answer.genres[0].genre == "folk"


def test_query_cli_with_audio_files(running: RunningServer, extracted: tuple[list, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    tracks, _ = extracted
    path = next(t.path for t in tracks if t.style == "ambient")
    address = f"127.0.0.1:{running.port}"
    assert main(["query", "--address", address, "similar", "--audio", str(path), "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 results" in out and "ambient" in out
    assert main(["query", "--address", address, "classify", "--audio", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("ambient")
    assert main(["query", "--address", address, "classify"]) == 2
    # the server names a clip by its place ("audio clip 1", "the clip"): the command names the file
    notes = tmp_path / "notes.wav"
    notes.write_text("not a recording\n" * 20)
    for argv in (["similar", "--audio", str(path), "--audio", str(notes)], ["classify", "--audio", str(notes)]):
        assert main(["query", "--address", address, *argv]) == 1
        err = capsys.readouterr().err
        assert f"INVALID_ARGUMENT: not audio: {notes} is not in any audio format" in err, err


def test_query_cli_shrinks_a_clip_over_the_limit(tmp_path: Path) -> None:
    """A 40 s CD-quality WAV (7 MB) goes out as mono FLAC at the extractor's rate, under 3 MiB."""
    import io

    import soundfile as sf

    from server._cli_query import audio_clip

    y = song(STYLES[0], bpm=70.0, root=0, seconds=40.0, seed=3)
    path = tmp_path / "long.wav"
    sf.write(path, np.stack([y, y], axis=1).repeat(2, axis=0), 2 * SR, subtype="PCM_16")
    assert path.stat().st_size > MAX_AUDIO_BYTES
    data = audio_clip(path)
    assert len(data) <= MAX_AUDIO_BYTES
    info = sf.info(io.BytesIO(data))
    assert (info.format, info.channels, info.samplerate) == ("FLAC", 1, SR) and abs(info.duration - 40.0) < 0.1
