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
from musicrec.cli import main

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
    code = "import sys; from musicrec.cli import main; sys.exit(main())"
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
    # the address tried is named: an empty or mistyped one failed as "Connection refused" alone
    assert "Qdrant failed during publish at http://127.0.0.1:9 (" in err and "alias 'musicrec' is unchanged" in err


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


def test_retention_keeps_the_live_and_the_previous_collection_not_the_newest(versions: list[Path],
                                                                            tmp_path: Path) -> None:
    # by bundle age alone, a publish after a rollback deleted the collection the alias had named (servers on it
    # went NOT_SERVING) and kept a newer one nothing served
    from engine.qdrant._publish import swap_alias

    store = tmp_path / "qdrant"
    names = [collection_name(load_bundle(v), "music") for v in versions]
    for v in versions[:2]:
        assert main(["publish", str(v), "--qdrant-path", str(store), "--alias", "music", "--quiet"]) == 0
    client = connect(path=store)
    try:
        swap_alias(client, "music", names[0], lambda _m: None)  # a rollback: the alias back on v1
    finally:
        client.close()
    assert main(["publish", str(versions[2]), "--qdrant-path", str(store), "--alias", "music", "--quiet"]) == 0
    client = connect(path=store)
    try:
        assert alias_target(client, "music") == names[2]
        assert published_collections(client, "music") == [names[0], names[2]]  # v2, newer than v1, went
    finally:
        client.close()


def test_a_qdrant_path_that_is_not_a_store_is_refused_and_left_untouched(small_bundle_dir: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # a mistyped --qdrant-path naming a bundle got local mode's meta.json and .lock, and the bundle never loaded again
    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle_dir, bundle)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("x")
    for path, said in ((bundle, "is a musicrec bundle, not a Qdrant store"),
                       (notes, "holds files but no Qdrant local store (no meta.json)")):
        assert main(["publish", str(small_bundle_dir), "--qdrant-path", str(path), "--quiet"]) == 2
        assert f"--qdrant-path {path}: {said}" in capsys.readouterr().err
    assert sorted(p.name for p in notes.iterdir()) == ["todo.txt"]
    assert not (bundle / "meta.json").exists() and load_bundle(bundle).tracks is not None


def test_a_store_another_process_holds_or_a_bad_alias_is_a_one_line_error(small_bundle_dir: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "qdrant"
    assert main(["publish", str(small_bundle_dir), "--qdrant-path", str(store), "--quiet"]) == 0
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from engine.qdrant import connect; "
                               f"c = connect(path={str(store)!r}); print('held', flush=True); time.sleep(120)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["publish", str(small_bundle_dir), "--qdrant-path", str(store), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"--qdrant-path {store}: in use by another process" in err and "Traceback" not in err, err
    finally:
        holder.kill()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
    assert main(["publish", str(small_bundle_dir), "--qdrant-path", str(store), "--alias", "", "--quiet"]) == 2
    assert "--alias '': give 1 to 200 letters" in capsys.readouterr().err


def test_add_to_a_base_qdrant_does_not_hold_fails_before_the_update(small_bundle_dir: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ids = tmp_path / "gone.txt"
    ids.write_text(str(load_bundle(small_bundle_dir).tracks.ids[0]) + "\n")
    assert main(["add", "--to", str(small_bundle_dir), "--out", str(tmp_path / "new"), "--remove-ids", str(ids),
                 "--qdrant-path", str(tmp_path / "empty-store"), "--quiet"]) == 1
    assert "the base bundle's collection musicrec-" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # nothing was built that could not be carried to Qdrant


def test_a_qdrant_servers_options_with_local_mode_are_refused(small_bundle_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode takes no API key and makes no requests: --api-key-env and --timeout were accepted and never used
    (an audit, 2026-12-07)."""
    monkeypatch.setenv("QKEY", "secret")
    ids = tmp_path / "gone.txt"
    ids.write_text(str(load_bundle(small_bundle_dir).tracks.ids[0]) + "\n")
    store = tmp_path / "store"
    for argv in (["publish", str(small_bundle_dir)],
                 ["add", "--to", str(small_bundle_dir), "--out", str(tmp_path / "new"), "--remove-ids", str(ids)]):
        for flags, said in ((["--api-key-env", "QKEY"], "--api-key-env applies"),
                            (["--timeout", "1"], "--timeout applies"),
                            (["--api-key-env", "QKEY", "--timeout", "30"], "--api-key-env, --timeout apply")):
            assert main([*argv, "--qdrant-path", str(store), *flags, "--quiet"]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"musicrec {argv[0]}: error: {said} to a Qdrant server (--qdrant URL) only"), err
            assert "secret" not in err
    assert not store.exists() and not (tmp_path / "new").exists()


def test_a_qdrant_url_that_is_empty_or_malformed_is_refused_naming_the_flag(small_bundle_dir: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # "not a url" was a urllib3 traceback (exit 70); "" was the default server for publish, and ignored by add
    ids = tmp_path / "gone.txt"
    ids.write_text(str(load_bundle(small_bundle_dir).tracks.ids[0]) + "\n")
    commands = (["publish", str(small_bundle_dir)],
                ["add", "--to", str(small_bundle_dir), "--out", str(tmp_path / "new"), "--remove-ids", str(ids)])
    for url, said in (("not a url", "holds spaces or control characters"),
                      ("", "empty (an unset variable?)"),
                      ("localhost:6333", "no scheme: give http:// or https://"),
                      ("ftp://qdrant:6333", "scheme 'ftp': give http:// or https://"),
                      ("http://:6333", "no host"),
                      ("http://qdrant:99999", "port '99999' is not a number from 1 to 65535"),
                      ("http://key@qdrant:6333", "holds a user or password")):
        for argv in commands:
            assert main([*argv, "--qdrant", url, "--quiet"]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"musicrec {argv[0]}: error: --qdrant {url!r}: {said}"), err
            assert "Traceback" not in err
    assert not (tmp_path / "new").exists()
    # a server that does not answer is named by its URL
    assert main(["add", "--to", str(small_bundle_dir), "--out", str(tmp_path / "new"), "--remove-ids", str(ids),
                 "--qdrant", "http://127.0.0.1:9", "--timeout", "2", "--quiet"]) == 1
    assert "Qdrant at http://127.0.0.1:9 failed while the base collection was looked up" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_bundle_that_does_not_load_is_found_before_the_store_is_made(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # publish and add opened --qdrant-path first: local mode wrote meta.json and .lock into a new directory, then
    # the bundle was found missing
    ids = tmp_path / "gone.txt"
    ids.write_text("x\n")
    missing, store = tmp_path / "nosuch", tmp_path / "store"
    for argv in (["publish", str(missing)],
                 ["add", "--to", str(missing), "--out", str(tmp_path / "new"), "--remove-ids", str(ids)]):
        assert main([*argv, "--qdrant-path", str(store), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"error: {missing}: not a bundle directory" in err, err
        assert not store.exists()
