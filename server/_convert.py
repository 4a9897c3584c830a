"""Protobuf <-> engine conversion: protobuf types stop here and never reach the engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine import Classification, InvalidQuery, Recommender, Seed, SimilarQuery, SimilarResult, TrackFilter

from ._generated.musicrec.v1 import recommender_pb2 as pb


def seed_from_pb(msg: pb.Seed, where: str, i: int, audio_here: bool) -> Seed:
    """``where[i]``: the seed's place in the request (``queries[1].seeds[0]``); ``audio_here``: whether this call
    takes audio seeds (SimilarTracks extracts them first, server/_audio.py; BatchSimilarTracks does not)."""
    kind = msg.WhichOneof("kind")
    if kind == "track_id":
        return Seed(track_id=msg.track_id)
    if kind == "features":
        return Seed(features=feature_dict(msg.features))
    if kind == "vector":
        return Seed(vector=list(msg.vector.values))
    if kind == "audio":
        raise InvalidQuery(f"{where}[{i}].audio: audio seeds are accepted by SimilarTracks only (not in "
                           "BatchSimilarTracks)")
    kinds = "track_id, features, vector or audio" if audio_here else "track_id, features or vector"
    raise InvalidQuery(f"{where}[{i}]: give exactly one of {kinds}")


def feature_dict(msg: pb.FeatureValues) -> dict[str, float]:
    """The values as a dict (``dict(map)`` walks the map through a Python-level keys view)."""
    values = msg.values
    return {name: values[name] for name in values}


_NO_FILTER = TrackFilter()


def filter_from_pb(f: pb.Filter) -> TrackFilter:
    return TrackFilter(
        include_genres=list(f.include_genres), exclude_genres=list(f.exclude_genres),
        explicit=f.explicit if f.HasField("explicit") else None,
        ranges={name: (r.min if r.HasField("min") else None, r.max if r.HasField("max") else None)
                for name, r in f.ranges.items()},
        exclude_track_ids=list(f.exclude_track_ids), mood_ids=list(f.mood_ids))


def _seeds(msgs: Any, audio: Iterator[list[Seed]] | None, where: str, audio_here: bool) -> list[Seed]:
    if not msgs:
        return []
    if audio is None:
        return [seed_from_pb(s, where, i, audio_here) for i, s in enumerate(msgs)]
    out: list[Seed] = []
    for i, s in enumerate(msgs):
        if s.WhichOneof("kind") == "audio":
            out.extend(next(audio))  # the clip's descriptors: one seed, or one per segment
        else:
            out.append(seed_from_pb(s, where, i, audio_here))
    return out


def similar_query_from_pb(msg: pb.SimilarTracksRequest, audio: Iterator[list[Seed]] | None = None, *,
                          where: str = "", audio_here: bool = True) -> SimilarQuery:
    """``audio``: the feature seeds of the request's audio clips (seeds, then negative seeds, in
    order), already extracted (server/_audio.py). ``where`` prefixes the place an error names (``queries[1].``
    in a batch, whose queries take no audio: ``audio_here`` False)."""
    targets = msg.targets
    return SimilarQuery(
        seeds=_seeds(msg.seeds, audio, f"{where}seeds", audio_here),
        negative_seeds=_seeds(msg.negative_seeds, audio, f"{where}negative_seeds", audio_here),
        targets=dict(targets) if targets else {},
        target_weight=msg.target_weight if msg.HasField("target_weight") else None,
        filter=filter_from_pb(msg.filter) if msg.HasField("filter") else _NO_FILTER,
        k=msg.k or 10,
        offset=msg.offset,
        max_per_artist=msg.max_per_artist,
        diversity=msg.diversity,
        skip_unknown_seeds=msg.skip_unknown_seeds,
        genre_weight=msg.genre_weight if msg.HasField("genre_weight") else None,
    )


def track_pb(rec: Recommender, row: int, *, features: bool = False) -> pb.Track:
    track = pb.Track(
        track_id=rec.ids[row], name=rec.names[row], artists=rec.artists[row], album=rec.albums[row],
        genres=rec.genres[row], mood_id=rec.mood_ids[row], mood_name=rec.mood_names[row],
        mood_core=rec.mood_core[row], mood_strength=rec.mood_strength[row],
    )
    flag = rec.explicit[row] if rec.explicit is not None else None
    if flag is not None:  # a blank flag in the catalog stays unset: unknown, not false
        track.explicit = flag
    if features:
        track.features.update(rec.features_of(row))
    return track


def similar_response(rec: Recommender, result: SimilarResult, *, features: bool) -> pb.SimilarTracksResponse:
    return pb.SimilarTracksResponse(
        results=[pb.ScoredTrack(track=track_pb(rec, row, features=features), score=score)
                 for row, score in zip(result.rows.tolist(), result.scores.tolist(), strict=True)],
        unknown_seed_ids=result.unknown_seed_ids,
        stats=pb.SearchStats(took_ms=result.took_ms, candidates_examined=result.examined,
                             candidates_filtered=result.filtered, exhausted=result.exhausted),
    )


def mood_pb(cluster: dict[str, Any]) -> pb.Mood:
    return pb.Mood(mood_id=cluster["id"], name=cluster["name"], size=cluster["size"], core_size=cluster["core_size"],
                   centroid=cluster["centroid"],
                   top_genres=[pb.GenreShare(genre=g["genre"], share=g["share"]) for g in cluster["top_genres"]])


def playlist_entry_pb(rec: Recommender, position: int, row: int, transition: float, *,
                      features: bool) -> pb.PlaylistEntry:
    return pb.PlaylistEntry(position=position, track=track_pb(rec, row, features=features), transition=transition)


def classification_pb(result: Classification) -> pb.ClassifyGenreResponse:
    # entries added in place: building each one as a message of its own and copying it into the
    # response cost twice as much (benchmarks/servicer_cost.py, ClassifyGenre)
    out = pb.ClassifyGenreResponse(bias=result.bias, known_genres=result.known_genres, took_ms=result.took_ms)
    add = out.genres.add
    for genre, p in result.genres:
        add(genre=genre, probability=p)
    add_contribution = out.contributions.add
    for feature, c in result.contributions:
        add_contribution(feature=feature, contribution=c)
    add = out.families.add
    for family, p in result.families:
        add(genre=family, probability=p)
    return out


