"""Mood names say what their numbers say (engine/_moodnames.py), and moods are found by id, by their
name however it is punctuated, by a start of it, or by keywords; an ambiguous name lists its
candidates and an unknown one the closest names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from engine import InvalidQuery
from engine._moodnames import CONTRASTS, claims, mood_names, split_name, vocabulary
from engine._playlist import find_mood

SPOTIFY_MEAN = {"valence": 0.47, "energy": 0.64, "danceability": 0.57, "acousticness": 0.31, "tempo": 122.0,
                "instrumentalness": 0.16, "speechiness": 0.08, "loudness": -8.3, "liveness": 0.21}
SPOTIFY_STD = {"valence": 0.26, "energy": 0.25, "danceability": 0.17, "acousticness": 0.34, "tempo": 30.0,
               "instrumentalness": 0.31, "speechiness": 0.1, "loudness": 5.0, "liveness": 0.19}


def check_names(names: Sequence[str], means: Sequence[Mapping[str, float]], catalog_mean: Mapping[str, float],
                catalog_std: Mapping[str, float]) -> None:
    """Every word of every name holds for that mood's numbers: absolute words on their scale, catalog-relative
    words against the catalog's mean and std, group-relative words ("faster") against the moods that share
    the rest of the name; and the names are unique."""
    assert len(set(names)) == len(names), names
    features = list(means[0])
    contrasts = [w for pair in CONTRASTS.values() for w in pair]
    for name, mean in zip(names, means, strict=True):
        for word, meanings in claims(name, features):
            def holds(w: object, mean: Mapping[str, float] = mean) -> bool:
                f = w.feature  # type: ignore[attr-defined]
                if f.startswith("z:"):
                    z = (mean[f[2:]] - catalog_mean[f[2:]]) / catalog_std[f[2:]]
                    return (w.low is None or z >= w.low) and (w.high is None or z <= w.high)  # type: ignore[attr-defined]
                return w.holds(mean)  # type: ignore[attr-defined]
            assert any(holds(w) for w in meanings), (name, word, [w.means() for w in meanings], mean)
        _, words = split_name(name)
        for f, (up, down) in CONTRASTS.items():
            for word, sign in ((up, 1), (down, -1)):
                if word in words:  # relative to the moods that share the name without this word
                    stem = name[:name.index(word)].rstrip(", ·")
                    group = [m for n, m in zip(names, means, strict=True) if n.startswith(stem)
                             and split_name(n[len(stem):].lstrip(", ·"))[1] in ([], *([w] for w in contrasts))]
                    assert sign * (mean[f] - np.mean([m[f] for m in group])) >= 0, (name, word)


def test_the_neutral_band_prints_nothing() -> None:
    means = [{**SPOTIFY_MEAN, "valence": v, "energy": 0.5} for v in (0.41, 0.48, 0.59)]
    for name in mood_names(means, SPOTIFY_MEAN, SPOTIFY_STD):
        assert "happy" not in name and "sad" not in name and name.startswith("neutral")


def test_the_issues_contradictions_are_gone() -> None:
    means = [{**SPOTIFY_MEAN, "valence": 0.51, "energy": 0.59, "speechiness": 0.09, "tempo": 150.0},
             {**SPOTIFY_MEAN, "valence": 0.50, "danceability": 0.80, "tempo": 128.0},
             {**SPOTIFY_MEAN, "valence": 0.48, "energy": 0.87, "acousticness": 0.05}]
    names = mood_names(means, SPOTIFY_MEAN, SPOTIFY_STD)
    assert not any(w in n for n in names for w in ("sad", "angry", "happy", "spoken", "slow"))
    assert names[0].startswith("neutral · fast") and names[1].startswith("energetic · danceable")
    check_names(names, means, SPOTIFY_MEAN, SPOTIFY_STD)


def test_random_moods_get_unique_names_whose_words_hold() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        means = [{"valence": rng.random(), "energy": rng.random(), "danceability": rng.random(),
                  "acousticness": rng.random(), "instrumentalness": rng.random() ** 3,
                  "speechiness": rng.random() ** 3, "tempo": rng.normal(120, 25), "loudness": -rng.random() * 20,
                  "liveness": rng.random()} for _ in range(int(rng.integers(2, 50)))]
        names = mood_names(means, SPOTIFY_MEAN, SPOTIFY_STD)
        check_names(names, means, SPOTIFY_MEAN, SPOTIFY_STD)
        assert not any("loud" in n or "quiet" in n for n in names)  # Spotify loudness is mastering, not mood


def test_descriptor_names_are_relative_and_say_so() -> None:
    catalog_mean = {"rms_mean": 0.12, "spectral_centroid_mean": 2200.0, "tempo": 118.0, "zero_crossing_rate_mean": 0.1}
    catalog_std = {"rms_mean": 0.05, "spectral_centroid_mean": 700.0, "tempo": 25.0, "zero_crossing_rate_mean": 0.04}
    features = list(catalog_mean)
    means = [{**catalog_mean, "zero_crossing_rate_mean": 0.16, "tempo": 150.0},
             {**catalog_mean, "zero_crossing_rate_mean": 0.101},  # z 0.03: no "noisier", no "high"
             {**catalog_mean, "spectral_centroid_mean": 3400.0, "rms_mean": 0.3}]
    names = mood_names(means, catalog_mean, catalog_std, features)
    assert names[0] == "fast, noisier" and names[1] == "average"
    assert names[2] == "loud, bright"  # -10.5 dBFS and 3400 Hz: absolute scales
    check_names(names, means, catalog_mean, catalog_std)
    words = {v["word"]: v["means"] for v in vocabulary(names, features)}
    assert "relative to this catalog" in words["noisier"] and words["fast"] == "tempo >= 140 BPM"
    assert words["loud"] == "rms_mean in dB >= -12 dBFS"
    # columns without a descriptor's word: "high"/"low" only past the neutral band, never at z 0
    names = mood_names([{"a": 0.0, "b": 3.0}, {"a": 0.0, "b": -0.2}], {"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1.0}, ["a", "b"])
    assert names == ["high b", "average"]


def test_the_vocabulary_lists_each_word_used_with_its_range() -> None:
    means = [{**SPOTIFY_MEAN, "valence": 0.8, "energy": 0.8, "tempo": 150.0},
             {**SPOTIFY_MEAN, "valence": 0.2, "energy": 0.3, "acousticness": 0.9}]
    names = mood_names(means, SPOTIFY_MEAN, SPOTIFY_STD)
    words = {v["word"]: v["means"] for v in vocabulary(names, list(SPOTIFY_MEAN))}
    assert words == {"happy, energetic": "valence >= 0.60 and energy >= 0.60",
                     "sad, reflective": "valence <= 0.40 and energy <= 0.40",
                     "acoustic": "acousticness >= 0.60", "fast": "tempo >= 140 BPM"}


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


def test_an_ambiguous_start_also_lists_the_names_that_hold_the_words_further_in() -> None:
    names = ["slow, quiet · softer-beat", "quiet, calm · acoustic", "happy, energetic · electric", "quiet, dark · slow"]
    with pytest.raises(InvalidQuery, match="'quiet' matches 3 moods: 1 'quiet, calm · acoustic'; 3 'quiet, dark · "
                                           "slow'; 0 'slow, quiet · softer-beat';"):
        find_mood(names, "quiet")


def test_unknown_names_get_the_closest_names() -> None:
    with pytest.raises(InvalidQuery, match="unknown mood 'calm acustic'; did you mean 'calm, content · acoustic'"):
        find_mood(NAMES, "calm acustic")
    with pytest.raises(InvalidQuery, match=r"unknown mood 'zzz' \(ListMoods gives all 9 names and ids\)"):
        find_mood(NAMES, "zzz")
    with pytest.raises(InvalidQuery, match=r"unknown mood id 9; ids are 0\.\.8"):
        find_mood(NAMES, "9")


@pytest.mark.parametrize("text", ["²", "③", "٣", " ² ", "3²"])
def test_digits_other_than_ascii_are_names_not_ids(text: str) -> None:
    """str.isdigit() holds for "²" and "③" but int() refuses them: they are looked up as names."""
    with pytest.raises(InvalidQuery, match=r"mood_name: unknown mood '.*' \(ListMoods gives all 9 names and ids\)"):
        find_mood(NAMES, text)


def test_an_id_with_thousands_of_digits_is_unknown_not_an_int_overflow() -> None:
    with pytest.raises(InvalidQuery, match=r"unknown mood id 444444444444\.\.\. \(4301 digits\); ids are 0\.\.8"):
        find_mood(NAMES, "4" * 4301)
    with pytest.raises(InvalidQuery, match=r"unknown mood id 1000000000; ids are 0\.\.8"):
        find_mood(NAMES, "1000000000")
    assert find_mood(NAMES, "0" * 5000 + "3") == 3  # leading zeros are still the id
    assert find_mood(NAMES, " 3 ") == 3
