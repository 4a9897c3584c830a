"""musicrec publish into Qdrant local mode on disk: alias swap, retention, and a publish killed
midway (SIGKILL while points upload) that leaves the alias on the previous complete collection."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("qdrant_client")

from engine import load_bundle
from engine.qdrant import alias_target, collection_name, connect, published_collections
from indexer.cli import main

REPO = Path(__file__).resolve().parents[2]


def another_version(bundle_dir: Path, out: Path, created_at: str) -> Path:
    """The same tracks under another bundle version (creation time): a second bundle to publish
    without a second build. The manifest is not among the checksummed files, so it still verifies."""
    shutil.copytree(bundle_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["created_at"] = created_at
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture(scope="module")
def versions(small_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("versions")
    return [another_version(small_bundle_dir, root / f"v{i}", f"2030-01-0{i}T00:00:00+00:00") for i in (1, 2, 3)]


def test_publish_swaps_the_alias_and_keeps_the_newest(versions: list[Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "qdrant"
    names = [collection_name(load_bundle(v), "music") for v in versions]
    for i, v in enumerate(versions):
        assert main(["publish", str(v), "--qdrant-path", str(store), "--alias", "music", "--keep", "2",
                     "--quiet", "--json", str(tmp_path / "report.json")]) == 0
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["collection"] == names[i] and report["previous"] == (names[i - 1] if i else None)
    out = capsys.readouterr().out
    assert f"alias music -> {names[2]}" in out and f"deleted {names[0]}" in out
    client = connect(path=store)
    try:
        assert alias_target(client, "music") == names[2]
        assert published_collections(client, "music") == names[1:]
        assert client.count(names[2], exact=True).count == 400
    finally:
        client.close()
    # the same bundle again: found complete, not rewritten, alias unchanged
    assert main(["publish", str(versions[2]), "--qdrant-path", str(store), "--alias", "music", "--quiet"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_a_publish_killed_midway_leaves_the_alias_on_the_old_complete_collection(versions: list[Path],
                                                                                tmp_path: Path) -> None:
    store = tmp_path / "qdrant"
    old, new = (collection_name(load_bundle(v), "music") for v in versions[:2])
    assert main(["publish", str(versions[0]), "--qdrant-path", str(store), "--alias", "music", "--quiet"]) == 0
    code = "import sys; from indexer.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "publish", str(versions[1]), "--qdrant-path", str(store),
                             "--alias", "music", "--batch", "20"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("uploaded"):
            proc.send_signal(signal.SIGKILL)  # mid-upload: 20 of 400 points are in
            break
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, seen
    client = connect(path=store)
    try:
        assert alias_target(client, "music") == old
        assert client.count(old, exact=True).count == 400
        assert client.count(new, exact=True).count < 400  # the partial collection is left, unaliased
    finally:
        client.close()
    # the next publish of that bundle finds it incomplete, writes it again, then swaps
    assert main(["publish", str(versions[1]), "--qdrant-path", str(store), "--alias", "music", "--quiet"]) == 0
    client = connect(path=store)
    try:
        assert alias_target(client, "music") == new
        assert client.count(new, exact=True).count == 400
    finally:
        client.close()


def test_publish_to_an_unreachable_server_fails_cleanly(small_bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", str(small_bundle_dir), "--qdrant", "http://127.0.0.1:9", "--timeout", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Qdrant failed during publish" in err and "alias 'musicrec' is unchanged" in err


def test_a_qdrant_path_that_is_a_file_is_refused_naming_it(small_bundle_dir: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("data")
    for argv, said in ((["publish", str(small_bundle_dir), "--qdrant-path", str(precious)],
                        f"--qdrant-path {precious}: is a file, not a directory"),
                       (["publish", str(small_bundle_dir), "--qdrant-path", str(precious / "store")],
                        f"--qdrant-path {precious / 'store'}: {precious} is not a directory"),
                       (["add", str(precious), "--to", str(small_bundle_dir), "--out", str(tmp_path / "b"),
                         "--qdrant-path", str(precious)], f"--qdrant-path {precious}: is a file, not a directory")):
        assert main([*argv, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"musicrec {argv[0]}: error: {said}") and "Traceback" not in err, err
    assert precious.read_text() == "data" and not (tmp_path / "b").exists()
