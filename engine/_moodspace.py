"""Which features moods are clustered on: chosen from what the schema has, with the reason.

- **perceptual**: the schema has at least two of Spotify's perceptual features (valence, energy,
  danceability, acousticness, instrumentalness): the six mood features of ``MOOD_WEIGHTS`` it has.
  Mood is what a listener hears; key, duration or liveness would only add noise to the density.
- **descriptors**: no perceptual scale, but audio descriptors (a librosa/GTZAN-style table, or
  `musicrec extract` output): one column per aspect a listener hears as mood, the first the table
  has of each: level (loudness, rms, MFCC 1), brightness (spectral centroid, rolloff, bandwidth), pace
  (tempo), activity (onset rate, beat strength, the percussive part's variance) and texture
  (harmonic ratio, zero-crossing rate). One per aspect keeps the space low-dimensional (density
  estimates fail in 57 dimensions) and no aspect counted twice (rms and loudness are the same).
- **configured**: ``[moods] weights`` other than the defaults (each a feature of the schema: another name is
  refused, naming the features it could be).
- **all features**: none of the above (a table of unknown columns): every feature.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence

import numpy as np

from ._errors import ConfigError
from ._moodconfig import MOOD_WEIGHTS
from ._schema import AUDIO_MOOD_WEIGHTS

PERCEPTUAL = ("valence", "energy", "danceability", "acousticness", "instrumentalness")
# (aspect, columns in order of preference): the first a table has stands for the aspect.
DESCRIPTOR_ASPECTS = (
    ("level", ("loudness", "rms_mean", "mfcc1_mean")),
    ("brightness", ("spectral_centroid_mean", "rolloff_mean", "spectral_bandwidth_mean")),
    ("pace", ("tempo",)),
    ("activity", ("onset_rate", "beat_strength", "perceptr_var")),
    ("texture", ("harmonic_ratio_mean", "zero_crossing_rate_mean")),
)


@dataclasses.dataclass(frozen=True)
class MoodSpace:
    """Columns (of the standardized feature matrix) and weights that define the clustering space,
    and how they were chosen (``kind``, ``why``: written into the build report)."""

    columns: tuple[int, ...]
    weights: tuple[float, ...]
    kind: str = "configured"
    why: str = ""
    names: tuple[str, ...] = ()  # the columns' feature names (without a "_log1p" suffix), when known

    def project(self, standardized: np.ndarray) -> np.ndarray:
        """Mood-space coordinates of standardized features: shape (n, n_features) -> (n, len(columns))."""
        return np.ascontiguousarray(standardized[:, list(self.columns)] * np.asarray(self.weights), dtype=np.float32)


def mood_space(transformed_names: Sequence[str], weights: Mapping[str, float]) -> MoodSpace:
    """The mood space for a schema whose standardized columns are ``transformed_names``, given the
    configured ``weights`` (the defaults mean: choose from what the schema has; see the module)."""
    # a log1p-transformed column keeps its feature's name for choosing and naming ("rms_var_log1p")
    names = [n.removesuffix("_log1p") for n in transformed_names]
    default = dict(weights) in (MOOD_WEIGHTS, AUDIO_MOOD_WEIGHTS)
    if not default:
        check_weights(weights, transformed_names)

    def space(chosen: Sequence[tuple[int, float]], kind: str, why: str) -> MoodSpace:
        return MoodSpace(columns=tuple(i for i, _ in chosen), weights=tuple(w for _, w in chosen), kind=kind,
                         why=why, names=tuple(names[i] for i, _ in chosen))

    configured = [(i, float(weights.get(t, weights.get(n, 0)))) for i, (t, n) in enumerate(zip(
        transformed_names, names, strict=True)) if weights.get(t, weights.get(n, 0)) > 0]
    if not default:  # (each a feature of the schema, one at least above 0: MoodConfig, check_weights)
        return space(configured, "configured", "the [moods] weights of the configuration")
    perceptual = [n for n in PERCEPTUAL if n in names]
    if len(perceptual) >= 2:
        chosen = [(names.index(n), 1.0) for n in MOOD_WEIGHTS if n in names]
        left = [n for n in dict.fromkeys(n.removesuffix("_sin").removesuffix("_cos") for n in names)
                if n not in MOOD_WEIGHTS]
        return space(chosen, "perceptual", f"the schema has perceptual features ({', '.join(perceptual)}): "
                     "mood is what a listener hears, so only the mood features it has"
                     + (f" (not {', '.join(left)})" if left else ""))
    aspects = [(aspect, next(c for c in columns if c in names)) for aspect, columns in DESCRIPTOR_ASPECTS
               if any(c in names for c in columns)]
    if len(aspects) >= 2:
        lacking = [aspect for aspect, _ in DESCRIPTOR_ASPECTS if aspect not in dict(aspects)]
        return space([(names.index(c), 1.0) for _, c in aspects], "descriptors",
                     "no perceptual features (valence, energy...): one audio descriptor per aspect a "
                     "listener hears as mood (" + ", ".join(f"{a}: {c}" for a, c in aspects) + "), so the space "
                     "stays low-dimensional" + (f"; the table has no column for {', '.join(lacking)}" if lacking
                                                else ""))
    return space([(i, 1.0) for i in range(len(names))], "all features",
                  "neither perceptual features nor known audio descriptors: every feature")


MAX_NAMES_SHOWN = 20  # a schema's features a message lists


def check_weights(weights: Mapping[str, float], transformed_names: Sequence[str]) -> None:
    """ConfigError naming each ``[moods] weights`` feature that is no column of the schema's standardized features
    (``transformed_names``, or one without its "_log1p"), with the columns it could be: a typo would otherwise
    leave the feature out of the mood space unsaid, as every other unknown config key is refused."""
    known = list(dict.fromkeys([*transformed_names, *(n.removesuffix("_log1p") for n in transformed_names)]))
    unknown = [name for name in weights if name not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    shown = ", ".join(known[:MAX_NAMES_SHOWN]) + (f" and {len(known) - MAX_NAMES_SHOWN} more"
                                                   if len(known) > MAX_NAMES_SHOWN else "")
    raise ConfigError(f"moods.weights names {'a feature' if len(unknown) == 1 else 'features'} the schema does not "
                      f"have: {', '.join(hints)}; its features: {shown}")


def missing_aspects(space: MoodSpace) -> list[str]:
    """The aspects a descriptor mood space has no column for ("activity", "texture"...); [] for other kinds."""
    if space.kind != "descriptors":
        return []
    return [aspect for aspect, columns in DESCRIPTOR_ASPECTS if not set(columns) & set(space.names)]
