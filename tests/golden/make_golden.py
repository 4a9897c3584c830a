"""Build the golden bundle of the current on-disk format: tests/golden/v<FORMAT_VERSION>/.

    .venv/bin/python tests/golden/make_golden.py

Run it once each time engine/_bundle.py's FORMAT_VERSION changes, and commit the new directory beside the
older ones (as spotify/voyager keeps tests/indices/v0, v1): tests/engine/test_golden.py loads the current
version's bundle and checks that every older one is refused with a version error that says to rebuild.
An existing golden bundle is never rebuilt: it stands for what that version wrote, so changing it would
hide a change in the format. Delete the directory by hand only if it was never committed.

The bundle is small on purpose (a few hundred synthetic tracks, a few boosting rounds, well under 1 MB)
and built the ordinary way, through build_bundle: .npz arrays, JSON, FAISS and XGBoost files, no pickle.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import engine._crossfit as crossfit
from engine import FORMAT_VERSION, BuildConfig, GenreConfig, IndexConfig, MoodConfig, build_bundle, synthetic_catalog

GOLDEN = Path(__file__).resolve().parent
TRACKS, SEED = 300, 0
MAX_BYTES = 1_000_000
CONFIG = BuildConfig(
    seed=SEED,
    index=IndexConfig(kind="flat", neighbours=20),
    moods=MoodConfig(fit_sample=TRACKS, smoothing_neighbours=20, min_cluster_size=15, min_samples=5),
    genre=GenreConfig(max_rounds=5, early_stopping_rounds=2, folds=3),  # tuned: a small catalog's blend (format 5)
)


def main() -> int:
    out = GOLDEN / f"v{FORMAT_VERSION}"
    if out.exists():
        print(f"{out} already exists: a format version's golden bundle is built once (see this file's docstring)",
              file=sys.stderr)
        return 1
    # one quick capacity for the small catalog's search, so the fixture stays small; the blend with a logistic
    # regression (format 5's genre_linear.npz) is chosen by the folds as in any build
    crossfit.CANDIDATES = (crossfit.Candidate("quick", {"max_depth": 2, "max_rounds": 5}),)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "golden.csv"
        synthetic_catalog(TRACKS, seed=SEED).to_csv(csv, index=False)
        manifest = build_bundle(csv, out, CONFIG, source_label=f"synthetic catalog ({TRACKS} tracks, seed {SEED})")
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    for name, size in sizes.items():
        print(f"{size:>10,}  {name}")
    total = sum(sizes.values())
    print(f"{total:>10,}  total: {out} (format version {FORMAT_VERSION}, {manifest['counts']['tracks']} tracks)")
    if total > MAX_BYTES:
        print(f"too big for a fixture ({total:,} bytes > {MAX_BYTES:,}): shrink TRACKS or the config", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
