"""Mood names whose words match their numbers.

A mood is named from the *mean* of its tracks (the numbers the report's mood table prints), never
from where it sits relative to the catalog's mean alone: cut at the mean, a mood with valence 0.48
read "happy" on one catalog and a mood with valence 0.51 "sad" on another.

- **Absolute scales** where the feature has one: Spotify's 0..1 valence, energy, danceability,
  acousticness, instrumentalness and speechiness, tempo in BPM, level in dB(FS), spectral centroid
  in Hz. Each word is a range of the mood's mean (``VOCABULARY``); between the words of a feature
  lies a *neutral band* that prints nothing (valence 0.40-0.60 is neither happy nor sad).
- **Base**: the valence x energy grid (3 x 3 with the neutral bands: "happy, energetic", "cheerful",
  "calm, content", "energetic", "neutral", "calm", "angry, tense", "melancholy", "sad, reflective")
  when the schema has both; refined by at most two words of the other features, the ones whose mean
  lies furthest past the word's threshold (in catalog standard deviations).
- **Features without an absolute scale** (most librosa descriptors, any other column) get relative
  words that say so: comparatives against the catalog's own average ("brighter", "busier") or
  "high <column>" / "low <column>", only when the mood's mean lies at least ``RELATIVE_Z`` catalog
  standard deviations from the catalog's mean (so "high" is never printed for a z-score of 0.0).
- **Unique**: moods that would share a name get more of their absolute words; if still equal,
  relative words *within the group* ("faster": a higher mean tempo than the mean of the moods that
  share the name), then a number.

``vocabulary(names)`` lists the words used with the range each one means; the build report prints
it, and tests/engine/test_moods.py checks every name of the real-data bundle against its numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

RELATIVE_Z = 0.5  # a relative word needs the mood's mean this many catalog stds from the catalog's mean
REFINEMENTS = 2  # words after the base (3 without one), before any needed to tell moods apart
SEPARATOR = " · "


@dataclasses.dataclass(frozen=True)
class Word:
    """One word of a mood name and the range of one feature's mood mean it stands for."""

    word: str
    feature: str
    low: float | None = None  # the mood's mean is >= low (None: no lower bound)
    high: float | None = None  # the mood's mean is <= high (None: no upper bound)
    unit: str = ""
    to_unit: str = ""  # "db": the feature is a linear amplitude, compared in dB (20 log10)

    def value(self, mean: Mapping[str, float]) -> float:
        v = float(mean[self.feature])
        if self.to_unit == "db":
            return 20 * math.log10(max(v, 1e-12))
        return v

    def holds(self, mean: Mapping[str, float]) -> bool:
        v = self.value(mean)
        return (self.low is None or v >= self.low) and (self.high is None or v <= self.high)

    def excess(self, mean: Mapping[str, float], scale: float) -> float:
        """How far past its threshold the mood's mean lies, in ``scale`` units (0 when not past)."""
        v = self.value(mean)
        past = (v - self.low) if self.low is not None else (self.high - v) if self.high is not None else 0.0
        return max(past, 0.0) / scale

    def means(self) -> str:
        def fmt(x: float) -> str:
            return f"{x:g}" if abs(x) >= 10 else f"{x:.2f}"

        what = f"{self.feature} in dB" if self.to_unit == "db" else self.feature
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{what} {fmt(self.low)}-{fmt(self.high)}{unit}"
        if self.low is not None:
            return f"{what} >= {fmt(self.low)}{unit}"
        return f"{what} <= {fmt(self.high)}{unit}"  # type: ignore[arg-type]


# Spotify's perceptual scales (0..1): the neutral band is 0.40-0.60 for valence and energy.
LOW, HIGH = 0.40, 0.60
# The valence x energy grid: (valence band, energy band) -> words. -1 low, 0 neutral, +1 high.
_GRID = {
    (1, 1): "happy, energetic", (1, 0): "cheerful", (1, -1): "calm, content",
    (0, 1): "energetic", (0, 0): "neutral", (0, -1): "calm",
    (-1, 1): "angry, tense", (-1, 0): "melancholy", (-1, -1): "sad, reflective",
}
_VALENCE_ONLY = {1: "happy", 0: "neutral", -1: "sad"}
_ENERGY_ONLY = {1: "energetic", 0: "neutral", -1: "calm"}
_BANDS = {1: (HIGH, None), 0: (LOW, HIGH), -1: (None, LOW)}

# Refinements on absolute scales, per feature: (word when high, its range), (word when low, its range).
# Thresholds follow the scales' own documentation where it gives one (Spotify: instrumentalness above
# 0.5 and speechiness above 0.33 are instrumental / spoken tracks), else a round value that leaves a
# wide neutral band (tempo 95-140 BPM is neither slow nor fast).
ABSOLUTE = (
    Word("acoustic", "acousticness", low=0.60), Word("electric", "acousticness", high=0.20),
    Word("instrumental", "instrumentalness", low=0.50),
    Word("danceable", "danceability", low=0.70), Word("free-flowing", "danceability", high=0.40),
    Word("fast", "tempo", low=140.0, unit="BPM"), Word("slow", "tempo", high=95.0, unit="BPM"),
    Word("spoken", "speechiness", low=0.33),
    Word("loud", "loudness", low=-12.0, unit="dB(FS)"), Word("quiet", "loudness", high=-24.0, unit="dB(FS)"),
    Word("loud", "rms_mean", low=-12.0, unit="dBFS", to_unit="db"),
    Word("quiet", "rms_mean", high=-24.0, unit="dBFS", to_unit="db"),
    Word("bright", "spectral_centroid_mean", low=3000.0, unit="Hz"),
    Word("mellow", "spectral_centroid_mean", high=1200.0, unit="Hz"),
)
# Spotify's loudness is a mastering level (-60..0 dB, most tracks -12..-4): it names the recording,
# not the mood, so a catalog with valence/energy does not get "loud"/"quiet".
_NOT_WITH_PERCEPTUAL = {"loudness"}
PERCEPTUAL = ("valence", "energy", "danceability", "acousticness", "instrumentalness", "speechiness")

# Relative words for descriptors without an absolute scale: (word above the catalog's average, below).
RELATIVE = {
    "onset_rate": ("busier", "sparser"), "beat_strength": ("punchier", "softer-beat"),
    "harmonic_ratio_mean": ("more tonal", "more percussive"),
    "zero_crossing_rate_mean": ("noisier", "purer"), "rolloff_mean": ("brighter", "darker"),
    "spectral_bandwidth_mean": ("wider", "narrower"), "spectral_flatness_mean": ("noisier", "purer"),
    "mfcc1_mean": ("louder", "softer"), "perceptr_var": ("punchier", "softer-beat"),
    "chroma_stft_mean": ("more tonal", "less tonal"),
}
# Words that tell apart moods that would share a name, relative to the others of that name.
CONTRASTS = {
    "valence": ("brighter", "darker"), "energy": ("more energetic", "gentler"),
    "acousticness": ("more acoustic", "more electric"), "instrumentalness": ("more instrumental", "more vocal"),
    "danceability": ("more danceable", "less danceable"), "tempo": ("faster", "slower"),
    "speechiness": ("wordier", "more sung"),
}


def _band(value: float) -> int:
    return 1 if value >= HIGH else -1 if value <= LOW else 0


def base_words(mean: Mapping[str, float]) -> tuple[str, list[Word]]:
    """The base of the name from valence and energy (whichever the schema has) and what it claims."""
    has_v, has_e = "valence" in mean, "energy" in mean
    if has_v and has_e:
        bv, be = _band(mean["valence"]), _band(mean["energy"])
        return _GRID[(bv, be)], [Word(_GRID[(bv, be)], "valence", *_BANDS[bv]),
                                 Word(_GRID[(bv, be)], "energy", *_BANDS[be])]
    if has_v:
        b = _band(mean["valence"])
        return _VALENCE_ONLY[b], [Word(_VALENCE_ONLY[b], "valence", *_BANDS[b])]
    if has_e:
        b = _band(mean["energy"])
        return _ENERGY_ONLY[b], [Word(_ENERGY_ONLY[b], "energy", *_BANDS[b])]
    return "", []


def is_perceptual(features: Sequence[str] | Mapping[str, Any]) -> bool:
    """Whether names can stand on the valence x energy grid (the schema has either)."""
    return "valence" in features or "energy" in features


def _absolute_words(features: Sequence[str] | Mapping[str, Any]) -> list[Word]:
    """The absolute words a schema can use: one level measure only (dBFS loudness over rms)."""
    perceptual = is_perceptual(features)
    skip = set(_NOT_WITH_PERCEPTUAL) if perceptual else {"rms_mean"} if "loudness" in features else set()
    return [w for w in ABSOLUTE if w.feature in features and w.feature not in skip]


def _relative_pair(feature: str) -> tuple[str, str]:
    return RELATIVE.get(feature, (f"high {feature}", f"low {feature}"))


def candidate_words(mean: Mapping[str, float], catalog_mean: Mapping[str, float],
                    catalog_std: Mapping[str, float], relative_features: Sequence[str] = ()
                    ) -> list[tuple[Word, float]]:
    """Every refinement word that holds for this mood, with how far past its threshold its mean lies
    (in catalog stds), strongest first, at most one per feature. Absolute words on any feature with a
    scale; relative ones (a ``Word`` on feature ``z:<name>`` bounding the z-score of the mood's mean)
    only for ``relative_features`` without a scale, and only when the names have no valence/energy."""
    absolute = _absolute_words(mean)
    found: dict[str, tuple[Word, float]] = {}
    for w in absolute:
        if w.holds(mean):
            scale = catalog_std.get(w.feature) or 1.0
            if w.to_unit == "db":  # a linear amplitude's std, in dB near the catalog's mean
                scale = 20 / math.log(10) * scale / max(catalog_mean.get(w.feature, 1.0), 1e-12)
            e = w.excess(mean, scale)
            if w.feature not in found or e > found[w.feature][1]:
                found[w.feature] = (w, e)
    if not is_perceptual(mean):
        scaled = {w.feature for w in absolute}
        for f in relative_features:
            if f in scaled or f not in mean or not catalog_std.get(f):
                continue
            z = (mean[f] - catalog_mean[f]) / catalog_std[f]
            if abs(z) >= RELATIVE_Z:
                high, low = _relative_pair(f)
                word = Word(high, "z:" + f, low=RELATIVE_Z) if z > 0 else Word(low, "z:" + f, high=-RELATIVE_Z)
                found[f] = (word, abs(z) - RELATIVE_Z)
    return sorted(found.values(), key=lambda we: -we[1])


def split_name(name: str) -> tuple[str, list[str]]:
    """(base phrase, refinement words) of a name; a trailing " (n)" is dropped. Names without a
    valence/energy base are all refinement words."""
    if name.endswith(")") and " (" in name and name.rsplit(" (", 1)[1][:-1].isdigit():
        name = name.rsplit(" (", 1)[0]
    base, sep, rest = name.partition(SEPARATOR)
    if not sep and base not in _GRID.values() and base not in _VALENCE_ONLY.values() \
            and base not in _ENERGY_ONLY.values():
        base, rest = "", name
    words = [w.strip() for w in rest.split(", ")] if rest else []
    return base, [w for w in words if w and w != "average"]


def mood_names(means: Sequence[Mapping[str, float]], catalog_mean: Mapping[str, float],
               catalog_std: Mapping[str, float], relative_features: Sequence[str] = ()) -> list[str]:
    """Unique names for moods with these ``means`` (feature -> mean over the mood's tracks), given
    the catalog's mean and std of each feature (to rank words, and for relative words, which only
    ``relative_features`` get: the mood-space features of a catalog without valence/energy)."""
    bases = [base_words(m)[0] for m in means]
    candidates = [candidate_words(m, catalog_mean, catalog_std, relative_features) for m in means]
    # without a valence/energy base, one more word carries the name
    taken = [REFINEMENTS if b else REFINEMENTS + 1 for b in bases]
    order = {w.word: i for i, w in enumerate(ABSOLUTE)}
    relative_order = {"z:" + f: len(order) + i for i, f in enumerate(relative_features)}

    def name(i: int) -> str:
        # the strongest words, printed in a fixed order ("acoustic, slow" is never "slow, acoustic")
        chosen = [w for w, _ in candidates[i][:taken[i]]]
        chosen.sort(key=lambda w: order.get(w.word, relative_order.get(w.feature, len(order))))
        words = list(dict.fromkeys(w.word for w in chosen))  # two descriptors may share a word
        if not bases[i]:
            return ", ".join(words) or "average"
        return bases[i] + (SEPARATOR + ", ".join(words) if words else "")

    names = [name(i) for i in range(len(means))]
    # Moods that would share a name: more of their own words, while any is left.
    while True:
        grown = False
        for group in _collisions(names):
            for i in group:
                if taken[i] < len(candidates[i]):
                    taken[i] += 1
                    names[i] = name(i)
                    grown = True
        if not grown:
            break
    # Still equal: a word relative to the others of that name ("faster"), on a feature not yet named.
    for group in _collisions(names):
        shared = names[group[0]]
        named = {w.feature.removeprefix("z:") for i in group for w, _ in candidates[i][:taken[i]]}
        if bases[group[0]]:
            named |= {"valence", "energy"}
        common = [f for f in means[group[0]] if all(f in means[i] for i in group) and catalog_std.get(f)]
        # whichever tells them apart most, on a scale of its own or not (a descriptor table's only contrast
        # word is tempo's, and two moods 1.7x apart in brightness were told apart by 8 BPM)
        features = [f for f in dict.fromkeys([*CONTRASTS, *relative_features]) if f in common and f not in named]
        if not features:
            continue
        group_mean = {f: sum(means[i][f] for i in group) / len(group) for f in features}
        for i in group:
            f = max(features, key=lambda f, i=i: abs(means[i][f] - group_mean[f]) / catalog_std[f])
            above = means[i][f] >= group_mean[f]
            word = CONTRASTS[f][0 if above else 1] if f in CONTRASTS else f"{'higher' if above else 'lower'} {f}"
            names[i] = f"{shared}, {word}" if (SEPARATOR in shared or not bases[i]) else f"{shared}{SEPARATOR}{word}"
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n} ({seen[n]})")
    return out


def _collisions(names: Sequence[str]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def mood_name(mean: Mapping[str, float], catalog_mean: Mapping[str, float] | None = None,
              catalog_std: Mapping[str, float] | None = None, relative_features: Sequence[str] = ()) -> str:
    """The name of one mood from its mean (feature -> mean over its tracks). Relative words need the
    catalog's mean and std of each feature; without them only absolute words are used."""
    return mood_names([mean], catalog_mean or {}, catalog_std or {}, relative_features)[0]


def vocabulary(names: Sequence[str], feature_names: Sequence[str]) -> list[dict[str, str]]:
    """The words these names use, each with what it means (a range of the mood's mean over its
    tracks), in the order a reader meets them: base phrases, absolute words, relative words."""
    features = list(feature_names)
    split = [split_name(n) for n in names]
    bases = {b for b, _ in split}
    words = {w for _, ws in split for w in ws}
    rows: list[dict[str, str]] = []
    if "valence" in features and "energy" in features:
        for (bv, be), phrase in _GRID.items():
            if phrase in bases:
                rows.append({"word": phrase, "means": f"{Word('', 'valence', *_BANDS[bv]).means()} and "
                                                      f"{Word('', 'energy', *_BANDS[be]).means()}"})
    else:
        for feature, table in (("valence", _VALENCE_ONLY), ("energy", _ENERGY_ONLY)):
            if feature in features:
                rows += [{"word": phrase, "means": Word("", feature, *_BANDS[b]).means()}
                         for b, phrase in table.items() if phrase in bases]
    absolute = _absolute_words(features)
    rows += [{"word": w.word, "means": w.means()} for w in absolute if w.word in words]
    if not is_perceptual(features):
        scaled = {w.feature for w in absolute}
        for f in features:
            if f in scaled:
                continue
            high, low = _relative_pair(f)
            for word, side in ((high, "above"), (low, "below")):
                if word in words:
                    rows.append({"word": word, "means": f"{f} at least {RELATIVE_Z:g} catalog std {side} the "
                                                        "catalog's mean (relative to this catalog)"})
    for f, pair in CONTRASTS.items():
        for word, direction in zip(pair, ("higher", "lower"), strict=True):
            if word in words:
                rows.append({"word": word, "means": f"a {direction} mean {f} than the mean of the moods that "
                                                    "would otherwise share the name (relative)"})
    for f in features:
        for direction in ("higher", "lower"):
            if f"{direction} {f}" in words:
                rows.append({"word": f"{direction} {f}", "means": f"a {direction} mean {f} than the mean of the "
                                                                  "moods that would otherwise share the name"})
    if any(n == "average" or n.startswith("average, ") for n in names):
        rows.append({"word": "average", "means": "no mood-space feature past a word's threshold"})
    if any(n != split_name(n)[0] and n.endswith(")") and n.rsplit(" (", 1)[1][:-1].isdigit() for n in names):
        rows.append({"word": "(1), (2)...", "means": "moods that no word told apart"})
    # one row per word, first meaning kept (rms_mean and loudness both say "loud")
    unique: dict[str, dict[str, str]] = {}
    for r in rows:
        if r["word"] in unique and r["means"] not in unique[r["word"]]["means"]:
            unique[r["word"]]["means"] += "; or " + r["means"]
        unique.setdefault(r["word"], r)
    return list(unique.values())


def claims(name: str, feature_names: Sequence[str]) -> list[tuple[str, list[Word]]]:
    """What a name says on absolute scales or against the catalog: each word (the base phrase, each
    absolute word, each catalog-relative word) with the ranges it may stand for; a word holds when
    any of them does. Catalog-relative ranges are on feature ``z:<name>`` (the z-score of the mood's
    mean). Group-relative words ("faster") and numbers are left out: they depend on other moods."""
    features = list(feature_names)
    base, words = split_name(name)
    out: list[tuple[str, list[Word]]] = []
    if base:
        if "valence" in features and "energy" in features:
            bv, be = {phrase: key for key, phrase in _GRID.items()}[base]
            out += [(base, [Word(base, "valence", *_BANDS[bv])]), (base, [Word(base, "energy", *_BANDS[be])])]
        else:
            f, table = ("valence", _VALENCE_ONLY) if "valence" in features else ("energy", _ENERGY_ONLY)
            out.append((base, [Word(base, f, *_BANDS[{p: b for b, p in table.items()}[base]])]))
    absolute = _absolute_words(features)
    scaled = {w.feature for w in absolute}
    relative: dict[str, list[Word]] = {}
    if not is_perceptual(features):
        for f in features:
            if f not in scaled:
                high, low = _relative_pair(f)
                relative.setdefault(high, []).append(Word(high, "z:" + f, low=RELATIVE_Z))
                relative.setdefault(low, []).append(Word(low, "z:" + f, high=-RELATIVE_Z))
    for word in words:
        meanings = [w for w in absolute if w.word == word] or relative.get(word, [])
        if meanings:
            out.append((word, meanings))
    return out
