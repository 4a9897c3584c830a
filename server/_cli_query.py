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

from ._cli_format import format_response
from ._cli_numbers import int_from, number, seconds, wait_seconds
from ._table import output_width

# The largest values the request fields hold (recommender.proto): protobuf refuses more with a bare
# "Value out of range" that names no option, so each option checks its own.
UINT32, INT32, UINT64 = 2**32 - 1, 2**31 - 1, 2**64 - 1


def add_parser(sub: Any) -> None:
    q = sub.add_parser("query", help="ask a running server (readable tables, or --json)",
                       description="Ask a running server. --address, --json, --token, --timeout and --wait may come "
                                   "before or after the query: musicrec query similar ID --address HOST:PORT.")
    _query_options(q, defaults=True)
    shared = argparse.ArgumentParser(add_help=False)
    _query_options(shared, defaults=False)
    qs = q.add_subparsers(dest="query", metavar="QUERY", required=True)
    s = qs.add_parser("similar", help="tracks similar to seed track ids or audio files", parents=[shared])
    s.add_argument("track_ids", nargs="*")
    s.add_argument("--audio", action="append", default=[], type=Path, metavar="FILE",
                   help="an audio file as a seed (repeatable; bundles built from musicrec extract output)")
    s.add_argument("--not", dest="negative", action="append", default=[], metavar="ID", help="less like this")
    s.add_argument("-k", type=int_from(1, UINT32), default=10, help="results per page (default 10)")
    s.add_argument("--offset", type=int_from(0, UINT32), default=0, help="skip this many of the ranking (paging)")
    s.add_argument("--genre", action="append", default=[], help="only these genres")
    s.add_argument("--exclude-genre", action="append", default=[])
    s.add_argument("--target", action=_AppendOnce, default=[], type=_name_value, metavar="NAME=VALUE",
                   help="e.g. energy=0.8 (repeatable, once per feature)")
    s.add_argument("--max-per-artist", type=int_from(0, UINT32), default=0)
    s.add_argument("--diversity", type=number, default=0.0, help="0..1: MMR diversity (default 0)")
    s.add_argument("--genre-weight", type=number, help="0..1: how much genre agreement counts (default: the "
                   "bundle's; 0 = audio cosine only)")
    p2 = qs.add_parser("playlist", help="a mood playlist", parents=[shared])
    src = p2.add_mutually_exclusive_group(required=True)
    src.add_argument("--mood-id", type=int_from(0, INT32))
    src.add_argument("--mood", type=_mood_text,
                     help="mood id, name, or words of its name, e.g. 'calm acoustic' (see: musicrec query moods)")
    src.add_argument("--seed", type=_track_id, help="seed track id")
    src.add_argument("--target", type=_valence_energy, metavar="VALENCE,ENERGY", help="e.g. 0.3,0.2")
    p2.add_argument("--length", type=int_from(1, UINT32), default=20)
    p2.add_argument("--shuffle", type=int_from(0, UINT64), default=0, help="shuffle seed")
    c = qs.add_parser("classify", help="genre probabilities for a track id or feature values", parents=[shared])
    c.add_argument("track_id", nargs="?")
    c.add_argument("--audio", type=Path, metavar="FILE", help="classify an audio file")
    c.add_argument("--features", type=_name_values, metavar="NAME=VALUE,...", help="each feature once")
    c.add_argument("--top", type=int_from(1, UINT32), default=5)
    c.add_argument("--explain", action="store_true")
    qs.add_parser("moods", help="list the moods", parents=[shared])
    qs.add_parser("info", help="bundle and server information", parents=[shared])
    t = qs.add_parser("track", help="one track", parents=[shared])
    t.add_argument("track_id")
    r = qs.add_parser("reload", help="re-read the server's configured bundle, or load PATH once (admin token "
                      "when auth is on; PATH under the server's --bundle-root)", parents=[shared])
    r.add_argument("path", nargs="?", default="")
    q.set_defaults(func=cmd_query)


def _query_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options of every query, accepted before and after its name. After it they default to
    SUPPRESS: a subcommand's defaults would otherwise replace a value given before its name."""
    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--address", type=client_address, default=d("127.0.0.1:50051"),
                   help="server HOST:PORT (default 127.0.0.1:50051)")
    p.add_argument("--json", action="store_true", default=d(False),
                   help="print the response as JSON (ServerInfo's counts_json and metrics_json decoded)")
    p.add_argument("--token", default=d(None), help="bearer token")
    p.add_argument("--timeout", type=seconds, default=d(10.0), help="deadline in seconds (default 10)")
    p.add_argument("--wait", type=wait_seconds, default=d(0.0), metavar="SECONDS",
                   help="wait up to SECONDS for a server that is still starting (default: fail at once)")


_SCHEMES_WITHOUT_PORT = ("unix", "unix-abstract", "vsock")  # gRPC targets passed on as they are


def client_address(text: str) -> str:
    """An argparse type for the server a client dials: HOST:PORT, [IPv6]:PORT, a host name alone, or a
    gRPC target (dns:, ipv4:, ipv6:, unix:...). Returned unchanged; a port written as a number must
    be 1..65535, and a ':' needs a port after it (grpc would dial 100253 as 34717, -5 as 65531, and
    an empty port as 443)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected HOST:PORT (e.g. 127.0.0.1:50051), got ''")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if sep and scheme in ("ipv4", "ipv6"):
        for part in rest.split(","):
            _check_port(part, text)
    elif sep and scheme == "dns":
        _check_port(rest[2:].partition("/")[2] if rest.startswith("//") else rest, text)
    elif not (sep and (scheme in _SCHEMES_WITHOUT_PORT or rest.startswith("//"))):
        _check_port(text, text)
    return text


def _check_port(host_port: str, text: str) -> None:
    if host_port.startswith("["):
        _, close, after = host_port.partition("]")
        if not close or (after and not after.startswith(":")):
            raise argparse.ArgumentTypeError(f"expected [IPv6 address]:PORT, got {text!r}")
        if not after:
            return
        port = after[1:]
    elif host_port.count(":") == 1:
        port = host_port.rpartition(":")[2]
    else:
        return  # a host without a port (grpc's default, 443), or a bare IPv6 address
    if not port:
        raise argparse.ArgumentTypeError(f"no port after ':' (in {text!r}; expected HOST:PORT, e.g. 127.0.0.1:50051)")
    digits = port.lstrip("+-")
    # a port of digits is a number ("localhost:http" is a service name grpc looks up); "²" or "٣" pass
    # isdigit() but grpc reads only ASCII, and int() refuses more than 4,300 digits
    if digits and all(c.isdigit() for c in digits) and not (
            port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        shown = port if len(port) <= 20 else f"{port[:12]}... ({len(port)} characters)"
        where = text if len(text) <= 80 else f"{text[:40]}... ({len(text)} characters)"
        ascii_ = "" if port.isascii() else " written in ASCII digits"
        raise argparse.ArgumentTypeError(f"port {shown} is not in 1..65535{ascii_} (in {where!r})")


def _mood_text(text: str) -> str:
    if not re.search(r"[^\W_]", text):  # the server matches words (engine/_playlist.py find_mood)
        raise argparse.ArgumentTypeError(f"{text!r} names no mood: give a mood id, a name or words of one "
                                         "(musicrec query moods lists them)")
    return text


def _track_id(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a track id, got {text!r}")
    return text


def _name_value(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. energy=0.8), got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value.strip()!r} is not a number (in {text!r})") from None


def _name_values(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in text.split(","):
        if item.strip():
            name, value = _name_value(item)
            if name in values:
                raise argparse.ArgumentTypeError(f"feature {name!r} given twice (in {text!r})")
            values[name] = value
    if not values:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE,... (e.g. energy=0.8,tempo=120), got {text!r}")
    return values


class _AppendOnce(argparse._AppendAction):
    """``action="append"`` of NAME=VALUE pairs, refusing a name given twice (the request holds a map:
    the last value would silently win)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        name = values[0]
        if any(seen == name for seen, _ in getattr(namespace, self.dest, None) or []):
            raise argparse.ArgumentError(self, f"feature {name!r} given twice")
        super().__call__(parser, namespace, values, option_string)


def _valence_energy(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected VALENCE,ENERGY (two numbers 0..1, e.g. 0.3,0.2), got {text!r}")
    return number(parts[0]), number(parts[1])


def cmd_query(args: argparse.Namespace) -> int:
    import grpc

    from ._generated.musicrec.v1 import recommender_pb2 as pb
    from ._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc

    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    try:
        with grpc.insecure_channel(args.address) as channel:
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
        hint = ""
        if err.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (err.details() or "").lower():
            hint = f" (is a server running at {args.address}? start one with musicrec serve, or give --address)"
        print(f"musicrec query: {err.code().name}: {err.details()}{hint}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"musicrec query: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(response_json(response), indent=2, ensure_ascii=False))
    else:
        print(format_response(args.query, response, output_width()))
    return 0


def response_json(response: Any) -> dict[str, Any]:
    """The message as JSON (proto field names), with the JSON that ServerInfo carries as strings
    (``counts_json``, ``metrics_json``) decoded in place as ``counts`` and ``metrics``."""
    from google.protobuf import json_format

    out = json_format.MessageToDict(response, preserving_proto_field_name=True)
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
        request = pb.ClassifyGenreRequest(top_k=args.top, explain=args.explain)
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
            seed = running.holder.require().ids[0]
            track = stub.GetTrack(pb.GetTrackRequest(track_id=seed), timeout=10).track
            similar = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=5), timeout=10)
            moods = stub.ListMoods(pb.ListMoodsRequest(), timeout=10)
            playlist = stub.MoodPlaylist(pb.MoodPlaylistRequest(seed_track_id=seed, length=6,
                                                                include_features=True), timeout=10)
            width = output_width()
            mood_lines = format_response("moods", moods, width).splitlines()  # header, moods, legend
            out = [f"served on 127.0.0.1:{running.port}: {format_response('info', info)}", ""]
            if info.genres:
                genre = stub.ClassifyGenre(pb.ClassifyGenreRequest(track_id=seed, top_k=3, explain=True), timeout=10)
            out += [f"SimilarTracks to '{track.name}' by {', '.join(track.artists)} ({', '.join(track.genres)}):",
                    format_response("similar", similar, width), "",
                    "ListMoods (first 5):", "\n".join(mood_lines[:6] + mood_lines[-1:]), "",
                    "MoodPlaylist from the same seed:", format_response("playlist", playlist, width)]
            if info.genres:
                contributions = list(genre.contributions)[:4]
                del genre.contributions[:]
                genre.contributions.extend(contributions)
                out += ["", "ClassifyGenre (top 3, with the 4 strongest feature contributions):",
                        format_response("classify", genre)]
            return "\n".join(out)
    finally:
        running.stop(grace=1.0)
