"""How much the moods move when the catalog does: every build refits the mood method
(engine/_moods.py) on a random share of the tracks, and on the next seed when a seed plays a part,
and reports the adjusted Rand index against its own fit."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._moodcoassoc import OCTANTS_KS, KeptCut, cut_of, cut_text
from ._moodconfig import LARGE_FIT_SAMPLE, REGIMES, SEAM_BAND, MoodConfig
from ._moods import MoodModel
from ._moodsample import sample_rows
from ._moodspace import MoodSpace, missing_aspects
from ._progress import Progress

STEADY_ARI = 0.8  # issue 17's bar: below it, the build report says the moods moved
AGREED_FITS = 0.9  # under it, the fits of the co-association's medoid (k-means or octants; engine/_moodcoassoc.py) take
# different cuts, and the report says the moods may move even where its one refit held (benchmarks/RESULTS.md,
# "When the fits disagree")
BOUNDARY_MOVED = ("on 15 catalogs of five planted moods (benchmarks/mood_borderline.py) 4 of 120 90% refits built "
                  "alone fell to ARI 0.73-0.77, and 18 of 240 on a wider sweep of 30 catalogs near the boundary, six "
                  "of them the same (0.71-0.77), each one whose own count took another cut than the build's; keeping "
                  "the build's cut, as a rebuild with --current does, all 120 and all 240 held (0.9584-1.0)")
BOUNDARY_PINNED = ("with coassoc_ks set to each build's own cut (its K, or \"octants\"), the same 120 refits held ARI "
                   "0.9584-1.0 (the 24 of the 3 catalogs whose builds warned 0.9785-1.0), and the moods it gave were "
                   "the defaults' own on all 15 catalogs")
SPLIT_FITS_MOVED = ("with k-means fits, on 45 catalog and mood-space pairs of 1,000-4,000 tracks (33 catalogs) 90% "
                    "refits moved (ARI under 0.8) on 15 of 57 draws where the fits agreed under 0.9, and on none of "
                    "150 where they agreed at 0.9 or more")


def measure_stability(model: MoodModel, points: np.ndarray, *, share: float = 0.9, draw: int | None = None,
                      seeds: bool = True, progress: Progress | None = None,
                      fresh: MoodConfig | None = None) -> dict[str, Any]:
    """How much the moods move when the catalog does: the adjusted Rand index (ARI) between the
    fitted model's labels of *all* tracks and those of the same method fitted on a random ``share``
    of them (which assigns the rest as it would new tracks); also over the tracks core in both fits.
    Across seeds only when a seed plays a part (a catalog above ``fit_sample`` sampled at random, or bags or
    the co-association's fits drawn by the seed): a second fit with the next seed (``seeds`` False
    skips it). ``points`` are the mood-space coordinates ``model`` was fitted on, (n_tracks, d);
    ``draw`` seeds the subsample (default: the model's seed + 1).

    Above ``fit_sample`` tracks the refits cluster ``fit_sample`` tracks as the model did (the subsample fit the
    ``fit_sample`` of the subsample whose id keys are lowest, as a build of it would, or without keys a random one;
    the seed fit the model's sample, or without keys the one seed + 1 draws) and the ARIs are taken over every track
    up to ``fit_sample`` or LARGE_FIT_SAMPLE (100,000), whichever is more, and a random that many of a larger catalog
    (``evaluated_tracks`` says how many): assigning every track twice more cost more than both refits at a million
    tracks.

    The refit keeps the build's method and cut, as a rebuild of those tracks with ``--current`` pointing at this
    bundle would (engine/_moodcarry.py); where a build of them alone would differ, it is fitted too and reported:
    ``subsample_alone`` where its count of density moods takes another cut, ``subsample_fresh`` where its size
    takes another method (``fresh``, the build's configuration before a rebuild kept its current bundle's method:
    ``MoodConfig.keeping_regime``; default the model's)."""
    from sklearn.metrics import adjusted_rand_score

    say = progress or (lambda _msg: None)
    n = len(points)
    t0 = time.perf_counter()
    rng = np.random.default_rng(model.seed + 1 if draw is None else draw)
    sub = np.sort(rng.choice(n, size=max(1, round(share * n)), replace=False))
    limit = model.config.sample_size(n)
    sampled, keys = n > limit, model.keys_  # (a fitted model: measured right after fit)
    # tracks the ARIs are taken over: all of them, or a random fit_sample (at least LARGE_FIT_SAMPLE) of a larger one
    evaluated = max(limit, LARGE_FIT_SAMPLE)
    scored = np.sort(rng.choice(n, size=evaluated, replace=False)) if n > evaluated else np.arange(n)
    fit_on = sample_rows(sub, limit, rng, keys)
    say(f"stability: the same method on a random {share:.0%} of the tracks ({len(sub):,}"
        f"{f'; it clusters {len(fit_on):,} of them' if sampled else ''})")
    same = model.resolved_  # every "auto" key as the model resolved it, whatever the refit's size
    # where a refit's count of density moods splits it keeps the build's cut, as a rebuild keeps its current bundle's
    coassoc = model.metrics_.get("coassoc") or {}
    own, sides = cut_of(coassoc), coassoc.get("density_sides") or [0, 0]
    keep = KeptCut(own, "the build's own fit", split=min(sides) > 0) if own is not None else None

    def refit(rows: np.ndarray, seed: int, smoothed: np.ndarray | None = None) -> tuple[MoodModel, dict | None]:
        """The method on ``rows`` keeping the build's cut, and, where that cut is not the one its own count
        takes, what a build of those rows alone (no current bundle) gives: its fits and its ARI."""
        fit = MoodModel(config=same, space=model.space, seed=seed).fit(points[rows], None, (), smoothed=smoothed,
                                                                        keep=keep)
        kept = (fit.metrics_.get("coassoc") or {}).get("kept")
        if not kept or kept["cut"] == kept["counted"]:
            return fit, None
        say(f"stability: the same refit without the build's cut ({cut_text(kept['counted'])}, as its count takes)")
        alone = MoodModel(config=same, space=model.space, seed=seed).fit(points[rows], None, (), smoothed=smoothed)
        return fit, {"fits": fits_kind(alone.metrics_.get("coassoc") or {}), "ari_all_tracks": against(alone)}

    def against(other: MoodModel) -> float:
        """The ARI between the build's labels of the scored tracks and ``other``'s."""
        return round(float(adjusted_rand_score(model.labels_[scored], other.assign_points(points[scored])[0])), 4)

    other, alone = refit(fit_on, model.seed)
    fresh = fresh or model.config
    ours, theirs = model.config.regime(min(n, limit)), fresh.regime(fresh.clustered(len(fit_on)))
    # the seam between the two sizes, as this build (with a kept method: moved) or a fresh one places it
    seam = next(iter(fresh.seams_between(len(fit_on), min(n, limit))
                     or model.config.seams_between(len(fit_on), min(n, limit))), None)
    crossed = None
    if theirs != ours and seam is not None:  # a build of the refit's tracks alone, at their size, takes another method
        say(f"stability: the same tracks built alone ({len(fit_on):,}, across moods.{seam}: {REGIMES[theirs]})")
        alone_fit = MoodModel(config=fresh, space=model.space, seed=model.seed).fit(
            points[fit_on], None, (), keys=None if keys is None else keys[fit_on])
        crossed = {"method": REGIMES[theirs], "seam": seam, "at": getattr(fresh, seam),
                   "ari_all_tracks": against(alone_fit)}
    both = model.is_core_[fit_on] & other.is_core_  # over the tracks the subsample fit clustered
    out: dict[str, Any] = {
        "subsample_share": share,
        "evaluated_tracks": len(scored),
        "catalog_tracks": n,
        "ari_subsample_all_tracks": against(other),
        "ari_subsample_core_in_both": round(float(adjusted_rand_score(model.labels_[fit_on][both],
                                                                      other.labels_[both])), 4) if both.any() else None,
        "core_in_both_share": round(float(both.mean()), 4),
        "subsample_moods": int(other.metrics_["clusters"]),
        **({"subsample_alone": alone} if alone else {}),
        **({"subsample_fresh": crossed} if crossed else {}),
    }
    if model.metrics_.get("seeded") and seeds:
        say(f"stability: the same method with seed {model.seed + 1}")
        if n > limit and keys is None:  # the seed draws the sample clustered (and the bags, if any)
            again_on = np.sort(np.random.default_rng(model.seed + 1).choice(n, size=limit, replace=False))
            smoothed = None
            out["seeds"] = "a sample of the catalog is clustered, so the seed plays a part: seed vs seed + 1"
        elif model.resolved_.coassoc_bags:  # the same tracks clustered; the seed draws the co-association's fits
            again_on, smoothed = model.fitted_, None
            drawn = ("octant fits' shares" if fits_kind(model.metrics_.get("coassoc") or {}) == "octant"
                     else "k-means fits (shares and starts)")
            out["seeds"] = f"the seed draws the co-association's {drawn}: seed vs seed + 1"
        else:  # the same tracks clustered and the seed draws only the bags: the smoothing is the model's own
            again_on, smoothed = model.fitted_, getattr(model, "smoothed_", None)
            out["seeds"] = "the seed draws the consensus's bags: seed vs seed + 1, on the same smoothed points"
        again, alone = refit(again_on, model.seed + 1, smoothed)
        out["ari_seeds"] = against(again)
        if alone:
            out["seed_alone"] = alone
        if again.metrics_.get("coassoc"):
            out["seed_fits"] = fits_kind(again.metrics_["coassoc"])
    else:
        out["ari_seeds"] = None
        out["seeds"] = ("the tracks clustered (those whose ids hash lowest) and their fit are deterministic: the seed "
                        "plays no part" if n > limit else
                        "the whole catalog is clustered deterministically: the seed plays no part")
    if coassoc.get("moods") == "medoid":  # the medoid's fits: what they were and how much they agree (at no cost)
        if coassoc.get("fits_agree") is not None:  # (none where HDBSCAN found no group in the co-association)
            out["fits_agree"] = coassoc["fits_agree"]
        out["fits"] = fits_kind(coassoc)
        # which side of the count of density moods the build and its refits took, and the key that keeps the build's
        out["subsample_fits"] = fits_kind(other.metrics_.get("coassoc") or {})
        out["pin"] = OCTANTS_KS if out["fits"] == "octant" else coassoc["ks"][0]
        for who, fit in (("kept", coassoc), ("subsample_kept", other.metrics_.get("coassoc") or {})):
            if fit.get("kept"):  # whose cut a fit kept where its count split
                out[who] = fit["kept"]
        if "density_sides" in coassoc:
            out.update(density_sides=coassoc["density_sides"], fewest_moods=model.resolved_.fewest_moods)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    warning = unsteady(out, model.space)
    if warning:
        out["warning"] = warning
    return out


def fits_kind(coassoc: dict[str, Any]) -> str:
    """What the co-association's fits were, as the report says it: "octant" (a continuum) or "k-means"."""
    return "octant" if coassoc.get("cells") == "octants" else "k-means"


def boundary(st: dict[str, Any]) -> str | None:
    """Why a build's moods sit at the boundary between clusters and a continuum, if they do: its count of
    density moods (engine/_moodcoassoc.py, ``density_moods``) fell on both sides of fewest_moods across the fits'
    shares, or its refit or seed fit took the other fits (k-means cells against octants); None otherwise."""
    kind, sides = st.get("fits"), st.get("density_sides")
    if kind is None:
        return None
    why = []
    if sides and min(sides) > 0:
        why.append(f"HDBSCAN found {st['fewest_moods']} density moods or more on {sides[1]} of the {sum(sides)} "
                   f"fits' shares of the mood space (k-means cells) and fewer on {sides[0]} (octants)")
    if st.get("kept"):
        kept = st["kept"]
        counted = "" if kept["counted"] == kept["cut"] else f", where its count would take {cut_text(kept['counted'])}"
        why.append(f"this build kept the cut of {kept['source']}, {cut_text(kept['cut'])}{counted}")
    others = [f"its {what} took {st[key]} fits"
              for key, what in (("subsample_fits", "refit"), ("seed_fits", "seed fit")) if st.get(key, kind) != kind]
    others += [f"its {what} took {st[key]['fits']} fits without the build's cut (ARI {st[key]['ari_all_tracks']})"
               for key, what in (("subsample_alone", "refit"), ("seed_alone", "seed fit")) if st.get(key)]
    if others:
        why.append(f"this build took {kind} fits and {' and '.join(others)}")
    if not why:
        return None
    return (f"the catalog sits at the boundary between clusters and a continuum ({'; '.join(why)}): a build of a "
            f"changed catalog may take the other cut, unless it keeps this one ({BOUNDARY_MOVED}); a rebuild whose "
            f"--current points at this bundle keeps its cut where its count or this one's splits"
            + (", as the refit here did" if st.get("subsample_kept") else ""))


def unsteady(st: dict[str, Any], space: MoodSpace) -> str | None:
    """What a build says when its moods moved (an ARI under STEADY_ARI) or may move (the medoid's fits
    agree under AGREED_FITS, or the catalog sits at the ``boundary``), and the lever measured to help."""
    refit = f"ARI against the {st.get('subsample_share', 0.9):.0%} refit"
    moved = [f"{what} {st[key]}" for key, what in (("ari_subsample_all_tracks", refit), ("ari_seeds", "across seeds"))
             if st.get(key) is not None and st[key] < STEADY_ARI]
    agree = st.get("fits_agree")
    kind = st.get("fits", "k-means")
    why = "their cut is one of several nearly as good" if kind == "k-means" else "the means move between shares"
    split = (f"the {kind} fits agree at mean ARI {agree} (under {AGREED_FITS}): {why}, and {SPLIT_FITS_MOVED}"
             if agree is not None and agree < AGREED_FITS else "")
    edge = boundary(st)
    fresh = st.get("subsample_fresh")
    seam = (f"this catalog lies within {1 - SEAM_BAND:.0%} of moods.{fresh['seam']} = {fresh['at']:,} tracks, where "
            f"the mood method changes: its {st.get('subsample_share', 0.9):.0%} refit's tracks built alone take "
            f"{fresh['method']}, at ARI {fresh['ari_all_tracks']} against these moods"
            if fresh and fresh["ari_all_tracks"] < STEADY_ARI else "")
    if not moved and not split and not edge and not seam:
        return None
    reasons = "; ".join(r for r in (split, edge, seam) if r)
    if seam and not edge:  # one method on both sides of the seam
        lever = (f"to keep this build's moods across rebuilds, rebuild with --current pointing at this bundle (a "
                 f"rebuild within {1 - SEAM_BAND:.0%} of the seam keeps this build's method), or set [moods] "
                 f"{fresh['seam']} so that the catalog stays on one side of it")
        where = "(benchmarks/RESULTS.md, \"Where the mood method changes\")"
    elif edge:  # the cut this build took, kept whatever the count of a rebuild
        pin = st["pin"]
        value = f'"{pin}"' if isinstance(pin, str) else pin
        lever = (f"to keep this build's cut across rebuilds, rebuild with --current pointing at this bundle (where "
                 f"either count splits), or set [moods] coassoc_ks = {value} "
                 f"({cut_text(pin)}, whatever the count, at any size while moods.fit_sample is \"auto\" and "
                 "moods.coassoc_until unset): "
                 f"{BOUNDARY_PINNED}")
        where = "(benchmarks/RESULTS.md, \"At the boundary between clusters and a continuum\")"
    else:
        lever, where = generic_lever(space), GENERIC_WHERE
    if not moved:
        return (f"the moods may move: {reasons}. Read the moods as rough regions of the catalog, not fixed groups; "
                f"{lever} {where}")
    return (f"the moods moved ({'; '.join(moved)}, under {STEADY_ARI}){f'; {reasons}' if reasons else ''}. Read the "
            f"moods as rough regions of the catalog, not fixed groups; {lever} {where}")


GENERIC_WHERE = ("(benchmarks/RESULTS.md, \"Moods on any catalog\", \"Moods from the co-association of k-means "
                 "fits\", \"Under 5,000 tracks\", \"When the fits disagree\" and \"Octants where the mood space is a "
                 "continuum\")")


def generic_lever(space: MoodSpace) -> str:
    """The lever measured to help moods that moved or may move, for ``space``'s kind."""
    missing = missing_aspects(space)
    if missing:
        return (f"the mood space has no column for {', '.join(missing)}: with one column per aspect (level, "
                "brightness, pace, activity, texture) the k-means moods of six generated 1,000-clip tables held ARI "
                ">= 0.8 on 32 of 36 draws, and with the blur's consensus (their default until 2026-12-05) on 29 of "
                "36, against 16 of 36 with three aspects (though on the two tables generated last, three aspects did "
                "better)")
    if space.kind == "descriptors":
        return ("on twelve generated 1,000-clip descriptor tables the defaults (the octants) gave ARI >= 0.8 on 72 of "
                "72 draws, and on 72 of 72 with the README's GTZAN config (k-means cells: 67 and 64)")
    return ("on the Spotify data the defaults gave ARI 0.82-0.88 with all 89,583 tracks, 0.91-0.995 on random "
            "subsets of 5,000-40,000 and 0.8896-0.98 on 1,000-4,000 (the octants: 63 of 63 refits at 0.8 or more; "
            "k-means cells 61 of 63)")
