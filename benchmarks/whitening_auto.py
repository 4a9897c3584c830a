"""Whitening measured per catalog: what ``[preprocess] whiten = "auto"`` (the audio preset's) chooses, and why.

The build fits the vectors whitened and not, scores each by audio-only genre-precision@10 with up to 3,000
labelled tracks as "more like this" queries, and whitens unless the plain vectors score higher
(engine/_whitening.py). This script runs that choice, as the build does, on GTZAN-layout tables and prints both
figures beside plain standardization (no transforms, no PCA: the yardstick of "Retrieval defaults"):

- the CSVs given (by default the generated librosa-style catalogs of ``benchmarks/catalogs.py`` seeds 0-2, whose
  descriptors come from the engine's own extraction of synthesized audio);
- ``--independent N`` tables of independent descriptors generated here (seeds 0..N-1): 1,000 rows of the 57
  GTZAN columns, 10 genres of 100, each genre's centre drawn N(0, 1) in every column and each row's noise
  N(0, 1), then put on each column's usual scale. Every column carries genre alike, so the genres are the
  directions of large spread: the shape where whitening loses.

    python benchmarks/whitening_auto.py [CSV...] [--independent 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _timing import report_run  # noqa: E402

from engine import Preprocessor, audio_schema, read_catalog  # noqa: E402
from engine._catalog import catalog_songs  # noqa: E402
from engine._rerank import GenreAgreement, audio_only_precision, eval_queries  # noqa: E402
from engine._whitening import choose_whitening  # noqa: E402
from engine.audio._columns import GTZAN_FEATURES  # noqa: E402

GENERATED = "/tmp/musicrec-catalogs/catalog-s{}-g10-a10-n10-10s-c0.15-v1-gen1-x1.csv"
BLOCK = 200  # the build's similar.candidates
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
# (mean, std) of a column's usual values, so the table reads like a GTZAN one; the others N(0, 1), *_var N(50, 15)
SCALE = {"chroma_stft_mean": (0.38, 0.08), "rms_mean": (0.13, 0.05), "spectral_centroid_mean": (2200, 700),
         "spectral_bandwidth_mean": (2250, 500), "rolloff_mean": (4500, 1500), "zero_crossing_rate_mean": (0.1, 0.04),
         "tempo": (120, 25), "perceptr_var": (0.005, 0.004), "harmony_mean": (0.0, 0.002),
         "perceptr_mean": (0.0, 0.001)}
POSITIVE = ("rms_mean", "spectral_centroid_mean", "spectral_bandwidth_mean", "rolloff_mean", "zero_crossing_rate_mean",
            "tempo", "chroma_stft_mean")


def independent_table(seed: int, path: Path) -> Path:
    """1,000 rows of the GTZAN columns whose every column is shifted by genre alike (see the module)."""
    rng = np.random.default_rng(seed)
    genre = np.repeat(np.arange(len(GENRES)), 100)
    columns = len(GTZAN_FEATURES)
    z = rng.normal(0, 1, (len(GENRES), columns))[genre] + rng.normal(0, 1, (len(genre), columns))
    table = pd.DataFrame({"filename": [f"{GENRES[g]}.{i:05d}.wav" for i, g in enumerate(genre)], "length": 661794})
    for j, f in enumerate(GTZAN_FEATURES):
        m, s = SCALE.get(f, (50.0, 15.0) if f.endswith("_var") else (0.0, 1.0))
        v = m + s * z[:, j]
        table[f] = np.abs(v) + 1e-4 if f.endswith("_var") or f in POSITIVE else v
    table["label"] = [GENRES[g] for g in genre]
    table.to_csv(path, index=False)
    return path


def measure(path: Path, seed: int = 0) -> dict[str, object]:
    header = list(pd.read_csv(path, nrows=0).columns)
    schema = audio_schema(header)
    catalog = read_catalog(path, schema)
    songs = catalog_songs(catalog, schema.name_column)

    def fit(whiten: bool) -> Preprocessor:
        return Preprocessor(feature_names=catalog.feature_names, transforms=schema.transforms, pca_variance=1.0,
                            whiten=whiten).fit(catalog.features)

    started = time.perf_counter()
    _, facts = choose_whitening(catalog, fit, songs, block=BLOCK, seed=seed)
    seconds = time.perf_counter() - started
    queries = eval_queries(np.flatnonzero(np.diff(catalog.genre_indptr) > 0), seed)
    plain = Preprocessor(feature_names=catalog.feature_names, pca_variance=1.0).fit(catalog.features)
    agreement = GenreAgreement(catalog.genre_indptr, catalog.genre_codes, len(catalog.genre_names))
    facts["genre_precision_at_10_plain_standardization"] = audio_only_precision(
        plain.embed(catalog.features), queries, catalog.genre_matrix(), songs, agreement, BLOCK)
    return {"tracks": len(catalog), "features": len(catalog.feature_names), "choice_seconds": round(seconds, 2),
            **facts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, nargs="*", help="GTZAN-layout tables (default: generated catalogs 0-2)")
    parser.add_argument("--independent", type=int, default=3, help="independent-descriptor tables to generate")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    paths = args.csv or [Path(GENERATED.format(s)) for s in range(3) if Path(GENERATED.format(s)).exists()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        named = [(str(p), p) for p in paths] + [
            (f"independent descriptors, seed {s}", independent_table(s, Path(tmp) / f"independent{s}.csv"))
            for s in range(args.independent)]
        print("| catalog | tracks | whitened | not whitened | plain standardization | auto chose |")
        print("|---|---|---|---|---|---|")
        for name, path in named:
            r = {"catalog": name, **measure(path)}
            rows.append(r)
            print(f"| {Path(name).name} | {r['tracks']:,} | {r['genre_precision_at_10_whitened']:.4f} | "
                  f"{r['genre_precision_at_10_not_whitened']:.4f} | "
                  f"{r['genre_precision_at_10_plain_standardization']:.4f} | "
                  f"{'whitened' if r['whitened'] else 'not whitened'} |")
    report_run("whitening_auto.py", argv, args.json, {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
