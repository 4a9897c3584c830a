"""`musicrec query` and `musicrec bench` over TLS, with health's options (--tls, --tls-ca FILE,
--tls-server-name NAME: one definition, server/_cli_args.py), and a hint naming TLS when a plaintext
client meets a TLS server or the other way round."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from musicrec.cli import main
from server import RunningServer, ServerOptions, create_server
from tests.server.test_query_cli import error_of, parse


@pytest.mark.parametrize("argv", [["query", "--tls-ca", "ca.pem", "info"], ["query", "info", "--tls-ca", "ca.pem"]])
def test_query_takes_the_tls_options_before_or_after_the_query(argv: list[str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(*argv, "--tls-server-name", "localhost")
    assert (str(args.tls_ca), args.tls_server_name, args.tls) == ("ca.pem", "localhost", False)
    plain = parse("query", "info")
    assert (plain.tls, plain.tls_ca, plain.tls_server_name) == (False, None, None)
    assert "argument --tls-ca: given twice (before and after 'info')" in error_of(
        capsys, "query", "--tls-ca", "a.pem", "info", "--tls-ca", "b.pem")


@pytest.mark.parametrize("command", [["query", "info"], ["bench"]])
def test_tls_options_that_cannot_work_are_refused_before_dialling(command: list[str], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The same checks as health's (server/_cli_args.py client_tls): exit 2, naming the option."""
    address = ["--address", "127.0.0.1:1"]
    assert main([*command, *address, "--tls-server-name", "localhost"]) == 2
    assert "--tls-server-name needs TLS: give --tls or --tls-ca FILE too" in capsys.readouterr().err
    assert main([*command, *address, "--tls-ca", str(tmp_path / "missing.pem")]) == 2
    assert f"--tls-ca {tmp_path / 'missing.pem'}: cannot read it" in capsys.readouterr().err



@pytest.fixture(scope="module")
def tls_server(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(tls_cert=cert, tls_key=key))
    yield srv.port, cert
    srv.stop(0)


def test_query_over_tls(tls_server: tuple[int, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Before: query dialled plaintext only, and a TLS server was "UNAVAILABLE: Socket closed" with a hint to
    start a server."""
    port, cert = tls_server
    assert main(["query", "info", "--address", f"127.0.0.1:{port}", "--tls-ca", str(cert)]) == 0
    assert "tracks" in capsys.readouterr().out
    assert main(["query", "--tls-ca", str(cert), "--tls-server-name", "localhost", "moods",
                 "--address", f"localhost:{port}"]) == 0
    capsys.readouterr()
    assert main(["query", "info", "--address", f"127.0.0.1:{port}", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert f"(127.0.0.1:{port} closed the connection as it opened: a TLS server? give --tls or --tls-ca FILE)" in err


def test_bench_over_tls(tls_server: tuple[int, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port, cert = tls_server
    out = tmp_path / "r.json"
    argv = ["bench", "--address", f"127.0.0.1:{port}", "--requests", "5", "--rounds", "1", "--warmup", "0"]
    assert main([*argv, "--tls-ca", str(cert), "--json", str(out)]) == 0
    assert f"against 127.0.0.1:{port} over TLS:" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["tls"] is True and report["rpcs"]["similar"]["requests"] == 5
    assert main(argv) == 1
    assert "a TLS server? give --tls or --tls-ca FILE" in capsys.readouterr().err


def test_tls_to_a_plaintext_server_says_so(running: RunningServer, tls_server: tuple[int, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, cert = tls_server
    assert main(["query", "info", "--address", f"127.0.0.1:{running.port}", "--tls-ca", str(cert),
                 "--timeout", "5"]) == 1
    assert f"(127.0.0.1:{running.port} does not speak TLS? leave out --tls and --tls-ca)" in capsys.readouterr().err
    assert main(["health", f"127.0.0.1:{running.port}", "--tls-ca", str(cert), "--timeout", "5"]) == 4
    assert "does not speak TLS?" in capsys.readouterr().err
