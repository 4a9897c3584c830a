"""Coarse genre families: the 114 Spotify genres grouped into 16 families a listener recognizes.

Many of the dataset's genres are neighbours no audio feature can tell apart (house, deep-house,
chicago-house, progressive-house), so the classifier is also scored on families: a family's
probability is the sum of its genres' probabilities, and a prediction is correct when its family
holds any of the track's genres. The grouping is editorial, by musical lineage first and region
second: "j-rock" is East Asian pop, "indie" is rock, "guitar" (mostly acoustic instrumentals) is
folk & country, "piano" is classical, and the dataset's mood genres go with what they mostly
contain (happy/sad/party/romance: pop; chill/sleep/study: ambient & chill).

The table below is the documentation; benchmarks/RESULTS.md shows it with each family's accuracy.
"""

from __future__ import annotations

import re

import numpy as np

SPOTIFY_GENRE_FAMILIES: dict[str, tuple[str, ...]] = {
    "rock": ("alt-rock", "alternative", "british", "emo", "garage", "goth", "grunge", "hard-rock", "indie",
             "psych-rock", "punk", "punk-rock", "rock", "rock-n-roll", "rockabilly", "ska"),
    "metal": ("black-metal", "death-metal", "grindcore", "hardcore", "heavy-metal", "industrial", "metal",
              "metalcore"),
    "electronic": ("breakbeat", "chicago-house", "club", "dance", "deep-house", "detroit-techno", "drum-and-bass",
                   "dubstep", "edm", "electro", "electronic", "hardstyle", "house", "idm", "minimal-techno",
                   "progressive-house", "techno", "trance", "trip-hop"),
    "hip-hop & r&b": ("hip-hop", "r-n-b"),
    "soul, funk & disco": ("disco", "funk", "gospel", "groove", "soul"),
    "pop": ("happy", "indie-pop", "party", "pop", "power-pop", "romance", "sad", "synth-pop"),
    "latin": ("latin", "latino", "reggaeton", "salsa", "spanish", "tango"),
    "brazilian": ("brazil", "forro", "mpb", "pagode", "samba", "sertanejo"),
    "reggae & afro-caribbean": ("afrobeat", "dancehall", "dub", "reggae"),
    "classical": ("classical", "opera", "piano"),
    "jazz & blues": ("blues", "jazz"),
    "folk & country": ("acoustic", "bluegrass", "country", "folk", "guitar", "honky-tonk", "singer-songwriter",
                       "songwriter"),
    "ambient & chill": ("ambient", "chill", "new-age", "sleep", "study"),
    "east asian pop": ("anime", "cantopop", "j-dance", "j-idol", "j-pop", "j-rock", "k-pop", "mandopop"),
    "world & regional": ("french", "german", "indian", "iranian", "malay", "swedish", "turkish", "world-music"),
    "children, comedy & stage": ("children", "comedy", "disney", "kids", "pop-film", "show-tunes"),
}

# Family scores need most of a catalog's genres in the table; below this share they mean little.
MIN_COVERAGE = 0.9


def family_matrix(genre_names: tuple[str, ...],
                  families: dict[str, tuple[str, ...]] | None = None) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """A 0/1 matrix of shape (n_genres, n_families) mapping each genre to its family, and the
    family names; None when the table covers less than ``MIN_COVERAGE`` of the genres (another
    catalog's labels). Genres the table does not know form a family of their own, "other". Names match
    by ``genre_key``."""
    families = SPOTIFY_GENRE_FAMILIES if families is None else families
    family_of = {genre_key(g): f for f, genres in families.items() for g in genres}
    keys = [genre_key(g) for g in genre_names]
    known = sum(k in family_of for k in keys)
    if not genre_names or known / len(genre_names) < MIN_COVERAGE:
        return None
    names = [f for f in families if any(family_of.get(k) == f for k in keys)]
    if known < len(genre_names):
        names.append("other")
    column = {f: i for i, f in enumerate(names)}
    m = np.zeros((len(genre_names), len(names)), dtype=np.float32)
    for i, k in enumerate(keys):
        m[i, column[family_of.get(k, "other")]] = 1.0
    return m, tuple(names)


def coarser_families(genre_names: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """``family_matrix``, where the families are fewer than the genres: None also where each genre is a family of
    its own (family scores and figures would repeat the genres')."""
    found = family_matrix(genre_names)
    return found if found is not None and len(found[1]) < len(genre_names) else None


def genre_key(name: str) -> str:
    """A genre's name as the family table matches it: without case, spaces or punctuation, and without
    "and"/"n" between words, so GTZAN's "hiphop" is "hip-hop", "R&B" is "r-n-b", "Drum & Bass" is
    "drum-and-bass"."""
    words = re.findall(r"[a-z0-9]+", name.casefold())
    return "".join(w for w in words if w not in ("and", "n")) or name
