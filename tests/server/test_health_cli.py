"""`musicrec health ADDRESS`: exit 0 when SERVING, 1 NOT_SERVING (no bundle, or draining), 3 for a
service the server does not know, 4 when nothing answers, 5 when saturated; over TLS too; and it never
loads the engine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

from musicrec.cli import main
from server import ServerOptions, create_server
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from server._probe import EXIT_BUSY, EXIT_NOT_SERVING, EXIT_SERVING, EXIT_UNKNOWN_SERVICE, EXIT_UNREACHABLE
from tests._ports import unused_ports

from .conftest import Blocker, wait_until

T = 10


def probe(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["health", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_serving_and_per_service(bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(read_tokens=("tok",)))
    address = f"127.0.0.1:{srv.port}"
    try:
        assert probe(capsys, address) == (EXIT_SERVING, "SERVING\n")
        assert probe(capsys, address, "--service", "musicrec.v1.Recommender")[0] == EXIT_SERVING
        assert probe(capsys, address, "--token", "tok", "--timeout", "3")[0] == EXIT_SERVING
        code, printed = probe(capsys, address, "--service", "no.such.Service")
        assert code == EXIT_UNKNOWN_SERVICE and "SERVICE_UNKNOWN" in printed
    finally:
        srv.stop(0)


def test_not_serving_without_a_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    srv = create_server(None, "127.0.0.1:0")
    try:
        assert probe(capsys, f"127.0.0.1:{srv.port}") == (EXIT_NOT_SERVING, "NOT_SERVING\n")
    finally:
        srv.stop(0)


def test_not_serving_while_draining_then_unreachable(bundle_dir: Path, blocking: Blocker,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0")
    address = f"127.0.0.1:{srv.port}"
    with grpc.insecure_channel(address) as ch:
        call = pb_grpc.RecommenderStub(ch).SimilarTracks.future(
            pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=srv.holder.require().ids[0])]), timeout=30)
        assert blocking.entered.acquire(timeout=T)
        # the drain delay (SIGTERM with --drain-delay) answers NOT_SERVING; ended below, not waited out
        stopper = threading.Thread(target=srv.stop, kwargs={"grace": 20, "drain_delay": 600})
        stopper.start()
        try:
            wait_until(lambda: main(["health", address]) == EXIT_NOT_SERVING, "the probe to see NOT_SERVING")
            assert probe(capsys, address)[0] == EXIT_NOT_SERVING
        finally:
            srv.end_drain_delay()
        # then gRPC refuses new calls while the call in flight finishes
        wait_until(lambda: main(["health", address, "--timeout", "2"]) == EXIT_UNREACHABLE,
                   "the probe to find the server refusing calls")
        blocking.release.set()
        assert len(call.result().results) == 10
        stopper.join()
    code, printed = probe(capsys, address, "--timeout", "2")
    assert code == EXIT_UNREACHABLE and "UNAVAILABLE" in printed


def test_busy_when_saturated(bundle_dir: Path, blocking: Blocker, capsys: pytest.CaptureFixture[str]) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(max_concurrent=1))
    address = f"127.0.0.1:{srv.port}"
    try:
        with grpc.insecure_channel(address) as ch:
            call = pb_grpc.RecommenderStub(ch).SimilarTracks.future(
                pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=srv.holder.require().ids[0])]), timeout=T)
            assert blocking.entered.acquire(timeout=T)
            code, printed = probe(capsys, address)  # the check itself is over the limit: alive, not ready
            assert code == EXIT_BUSY and "RESOURCE_EXHAUSTED" in printed
            blocking.release.set()
            call.result()
        assert probe(capsys, address)[0] == EXIT_SERVING
    finally:
        srv.stop(0)


def test_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    code, printed = probe(capsys, f"127.0.0.1:{unused_ports()[0]}", "--timeout", "3")
    assert code == EXIT_UNREACHABLE
    assert "UNAVAILABLE" in printed or "DEADLINE_EXCEEDED" in printed


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_over_tls(bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    srv = create_server(bundle_dir, "127.0.0.1:0", ServerOptions(tls_cert=cert, tls_key=key))
    address = f"127.0.0.1:{srv.port}"
    try:
        assert probe(capsys, address, "--tls-ca", str(cert)) == (EXIT_SERVING, "SERVING\n")
        assert probe(capsys, f"localhost:{srv.port}", "--tls-ca", str(cert), "--tls-server-name", "localhost")[0] \
            == EXIT_SERVING
        assert probe(capsys, address, "--timeout", "3")[0] == EXIT_UNREACHABLE  # plaintext to a TLS port
        code, printed = probe(capsys, address, "--tls-ca", str(tmp_path / "missing.pem"))
        assert code == 2 and "missing.pem" in printed
    finally:
        srv.stop(0)


def test_the_command_exits_with_the_status_and_loads_no_engine(bundle_dir: Path) -> None:
    srv = create_server(bundle_dir, "127.0.0.1:0")
    code = ("import sys\nfrom musicrec.cli import main\nrc = main(sys.argv[1:])\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('engine', 'faiss', 'xgboost', 'sklearn')]\n"
            "sys.exit(rc)")
    try:
        for argv, expected in (([f"127.0.0.1:{srv.port}"], EXIT_SERVING),
                               ([f"127.0.0.1:{unused_ports()[0]}", "--timeout", "3"], EXIT_UNREACHABLE)):
            done = subprocess.run([sys.executable, "-c", code, "health", *argv], capture_output=True, text=True,
                                  timeout=60, check=False)
            assert done.returncode == expected, done.stdout + done.stderr
    finally:
        srv.stop(0)


@pytest.mark.parametrize(("argv", "expected"), [
    (["127.0.0.1:100253"], "argument address: port 100253 is not in 1..65535"),
    (["127.0.0.1:-5"], "argument address: port -5 is not in 1..65535"),
    (["127.0.0.1:50051", "--timeout", "-1"], "argument --timeout: "),
    (["127.0.0.1:50051", "--timeout", "0"], "argument --timeout: "),
    (["127.0.0.1:50051", "--timeout", "nan"], "argument --timeout: "),
    (["127.0.0.1:50051", "--timeout", "inf"], "argument --timeout: "),
])
def test_bad_arguments_exit_2_before_dialling(argv: list[str], expected: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["health", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("usage: musicrec health")


def test_a_tls_ca_file_that_holds_no_certificate_is_refused_before_dialling(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """grpc printed "Failed to create security handshaker" and the probe said no answer (exit 4)."""
    not_pem = tmp_path / "passwd"
    not_pem.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, printed = probe(capsys, f"127.0.0.1:{unused_ports()[0]}", "--tls-ca", str(not_pem))
    assert code == 2
    assert f"--tls-ca {not_pem}: holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)" in printed


def test_a_tls_server_name_needs_tls(capsys: pytest.CaptureFixture[str]) -> None:
    """Without TLS the name was ignored and a plaintext server answered SERVING."""
    address = f"127.0.0.1:{unused_ports()[0]}"
    code, printed = probe(capsys, address, "--tls-server-name", "foo", "--timeout", "3")
    assert code == 2 and "--tls-server-name needs TLS: give --tls or --tls-ca FILE too" in printed
    assert probe(capsys, address, "--tls-server-name", "foo", "--tls", "--timeout", "3")[0] == EXIT_UNREACHABLE
