"""The README works top to bottom: every `bash` block runs, in order, in a scratch copy of the repository
beside the real dataset (tests/_readme.py says how, and the little it changes), and what the text says
the commands print is what they print. Slow: the demo, one real build (shared with the real-data tests
through ``real_bundle_dir``), the audio walk-through and a server or two."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests._readme import ReadmeRun, runnable

REPO = Path(__file__).resolve().parents[1]


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.slow
@pytest.mark.real_data
def test_the_readme_runs_in_order_and_says_what_happens(readme_run: ReadmeRun) -> None:
    blocks = readme_run.run_all()

    def block(text: str) -> str:
        found = next(b for b in blocks if text in b.body)
        assert found.ran, f"the README block with {text!r} did not run: {found.skip}"
        return found.stdout

    demo = block("musicrec demo")
    assert "source   synthetic catalog (20000 tracks, seed 0)" in demo
    assert "== serving the bundle over gRPC and asking it ==" in demo and "ClassifyGenre (top 3" in demo

    # "How the catalog is cleaned" states the figures of the real dataset; the README's build prints them
    readme = (readme_run.root / "README.md").read_text(encoding="utf-8")
    claim = re.search(r"On `spotify_tracks.csv`: ([\d,]+) rows -> ([\d,]+) exact duplicates, ([\d,]+) dropped for "
                      r"tempo 0, ([\d,]+) for duration 0, ([\d,]+) merged by id \(([\d,]+) tracks carry several "
                      r"genres\), ([\d,]+) time signatures imputed: ([\d,]+) tracks", " ".join(readme.split()))
    assert claim, "the cleaning figures are no longer in the README"
    rows, duplicates, tempo, duration, merged, multi, imputed, tracks = map(number, claim.groups())
    report = json.loads((readme_run.root / "bundles" / "spotify-v1.json").read_text())
    counts = report["counts"]
    assert (counts["rows_read"], counts["exact_duplicates"], counts["duplicates_merged"], counts["multi_genre_tracks"],
            counts["tracks"]) == (rows, duplicates, merged, multi, tracks)
    assert sorted(counts["dropped"].values()) == sorted([tempo, duration]) and sum(counts["imputed"].values()) == imputed
    assert re.search(rf"^  tracks indexed +{tracks:,}$", block("--out bundles/spotify-v1"), re.M)
    # the Serving examples ran on the Spotify bundle, which bundles/current still points at
    assert (readme_run.root / "bundles" / "current").resolve() == (readme_run.root / "bundles" / "spotify-v1").resolve()
    serving = block("query track 5SuOikwiRyPMVoIQDJUgSV")
    assert "Comedy by Gen Hoshino" in serving  # as the README says
    assert re.search(r"^10 results in [\d.]+ ms", serving, re.M)
    playlist = re.search(r"^mood \d+: (?P<name>.+) \([\d,]+ tracks\)$", serving, re.M)  # --mood "sad acoustic"
    assert playlist and playlist.group("name").startswith("sad, reflective · acoustic"), serving
    assert re.search(r"^20  ", serving[playlist.end():], re.M)  # --length 20: the 20th entry
    info = json.loads(serving[serving.index("{\n"):])  # --json: JSON all the way down
    assert info["counts"]["tracks"] == tracks and isinstance(info["metrics"], dict)

    # following the README leaves nothing in the repository that git would pick up
    for name in sorted({p.name for p in readme_run.root.iterdir()} - readme_run.copied - {".venv"}):
        path = readme_run.root / name
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", name + ("/" if path.is_dir() else "")],
                                 cwd=REPO, check=False).returncode == 0
        assert ignored, f"following the README leaves {name} in the repository root, and .gitignore does not cover it"


def test_the_runner_changes_only_installs_the_test_run_and_the_port() -> None:
    body = ("python3.11 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/musicrec demo\n"
            "python3.11 -m venv .venv && .venv/bin/pip install -q -e '.[audio]'\n"
            ".venv/bin/python -m pytest\n"
            ".venv/bin/musicrec serve --bundle b --port 50051 &\n"
            ".venv/bin/musicrec query moods  # a comment\n"
            ".venv/bin/musicrec query info --address 127.0.0.1:50051\n")
    assert runnable(body, {"50051": 7777, "8080": 8888, "9464": 9999}).splitlines() == [
        ".venv/bin/musicrec demo",
        ".venv/bin/musicrec serve --bundle b --port 7777 &",
        ".venv/bin/musicrec query moods --address 127.0.0.1:7777  # a comment",
        ".venv/bin/musicrec query info --address 127.0.0.1:7777",
    ]
