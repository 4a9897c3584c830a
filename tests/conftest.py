"""Shared fixtures: small synthetic catalogs and bundles, and the real dataset when present."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine import BuildConfig, GenreConfig, MoodConfig, build_bundle, synthetic_catalog
from tests._once import once_per_run
from tests._readme import ReadmeRun

if TYPE_CHECKING:  # the server (grpc, protobuf) loads only in sessions that start one
    from server import RunningServer, ServerOptions
    from tests._serving import Channel, RecommenderStub, Served

REPO = Path(__file__).resolve().parents[1]
# CI keeps ../shared/data beside the checkout; MUSICREC_DATA overrides the file's path.
REAL_DATA = Path(os.environ.get("MUSICREC_DATA", REPO.parent / "shared" / "data" / "spotify_tracks.csv"))

# Small and quick: the pipeline is the same, only the sizes shrink, and the moods' stability check (a refit on 90%
# and one on another seed: ~40% of a 3,000-track build) is left to the tests of it (tests/engine/test_moods.py,
# test_mood_stability.py, test_moodcarry.py) and the real-data build.
FAST_CONFIG = BuildConfig(
    moods=MoodConfig(fit_sample=5000, min_cluster_size=40, min_samples=5, stability_subsample=0),
    genre=GenreConfig(max_rounds=25, early_stopping_rounds=5, tune=False),  # no capacity search: CI time
)


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output as piped, whatever terminal the tests run from: a $COLUMNS narrows tables and wraps the report's
    prose (server/_table.py output_width), and a test that wants a width sets it."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A CLI test that reaches ``musicrec serve``'s logging setup points the root logger at the
    stderr pytest captured for it; put the handlers back, or later tests log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# The session fixtures that build are built once per run, whichever worker asks first (tests/_once.py); what they
# build is read-only to the tests.
@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = once_per_run(tmp_path_factory, "catalog",
                        lambda out: synthetic_catalog(3000, seed=1).to_csv(out / "synthetic.csv", index=False))
    return root / "synthetic.csv"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Path:
    return once_per_run(tmp_path_factory, "bundles", lambda out: build_bundle(synthetic_csv, out / "b1", FAST_CONFIG)) / "b1"


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_DATA.is_file():
        pytest.skip(f"real dataset not found at {REAL_DATA} (set MUSICREC_DATA to its path)")
    return REAL_DATA


# seconds a real-data test may take (pyproject.toml gives the others 900): the README's build alone took ~2.5
# minutes on a quiet machine of this kind, the whole chain 6.5 minutes beside the other worker
REAL_DATA_TIMEOUT = 2700


def is_real_data_file(nodeid: str) -> bool:
    """Tests that need the README's real-data build: the walk-through itself and every test_real_data.py."""
    path = nodeid.split("::", 1)[0]
    return path == "tests/test_readme_run.py" or path.endswith("/test_real_data.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # a real-data test waits for a full build of the dataset
        if item.get_closest_marker("real_data"):
            item.add_marker(pytest.mark.slow)
        if is_real_data_file(item.nodeid):  # the chain's first test builds it (and the demo) in its setup
            item.add_marker(pytest.mark.timeout(REAL_DATA_TIMEOUT))
    strays = [item.nodeid for item in items if "readme_run" in item.fixturenames and not is_real_data_file(item.nodeid)]
    if strays:  # pytest -n 2 would build the real dataset once more on the other worker
        raise pytest.UsageError(f"tests that need the real-data build belong in a test_real_data.py file: {strays}")
    # the real-data chain first (the longest: ~10 min), so under `pytest -n 2` one worker starts it at once
    items[:] = [i for i in items if is_real_data_file(i.nodeid)] + [i for i in items if not is_real_data_file(i.nodeid)]


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`pytest -n 2` (the README's test command): every file is one unit of work, so its module fixtures (a
    server, a browser) start once, and all real-data files are one unit, so the dataset is built once; units go
    out in collection order, the real-data one first. (pytest-xdist's own --dist loadgroup cannot do this under
    pytest 9.2: it renames node ids through an attribute pytest no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class RealDataFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "real-data" if is_real_data_file(nodeid) else nodeid.split("::", 1)[0]

    return RealDataFirst(config, log)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under `pytest -n 2` the real-data chain (one worker, ~10 min) is the run's critical path and everything
    else (the other worker) fits beside it, so a worker lowers its own CPU priority (and its servers' and
    builds', which inherit it) before its first test outside the chain: on 2 shared cores the chain then
    takes the cycles it can use and the rest fills the gaps (with a build's genre stage running alone, this
    2-core machine sat 23-40% idle, sampled every 5 s from /proc/stat).
    Not outside xdist: one process runs everything in order there. MUSICREC_TEST_NICENESS=0 turns it off."""
    global _yielding
    if _yielding or is_real_data_file(item.nodeid) or not os.environ.get("PYTEST_XDIST_WORKER") or not hasattr(os, "nice"):
        return
    _yielding = True
    os.nice(int(os.environ.get("MUSICREC_TEST_NICENESS", YIELD_NICENESS)))


# 10: about a tenth of a core the chain also wants (Linux CFS weights 110 against 1,024), all of an idle one
YIELD_NICENESS = 10
_yielding = False


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> ReadmeRun:
    """The README followed in a scratch copy (tests/_readme.py): its blocks run in order, each once, as far
    as the session's tests ask."""
    return ReadmeRun(REPO, tmp_path_factory.mktemp("readme"), REAL_DATA)


@pytest.fixture(scope="session")
def real_bundle_dir(real_csv: Path, readme_run: ReadmeRun) -> Path:
    """The bundle the README's `musicrec index` command builds from the real dataset, with the default
    configuration (~9 min on 2 cores). Following the README up to that command (the demo
    first) is how the session gets it, so the dataset is indexed once, not once more for the README test."""
    readme_run.run_through("--out bundles/spotify-v1")
    return readme_run.root / "bundles" / "spotify-v1"


@pytest.fixture(scope="session")
def small_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 tracks without a classifier (~2 s): for tests whose cost grows with the points they
    write, such as Qdrant local mode on disk (~15 ms per point here)."""
    def build(root: Path) -> None:
        synthetic_catalog(400, seed=3).to_csv(root / "catalog.csv", index=False)
        build_bundle(root / "catalog.csv", root / "bundle", FAST_CONFIG.replace(genre={"enabled": False}))

    return once_per_run(tmp_path_factory, "small", build) / "bundle"


# One server per test module, on a free local port, and a channel to it (tests/_serving.py). A module
# serves another bundle or with other options by overriding ``server_bundle`` or ``server_options``.
@pytest.fixture(scope="module")
def server_bundle(bundle_dir: Path) -> Path:
    """The bundle the module's server serves (default: the session's synthetic bundle)."""
    return bundle_dir


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    """What the module's server runs with."""
    from server import ServerOptions

    return ServerOptions(max_concurrent=16)


@pytest.fixture(scope="module")
def served(server_bundle: Path, server_options: ServerOptions) -> Iterator[Served]:
    from tests._serving import serving

    with serving(server_bundle, server_options) as served:
        yield served


@pytest.fixture(scope="module")
def running(served: Served) -> RunningServer:
    return served.server


@pytest.fixture(scope="module")
def channel(served: Served) -> Channel:
    return served.channel


@pytest.fixture(scope="module")
def stub(served: Served) -> RecommenderStub:
    return served.stub
