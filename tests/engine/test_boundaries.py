import subprocess
import sys


def test_engine_imports_without_grpc_or_protobuf() -> None:
    code = ("import sys, engine, indexer.cli; "
            "bad = [m for m in sys.modules if m == 'grpc' or m.startswith(('grpc.', 'google.protobuf'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
