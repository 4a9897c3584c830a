"""Arrows point one way: server -> engine <- indexer, and only musicrec/ (the command) imports both. ruff bans
the imports (engine/, indexer/ and server/ each have a ruff.toml); these tests watch what importing loads."""

import subprocess
import sys

# what a module list names that a package must not load, printed by the probe; exit 1 when there is any
_LOADED = ("bad = sorted(m for m in sys.modules if m.partition('.')[0] in {roots!r} or m.startswith('google.protobuf')); "
           "print(bad); sys.exit(1 if bad else 0)")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_engine_imports_without_grpc_protobuf_or_the_layers_above() -> None:
    done = _run("import sys, engine; " + _LOADED.format(roots={"grpc", "server", "indexer", "musicrec"}))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_indexer_builds_its_parsers_without_the_server() -> None:
    """Every indexer module imported and its subcommands' parsers built: no server (nor grpc, protobuf or the
    musicrec command) is loaded. Before musicrec/ composed them, indexer/cli.py imported server.cli for these."""
    code = ("import pkgutil, sys, importlib, indexer, indexer.cli\n"
            "from indexer._args import Parser\n"
            "for m in pkgutil.iter_modules(indexer.__path__):\n"
            "    importlib.import_module('indexer.' + m.name)\n"
            "sub = Parser(prog='musicrec').add_subparsers(dest='command')\n"
            "indexer.cli.add_build_parsers(sub)\n"
            "indexer.cli.add_parsers(sub)\n"
            "assert {'index', 'synth', 'extract', 'report', 'publish', 'add'} <= set(sub.choices), sub.choices\n"
            + _LOADED.format(roots={"grpc", "server", "musicrec"}))
    done = _run(code)
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
