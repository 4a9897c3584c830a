"""``musicrec query``: ask a running server, answered as readable tables (server/_cli_format.py)
or ``--json``; and ``demo_queries``, the demo's one question of each kind. grpc and the generated
stubs are imported when a command runs, never when the parser is built."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ._cli_args import (
    INT32,
    UINT32,
    UINT64,
    EachFeatureOnce,
    Once,
    QueryNames,
    add_tls_options,
    client_address,
    client_channel,
    client_tls,
    client_token,
    mood_text,
    name_value,
    name_values,
    track_id_text,
    unavailable_hint,
    utf8_text,
    valence_energy,
)
from ._cli_format import format_response
from ._cli_numbers import fraction, int_from, int_in, seconds, wait_seconds
from ._limits import MAX_DEPTH, MAX_K, MAX_PLAYLIST
from ._table import output_width


def add_parser(sub: Any) -> None:
    q = sub.add_parser("query", help="ask a running server (readable tables, or --json)",
                       description="Ask a running server. --address, --json, --token, --timeout, --wait and the --tls "
                                   "options may come before or after the query: musicrec query similar ID --address "
                                   "HOST:PORT.")
    _query_options(q, defaults=True)
    shared = argparse.ArgumentParser(add_help=False)
    _query_options(shared, defaults=False)
    qs = q.add_subparsers(dest="query", metavar="QUERY", required=True, action=QueryNames)
    s = qs.add_parser("similar", help="tracks similar to seed track ids or audio files", parents=[shared])
    s.add_argument("track_ids", nargs="*", type=track_id_text, help="seed track ids (more like these)")
    s.add_argument("--audio", action="append", default=[], type=Path, metavar="FILE",
                   help="an audio file as a seed (repeatable; bundles built from musicrec extract output)")
    s.add_argument("--not", dest="negative", action="append", default=[], type=track_id_text, metavar="ID",
                   help="less like this")
    s.add_argument("-k", action=Once, type=int_in(1, MAX_K), default=10, help=f"results per page, 1..{MAX_K} "
                   "(default 10)")
    s.add_argument("--offset", action=Once, type=int_in(0, MAX_DEPTH - 1), default=0,
                   help=f"skip this many of the ranking (paging; offset + k at most {MAX_DEPTH})")
    s.add_argument("--genre", action="append", default=[], type=utf8_text, help="only these genres")
    s.add_argument("--exclude-genre", action="append", default=[], type=utf8_text, help="none of these genres")
    s.add_argument("--target", action=EachFeatureOnce, default={}, type=name_value, metavar="NAME=VALUE",
                   help="e.g. energy=0.8 (repeatable, once per feature)")
    s.add_argument("--max-per-artist", action=Once, type=int_from(0, UINT32), default=0,
                   help="at most this many results per artist (default 0: no cap)")
    s.add_argument("--diversity", action=Once, type=fraction, default=0.0, help="0..1: MMR diversity (default 0)")
    s.add_argument("--genre-weight", action=Once, type=fraction, help="0..1: how much genre agreement counts "
                   "(default: the bundle's; 0 = audio cosine only)")
    p2 = qs.add_parser("playlist", help="a mood playlist", parents=[shared])
    src = p2.add_mutually_exclusive_group(required=True)
    src.add_argument("--mood-id", action=Once, type=int_from(0, INT32), help="mood id (see: musicrec query moods)")
    src.add_argument("--mood", action=Once, type=mood_text,
                     help="mood id, name, or words of its name, e.g. 'calm acoustic' (see: musicrec query moods)")
    src.add_argument("--seed", action=Once, type=track_id_text, help="seed track id")
    src.add_argument("--target", action=Once, type=valence_energy, metavar="VALENCE,ENERGY",
                     help="two numbers 0..1, e.g. 0.3,0.2")
    p2.add_argument("--length", action=Once, type=int_in(1, MAX_PLAYLIST), default=20,
                    help=f"tracks, 1..{MAX_PLAYLIST} (default 20)")
    p2.add_argument("--shuffle", action=Once, type=int_from(0, UINT64), default=0, help="shuffle seed")
    c = qs.add_parser("classify", help="genre probabilities for a track id or feature values", parents=[shared])
    c.add_argument("track_id", nargs="?", type=track_id_text, help="a catalog track's id (or --audio / --features)")
    c.add_argument("--audio", action=Once, type=Path, metavar="FILE", help="classify an audio file")
    c.add_argument("--features", action=EachFeatureOnce, type=name_values, metavar="NAME=VALUE,...",
                   help="feature values (repeatable, each feature once)")
    c.add_argument("--top", action=Once, type=int_from(1, UINT32),
                   help="genres to list (default 5, or every genre of a bundle with fewer; at most the bundle's "
                        "genres)")
    c.add_argument("--explain", action="store_true", help="each feature's contribution to the top genre's score")
    qs.add_parser("moods", help="list the moods", parents=[shared])
    qs.add_parser("info", help="bundle and server information", parents=[shared])
    t = qs.add_parser("track", help="one track", parents=[shared])
    t.add_argument("track_id", type=track_id_text, help="the track's id")
    r = qs.add_parser("reload", help="re-read the server's configured bundle, or load PATH once (admin token "
                      "when auth is on; PATH as the server sees it, under its --bundle-root; a relative PATH is taken "
                      "from that root)", parents=[shared])
    r.add_argument("path", nargs="?", default="", type=utf8_text,
                   help="a bundle directory to load once (default: re-read the configured one)")
    q.set_defaults(func=cmd_query)


def _query_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options of every query, accepted before and after its name. After it they default to
    SUPPRESS: a subcommand's defaults would otherwise replace a value given before its name."""
    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--address", action=Once, type=client_address, default=d("127.0.0.1:50051"),
                   help="server HOST:PORT (default 127.0.0.1:50051)")
    p.add_argument("--json", action="store_true", default=d(False),
                   help="print the response as JSON (ServerInfo's counts_json and metrics_json decoded)")
    p.add_argument("--token", action=Once, type=client_token, default=d(None), help="bearer token")
    p.add_argument("--timeout", action=Once, type=seconds, default=d(10.0), help="deadline in seconds (default 10)")
    p.add_argument("--wait", action=Once, type=wait_seconds, default=d(0.0), metavar="SECONDS",
                   help="wait up to SECONDS for a server that is still starting (default: fail at once)")
    add_tls_options(p, defaults=defaults)


def cmd_query(args: argparse.Namespace) -> int:
    import grpc

    from ._generated.musicrec.v1 import recommender_pb2 as pb
    from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

    if args.query == "similar" and args.offset + args.k > MAX_DEPTH:  # each alone was checked when parsed
        print(f"musicrec query: error: --offset {args.offset} with -k {args.k}: offset + k must be at most "
              f"{MAX_DEPTH} (the deepest page of a ranking), so --offset at most {MAX_DEPTH - args.k}", file=sys.stderr)
        return 2
    try:
        tls = client_tls(args.tls, args.tls_ca, args.tls_server_name)
    except ValueError as exc:
        print(f"musicrec query: error: {exc}", file=sys.stderr)
        return 2
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    try:
        with client_channel(args.address, tls) as channel:
            if args.wait > 0:  # a starting server binds its port first and answers once its bundle is loaded
                try:
                    grpc.channel_ready_future(channel).result(timeout=args.wait)
                except grpc.FutureTimeoutError:
                    print(f"musicrec query: no server answered at {args.address} within --wait {args.wait:g} s",
                          file=sys.stderr)
                    return 1
            stub = pb_grpc.RecommenderStub(channel)
            call = {"timeout": args.timeout, "metadata": metadata}
            response = _run_query(args, stub, pb, call)
    except grpc.RpcError as err:
        details, hint = err.details() or "", ""
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            hint = unavailable_hint(args.address, details, tls)
        if args.query == "classify" and details.startswith("top_k:"):  # only the bundle knows its genre count
            details = "--top" + details.removeprefix("top_k")
        files = args.audio if isinstance(getattr(args, "audio", None), list) else [args.audio] \
            if getattr(args, "audio", None) else []
        if files and err.code() == grpc.StatusCode.INVALID_ARGUMENT:
            details = _clips_named(details, [str(f) for f in files])
        print(f"musicrec query: {err.code().name}: {details}{hint}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"musicrec query: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(response_json(response), indent=2, ensure_ascii=False))
    else:
        print(format_response(args.query, response, output_width()))
    return 0


def _clips_named(details: str, files: list[str]) -> str:
    """The server names a request's clips by their place ("audio clip 1", or "the clip" when there is one); this
    command knows their files: "not audio: audio clip 1 is not ..." is "not audio: b.wav is not ..."."""
    named = re.sub(r"\baudio clip (\d+)", lambda m: files[int(m[1])] if int(m[1]) < len(files) else m[0], details)
    return named.replace("the clip", files[0], 1) if len(files) == 1 else named


def response_json(response: Any) -> dict[str, Any]:
    """The message as JSON (proto field names), with the JSON that ServerInfo carries as strings
    (``counts_json``, ``metrics_json``) decoded in place as ``counts`` and ``metrics``. Fields at their zero
    value are printed too (mood_id 0, position 0), as the HTTP face prints them (server/_http_json.py)."""
    from google.protobuf import json_format

    out = json_format.MessageToDict(response, preserving_proto_field_name=True,
                                    always_print_fields_with_no_presence=True)
    for field in ("counts_json", "metrics_json"):
        if field in out:
            out[field.removesuffix("_json")] = json.loads(out.pop(field))
    return out


def audio_clip(path: Path) -> bytes:
    """A file's bytes for Seed.audio. A file over the 3 MiB limit is decoded here and sent as mono
    FLAC at the extractor's rate (what the server would analyse anyway), which needs the audio extra."""
    from ._limits import MAX_AUDIO_BYTES

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"--audio {path}: {exc.strerror or exc}") from None
    if len(data) <= MAX_AUDIO_BYTES:
        return data
    try:
        import io

        import soundfile as sf

        from engine.audio import BadAudio, ExtractorParams, decode
    except ImportError:
        raise ValueError(f"--audio {path}: {len(data):,} bytes, over the {MAX_AUDIO_BYTES:,}-byte limit; install "
                         "the audio extra to have it shrunk, or send a shorter or compressed clip") from None
    from ._audio import MAX_CLIP_SECONDS

    # the server's own cap, checked here before hours of audio are decoded in this process
    try:
        decoded = decode(data, ExtractorParams().sample_rate, name=str(path), max_seconds=MAX_CLIP_SECONDS)
    except BadAudio as exc:
        raise ValueError(f"--audio {exc}") from None
    buf = io.BytesIO()
    sf.write(buf, decoded.y, decoded.sr, format="FLAC", subtype="PCM_16")
    size = len(buf.getvalue())  # (not buf.tell(): libsndfile seeks back to write the FLAC header)
    if size > MAX_AUDIO_BYTES:
        raise ValueError(f"--audio {path}: {decoded.seconds:.0f} s is too long even as mono FLAC "
                         f"({size:,} bytes, at most {MAX_AUDIO_BYTES:,}); send a shorter clip")
    return buf.getvalue()


def _run_query(args: argparse.Namespace, stub: Any, pb: Any, call: dict[str, Any]) -> Any:
    if args.query == "similar":
        if not args.track_ids and not args.audio:
            raise ValueError("similar needs seed track ids or --audio FILE")
        request = pb.SimilarTracksRequest(
            seeds=[pb.Seed(track_id=t) for t in args.track_ids] + [pb.Seed(audio=audio_clip(f)) for f in args.audio],
            negative_seeds=[pb.Seed(track_id=t) for t in args.negative], k=args.k, offset=args.offset,
            targets=dict(args.target), max_per_artist=args.max_per_artist, diversity=args.diversity,
            filter=pb.Filter(include_genres=args.genre, exclude_genres=args.exclude_genre))
        if args.genre_weight is not None:
            request.genre_weight = args.genre_weight
        return stub.SimilarTracks(request, **call)
    if args.query == "playlist":
        # with the features, so the table shows each track's tempo: a playlist steps smoothly in it
        request = pb.MoodPlaylistRequest(length=args.length, shuffle_seed=args.shuffle, include_features=True)
        if args.mood_id is not None:
            request.mood_id = args.mood_id
        elif args.mood is not None:
            request.mood_name = args.mood
        elif args.seed is not None:
            request.seed_track_id = args.seed
        else:  # the parser requires one of the four
            valence, energy = args.target
            request.target.CopyFrom(pb.MoodTarget(valence=valence, energy=energy))
        return stub.MoodPlaylist(request, **call)
    if args.query == "classify":
        # no --top: 0, the server's default, which a bundle of fewer than 5 genres takes as all of them (5 was refused)
        request = pb.ClassifyGenreRequest(top_k=args.top or 0, explain=args.explain)
        given = [name for name, value in (("a track id", args.track_id), ("--features", args.features),
                                          ("--audio", args.audio)) if value is not None]
        if len(given) > 1:
            raise ValueError(f"classify takes one of a track id, --features or --audio FILE; got {' and '.join(given)}")
        if args.features is not None:
            request.features.values.update(args.features)
        elif args.audio:
            request.audio = audio_clip(args.audio)
        elif args.track_id:
            request.track_id = args.track_id
        else:
            raise ValueError("classify needs a track id, --features or --audio FILE")
        return stub.ClassifyGenre(request, **call)
    if args.query == "moods":
        return stub.ListMoods(pb.ListMoodsRequest(), **call)
    if args.query == "info":
        return stub.ServerInfo(pb.ServerInfoRequest(), **call)
    if args.query == "track":
        return stub.GetTrack(pb.GetTrackRequest(track_id=args.track_id), **call)
    return stub.ReloadBundle(pb.ReloadBundleRequest(path=args.path), **call)


def demo_queries(bundle: Path) -> str:
    """Serve ``bundle`` on a free local port and ask it one of each query over a real channel."""
    import grpc

    from ._app import create_server
    from ._generated.musicrec.v1 import recommender_pb2 as pb
    from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

    running = create_server(bundle, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RecommenderStub(channel)
            info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10)
            rec = running.holder.require()
            seed = rec.ids[0]
            # a bundle built with --no-genre, or from too few labelled tracks, has labels but no classifier
            classifies = rec.bundle.classifier is not None
            track = stub.GetTrack(pb.GetTrackRequest(track_id=seed), timeout=10).track
            similar = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=5), timeout=10)
            moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=10)
            playlist = stub.MoodPlaylist(pb.MoodPlaylistRequest(seed_track_id=seed, length=6,
                                                                include_features=True), timeout=10)
            width = output_width()
            mood_lines = format_response("moods", moods, width).splitlines()  # header, moods, legend
            out = [f"served on 127.0.0.1:{running.port}: {format_response('info', info)}", ""]
            if classifies:
                genre = stub.ClassifyGenre(pb.ClassifyGenreRequest(track_id=seed, top_k=3, explain=True), timeout=10)
            out += [f"SimilarTracks to '{track.name}' by {', '.join(track.artists)} ({', '.join(track.genres)}):",
                    format_response("similar", similar, width), "",
                    f"ListMoods (first 5 of {len(moods.moods)}):" if len(moods.moods) > 5 else "ListMoods:",
                    "\n".join(mood_lines[:6] + mood_lines[-1:] if len(moods.moods) > 5 else mood_lines), "",
                    "MoodPlaylist from the same seed:", format_response("playlist", playlist, width)]
            if not classifies:
                skipped = rec.bundle.manifest["metrics"].get("genre", {}).get("skipped", "no classifier")
                out += ["", f"ClassifyGenre: not asked, this bundle has no genre classifier ({skipped})"]
            else:
                contributions = list(genre.contributions)[:4]
                del genre.contributions[:]
                genre.contributions.extend(contributions)
                out += ["", "ClassifyGenre (top 3, with the 4 strongest feature contributions):",
                        format_response("classify", genre)]
            return "\n".join(out)
    finally:
        running.stop(grace=1.0)
