"""The moods section of the build report (engine/_report.py): what the mood method found and how (engine/_moods.py,
engine/_moodcoassoc.py), how much the moods move (engine/_moodstability.py), the table of moods and the words of
their names (engine/_moodnames.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._moodgeometry import SMOOTHERS
from ._moodnames import ABSOLUTE, split_name
from ._moodstability import STEADY_ARI

# a catalog above moods.fit_sample: which of its tracks were fitted (engine/_moods.py)
FITTED = {"by id": ", those whose ids hash lowest", "at random": ", drawn at random"}
MOOD_KINDS = {"k-means": "k-means cells", "octants": "octants"}  # a medoid's moods, by what its fits were


def mood_lines(mo: dict[str, Any], moods: list[dict[str, Any]] | None, width: int | None) -> list[str]:
    """The report's moods section: what was found and how, its stability, its table and its words."""
    ka = mo.get("coassoc") or {}  # with the co-association: its moods and how other tracks are assigned
    kind = MOOD_KINDS[ka.get("cells", "k-means")] if ka.get("moods") == "medoid" else "HDBSCAN clusters"
    kind = kind.removesuffix("s") if mo["clusters"] == 1 else kind  # "1 octant", "1 HDBSCAN cluster"
    nearest = "mood centroid" if ka.get("assign") == "centroid" else "core"
    cores = (f"HDBSCAN cores hold {mo['core_coverage']:.1%} of tracks, the rest assigned to the nearest {nearest}"
             if mo["core_coverage"] > 0 else "HDBSCAN found no core track"
             + (": one mood holds every track" if mo["clusters"] == 1 else ""))
    lines = [
        "",
        f"moods    {mo['clusters']} {kind} (fitted on {mo['fit_tracks']:,} tracks{FITTED.get(mo.get('sampled'), '')});"
        f" {cores}",
        f"         validity: DBCV {_or_none(mo['dbcv_sample'])} (fit sample), silhouette {_or_none(mo['silhouette'])}"
        if not mo.get("consensus") else
        f"         validity: silhouette {_or_none(mo['silhouette'])} (no DBCV: a consensus has no one HDBSCAN tree)",
        *([f"         warning: {mo['too_few_tracks']}"] if mo.get("too_few_tracks") else []),
    ]
    if 0 < mo.get("smoothing_neighbours", 0) < mo.get("smoothing_neighbours_requested", 0):
        lines.append(f"         smoothing_neighbours {mo['smoothing_neighbours_requested']} capped to "
                     f"{mo['smoothing_neighbours']}: at most {mo.get('smoothing_cap_share', 0.05):.0%} of the "
                     f"{mo['fit_tracks']:,} tracks clustered")
    lines += mood_floor_lines(mo)
    lines += mood_consensus_lines(mo)
    if mo.get("space"):
        sp = mo["space"]
        lines.append(f"         mood space ({sp['kind']}): {', '.join(sp['features'])}; why: {sp['why']}")
    if mo.get("current_regime"):
        lines.append(f"         {mo['current_regime']['says']}")
    if mo.get("stability"):
        lines += mood_stability_lines(mo["stability"])
    if mo.get("against_current"):
        lines.append(f"         {current_line(mo['against_current'])}")
    if mo.get("spread"):
        lines.append("         mood means: " + "; ".join(
            f"{f} {s['min_mean']:.3g}..{s['max_mean']:.3g} (std {s['std_of_means']:.3g}, catalog std "
            f"{s['catalog_std']:.3g})" for f, s in mo["spread"].items()))
    if moods:
        # a catalog without perceptual features shows the descriptors it was clustered on
        # (and a perceptual one the features its names' words stand for: "danceable" is checked against danceability)
        words = {w for cl in moods for w in split_name(cl["name"])[1]}
        named = tuple(dict.fromkeys(w.feature for w in ABSOLUTE if w.word in words and w.feature not in
                                    MOOD_TABLE_FEATURES))
        shown = tuple(mo["space"]["features"][:6]) if mo.get("space", {}).get("kind") not in (None, "perceptual") \
            else MOOD_TABLE_FEATURES + named
        lines += ["", *mood_table(moods, shown, width=width)]
    if mo.get("vocabulary"):
        lines += ["", "  the words of the mood names (each a range of the mood's mean over its tracks):"]
        word_width = max(len(v["word"]) for v in mo["vocabulary"])
        lines += [f"    {v['word']:<{word_width}}  {v['means']}" for v in mo["vocabulary"]]
    return lines


MOOD_TABLE_FEATURES = ("valence", "energy", "tempo", "acousticness")


def mood_floor_lines(mo: dict[str, Any]) -> list[str]:
    """Why the moods' floor was lowered, when it was (engine/_moods.py, ``fewest_moods``)."""
    if not mo.get("floor_lowered"):
        return []
    fl = mo["floor_lowered"]
    return [f"         a mood outweighs {mo['clump_multiple']} smoothing clumps here (min_cluster_size "
            f"{mo['min_cluster_size']}): with 3 (min_cluster_size {fl['from']}) "
            f"{'the consensus' if mo.get('consensus') else 'HDBSCAN'} found "
            f"{fl['moods_before']} moods, fewer than {fl['fewest_moods']}"]


def mood_consensus_lines(mo: dict[str, Any]) -> list[str]:
    """How the moods were found: one HDBSCAN fit or a consensus of bagged fits (engine/_moodconsensus.py,
    ``bags``), after which smoothing, and why (the "auto" keys resolve by catalog size)."""
    co, ka = mo.get("consensus"), mo.get("coassoc")
    if ka:
        lo, hi, starts = ka["ks"][0], ka["ks"][1], ka.get("starts", 1)
        if ka.get("moods") == "medoid":
            moods = ("moods are the cells of the fit that agrees most with the others"
                     + (" (the Voronoi cells of their centroids, in mood space), all of them; the tracks HDBSCAN calls "
                        "noise there are not core" if ka.get("assign") == "centroid" else "; the tracks HDBSCAN calls "
                        "noise there are not core and take the vote of their nearest cores"))
        elif ka.get("assign") == "centroid":
            moods = "moods are the Voronoi cells of its clusters' centroids in mood space"
        else:
            moods = "every other track takes the vote of its nearest cores"
        if ka.get("cells") == "octants":
            axes = mo.get("space", {}).get("features", [])[:ka["octant_axes"]]
            fits = (f"{ka['fits']} octant fits (each the octants of the mood space's first {ka['octant_axes']} axes"
                    + (f", {', '.join(axes)}," if axes else "") + f" around their means over a random "
                    f"{ka['share']:.0%} of the tracks; "
                    + (f"HDBSCAN found {ka['density_moods']} moods in the mood space itself{density_range(ka)}, fewer "
                       "than fewest_moods: taken as a continuum, where k-means cells moved on some of the catalogs "
                       "measured" if "density_moods" in ka
                       else "as moods.coassoc_ks = \"octants\" asks, whatever HDBSCAN finds in the mood space"))
        else:
            fits = (f"{ka['fits']} k-means fits ({ka['bags']} bags) (K {lo if lo == hi else f'{lo}-{hi}'}, each on a "
                    f"random {ka['share']:.0%} of the tracks" + (f", the best of {starts} starts" if starts > 1 else "")
                    + (f"; HDBSCAN found {ka['density_moods']} moods in the mood space itself{density_range(ka)}"
                       if "density_moods" in ka else ""))
        if "no_octants" in ka:
            fits += f"; fewer than fewest_moods, a continuum, but {ka['no_octants']}"
        lines = [f"         HDBSCAN on the co-association of {fits}"
                 + f"; how often two tracks are put together, in {ka['dims']} dimensions; {ka['seconds']:.1f} s); "
                 + moods]
    elif co:
        lo, hi = min(co["moods_per_bag"]), max(co["moods_per_bag"])
        lines = [f"         consensus of {co['bags']} HDBSCAN fits, each on a random {co['bag_share']:.0%} of the "
                 f"smoothed points ({lo if lo == hi else f'{lo}-{hi}'} moods each); moods: average linkage of "
                 f"the share of fits that part two tracks, cut at {co['cut']:.0%} ({co['seconds']:.1f} s)"
                 + (f"; the bags' floor scaled to their share of the tracks (min_cluster_size "
                    f"{co['bag_min_cluster_size']}): at the whole catalog's the consensus found "
                    f"{co['bag_floor_scaled']} moods" if "bag_floor_scaled" in co else "")]
    else:
        lines = ["         one HDBSCAN fit"]
    me = mo.get("method")
    if me:
        smoothing = (f"{SMOOTHERS[me['smoother']]}, {me['passes']} x mean of {mo['smoothing_neighbours']} nearest"
                     if mo.get("smoothing_neighbours") else "no smoothing")
        lines.append(f"         method: {smoothing}; HDBSCAN epsilon {me['epsilon']:g} ({me['why']})")
    return lines


def density_range(ka: dict[str, Any]) -> str:
    """How the co-association's count of density moods was taken: the median over its fits' shares (bundles
    built before 2026-12-06 took one HDBSCAN fit on every track, and say nothing)."""
    lo, hi = ka.get("density_counts", (None, None))
    if lo is None:
        return ""
    found = f"each of which found {lo}" if lo == hi else f"which found {lo}-{hi}"
    # bundles built before the count took HDBSCAN's leaves (2026-12-06) counted by eom's choice and say nothing
    leaves = f"{ka['density_selection']} selection; " if "density_selection" in ka else ""
    return f" ({leaves}the median over the {ka['bags']} fits' shares, {found})"


def current_line(against: Mapping[str, Any]) -> str:
    """How far a rebuild's moods moved from the bundle it replaces (engine/_moodcarry.py, ``against_current``)."""
    ari = against["ari"]
    line = (f"against the bundle it replaces ({against['bundle']}): ARI {ari} over the {against['shared_tracks']:,} "
            "tracks both hold")
    if ari is not None and ari < STEADY_ARI:
        line += (f"; warning: under {STEADY_ARI}, the moods moved: read them anew (their names and numbers are in the "
                 "table below)")
    return line


def _or_none(score: float | None) -> str:
    """A validity score, or a word for none (one mood has no silhouette; DBCV needs two moods with cores)."""
    return "undefined here" if score is None else f"{score}"


def mood_stability_lines(st: dict[str, Any]) -> list[str]:
    """How much the moods move: ARI against a subsample fit, over all tracks and over the cores, across seeds
    when a seed plays a part, and between the medoid's fits when there are some (engine/_moodstability.py)."""
    core = st.get("ari_subsample_core_in_both")
    seeds = (f"ARI seed vs seed + 1 {st['ari_seeds']}" if st.get("ari_seeds") is not None
             else f"no seed ARI: {st['seeds']}")
    of = st.get("catalog_tracks")
    over = f"a random {st['evaluated_tracks']:,} of the {of:,} tracks" if of and st["evaluated_tracks"] < of \
        else "all tracks"
    kept = st.get("subsample_kept")  # where its count or the build's split (engine/_moodcoassoc.py, KeptCut)
    whose = "its" if kept and kept.get("split") == "here" else "the build's"
    there = f"{st['subsample_moods']} mood{'' if st['subsample_moods'] == 1 else 's'} there"
    # one mood in both fits: an ARI of 1 by construction, which says nothing of how the moods hold
    trivially = " (one mood both times: 1 by construction)" if st["subsample_moods"] == 1 \
        and st["ari_subsample_all_tracks"] == 1 else ""
    return [f"         stability: ARI {st['ari_subsample_all_tracks']}{trivially} over {over} against a fit on a "
            f"random {st['subsample_share']:.0%} ({there}"
            + (f"; it kept this build's cut, as {whose} count split" if kept else "")
            + (f"; without it, {st['subsample_alone']['fits']} fits at ARI {st['subsample_alone']['ari_all_tracks']}"
               if st.get("subsample_alone") else "")
            + (f"; its tracks built alone, across moods.{st['subsample_fresh']['seam']}, take "
               f"{st['subsample_fresh']['method']}: ARI {st['subsample_fresh']['ari_all_tracks']}"
               if st.get("subsample_fresh") else "")
            + (f"); {core} over the {st['core_in_both_share']:.0%} core in both; " if core is not None
               else "); no track core in both; ") + seeds
            + (f"; the {st.get('fits', 'k-means')} fits agree at mean ARI {st['fits_agree']}" if "fits_agree" in st
               else "")
            + f" ({st['seconds']:.1f} s)",
            *([f"         warning: {st['warning']}"] if st.get("warning") else [])]


def mood_table(moods: list[dict[str, Any]], features: tuple[str, ...] = MOOD_TABLE_FEATURES, *,
               width: int | None = None) -> list[str]:
    """One line per mood: id, name, tracks, core tracks, the mean of what a listener hears (over all
    the mood's tracks; the core centroid for bundles made before means were recorded), top genres.
    With ``width``, top genres are cut (ending in "…") so that lines fit, as far as that column can."""
    shown = [f for f in features if f in (moods[0].get("mean") or moods[0]["centroid"])] if moods else []
    name_width = max([len(c["name"]) for c in moods] + [4])
    in_db = {w.feature for w in ABSOLUTE if w.to_unit == "db"}  # as the names read them (rms: "loud" >= -12 dBFS)
    heads = [f.removesuffix("ness").removesuffix("_mean") + (" dBFS" if f in in_db else "") for f in shown]
    widths = [max(8, len(h)) for h in heads]

    def number(f: str, v: float, w: int) -> str:
        if f in in_db:
            return f"{20 * math.log10(max(v, 1e-12)):>{w}.1f}"
        if abs(v) >= 1e7:  # a value of 30 digits broke the table's columns
            return f"{v:>{w}.2g}"
        if abs(v) >= 1000:
            return f"{v:>{w}.0f}"
        if f == "tempo" or abs(v) >= 10:
            return f"{v:>{w}.1f}"
        return f"{v:>{w}.3g}" if 0 < abs(v) < 0.01 else f"{v:>{w}.2f}"  # perceptr_var 0.0046, not 0.00

    lines = [f"  {'id':>3}  {'mood':<{name_width}} {'tracks':>7} {'core':>7} "
             + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)) + "  top genres"]
    for cl in moods:
        values = cl.get("mean") or cl["centroid"]
        genres = ", ".join(g["genre"] for g in cl["top_genres"]) or "-"
        lines.append(f"  {cl['id']:>3}  {cl['name']:<{name_width}} {cl['size']:>7,} {cl['core_size']:>7,} "
                     + " ".join(number(f, values[f], w) for f, w in zip(shown, widths, strict=True))
                     + f"  {genres}")
    if width is not None:
        fixed = len(lines[0]) - len("top genres")  # every line is this long before its genres
        room = max(width - fixed, len("top genres"))
        lines = [line if len(line) - fixed <= room else line[:fixed + room - 1] + "…" for line in lines]
    return lines
