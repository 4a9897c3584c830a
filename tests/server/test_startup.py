"""Every way `musicrec serve` can fail to start is one line naming what is wrong and exit 2, never a
traceback; the address and TLS files are checked before the bundle loads."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from engine import BundleError
from musicrec.cli import main
from server import ServerStartError, create_server
from server._bind import check_bindable, host_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def serve(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["serve", *argv])
    err = capsys.readouterr().err
    return code, err


def test_a_port_in_use_is_one_line_and_checked_before_the_bundle(taken_port: int,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # the bundle does not exist: had it been loaded first, the message would be about the bundle
    code, err = serve(capsys, "--bundle", "no/such/bundle", "--port", str(taken_port))
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot listen on 127.0.0.1:{taken_port}: Address already in use" in err and "--port" in err


def test_an_http_port_in_use_names_the_http_flag(taken_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = serve(capsys, "--bundle", "no/such/bundle", "--port", "0", "--http-port", str(taken_port))
    assert code == 2 and "Address already in use" in err and "choose another --http-port" in err, err


def test_a_second_server_on_the_same_port_fails_instead_of_sharing_it(bundle_dir: Path) -> None:
    first = create_server(None, "127.0.0.1:0")
    try:
        with pytest.raises(ServerStartError, match="in use"):
            create_server(bundle_dir, f"127.0.0.1:{first.port}")
    finally:
        first.stop(0)


def test_a_bundle_that_fails_to_load_releases_the_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BundleError):
        create_server(tmp_path / "missing", f"127.0.0.1:{port}")
    again = create_server(None, f"127.0.0.1:{port}")
    again.stop(0)


@pytest.mark.parametrize("case", ["unreadable bundle", "cert without key", "missing cert", "not a certificate",
                                  "unknown host"])
def test_startup_failures_name_the_flag_and_exit_2(case: str, bundle_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad_pem = tmp_path / "bad.pem"
    bad_pem.write_text("not a certificate\n")
    argv, expected = {
        "unreadable bundle": (["--bundle", str(tmp_path / "nothing")], "not a bundle directory"),
        "cert without key": (["--bundle", str(bundle_dir), "--tls-cert", str(bad_pem)], "--tls-cert and --tls-key"),
        "missing cert": (["--bundle", str(bundle_dir), "--tls-cert", str(tmp_path / "nope.pem"), "--tls-key",
                          str(bad_pem)], "--tls-cert"),
        "not a certificate": (["--bundle", str(bundle_dir), "--tls-cert", str(bad_pem), "--tls-key", str(bad_pem)],
                              "not a PEM certificate"),
        "unknown host": (["--bundle", str(bundle_dir), "--host", "no-such-host.invalid"], "unknown host"),
    }[case]
    code, err = serve(capsys, *argv, "--port", "0") if "--port" not in argv else serve(capsys, *argv)
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    assert err.startswith("musicrec serve: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--workers", "0", "must be 1 or more, got 0"), ("--workers", "-2", "must be 1 or more, got -2"),
    ("--workers", "1025", "must be at most 1024, got 1025"), ("--workers", "four", "'four' is not a whole number"),
    ("--port", "70000", "must be at most 65535, got 70000"), ("--port", "-1", "must be 0 or more, got -1"),
    ("--port", "٥٠٠٥١", "'٥٠٠٥١' is not a whole number in plain digits 0-9"),
    ("--port", "+5", "'+5' is not a whole number in plain digits 0-9"),
    ("--workers", "1_0", "'1_0' is not a whole number in plain digits 0-9"),
    ("--http-port", "65536", "must be at most 65535"), ("--metrics-port", "99999", "must be at most 65535"),
    ("--processes", "0", "must be 1 or more, got 0"), ("--processes", "257", "must be at most 256"),
    ("--max-concurrent", "0", "must be 1 or more, got 0"), ("--max-concurrent", "-1", "must be 1 or more"),
    ("--audio-workers", "0", "must be 1 or more, got 0"), ("--audio-max-clips", "0", "must be 1 or more, got 0"),
    ("--qdrant-hnsw-ef", "0", "must be 1 or more, got 0"),
    ("--watch", "0.01", "must be 0 (off) or a number of seconds from 0.1 to 1,000,000"),
    ("--watch", "-1", "must be 0 (off) or a number of seconds from 0.1"),
    ("--qdrant-timeout", "nan", "must be a number of seconds over 0"),
    ("--grace", "nan", "must be a number of seconds from 0"), ("--drain-delay", "-5", "must be a number of seconds "
                                                                                   "from 0"),
    ("--slow-ms", "nan", "must be 0 (off) or a number of milliseconds over 0"),
    ("--slow-ms", "-1", "must be 0 (off) or a number of milliseconds over 0"),
])
def test_numbers_out_of_range_are_refused_at_parsing_naming_the_flag(flag: str, value: str, words: str,
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Before: --metrics-port 99999 was an internal error, and --max-concurrent 0, --grace nan, --watch -1,
    --drain-delay -5, --slow-ms nan or --audio-workers 0 were taken and served with."""
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--bundle", str(tmp_path / "nothing"), flag, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}: {words}" in err and "Traceback" not in err


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--token", "", "empty (an unset variable?); a server with an empty token refuses every call"),
    ("--admin-token", "", "empty (an unset variable?)"),
    ("--token", "s3cret\r", "character 7 of the token is a control character; a bearer token is printable ASCII"),
    ("--admin-token", "clé", "character 3 of the token is a non-ASCII character"),
])
def test_tokens_no_client_can_send_are_refused_at_parsing(flag: str, value: str, words: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Before: --token "" (an unset $TOKEN) started a server that refused every call."""
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--bundle", str(tmp_path / "nothing"), "--token", "good", flag, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}: {words}" in err and "Traceback" not in err
    assert "s3cret" not in err and "clé" not in err  # the token is never echoed


@pytest.mark.parametrize(("flag", "value"), [("--workers", "1"), ("--workers", "1024"), ("--port", "0"),
                                             ("--port", "65535"), ("--processes", "1"), ("--max-concurrent", "1"),
                                             ("--grace", "0"), ("--drain-delay", "0"), ("--slow-ms", "0"),
                                             ("--watch", "0.5"), ("--watch", "0"), ("--audio-workers", "1"),
                                             ("--token", "a b~!"), ("--admin-token", "x")])
def test_the_bounds_themselves_get_past_parsing(flag: str, value: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--bundle", str(tmp_path / "nothing"), flag, value] + (["--port", "0"] if flag != "--port" else [])
    code, err = serve(capsys, *argv)
    assert code == 2 and "not a bundle directory" in err  # the next check: the missing bundle


def test_qdrant_flags_without_the_qdrant_backend_are_refused(small_bundle_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # they were ignored: the server answered from FAISS and never said so
    assert main(["serve", "--bundle", str(small_bundle_dir), "--port", "0", "--qdrant-path", "q",
                       "--qdrant-alias", "other"]) == 2
    assert ("--qdrant-path, --qdrant-alias apply with --backend qdrant only" in capsys.readouterr().err)
    # given at their default values they were accepted, and ignored all the same
    assert main(["serve", "--bundle", str(small_bundle_dir), "--port", "0", "--qdrant-alias", "musicrec",
                 "--qdrant-timeout", "2"]) == 2
    assert ("--qdrant-alias, --qdrant-timeout apply with --backend qdrant only" in capsys.readouterr().err)
    # a Qdrant server's options, with local mode: accepted and never used (an audit, 2026-12-07)
    assert main(["serve", "--bundle", str(small_bundle_dir), "--port", "0", "--backend", "qdrant", "--qdrant-path",
                 "q", "--qdrant-hnsw-ef", "5", "--qdrant-timeout", "1"]) == 2
    assert ("--qdrant-timeout, --qdrant-hnsw-ef apply to a Qdrant server (--qdrant-url URL) only: local mode "
            "(--qdrant-path) has no API key" in capsys.readouterr().err)


@pytest.mark.parametrize(("argv", "words"), [
    (["--http-host", "127.0.0.1"], "--http-host without --http-port: the host applies to that port only"),
    (["--metrics-host", "0.0.0.0"], "--metrics-host without --metrics-port: the host applies to that port only"),
    (["--port", "52101", "--http-port", "52101"], "--port and --http-port both take port 52101"),
    (["--port", "52101", "--metrics-port", "52101"], "--port and --metrics-port both take port 52101"),
    (["--port", "0", "--http-port", "52102", "--metrics-port", "52102"],
     "--http-port and --metrics-port both take port 52102"),
    (["--port", "52101", "--http-port", "52101", "--http-host", "0.0.0.0"], "--port and --http-port both take"),
    (["--port", "52101", "--metrics-port", "52100", "--processes", "2"],
     "--port and --metrics-port both take port 52101 (with --processes 2, metrics go on --metrics-port and the"),
])
def test_flags_that_would_be_ignored_or_clash_are_refused_before_the_bundle(argv: list[str], words: str,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a host without its port was ignored; two faces on one port failed after a gRPC C-core log
    line (or, for --metrics-port, only once the bundle had loaded)."""
    code, err = serve(capsys, "--bundle", "no/such/bundle", *argv)
    assert code == 2 and err.startswith("musicrec serve: error: "), err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_port_0_never_clashes_and_hosts_apart_may_share_a_port(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--port", "0", "--http-port", "0", "--metrics-port", "0"],
                 ["--port", "0", "--http-port", "52103", "--http-host", "127.0.0.1", "--metrics-port", "52103",
                  "--metrics-host", "127.0.0.2"]):
        code, err = serve(capsys, "--bundle", "no/such/bundle", *argv)
        assert code == 2 and "not a bundle directory" in err, err  # the next check: the missing bundle


def test_the_same_token_for_reading_and_admin_is_refused_without_echoing_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, err = serve(capsys, "--bundle", "no/such/bundle", "--port", "0", "--token", "s3cret", "--admin-token",
                      "other", "--admin-token", "s3cret")
    assert code == 2 and "the same token is given as --token and --admin-token" in err and "s3cret" not in err


def test_a_bundle_outside_its_bundle_root_is_refused_naming_both(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the server started, then refused to reload the bundle's own path. (Checked before the
    bundle loads, so a path that holds none shows it.)"""
    bundle, root = tmp_path / "bundles" / "b1", tmp_path / "root"
    root.mkdir()
    code, err = serve(capsys, "--bundle", str(bundle), "--bundle-root", str(root), "--port", "0")
    assert code == 2 and f"--bundle {bundle} is outside --bundle-root {root}" in err, err
    # a link inside the root to a bundle outside it resolves outside it too
    (root / "current").symlink_to(bundle)
    code, err = serve(capsys, "--bundle", str(root / "current"), "--bundle-root", str(root), "--port", "0")
    assert code == 2 and "is outside --bundle-root" in err and "symlinks resolved" in err, err


def test_a_metrics_port_in_use_is_refused_before_the_bundle(taken_port: int,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, err = serve(capsys, "--bundle", "no/such/bundle", "--port", "0", "--metrics-port", str(taken_port))
    assert code == 2 and "Address already in use" in err and "choose another --metrics-port" in err, err


def test_an_empty_host_is_refused_at_parsing(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--host", "--http-host", "--metrics-host"):
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "--bundle", "no/such/bundle", flag, ""])
        assert exit_.value.code == 2 and f"argument {flag}: empty; give an address" in capsys.readouterr().err


@pytest.mark.parametrize("address", [":0", "::1:0"])
def test_check_bindable_refuses_an_empty_host_and_a_bare_ipv6_one(address: str) -> None:
    with pytest.raises(ServerStartError, match="no host" if address == ":0" else r"in brackets: \[::1\]:0"):
        check_bindable(address)


def test_an_ipv6_host_is_bracketed_for_grpc_with_or_without_brackets(small_bundle_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Before: --host ::1 passed the pre-check, then gRPC got "::1:PORT" and failed with "in use or not available"."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    addresses: list[str] = []

    def record(bundle: object, address: str, options: object) -> None:
        addresses.append(address)
        raise ServerStartError("recorded")

    monkeypatch.setattr("server._app.create_server", record)
    for host in ("::1", "[::1]"):
        code, err = serve(capsys, "--bundle", str(small_bundle_dir), "--host", host, "--port", "0")
        assert code == 2 and "recorded" in err, err
    assert addresses == ["[::1]:0", "[::1]:0"]
    srv = create_server(small_bundle_dir, host_port("::1", 0))  # and gRPC listens there
    try:
        with grpc.insecure_channel(f"[::1]:{srv.port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
    finally:
        srv.stop(0)
