"""The `musicrec` entry point stays light: help loads none of the heavy libraries, a build never loads the
transport, and a query never loads the engine. Each case runs `musicrec.cli.main` in a fresh interpreter and
looks at `sys.modules` afterwards."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine import synthetic_catalog

HEAVY = ("grpc", "google.protobuf", "xgboost", "faiss", "sklearn", "pandas", "hdbscan")
TRANSPORT = ("grpc", "google.protobuf")
ENGINE = ("engine", "xgboost", "faiss", "sklearn", "hdbscan")

_PROBE = """\
import json, sys
from musicrec.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_main(argv: list[str]) -> tuple[int, list[str], str]:
    """Exit code, modules loaded, and everything printed (the last stdout line is the probe's)."""
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv)], capture_output=True, text=True,
                          check=False, timeout=300)
    *printed, last = done.stdout.splitlines() or [""]
    try:
        probe = json.loads(last)
    except ValueError:
        pytest.fail(f"the probe did not finish:\n{done.stdout}\n{done.stderr}")
    return probe["code"], probe["modules"], "\n".join(printed) + done.stderr


def loaded(modules: list[str], roots: tuple[str, ...]) -> list[str]:
    return sorted({r for r in roots for m in modules if m == r or m.startswith(r + ".")})


@pytest.mark.parametrize("argv", [["--help"], ["index", "--help"], ["serve", "--help"], ["query", "--help"],
                                  ["query", "similar", "--help"], ["bench", "--help"], ["demo", "--help"],
                                  ["health", "--help"], []],
                         ids=" ".join)
def test_help_loads_no_heavy_module(argv: list[str]) -> None:
    code, modules, printed = run_main(argv)
    assert code == (0 if argv else 2)
    assert "usage: musicrec" in printed
    assert loaded(modules, HEAVY) == []


def test_a_build_never_loads_grpc_or_protobuf(tmp_path: Path) -> None:
    csv, config, out = tmp_path / "tiny.csv", tmp_path / "tiny.toml", tmp_path / "bundle"
    synthetic_catalog(300, seed=0).to_csv(csv, index=False)
    config.write_text("[index]\nkind = 'flat'\nneighbours = 20\n"
                      "[moods]\nfit_sample = 300\nsmoothing_neighbours = 20\nmin_cluster_size = 15\nmin_samples = 5\n"
                      "[genre]\nmax_rounds = 5\nearly_stopping_rounds = 2\ntune = false\n")
    code, modules, printed = run_main(["index", str(csv), "--out", str(out), "--config", str(config), "--quiet"])
    assert code == 0, printed
    assert (out / "manifest.json").is_file()
    assert loaded(modules, ("faiss", "xgboost")) == ["faiss", "xgboost"]  # the probe saw a real build
    assert loaded(modules, TRANSPORT) == []


def test_a_query_loads_grpc_but_not_the_engine() -> None:
    with socket.socket() as s:  # a port nobody listens on: the call fails at once with UNAVAILABLE
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, modules, printed = run_main(["query", "--address", f"127.0.0.1:{port}", "--timeout", "5", "info"])
    assert code == 1 and "UNAVAILABLE" in printed
    assert loaded(modules, ENGINE) == []
    assert "grpc" in modules


def test_a_missing_extra_is_named_with_a_command_that_installs_it() -> None:
    # musicrec is not on PyPI: "pip install 'musicrec[web]'" fetched nothing (or another project's
    # package); from a checkout the hint names this interpreter and the checkout, as the README installs
    import tomllib

    from engine._errors import install_hint

    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("audio", "web", "report", "qdrant", "fast", "parquet"):
        assert extra in extras
        assert install_hint(extra) == f"{sys.executable} -m pip install -e '{root}[{extra}]'"
