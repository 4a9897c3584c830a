"""Deterministic synthetic catalogs in the Spotify Tracks Dataset's schema.

Structure is planted so tests and demos have known right answers:
- each genre has an audio profile (a mean per feature) and each artist a small offset from its
  genre's profile, so tracks cluster by genre, and more tightly by artist;
- a share of tracks is listed again under a second genre (same id, same features: multi-label);
- a few rows are exact duplicates, and a few are bad (tempo 0, a missing value), so the cleaning
  counts are known too.
The values stay inside the ranges the Spotify Web API documents.
"""

from __future__ import annotations

import string

import numpy as np
import pandas as pd

#                 dance energy loud  speech acoustic instr  live  valence tempo explicit
_PROFILES: dict[str, tuple[float, ...]] = {
    "acoustic":    (0.50, 0.30, -11.0, 0.04, 0.85, 0.05, 0.12, 0.45, 110, 0.02),
    "ambient":     (0.30, 0.15, -20.0, 0.04, 0.85, 0.85, 0.10, 0.15, 90, 0.00),
    "classical":   (0.25, 0.12, -22.0, 0.04, 0.95, 0.90, 0.12, 0.20, 100, 0.00),
    "dance":       (0.78, 0.80, -5.0, 0.07, 0.08, 0.05, 0.15, 0.70, 124, 0.10),
    "edm":         (0.65, 0.90, -4.0, 0.07, 0.02, 0.60, 0.25, 0.35, 128, 0.05),
    "folk":        (0.52, 0.40, -10.0, 0.04, 0.70, 0.03, 0.15, 0.55, 115, 0.02),
    "hip-hop":     (0.80, 0.65, -6.0, 0.28, 0.15, 0.01, 0.20, 0.50, 95, 0.70),
    "jazz":        (0.55, 0.30, -13.0, 0.06, 0.75, 0.35, 0.15, 0.55, 105, 0.00),
    "metal":       (0.35, 0.95, -4.5, 0.09, 0.01, 0.15, 0.25, 0.20, 135, 0.20),
    "pop":         (0.68, 0.70, -5.5, 0.06, 0.20, 0.01, 0.14, 0.60, 118, 0.20),
    "sad":         (0.45, 0.25, -12.0, 0.05, 0.70, 0.05, 0.11, 0.15, 80, 0.05),
    "latin":       (0.75, 0.75, -5.0, 0.08, 0.25, 0.01, 0.18, 0.80, 105, 0.15),
}  # fmt: skip
_SPREAD = (0.10, 0.10, 2.5, 0.03, 0.12, 0.10, 0.08, 0.12, 12.0)
_BOUNDS = ((0, 1), (0, 1), (-40, 0), (0, 1), (0, 1), (0, 1), (0, 1), (0, 1), (40, 220))
_COLUMNS = ["danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness",
            "liveness", "valence", "tempo"]


def _planted_audio(
    rng: np.random.Generator, n_tracks: int, n_genres: int, artists_per_genre: int, noise: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The planted structure: genre profile + artist offset + track noise, clipped to the API's
    ranges. Returns (audio of shape (n_tracks, 9) in ``_COLUMNS`` order, artist, genre,
    genre_of_artist, profiles)."""
    if not 1 <= n_genres <= len(_PROFILES):
        raise ValueError(f"n_genres must be 1..{len(_PROFILES)}, got {n_genres}")
    profiles = np.array([_PROFILES[g] for g in list(_PROFILES)[:n_genres]])
    spread = np.array(_SPREAD) * noise
    lo, hi = np.array(_BOUNDS).T
    genre_of_artist = np.repeat(np.arange(n_genres), artists_per_genre)
    artist_offset = rng.normal(0, 0.6, size=(len(genre_of_artist), len(_SPREAD))) * spread
    artist = rng.integers(0, len(genre_of_artist), size=n_tracks)
    genre = genre_of_artist[artist]
    audio = np.clip(profiles[genre, :9] + artist_offset[artist] + rng.normal(size=(n_tracks, 9)) * spread, lo, hi)
    return audio, artist, genre, genre_of_artist, profiles


def synthetic_catalog(
    n_tracks: int = 5000, *, n_genres: int = 12, artists_per_genre: int = 25, multi_genre_share: float = 0.08,
    exact_duplicates: int = 5, bad_rows: int = 4, noise: float = 1.0, seed: int = 0,
) -> pd.DataFrame:
    """A catalog frame in the Spotify schema (with the leading unnamed index column).

    ``noise`` scales the within-genre spread: 1.0 is realistic overlap, 0.3 gives well-separated
    genres whose clusters a test can demand. Rows: ``n_tracks`` tracks, plus the multi-genre copies,
    duplicates and bad rows.
    """
    rng = np.random.default_rng(seed)
    genres = list(_PROFILES)[:n_genres]
    audio, artist, genre, genre_of_artist, profiles = _planted_audio(rng, n_tracks, n_genres, artists_per_genre, noise)

    alphabet = np.array(list(string.ascii_letters + string.digits))
    ids = ["".join(row) for row in alphabet[rng.integers(0, len(alphabet), size=(n_tracks, 22))]]
    frame = pd.DataFrame({
        "track_id": ids,
        "artists": [f"Artist {genres[genre_of_artist[a]].title()} {a:03d}" for a in artist],
        "album_name": [f"Album {a:03d}-{rng.integers(1, 4)}" for a in artist],
        "track_name": [f"Track {i:05d}" for i in range(n_tracks)],
        "popularity": rng.integers(0, 100, size=n_tracks),
        "duration_ms": np.clip(rng.lognormal(np.log(215_000), 0.3, size=n_tracks), 30_000, 1_200_000).astype(int),
        "explicit": rng.random(n_tracks) < profiles[genre, 9],
        **{c: np.round(audio[:, j], 4 if c != "tempo" else 3) for j, c in enumerate(_COLUMNS[:2])},
        "key": rng.integers(0, 12, size=n_tracks),
        "loudness": np.round(audio[:, 2], 3),
        "mode": (rng.random(n_tracks) < 0.65).astype(int),
        **{c: np.round(audio[:, j + 3], 4) for j, c in enumerate(_COLUMNS[3:8])},
        "tempo": np.round(audio[:, 8], 3),
        "time_signature": rng.choice([3, 4, 5], p=[0.08, 0.9, 0.02], size=n_tracks),
        "track_genre": [genres[g] for g in genre],
    })
    extra = []
    # Multi-genre: the same track again under a different genre (the dataset's most common repeat).
    multi = rng.choice(n_tracks, size=int(n_tracks * multi_genre_share), replace=False) if n_genres > 1 else []
    for i in multi:
        row = frame.iloc[i].copy()
        row["track_genre"] = genres[(genre[i] + 1 + rng.integers(0, n_genres - 1)) % n_genres]
        extra.append(row)
    for i in rng.choice(n_tracks, size=min(exact_duplicates, n_tracks), replace=False):
        extra.append(frame.iloc[i].copy())
    for k in range(bad_rows):
        row = frame.iloc[rng.integers(0, n_tracks)].copy()
        row["track_id"] = f"bad{k:04d}"
        if k % 2 == 0:
            row["tempo"] = 0.0
        else:
            row["energy"] = np.nan
        extra.append(row)
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    frame.insert(0, "", np.arange(len(frame)))
    return frame


def synthetic_features(n_tracks: int, *, n_genres: int = 12, artists_per_genre: int = 2000, noise: float = 1.0,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw feature rows in the Spotify feature order (as ``FeatureSchema().feature_columns``) and a
    genre code per row, with the same planted genre/artist structure as :func:`synthetic_catalog`,
    built with array operations only: for scale benchmarks of millions of tracks, where writing and
    parsing a CSV would measure pandas instead of the index."""
    rng = np.random.default_rng(seed)
    audio, _, genre, _, _ = _planted_audio(rng, n_tracks, n_genres, artists_per_genre, noise)
    cols = dict(zip(_COLUMNS, audio.T, strict=True))
    out = np.column_stack([
        cols["danceability"], cols["energy"], rng.integers(0, 12, n_tracks), cols["loudness"],
        (rng.random(n_tracks) < 0.65).astype(float), cols["speechiness"], cols["acousticness"],
        cols["instrumentalness"], cols["liveness"], cols["valence"], cols["tempo"],
        rng.choice([3, 4, 5], p=[0.08, 0.9, 0.02], size=n_tracks),
        np.clip(rng.lognormal(np.log(215_000), 0.3, size=n_tracks), 30_000, 1_200_000),
    ])
    return out, genre
