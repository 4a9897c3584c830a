"""Where the mood method changed with the catalog's size: a catalog just under ``moods.coassoc_wide_from`` (5,000
tracks) rebuilt a little over it. Until 2026-12-06 the method changed there (and at 50,000 tracks); with the
defaults since, every catalog takes one method (``moods.fit_sample`` "auto": a larger one is fitted on 4,999 of its
tracks), and the pairs measure how far the moods of a catalog that grows a little move. ``--rows`` picks other
sizes: ``20000,22000`` (a catalog grown by about a tenth), ``55000,58500`` (48,168 and 50,850 tracks: across
50,000).

For each pair (a catalog under the seam, then the same catalog with a few more tracks, over it) three builds, genre
stage off (``--no-genre``): the first catalog behind a ``current`` link; the grown one with ``--current`` at it (it
keeps the first one's method: ``MoodConfig.keeping_regime``); the grown one fresh. Prints the method each took, the
ARI of each grown build's moods against the first one's over the tracks both hold, and the fresh build's stability
figures (its 90% refit, and that refit's tracks built alone across the seam: ``subsample_fresh``).

Pairs: ``spotify``, random rows of the Spotify CSV (``--rows`` under and over: 5,000 and 5,170 rows, 4,930 and
5,094 tracks); ``tables``, the generated librosa-style tables of ``benchmarks/catalogs.py`` seeds 0-4 stacked
(5,000 clips, ids prefixed by the seed) and their first 4,990.

    python benchmarks/mood_seam.py [--spotify ../shared/data/spotify_tracks.csv] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _timing import report_run  # noqa: E402

from engine import load_bundle  # noqa: E402

TABLE = "/tmp/musicrec-catalogs/catalog-s{}-g10-a10-n10-10s-c0.15-v1-gen1-x1.csv"


def pairs(spotify: Path, rows: tuple[int, int], seed: int, tmp: Path) -> dict[str, tuple[Path, Path]]:
    """Name -> (the catalog under the seam, the grown one)."""
    out = {}
    frame = pd.read_csv(spotify)
    drawn = frame.iloc[np.random.default_rng(seed).permutation(len(frame))[:rows[1]]]
    drawn.iloc[:rows[0]].to_csv(tmp / "spotify-under.csv", index=False)
    drawn.to_csv(tmp / "spotify-over.csv", index=False)
    out["spotify"] = (tmp / "spotify-under.csv", tmp / "spotify-over.csv")
    if all(Path(TABLE.format(s)).exists() for s in range(5)):
        tables = pd.concat([pd.read_csv(TABLE.format(s)).assign(filename=lambda t, s=s: f"s{s}/" + t["filename"])
                            for s in range(5)], ignore_index=True)
        tables.iloc[:4990].to_csv(tmp / "tables-under.csv", index=False)
        tables.to_csv(tmp / "tables-over.csv", index=False)
        out["tables"] = (tmp / "tables-under.csv", tmp / "tables-over.csv")
    return out


def build(csv: Path, out: Path, current: Path | None) -> dict:
    """``musicrec index`` of ``csv`` (the preset detected from its header), genre stage off; its JSON report."""
    from musicrec.cli import main

    args = ["index", str(csv), "--out", str(out), "--no-genre", "--quiet", "--json", str(out) + ".json"]
    if current is not None:
        args += ["--current", str(current)]
    with contextlib.redirect_stdout(io.StringIO()):  # the report: its facts are in the JSON read below
        failed = main(args) != 0
    if failed:
        raise SystemExit(f"the build of {csv} failed")
    return json.loads(Path(str(out) + ".json").read_text(encoding="utf-8"))


def ari(a: Path, b: Path) -> tuple[float, int]:
    x, y = load_bundle(a), load_bundle(b)
    la = dict(zip(x.tracks.ids, x.moods.labels_.tolist(), strict=True))
    lb = dict(zip(y.tracks.ids, y.moods.labels_.tolist(), strict=True))
    ids = sorted(set(la) & set(lb))
    return round(float(adjusted_rand_score([la[i] for i in ids], [lb[i] for i in ids])), 4), len(ids)


def method(manifest: dict) -> str:
    co = manifest["metrics"]["moods"].get("coassoc") or {}
    return {"medoid": f"medoid ({co.get('cells')})", "clusters": "HDBSCAN on 40 x 4 k-means fits"}.get(
        co.get("moods"), "other")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = os.environ.get("MUSICREC_DATA", str(ROOT.parent / "shared/data/spotify_tracks.csv"))
    parser.add_argument("--spotify", type=Path, default=Path(data))
    parser.add_argument("--rows", default="5000,5170", help="Spotify rows under and over the seam")
    parser.add_argument("--seed", type=int, default=0, help="the Spotify rows' draw")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    under_rows, over_rows = (int(r) for r in args.rows.split(","))
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, (under, over) in pairs(args.spotify, (under_rows, over_rows), args.seed, tmp).items():
            first = build(under, tmp / f"{name}-v1", None)
            os.symlink(tmp / f"{name}-v1", tmp / f"{name}-current")
            kept = build(over, tmp / f"{name}-v2", tmp / f"{name}-current")
            fresh = build(over, tmp / f"{name}-fresh", None)
            st = fresh["metrics"]["moods"]["stability"]
            row = {"pair": name, "tracks": [first["counts"]["tracks"], kept["counts"]["tracks"]],
                   "methods": {"first": method(first), "with_current": method(kept), "fresh": method(fresh)},
                   "ari_with_current": ari(tmp / f"{name}-v1", tmp / f"{name}-v2")[0],
                   "ari_fresh": ari(tmp / f"{name}-v1", tmp / f"{name}-fresh")[0],
                   "reported_against_current": kept["metrics"]["moods"]["against_current"],
                   "fresh_stability": {k: st.get(k) for k in ("ari_subsample_all_tracks", "subsample_fresh")},
                   "fresh_warns": "where the mood method changes" in st.get("warning", ""),
                   "mood_seconds": {"with_current": kept["timings_seconds"]["moods"],
                                    "fresh": fresh["timings_seconds"]["moods"]}}
            results.append(row)
            print(f"{name}: {row['tracks'][0]:,} -> {row['tracks'][1]:,} tracks; methods {row['methods']}; ARI against "
                  f"the first build's moods: with --current {row['ari_with_current']}, fresh {row['ari_fresh']}; "
                  f"the fresh build's 90% refit {st['ari_subsample_all_tracks']}, its tracks built alone "
                  f"{(st.get('subsample_fresh') or {}).get('ari_all_tracks')}; warns: {row['fresh_warns']}")
    report_run("mood_seam.py", argv, args.json, {"pairs": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
