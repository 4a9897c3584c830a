"""Mood playlists: which tracks (chosen by the music, never by file order) and in what order.

Members of a mood are ranked once per bundle: core members first, each group by cosine to the
mood's centre (the mean direction of its core), ties by row. A playlist takes the head of that
ranking (or of the seed's neighbourhood, or of the distance to a valence/energy target), caps
artists and repeated songs, then orders the chosen tracks for smooth transitions.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator, Sequence

import numpy as np

from ._errors import InvalidQuery, shown
from ._preprocess import l2_normalize
from ._view import CatalogView

MAX_PLAYLIST = 500
DEFAULT_PLAYLIST = 20
DEFAULT_PLAYLIST_ARTIST_CAP = 2


@dataclasses.dataclass(frozen=True)
class PlaylistEntry:
    position: int
    row: int
    transition: float


MOOD_CANDIDATES_SHOWN = 6
MOOD_ID_DIGITS = 9  # longer digit strings are no mood's id (and never reach int())


def _words(text: str) -> list[str]:
    """Lower-case words, without punctuation: "Calm, content · free-flowing" -> calm content free flowing."""
    return re.findall(r"[^\W_]+", text.casefold())


def find_mood(names: Sequence[str], text: str) -> int:
    """The index of the mood ``text`` names, written the way people write it.

    In order: the id as digits ("3"); the name with any punctuation ("calm, content - acoustic" is
    "calm, content · acoustic"); a start of the name, word by word, the last word possibly cut
    ("calm, content · ac"); or words each starting a word of the name ("calm acoustic"), where a
    name none of whose refinements (the words after "·") are left untyped is preferred, so "calm
    acoustic" is "calm, content · acoustic" rather than "calm, content · acoustic, slow", and whole
    words are preferred to starts of words ("fast" is "fast", not "faster"). More than one match is
    refused, listing them; none gets the closest names.
    """
    query = _words(text)
    digits = text.strip()
    # only ASCII digits are an id: "²" or "③" pass isdigit() but not int(), and a few thousand
    # digits pass int() only up to Python's 4300-digit limit; a number this long is no mood's id
    if digits.isascii() and digits.isdecimal():
        number = digits.lstrip("0") or "0"
        if len(number) <= MOOD_ID_DIGITS and int(number) < len(names):
            return int(number)
        cut = digits if len(digits) <= 20 else f"{digits[:12]}... ({len(digits)} digits)"
        raise InvalidQuery(f"mood_name: unknown mood id {cut}; ids are 0..{len(names) - 1}")
    if not query:
        raise InvalidQuery(f"mood_name: {shown(text)} has no words; ListMoods gives the names")
    words = [_words(n) for n in names]
    for i, w in enumerate(words):
        if w == query:
            return i

    def starts(q: str, word: str, last: bool) -> bool:
        return word == q or (last and word.startswith(q))

    prefix = [i for i, w in enumerate(words) if len(w) >= len(query)
              and all(starts(q, w[j], j == len(query) - 1) for j, q in enumerate(query))]
    keywords = [i for i, w in enumerate(words) if all(any(x.startswith(q) for x in w) for q in query)]
    candidates = prefix or keywords
    if len(candidates) > 1:
        # whole words typed beat starts of words ("fast" is "fast" rather than "faster")
        whole = [sum(q in words[i] for q in query) for i in candidates]
        best = [i for i, n in zip(candidates, whole, strict=True) if n == max(whole)]
        complete = [i for i in best
                    if all(any(x.startswith(q) for q in query) for x in _words(names[i].partition("·")[2]))]
        if len(best) == 1 or len(complete) == 1:
            return best[0] if len(best) == 1 else complete[0]
        candidates = best + [i for i in candidates if i not in best]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        # the names the text starts first, then any other name holding its words: every mood it matches
        candidates += [i for i in keywords if i not in candidates]
        listed = "; ".join(f"{i} {names[i]!r}" for i in candidates[:MOOD_CANDIDATES_SHOWN])
        hidden = len(candidates) - MOOD_CANDIDATES_SHOWN
        more = f"; and {hidden} more" if hidden > 0 else ""
        raise InvalidQuery(f"mood_name: {shown(text)} matches {len(candidates)} moods: {listed}{more}; "
                           "give more of the name, or the id")
    close = difflib.get_close_matches(" ".join(query), [" ".join(w) for w in words], n=3, cutoff=0.5)
    hint = "; did you mean " + " or ".join(repr(names[[" ".join(w) for w in words].index(c)]) for c in close) + "?"
    raise InvalidQuery(f"mood_name: unknown mood {shown(text)}{hint if close else ''} "
                       f"(ListMoods gives all {len(names)} names and ids)")


class Playlists:
    def __init__(self, view: CatalogView) -> None:
        self.view = view
        moods = view.bundle.moods
        self.clusters = moods.clusters_
        labels = moods.labels_
        self.members = [np.flatnonzero(labels == c) for c in range(len(self.clusters))]
        self.ranked = [self._rank_members(m, moods.is_core_) for m in self.members]
        self._space = self._playlist_space()

    def _rank_members(self, members: np.ndarray, is_core: np.ndarray) -> np.ndarray:
        """Core members nearest the centre first, then the rest nearest the centre; ties by row."""
        if not len(members):
            return members
        vectors = self.view.vectors[members].astype(np.float64)
        core = is_core[members].astype(bool)
        centre = l2_normalize(vectors[core if core.any() else slice(None)].mean(axis=0)[None, :])[0]
        closeness = vectors @ centre
        return members[np.lexsort((members, -closeness, ~core))]

    def resolve_mood(self, *, mood_id: int | None = None, mood_name: str | None = None) -> int:
        """The id of a mood given by id, or by name: see ``find_mood``."""
        if mood_name is not None:
            return find_mood([c["name"] for c in self.clusters], mood_name)
        if mood_id is None or not 0 <= mood_id < len(self.members):
            raise InvalidQuery(f"mood_id: unknown mood {mood_id}; ids are 0..{len(self.members) - 1}")
        return int(mood_id)

    def _playlist_space(self) -> np.ndarray:
        """Coordinates in which a small step is a smooth transition: standardized tempo and
        energy, and key on the circle of fifths (adjacent keys mix well). Falls back to the
        vectors for schemas without those features."""
        view = self.view
        features = view.bundle.tracks.features
        cols = []
        for name in ("tempo", "energy"):
            if name in view.feature_index:
                v = features[:, view.feature_index[name]]
                cols.append((v - v.mean()) / (v.std() or 1.0))
        if "key" in view.feature_index:
            fifths = (features[:, view.feature_index["key"]] * 7) % 12
            angle = 2 * np.pi * fifths / 12
            cols += [np.cos(angle) / 2, np.sin(angle) / 2]  # radius 1/2: a full tritone ~ one std of tempo
        if not cols:
            return view.vectors.astype(np.float64)
        return np.column_stack(cols)

    def playlist(
        self, *, mood_id: int | None = None, mood_name: str | None = None, seed_track_id: str | None = None,
        target: tuple[float, float] | None = None, length: int = DEFAULT_PLAYLIST, max_per_artist: int = 0,
        shuffle_seed: int = 0,
    ) -> tuple[int, Iterator[PlaylistEntry]]:
        """The mood id and a generator of entries in listening order (each yielded when chosen)."""
        sources = sum(x is not None for x in (mood_id, mood_name, seed_track_id, target))
        if sources != 1:
            raise InvalidQuery("source: give exactly one of mood_id, mood_name, seed_track_id or target")
        length = length or DEFAULT_PLAYLIST
        if not 1 <= length <= MAX_PLAYLIST:
            raise InvalidQuery(f"length: must be 1..{MAX_PLAYLIST}, got {length}")
        if max_per_artist < 0:
            raise InvalidQuery(f"max_per_artist: must be >= 0, got {max_per_artist}")
        cap = max_per_artist or DEFAULT_PLAYLIST_ARTIST_CAP
        start: int | None = None
        vectors = self.view.vectors
        if seed_track_id is not None:
            start = self.view.row(seed_track_id)
            mood = int(self.view.mood_labels[start])
            members = self.members[mood]
            # its neighbourhood within its mood: the members closest to the seed, ties by row
            sims = vectors[members] @ vectors[start]
            ranked = members[np.lexsort((members, -sims))]
        elif target is not None:
            mood, ranked = self._target_candidates(*target)
        else:
            mood = self.resolve_mood(mood_id=mood_id, mood_name=mood_name)
            ranked = self.ranked[mood]
        pool_size = length * (5 if shuffle_seed else 2)
        pool = ranked[:max(pool_size, length)]
        if shuffle_seed:
            pool = np.random.default_rng(shuffle_seed).permutation(pool)
        chosen = self._cap_artists(pool, ranked, length, cap, first=start)
        return mood, self._ordered(chosen, start)

    def _target_candidates(self, valence: float, energy: float) -> tuple[int, np.ndarray]:
        index = self.view.feature_index
        for name, v in (("valence", valence), ("energy", energy)):
            if name not in index:
                raise InvalidQuery(f"target: this bundle has no {name!r} feature")
            if not (np.isfinite(v) and 0 <= v <= 1):
                raise InvalidQuery(f"target.{name}: must be 0..1, got {v}")
        centroids = np.array([[c["centroid"]["valence"], c["centroid"]["energy"]] for c in self.clusters])
        mood = int(np.argmin(((centroids - [valence, energy]) ** 2).sum(axis=1)))
        members = self.members[mood]
        feats = self.view.bundle.tracks.features
        d = (feats[members, index["valence"]] - valence) ** 2 + (feats[members, index["energy"]] - energy) ** 2
        return mood, members[np.lexsort((members, d))]

    def _cap_artists(self, pool: np.ndarray, ranked: np.ndarray, length: int, cap: int,
                     first: int | None) -> list[int]:
        counts: dict[str, int] = {}
        chosen: list[int] = []
        seen: set[int] = set()
        songs = self.view.song_list
        candidates = ([first] if first is not None else []) + pool.tolist() + ranked.tolist()
        for row in candidates:
            if len(chosen) >= length:
                break
            song = songs[row]
            if song in seen:
                continue
            seen.add(song)
            artists = self.view.artists[row]
            if any(counts.get(a, 0) >= cap for a in artists):
                continue
            for a in artists:
                counts[a] = counts.get(a, 0) + 1
            chosen.append(row)
        return chosen

    def _ordered(self, rows: list[int], start: int | None) -> Iterator[PlaylistEntry]:
        """Greedy nearest-neighbour path: each next track is the closest remaining one in tempo,
        energy and key, starting from the seed or else from the gentlest (lowest-energy) track."""
        if not rows:
            return
        space = self._space[rows]
        remaining = np.ones(len(rows), dtype=bool)
        index = self.view.feature_index
        if start is not None and start in rows:
            current = rows.index(start)
        elif "energy" in index:
            current = int(np.argmin(self.view.bundle.tracks.features[rows, index["energy"]]))
        else:
            current = 0
        step = 0.0
        for position in range(len(rows)):
            remaining[current] = False
            yield PlaylistEntry(position=position, row=rows[current], transition=float(step))
            if not remaining.any():
                break
            d = np.linalg.norm(space - space[current], axis=1)
            d[~remaining] = np.inf
            nxt = int(np.argmin(d))
            step, current = float(d[nxt]), nxt
