"""`musicrec query` as people type it: options anywhere, errors naming the flag and the value with a
"did you mean", tables that fit the terminal with their markers explained, and --json that is JSON
all the way down."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from musicrec.cli import _parser, main
from server import RunningServer
from server._cli_format import CORE_LEGEND, format_response
from server._table import output_width, table


def parse(*argv: str) -> object:
    return _parser().parse_args(list(argv))


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(list(argv))
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_query_options_before_or_after_the_query() -> None:
    after = parse("query", "similar", "ID", "--address", "h:1", "--json", "--timeout", "3", "--token", "t")
    assert (after.address, after.json, after.timeout, after.token) == ("h:1", True, 3.0, "t")
    before = parse("query", "--address", "h:2", "--json", "similar", "ID")
    assert (before.address, before.json, before.timeout) == ("h:2", True, 10.0)  # not reset by the subcommand
    plain = parse("query", "info")
    assert (plain.address, plain.json, plain.timeout, plain.token) == ("127.0.0.1:50051", False, 10.0, None)


@pytest.mark.parametrize(("argv", "expected"), [
    (["query", "similar", "ID", "--max-per-artists", "2"],
     "musicrec query similar: error: unrecognized arguments: --max-per-artists 2 (did you mean --max-per-artist?)"),
    (["index", "a.csv", "--out", "b", "--pca-varience", "0.9"],
     "musicrec index: error: unrecognized arguments: --pca-varience 0.9 (did you mean --pca-variance?)"),
    # a flag's prefix is not taken for it (argparse's default): `demo --track 100` built as --tracks 100
    (["demo", "--track", "100"], "musicrec demo: error: unrecognized arguments: --track (did you mean --tracks?)"),
    (["query", "similar", "ID", "--addr", "h:1"],
     "musicrec query similar: error: unrecognized arguments: --addr h:1 (did you mean --address?)"),
    (["serv"], "invalid choice: 'serv' (choose from "),
    (["serv"], "did you mean 'serve'?"),
    (["index", "a.csv", "--out", "b", "--index", "hnws"], "did you mean 'hnsw'?"),
    (["query", "similar", "ID", "--target", "energy=high"], "argument --target: 'high' is not a number"),
    (["query", "similar", "ID", "--target", "energy"], "argument --target: expected NAME=VALUE (e.g. energy=0.8)"),
    (["query", "playlist", "--target", "0.8"], "argument --target: expected VALENCE,ENERGY"),
    (["query", "similar", "ID", "-k", "-1"], "argument -k: must be 1..1000, got -1"),
    (["query", "similar", "ID", "--offset", "x"], "argument --offset: 'x' is not a whole number"),
    (["query", "classify", "--features", "tempo=fast"], "argument --features: 'fast' is not a number"),
])
def test_errors_name_the_flag_and_what_was_meant(argv: list[str], expected: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(capsys, *argv)
    assert expected in err
    assert err.startswith(f"usage: musicrec {argv[0] if argv[0] != 'serv' else ''}".rstrip())


def test_tables_fit_the_width_and_cut_cells_never_collide() -> None:
    rows = [["0.912", "A very long track name that goes on and on", "Some Artist, Another Artist",
             "acoustic, j-pop, singer-songwriter", "~happy, energetic · electric, fast"]]
    lines = table(["score", "track", "artists", "genres", "mood"], rows, right=(0,), flexible=(1, 2, 3, 4), width=80)
    assert all(len(line) <= 80 for line in lines)
    assert "…  " in lines[1]  # a cut cell ends in an ellipsis, then the gap
    header, row = lines
    for column in ("track", "artists", "genres", "mood"):  # every column starts where its header does
        start = header.index(column)
        assert row[start - 2:start] == "  " and row[start] != " "
    assert table(["a"], [["x" * 200]], flexible=(0,), width=None)[1] == "x" * 200  # no width: nothing cut


def track(name: str, core: bool) -> SimpleNamespace:
    return SimpleNamespace(track_id=f"id-{name}", name=name, artists=["Artist"], genres=["pop"], mood_core=core,
                           mood_name="calm", mood_id=0, features={})


def test_the_core_marker_has_a_legend_when_shown() -> None:
    stats = SimpleNamespace(took_ms=1.0, candidates_examined=10, candidates_filtered=0, exhausted=False)
    shown = SimpleNamespace(results=[SimpleNamespace(score=0.9, track=track("a", core=False))], stats=stats,
                            unknown_seed_ids=[])
    out = format_response("similar", shown, width=100)
    assert "~calm" in out and CORE_LEGEND in out and "id-a" in out
    hidden = SimpleNamespace(results=[SimpleNamespace(score=0.9, track=track("a", core=True))], stats=stats,
                             unknown_seed_ids=[])
    assert CORE_LEGEND not in format_response("similar", hidden, width=100)


def test_query_json_is_json_all_the_way_down(running: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "info", "--json", "--address", f"127.0.0.1:{running.port}"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "counts_json" not in info and "metrics_json" not in info
    assert info["counts"]["tracks"] == info["tracks"] and isinstance(info["metrics"]["pca"]["components"], int)


def test_moods_table_is_aligned(running: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "moods", "--address", f"127.0.0.1:{running.port}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:-1]
    tracks_end = header.index("tracks") + len("tracks")
    assert all(row[tracks_end - 1].isdigit() and row[tracks_end] == " " for row in rows)  # right-aligned counts
    assert lines[-1].startswith("core: ")


def test_a_playlist_table_shows_the_tempo_it_steps_through(running: RunningServer,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # the request asked for no features, so the table had no tempo column
    assert main(["query", "playlist", "--mood-id", "0", "--length", "5", "--address",
                 f"127.0.0.1:{running.port}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.split()[:4] == ["#", "tempo", "id", "track"]
    ids = [line.split()[2] for line in lines[lines.index(header) + 1:] if line.strip()[:1].isdigit()]
    assert len(ids) == 5 and set(ids) <= set(running.holder.require().ids)  # ids to query again


def test_no_server_says_where_it_looked(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["query", "info", "--address", f"127.0.0.1:{port}", "--timeout", "5"]) == 1
    assert f"is a server running at 127.0.0.1:{port}?" in capsys.readouterr().err


def test_wait_gives_a_starting_server_time(running: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    assert main(["query", "info", "--wait", "30", "--address", f"127.0.0.1:{running.port}"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["query", "info", "--wait", "0.5", "--address", f"127.0.0.1:{port}"]) == 1
    assert f"no server answered at 127.0.0.1:{port} within --wait 0.5 s" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["query", "playlist", "--mood", "", "--length", "5"],
    ["query", "playlist", "--mood", " - ", "--length", "5"],
    ["query", "playlist", "--seed", ""],
])
def test_an_empty_mood_or_seed_is_an_argument_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(capsys, *argv)
    assert f"argument {argv[2]}: " in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:  # as typed: refused before any call, not a crash (exit 70)
        main(["query", "--address", "127.0.0.1:1", *argv[1:]])
    assert exit_.value.code == 2


BAD_ADDRESSES = ["127.0.0.1:100253", "127.0.0.1:-5", "127.0.0.1:0", "[::1]:65536", "127.0.0.1:",
                 "dns:///localhost:100253", "ipv4:127.0.0.1:50051,127.0.0.1:99999"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
@pytest.mark.parametrize("command", [["query", "info", "--address"], ["query", "--address"], ["bench", "--address"],
                                     ["health"]])
def test_a_client_address_with_a_port_outside_1_to_65535_is_refused(command: list[str], address: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*command, address] + (["info"] if command == ["query", "--address"] else [])
    err = error_of(capsys, *argv)
    assert f"argument {'address' if command == ['health'] else '--address'}: " in err
    assert f"(in {address!r}" in err


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:²", "port ² is not in 1..65535 written in ASCII digits (in '127.0.0.1:²')"),
    ("[::1]:٥٠٠٥١", "port ٥٠٠٥١ is not in 1..65535 written in ASCII digits (in '[::1]:٥٠٠٥١')"),
    ("127.0.0.1:" + "9" * 4301, "port 999999999999... (4301 characters) is not in 1..65535 (in '127.0.0.1:9999"),
])
def test_a_client_port_of_unicode_digits_or_thousands_of_digits_is_refused(
        address: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(capsys, "query", "info", "--address", address)  # not dialed (exit 1), not "invalid value"
    assert f"argument --address: {expected}" in err
    assert len(err) < 1000


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "[::1]:50051", "localhost:50051", "my-host.example:443",
                                     "localhost", "unix:/tmp/musicrec.sock", "unix-abstract:musicrec",
                                     "dns:///localhost:50051", "ipv4:127.0.0.1:50051,127.0.0.2:50052",
                                     "ipv6:[::1]:50051", "localhost:http"])
def test_client_addresses_grpc_dials_are_kept(address: str) -> None:
    assert parse("query", "info", "--address", address).address == address
    assert parse("health", address).address == address
    assert parse("bench", "--address", address).address == address


@pytest.mark.parametrize(("argv", "expected"), [
    (["query", "classify", "--features", "energy=0.5,tempo=120,energy=0.9"],
     "argument --features: feature 'energy' given twice"),
    (["query", "classify", "--features", ","], "argument --features: expected NAME=VALUE,..."),
    (["query", "similar", "ID", "--target", "energy=0.5", "--target", "tempo=1", "--target", " energy=0.9"],
     "argument --target: feature 'energy' given twice"),
])
def test_a_feature_given_twice_is_refused(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert expected in error_of(capsys, *argv)


@pytest.mark.parametrize(("argv", "expected"), [
    (["query", "similar", "ID", "-k", "99999999999999999999"], "argument -k: must be 1..1000, got 9999"),
    (["query", "similar", "ID", "--offset", "4294967296"], "argument --offset: must be 0..1999, got 4294967296"),
    (["query", "playlist", "--mood-id", "2147483648"], "argument --mood-id: must be at most 2147483647"),
    (["query", "playlist", "--seed", "ID", "--shuffle", str(2**64)], "argument --shuffle: must be at most"),
    (["query", "classify", "ID", "--top", "5000000000"], "argument --top: must be at most 4294967295"),
])
def test_a_whole_number_too_large_for_the_request_names_its_option(argv: list[str], expected: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert expected in error_of(capsys, *argv)


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "7.5e9", "1e10"])
def test_a_timeout_must_be_a_positive_number_of_seconds(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "argument --timeout: " in error_of(capsys, "query", "info", "--timeout", value)
    assert "argument --timeout: " in error_of(capsys, "query", "--timeout", value, "info")
    if value not in ("0",):  # --wait 0 is the default: fail at once
        assert "argument --wait: " in error_of(capsys, "query", "info", "--wait", value)
    assert parse("query", "info", "--timeout", "0.5", "--wait", "0").timeout == 0.5


@pytest.mark.parametrize(("columns", "width"), [("100", 100), ("²", None), ("٣٤", None), ("9" * 5000, None),
                                                ("10001", None), ("0", None), ("+80", None), ("", None)])
def test_a_columns_variable_that_is_no_width_is_ignored(columns: str, width: int | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    monkeypatch.setenv("COLUMNS", columns)
    assert output_width() == width


@pytest.mark.parametrize("extra", [["--features", "energy=0.5"], ["--audio", "clip.wav"]])
def test_classify_refuses_a_track_id_beside_other_input(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The server takes exactly one input; the CLI said nothing and dropped the id. Refused before any call."""
    assert main(["query", "classify", "some-id", *extra, "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "classify takes one of a track id, --features or --audio FILE; got a track id and" in err


def test_an_explanation_says_whose_margin_it_is() -> None:
    """By id the probabilities are out-of-fold and the explanation the shipped model's (trained on the track):
    the line says so; and the parts are the margin (the softmax's logit), not log-odds."""
    def classify(known: list[str]) -> str:
        response = SimpleNamespace(genres=[SimpleNamespace(genre="jazz", probability=0.8)], families=[],
                                   known_genres=known, bias=-0.35,
                                   contributions=[SimpleNamespace(feature="tempo", contribution=1.25)])
        return format_response("classify", response, 100)

    by_id, by_features = classify(["reggae"]), classify([])
    assert "why 'jazz' by the shipped model, which was trained on this track (its margin" in by_id
    assert "why 'jazz' (its margin, the softmax's logit; bias -0.350):" in by_features
    assert "log-odds" not in by_id + by_features


@pytest.mark.parametrize("token", ["é", "a\nb", "tab\there", ""])
@pytest.mark.parametrize("command", [["query", "info", "--token"], ["query", "--token"], ["health", "h:1", "--token"],
                                     ["bench", "--token"]])
def test_a_token_grpc_metadata_cannot_carry_is_an_argument_error(command: list[str], token: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """grpc failed the call with "INTERNAL: Invalid metadata" (query, exit 1) or no answer (health, exit 4)."""
    argv = [*command, token] + (["info"] if command == ["query", "--token"] else [])
    err = error_of(capsys, *argv)
    assert "argument --token: " in err
    assert ("printable ASCII" in err) if token else ("empty" in err)
    assert not token or token not in err  # a token is never echoed


@pytest.mark.parametrize(("argv", "option"), [
    (["query", "similar", "ID", "-k", "3", "-k", "4"], "-k"),
    (["query", "similar", "ID", "--offset", "1", "--offset", "2"], "--offset"),
    (["query", "similar", "ID", "--diversity", "0.1", "--diversity", "0.2"], "--diversity"),
    (["query", "playlist", "--mood-id", "0", "--mood-id", "1"], "--mood-id"),
    (["query", "playlist", "--seed", "A", "--seed", "B"], "--seed"),
    (["query", "playlist", "--mood-id", "0", "--length", "2", "--length", "3"], "--length"),
    (["query", "classify", "ID", "--top", "2", "--top", "3"], "--top"),
    (["query", "info", "--address", "a:1", "--address", "b:1"], "--address"),
    (["query", "--address", "a:1", "--address", "b:1", "info"], "--address"),
    (["query", "--address", "a:1", "similar", "ID", "--address", "b:1"], "--address"),
    (["query", "--timeout", "1", "info", "--timeout", "2"], "--timeout"),
    (["query", "--token", "a", "info", "--token", "b"], "--token"),
    (["health", "h:1", "--timeout", "1", "--timeout", "2"], "--timeout"),
    (["health", "h:1", "--service", "a", "--service", "b"], "--service"),
    (["health", "h:1", "--tls-ca", "a.pem", "--tls-ca", "b.pem"], "--tls-ca"),
])
def test_an_option_given_twice_is_an_argument_error(argv: list[str], option: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """argparse kept the last value silently: `-k 3 -k 4` asked for 4."""
    err = error_of(capsys, *argv)
    assert f"argument {option}: given twice" in err and "give it once" in err


def test_before_and_after_the_query_count_as_one_place(capsys: pytest.CaptureFixture[str]) -> None:
    """The query's own arguments are parsed apart and copied over, so the value after its name won silently."""
    err = error_of(capsys, "query", "--wait", "1", "info", "--wait", "2")
    assert "argument --wait: given twice (before and after 'info'); give it once" in err
    args = parse("query", "--address", "a:1", "similar", "ID", "--timeout", "3", "-k", "4")  # each once: kept
    assert (args.address, args.timeout, args.k) == ("a:1", 3.0, 4)
    assert parse("query", "similar", "ID", "--address", "b:1").address == "b:1"


def test_features_given_in_several_options_are_gathered() -> None:
    """The second --features replaced the first: half the features were dropped without a word."""
    args = parse("query", "classify", "--features", "energy=1", "--features", "tempo=2,valence=0.5")
    assert args.features == {"energy": 1.0, "tempo": 2.0, "valence": 0.5}
    assert parse("query", "similar", "ID", "--target", "energy=1", "--target", "tempo=2").target == \
        {"energy": 1.0, "tempo": 2.0}


def test_a_feature_repeated_across_features_options_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(capsys, "query", "classify", "--features", "energy=1,tempo=2", "--features", "energy=0.5")
    assert "argument --features: feature 'energy' given twice" in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["query", "similar", "ID", "-k", "2000"], "argument -k: must be 1..1000, got 2000"),
    (["query", "similar", "ID", "-k", "0"], "argument -k: must be 1..1000, got 0"),
    (["query", "similar", "ID", "--offset", "2000"], "argument --offset: must be 0..1999, got 2000"),
    (["query", "similar", "ID", "--diversity", "2"], "argument --diversity: must be 0..1, got '2'"),
    (["query", "similar", "ID", "--diversity", "nan"], "argument --diversity: must be 0..1, got 'nan'"),
    (["query", "similar", "ID", "--genre-weight", "-1"], "argument --genre-weight: must be 0..1, got '-1'"),
    (["query", "playlist", "--mood-id", "0", "--length", "501"], "argument --length: must be 1..500, got 501"),
    (["query", "playlist", "--target", "5,5"], "argument --target: valence must be 0..1, got '5' (in '5,5')"),
    (["query", "playlist", "--target", "0.5,-1"], "argument --target: energy must be 0..1, got '-1'"),
])
def test_a_value_outside_the_servers_range_names_its_flag(argv: list[str], expected: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """These reached the server and came back as `INVALID_ARGUMENT: k: must be 1..1000, got 2000`, exit 1."""
    assert expected in error_of(capsys, *argv)


def test_offset_and_k_past_the_deepest_page_are_refused_before_dialling(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "similar", "ID", "--offset", "1999", "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "--offset 1999 with -k 10: offset + k must be at most 2000" in err and "--offset at most 1990" in err
    assert parse("query", "similar", "ID", "--offset", "1990", "-k", "10").offset == 1990


def test_the_limits_checked_when_parsing_are_the_engines() -> None:
    """The CLI keeps copies (a query never loads the engine): they must not drift from the engine's."""
    import engine
    from server import _limits

    assert (_limits.MAX_K, _limits.MAX_DEPTH, _limits.MAX_PLAYLIST) == (engine.MAX_K, engine.MAX_DEPTH,
                                                                          engine.MAX_PLAYLIST)


def test_a_top_over_the_bundles_genres_names_the_flag(running: RunningServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    seed = running.holder.require().ids[0]
    assert main(["query", "classify", seed, "--top", "999", "--address", f"127.0.0.1:{running.port}"]) == 1
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT: --top: must be 1.." in err and "got 999" in err and "top_k" not in err


@pytest.mark.parametrize(("address", "expected"), [
    ("http://127.0.0.1:50777", "drop the scheme 'http://': a gRPC address is HOST:PORT, here '127.0.0.1:50777'"),
    ("grpc://h:1/", "drop the scheme 'grpc://'"),
    ("127.0.0.1:50777/", "port '50777/' is neither a number 1..65535 nor a service name"),
    (" 127.0.0.1:50777", "white space in the host (in ' 127.0.0.1:50777'; expected HOST:PORT"),
    ("127.0.0.1 :50777", "white space in the host"),
    (":50777", "no host before ':'"),
    ("café.example:50777", "host 'café.example' is not a host name or IP address"),
    ("http:127.0.0.1:50777", "expected HOST:PORT, e.g. 127.0.0.1:50051 or [IPv6 address]:PORT"),
    ("dns:///my host:50777", "white space in the host"),
])
@pytest.mark.parametrize("command", [["query", "info", "--address"], ["health"], ["bench", "--address"]])
def test_a_malformed_address_is_refused_saying_host_port(command: list[str], address: str, expected: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """These passed and failed when dialled: `UNAVAILABLE: ... Misformatted domain name` (exit 1, health 4)."""
    err = error_of(capsys, *command, address)
    assert f"argument {'address' if command == ['health'] else '--address'}: {expected}" in err


@pytest.mark.parametrize("argv", [["query", "track", ""], ["query", "similar", ""], ["query", "similar", "A", " "],
                                  ["query", "similar", "A", "--not", ""], ["query", "classify", ""]])
def test_an_empty_track_id_is_refused_like_an_empty_seed(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`query track ''` went to the server (INVALID_ARGUMENT, exit 1) while `playlist --seed ''` was exit 2."""
    err = error_of(capsys, *argv)
    assert "expected a track id, got " in err and "Traceback" not in err


def test_an_http_port_at_the_address_is_named_as_such(bundle_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`query --address` at serve's --http-port said "is a server running there? start one" (a first-hour walk,
    2026-12-08): a server was running, speaking HTTP/1."""
    pytest.importorskip("uvicorn")
    from server import ServerOptions
    from tests._serving import serving

    with serving(bundle_dir, ServerOptions(http_port=0)) as served:
        assert served.server.http is not None
        port = served.server.http.port
        assert main(["query", "info", "--address", f"127.0.0.1:{port}", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert f"(127.0.0.1:{port} answers HTTP/1, not gRPC: is it a server's --http-port?" in err, err
