"""Moods are found by id, by their name however it is punctuated, by a start of it, or by keywords;
an ambiguous name lists its candidates and an unknown one the closest names."""

from __future__ import annotations

import pytest

from engine import InvalidQuery
from engine._playlist import find_mood

NAMES = [
    "calm, content · acoustic",
    "calm, content · acoustic, slow",
    "calm, content · acoustic, fast",
    "sad, reflective · acoustic, slow, darker (1)",
    "sad, reflective · acoustic, slow, darker (2)",
    "happy, energetic · electric, free-flowing",
    "angry, tense · electric, instrumental",
    "angry, tense · electric, fast",
    "angry, tense · electric, instrumental, faster",
]


@pytest.mark.parametrize(("text", "expected"), [
    ("calm, content · acoustic", 0),            # exact
    ("CALM, CONTENT - ACOUSTIC", 0),            # any case and punctuation
    ("calm content acoustic slow", 1),
    ("calm acoustic", 0),                       # keywords; the mood with no untyped refinement wins
    ("calm acoustic fast", 2),
    ("acoustic slow", 1),                       # the darker moods have a refinement left out
    ("calm, content · acoustic, f", 2),         # a start of the name, the last word cut
    ("happy, energetic · electric, free flowing", 5),
    ("electric instrumental", 6),               # of the two with these words, the one with nothing left out
    ("sad darker 2", 4),
    ("3", 3),                                   # the id
    ("angry fast", 7),                          # a whole word beats the start of one ("faster")
])
def test_found(text: str, expected: int) -> None:
    assert find_mood(NAMES, text) == expected


def test_ambiguous_lists_the_candidates_with_their_ids() -> None:
    with pytest.raises(InvalidQuery, match="mood_name: 'sad darker' matches 2 moods") as err:
        find_mood(NAMES, "sad darker")
    assert "3 'sad, reflective · acoustic, slow, darker (1)'" in str(err.value)
    assert "4 'sad, reflective · acoustic, slow, darker (2)'" in str(err.value)
    with pytest.raises(InvalidQuery, match="matches 3 moods"):
        find_mood(NAMES, "calm, content")  # the start of three names, each with a refinement left out
    with pytest.raises(InvalidQuery, match="'slow' matches 3 moods"):
        find_mood(NAMES, "slow")


def test_unknown_names_get_the_closest_names() -> None:
    with pytest.raises(InvalidQuery, match="unknown mood 'calm acustic'; did you mean 'calm, content · acoustic'"):
        find_mood(NAMES, "calm acustic")
    with pytest.raises(InvalidQuery, match=r"unknown mood 'zzz' \(ListMoods gives all 9 names and ids\)"):
        find_mood(NAMES, "zzz")
    with pytest.raises(InvalidQuery, match=r"unknown mood id 9; ids are 0\.\.8"):
        find_mood(NAMES, "9")
