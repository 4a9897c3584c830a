"""How much whitening a catalog of a given size can afford: audio-only retrieval by catalog size.

Whitening divides each PCA component by its standard deviation. With few tracks per dimension the
small variances are badly estimated and whitening blows them up: n tracks fully whitened in n - 1
dimensions sit at one equal cosine from each other (the README's 60-clip demo: 109 dimensions,
every cosine -1/59). This script measures, by catalog size, plain standardization against full
whitening and against whitening after shrinking the variances toward their mean (Ledoit-Wolf's
estimate of the shrinkage, and c x dims / tracks for several c; the engine's rule is c = 1,
engine/_preprocess.py ``whiten_shrinkage``).

Protocol: for each size, random subsets of the table's tracks (``--repeats`` draws each, seeds 0..);
every track of the subset is fitted and is a query against the others, as by-id "more like this" is
in a built bundle (the query's own song left out; exact cosine, k=10, genre_weight 0); the score is
genre-precision@10 (a result shares a genre with the query). The transforms are the table's preset
(audio: log1p of every ``*_var``, cyclic key); every variant's transforms and scaling are the same.

    python benchmarks/whitening_size.py CSV... [--sizes 60,100,200,400,1000] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from sklearn.covariance import ledoit_wolf_shrinkage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval_defaults import K, l2_normalize, load, precision_per_query

from engine import Preprocessor, whiten_shrinkage
from engine.evaluation import song_keys

VARIANTS = ("plain standardization", "full whitening", "Ledoit-Wolf shrinkage",
            "shrinkage 0.5 x d/n", "shrinkage d/n (engine)", "shrinkage 2 x d/n", "shrinkage 4 x d/n")


def vectors(x: np.ndarray, variant: str) -> np.ndarray:
    """Unit vectors of the transformed features ``x`` (n, d), every row fitted, by ``variant``."""
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std == 0, 1.0, std)
    if variant == "plain standardization":
        return l2_normalize(z)
    n, d = z.shape
    eigval, eigvec = np.linalg.eigh(z.T @ z / (n - 1))
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.clip(eigval[order], 0, None), eigvec[:, order]
    a = {"full whitening": 0.0, "Ledoit-Wolf shrinkage": float(ledoit_wolf_shrinkage(z)),
         "shrinkage 0.5 x d/n": min(1.0, 0.5 * d / n), "shrinkage d/n (engine)": whiten_shrinkage(d, n),
         "shrinkage 2 x d/n": min(1.0, 2 * d / n), "shrinkage 4 x d/n": min(1.0, 4 * d / n)}[variant]
    shrunk = np.maximum((1 - a) * eigval + a * eigval.mean(), eigval.sum() * 1e-12)
    return l2_normalize(z @ eigvec / np.sqrt(shrunk))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, nargs="+")
    parser.add_argument("--sizes", default="60,100,200,400,1000", help="catalog sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="random subsets per size (1 when it is the whole table)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(1)
    command = "python benchmarks/whitening_size.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{command}\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cpus, "
          f"{platform.platform()}\n")
    print(f"{'table':<28} {'tracks':>6} {'dims':>4}  " + "  ".join(f"{v[:22]:>22}" for v in VARIANTS))
    out = []
    for path in args.csv:
        schema, preset, cat = load(path)
        names = cat.metadata.get(schema.name_column or "")
        artists = cat.metadata.get(schema.artists_column or "")
        songs = song_keys(names, artists) if names is not None and artists is not None else np.arange(len(cat))
        genres = cat.genre_matrix()
        x_all = Preprocessor(feature_names=cat.feature_names, transforms=schema.transforms) \
            .transform_features(cat.features)
        for size in sorted({min(int(s), len(cat)) for s in args.sizes.split(",")}):
            draws = 1 if size == len(cat) else args.repeats
            scores: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for draw in range(draws):
                sub = np.sort(np.random.default_rng(draw).choice(len(cat), size, replace=False))
                everyone = np.arange(size)
                for v in VARIANTS:
                    vec = vectors(x_all[sub], v)
                    index = faiss.IndexFlatIP(vec.shape[1])
                    index.add(vec)
                    _, nb = index.search(vec, min(K + 100, size))
                    scores[v].append(float(precision_per_query(nb, everyone, genres[sub], songs[sub])[0].mean()))
            row = {"table": str(path), "preset": preset, "tracks": size, "dims": int(x_all.shape[1]),
                   "draws": draws, "genre_precision_at_10": {v: round(float(np.mean(s)), 4) for v, s in scores.items()},
                   "per_draw": {v: [round(x, 4) for x in s] for v, s in scores.items()}}
            out.append(row)
            print(f"{path.name[:28]:<28} {size:>6} {x_all.shape[1]:>4}  "
                  + "  ".join(f"{np.mean(scores[v]):>22.4f}" for v in VARIANTS), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "rows": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
