"""Moods at the boundary between clusters and a continuum: where HDBSCAN's count of density moods decides between
k-means cells (five moods or more) and octants (fewer), a 90% refit that decides the other way moves the moods.

Five moods planted in a three-column mood space (valence, energy, danceability), 400 tracks each, with the
spread swept from separate (0.10) to merged (0.14) and three catalogs per spread; each full fit against
``--draws`` 90% refits (the build's own stability check: ``measure_stability``). Prints, per catalog, the count
the full fit took (how many of the 20 shares found fewer than five and how many five or more), its fits (k-means
or octants), its moods' ARI against the planted moods, each refit's count and ARI over all tracks, and whether
the build's warning says the catalog sits at the boundary (``boundary``); then the same refits with the cut the
full fit took kept by ``coassoc_ks`` (its K, or "octants": the key a warning names). ``--count-selection eom``
counts as the engine did until 2026-12-06. ``--json`` keeps them. Usage::

    .venv/bin/python benchmarks/mood_borderline.py --json benchmarks/results/mood_borderline.json
    .venv/bin/python benchmarks/mood_borderline.py --count-selection eom \
        --json benchmarks/results/mood_borderline_eom.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import MoodConfig, MoodModel, _moodcoassoc  # noqa: E402
from engine._moods import MoodSpace  # noqa: E402
from engine._moodstability import STEADY_ARI, boundary, measure_stability  # noqa: E402

NAMES = ("valence", "energy", "danceability")
CENTERS = np.array([[0.85, 0.85, 0.8], [0.15, 0.85, 0.4], [0.85, 0.15, 0.5], [0.15, 0.15, 0.3], [0.5, 0.5, 0.6]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spreads", default="0.10,0.11,0.12,0.13,0.14", help="the planted moods' standard deviations")
    parser.add_argument("--catalogs", type=int, default=3, help="catalogs per spread (seeds 0, 1...)")
    parser.add_argument("--draws", type=int, default=8, help="90%% refits per catalog (draws 1, 2...)")
    parser.add_argument("--count-selection", choices=("leaf", "eom"),
                        help="HDBSCAN's selection for the count of density moods (default: the engine's, "
                             "DENSITY_SELECTION; eom was the count's until 2026-12-06)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.count_selection:
        _moodcoassoc.DENSITY_SELECTION = args.count_selection
    space = MoodSpace(columns=(0, 1, 2), weights=(1.0, 1.0, 1.0), names=NAMES)
    rows, moved, moved_alone, moved_pinned, total = [], 0, 0, 0, 0
    for spread in (float(s) for s in args.spreads.split(",")):
        for seed in range(args.catalogs):
            rng = np.random.default_rng(seed)
            planted = np.repeat(np.arange(len(CENTERS)), 400)
            raw = CENTERS[planted] + rng.normal(size=(len(planted), 3)) * spread
            points = space.project((raw - raw.mean(0)) / raw.std(0))
            model = MoodModel(config=MoodConfig(), space=space).fit(points, raw, NAMES)
            refits = [measure_stability(model, points, draw=draw, seeds=False) for draw in range(1, args.draws + 1)]
            aris = [st["ari_subsample_all_tracks"] for st in refits]
            # where a refit kept the build's cut against its own count: what a build of its tracks alone gives
            alone = [st["subsample_alone"]["ari_all_tracks"] if "subsample_alone" in st else a
                     for st, a in zip(refits, aris, strict=True)]
            kept = MoodConfig(coassoc_ks=refits[0]["pin"])  # the build's own cut: the key a warning names
            pinned_model = MoodModel(config=kept, space=space).fit(points, raw, NAMES)
            pinned = [measure_stability(pinned_model, points, draw=draw, seeds=False)["ari_subsample_all_tracks"]
                      for draw in range(1, args.draws + 1)]
            ka = model.metrics_["coassoc"]
            row = {"spread": spread, "seed": seed, "density_moods": ka["density_moods"],
                   "density_counts": ka.get("density_counts"), "density_sides": ka.get("density_sides"),
                   "fits": ka.get("cells", "k-means"),
                   "moods": model.metrics_["clusters"], "refit_moods": [st["subsample_moods"] for st in refits],
                   "ari_planted": round(float(adjusted_rand_score(planted, model.labels_)), 4),
                   "ari_90pct_all_tracks": aris, "refits_kept": [st.get("subsample_kept") is not None for st in refits],
                   "ari_90pct_all_tracks_alone": alone, "boundary_warned": [boundary(st) is not None for st in refits],
                   "pin": refits[0]["pin"], "pinned_moods": pinned_model.metrics_["clusters"],
                   "pinned_same_labels": bool((pinned_model.labels_ == model.labels_).all()),
                   "ari_90pct_all_tracks_pinned": pinned}
            rows.append(row)
            moved += sum(a < STEADY_ARI for a in aris)
            moved_alone += sum(a < STEADY_ARI for a in alone)
            moved_pinned += sum(a < STEADY_ARI for a in pinned)
            total += len(aris)
            print(f"spread {spread:.2f} seed {seed}: {row['density_moods']} density moods {row['density_sides']}, "
                  f"{row['fits']}, {row['moods']} moods (ARI {row['ari_planted']} against the planted); "
                  f"refits {list(zip(row['refit_moods'], aris, strict=True))}, kept {row['refits_kept']}, "
                  f"alone {alone}, "
                  f"warned {row['boundary_warned']}; pinned ({row['pin']}, same labels {row['pinned_same_labels']}) "
                  f"{pinned}", flush=True)
    print(f"{moved} of {total} refits under {STEADY_ARI} (each keeping the build's cut where its count split); "
          f"built alone (no current bundle), {moved_alone}; with the cut kept by coassoc_ks, {moved_pinned}")
    if args.json:
        args.json.write_text(json.dumps({
            "command": "python benchmarks/mood_borderline.py " + " ".join(sys.argv[1:]),
            "machine": {"platform": platform.platform(), "python": platform.python_version()},
            "count_selection": _moodcoassoc.DENSITY_SELECTION, "refits_under_bar": moved,
            "refits_under_bar_alone": moved_alone,
            "refits_under_bar_pinned": moved_pinned, "refits": total,
            "catalogs": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
