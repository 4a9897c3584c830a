"""MoodPlaylist by mood_name finds moods the way people write them, over a real channel."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from engine import build_bundle, synthetic_catalog
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from tests.conftest import FAST_CONFIG


@pytest.fixture(scope="module")
def server_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Moods named alike: a narrower blur (60 neighbours) gives the synthetic catalog nine moods, two of
    them "angry, tense · ..." and three "sad, reflective · ...", so a first word alone is ambiguous."""
    root = tmp_path_factory.mktemp("alike")
    synthetic_catalog(3000, seed=1).to_csv(root / "catalog.csv", index=False)
    build_bundle(root / "catalog.csv", root / "bundle",
                 FAST_CONFIG.replace(moods={"smoothing_neighbours": 60}, genre={"enabled": False}))
    return root / "bundle"


def test_mood_name_with_other_punctuation_keywords_or_id(stub: pb_grpc.RecommenderStub) -> None:
    moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=10).moods
    mood = moods[-1]
    for text in (mood.name.replace("·", "-").upper(), str(mood.mood_id)):
        r = stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_name=text, length=3), timeout=10)
        assert r.mood.mood_id == mood.mood_id, text
    streamed = list(stub.StreamMoodPlaylist(pb.MoodPlaylistRequest(mood_name=mood.name.replace("·", ""), length=3),
                                            timeout=10))
    assert len(streamed) == 3


def test_an_ambiguous_mood_name_lists_the_candidates(stub: pb_grpc.RecommenderStub) -> None:
    moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=10).moods
    first_words = [m.name.split(",")[0] for m in moods]
    shared = next(w for w in first_words if first_words.count(w) > 1)
    with pytest.raises(grpc.RpcError) as err:
        stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_name=shared, length=3), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"mood_name: '{shared}' matches" in err.value.details() and "give more of the name, or the id" in \
        err.value.details()


@pytest.mark.parametrize("text", ["²", "③", "9" * 4301])
def test_a_mood_name_of_odd_digits_is_an_unknown_mood(stub: pb_grpc.RecommenderStub, text: str) -> None:
    """Unicode digits ("²") and numbers past Python's int() digit limit are INVALID_ARGUMENT, not INTERNAL."""
    with pytest.raises(grpc.RpcError) as err:
        stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_name=text, length=3), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "mood_name: unknown mood" in err.value.details()
