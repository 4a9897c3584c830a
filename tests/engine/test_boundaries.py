import subprocess
import sys


def test_engine_imports_without_grpc_or_protobuf() -> None:
    code = ("import sys, engine, indexer.cli; "
            "bad = [m for m in sys.modules if m == 'grpc' or m.startswith(('grpc.', 'google.protobuf'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_engine_sets_a_passive_openmp_wait_unless_told_otherwise() -> None:
    """libgomp reads OMP_WAIT_POLICY when it loads: importing the engine sets it first (engine/_openmp.py),
    so XGBoost and FAISS see it, and an explicit setting is kept."""
    import os

    code = "import os, engine, xgboost, faiss; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for given, expected in ((None, "passive"), ("active", "active")):
        run_env = env if given is None else {**env, "OMP_WAIT_POLICY": given}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=run_env)
        assert done.returncode == 0 and done.stdout.strip() == expected, done.stdout + done.stderr
