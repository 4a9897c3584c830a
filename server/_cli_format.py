"""The readable answers of ``musicrec query`` (``--json`` prints the whole message instead)."""

from __future__ import annotations

from typing import Any

from ._table import table

CORE_LEGEND = "~ before a mood: the track is not a core member of it (its nearest core tracks chose the mood)"


def _track_cells(t: Any) -> list[str]:
    """A track's id (to query it again), name, artists, genres and mood."""
    return [t.track_id, t.name, ", ".join(t.artists), ", ".join(t.genres), ("" if t.mood_core else "~") + t.mood_name]


def _tracks_table(headers: list[str], rows: list[list[str]], tracks: list[Any], right: tuple[int, ...],
                  width: int | None) -> list[str]:
    """A table of tracks (the last five columns of ``headers`` are id, track, artists, genres, mood; the last four
    narrow to fit), with the legend of the ~ marker when a row has one."""
    first = len(headers) - 4
    lines = table(headers, rows, right=right, flexible=range(first, first + 4), width=width)
    if any(not t.mood_core for t in tracks):
        lines.append(CORE_LEGEND)
    return lines


def format_response(kind: str, r: Any, width: int | None = None) -> str:
    """Readable tables for people, at most ``width`` characters wide; --json gives the full message."""
    lines: list[str] = []
    if kind == "similar":
        tracks = [s.track for s in r.results]
        lines += _tracks_table(["score", "id", "track", "artists", "genres", "mood"],
                               [[f"{s.score:.3f}", *_track_cells(s.track)] for s in r.results], tracks, (0,), width)
        st = r.stats
        short = "; fewer than asked: no more passed (filters, artist cap, the ranking's depth)" if st.exhausted else ""
        lines.append(f"{len(r.results)} results in {st.took_ms:.2f} ms; {st.candidates_examined} candidates examined, "
                     f"{st.candidates_filtered} filtered{short}")
        if r.unknown_seed_ids:
            lines.append(f"unknown seed ids skipped: {', '.join(r.unknown_seed_ids)}")
    elif kind == "playlist":
        lines.append(f"mood {r.mood.mood_id}: {r.mood.name} ({r.mood.size:,} tracks)")
        tempo = any("tempo" in e.track.features for e in r.entries)
        rows = [[f"{e.position + 1}", *([f"{e.track.features['tempo']:.0f}"] if tempo else []), *_track_cells(e.track)]
                for e in r.entries]
        lines += _tracks_table(["#", *(["tempo"] if tempo else []), "id", "track", "artists", "genres", "mood"], rows,
                               [e.track for e in r.entries], (0, 1) if tempo else (0,), width)
    elif kind == "classify":
        lines += [f"{g.probability:6.1%}  {g.genre}" for g in r.genres]
        if r.families:
            lines.append("families: " + ", ".join(f"{f.genre} {f.probability:.1%}" for f in r.families))
        if r.known_genres:
            lines.append(f"catalog genres: {', '.join(r.known_genres)}")
        if r.contributions:
            # the contributions are the shipped model's; by id the probabilities above are out-of-fold ones
            whose = " by the shipped model, which was trained on this track" if r.known_genres else ""
            lines.append(f"why '{r.genres[0].genre}'{whose} (its margin, the softmax's logit; bias {r.bias:+.3f}):")
            lines += [f"  {c.contribution:+.3f}  {c.feature}" for c in r.contributions]
    elif kind == "moods":
        lines += table(["id", "mood", "tracks", "core", "top genres"],
                       [[str(m.mood_id), m.name, f"{m.size:,}", f"{m.core_size:,}",
                         ", ".join(g.genre for g in m.top_genres)] for m in r.moods],
                       right=(0, 2, 3), flexible=(1, 4), width=width)
        lines.append("core: tracks at the mood's dense centre; the others were assigned by their nearest core tracks")
    elif kind == "info":
        lines += [f"bundle {r.bundle_version} ({r.bundle_path})",
                  f"{_count(r.tracks, 'track')}, {_count(r.genres, 'genre')}, {_count(r.moods, 'mood')}, "
                  f"{r.index_kind} index of {r.vector_dimension} dims; up {r.uptime_seconds:.0f} s",
                  f"features: {', '.join(r.feature_names)}",
                  f"compiled kernels (new-track queries): {r.compiled_kernels or 'not reported (older server)'}"]
    elif kind == "track":
        t = r.track
        lines += [f"{t.track_id}: {t.name or '(no name)'}" + (f" by {', '.join(t.artists)}" if t.artists else "")
                  + f" ({', '.join(t.genres)})",
                  f"mood {t.mood_id}: {t.mood_name}" + ("" if t.mood_core else " (not a core member)")]
        lines += [f"  {k:<18} {v:g}" for k, v in sorted(t.features.items())]
    else:
        lines.append(f"bundle {r.bundle_version}" + (" (changed)" if r.changed else " (unchanged)"))
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    """``"1 mood"``, ``"8 moods"``, ``"89,583 tracks"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
