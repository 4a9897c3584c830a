"""A readable build report from a bundle manifest (the same facts as the JSON)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._genre_metrics import TOP_KS, informative_ks
from ._moodgeometry import SMOOTHERS
from ._moodnames import ABSOLUTE, split_name
from ._moodstability import STEADY_ARI

MOOD_KINDS = {"k-means": "k-means cells", "octants": "octants"}  # a medoid's moods, by what its fits were


def format_report(manifest: dict[str, Any], *, moods: list[dict[str, Any]] | None = None,
                  width: int | None = None) -> str:
    """The report as text; ``width`` (a terminal's) narrows the mood table's last column to fit."""
    c, m = manifest["counts"], manifest["metrics"]
    lines = [
        f"musicrec bundle (format {manifest['format_version']}), created {manifest['created_at']}",
        f"source   {manifest['source']['path']}  sha256 {manifest['source']['sha256'][:16]}...",
        *update_lines(manifest.get("update")),
        "",
        "rows",
        f"  read                 {c['rows_read']:>9,}",
        f"  exact duplicates     {c['exact_duplicates']:>9,}  (collapsed)",
    ]
    for reason, n in c["dropped"].items():
        lines.append(f"  dropped              {n:>9,}  {reason}")
    lines += [f"  warning: {w}" for w in heavy_drops(c["dropped"], c["rows_read"], c["imputed"])]
    lines += [
        f"  merged by id         {c['duplicates_merged']:>9,}  (same track under more genres;"
        f" {c['multi_genre_tracks']:,} tracks have several)",
        f"  tracks indexed       {c['tracks']:>9,}",
    ]
    for reason, n in c["imputed"].items():
        lines.append(f"  values imputed       {n:>9,}  {reason} (set to the median)")
    for col, n in c.get("flag_blanks", {}).items():
        if n:
            lines.append(f"  {col + ' unknown':<20} {n:>9,}  blank flag (shown as no value; "
                         f"{col}=true/false filters leave these tracks out)")
    if c.get("unlabelled"):
        lines.append(f"  without a genre       {c['unlabelled']:>8,}  tracks whose every row has a blank genre (kept; "
                     "the genre model does not learn from them)")
    if c.get("missing_metadata"):
        lines.append(f"  a field blank         {c['missing_metadata']:>8,}  tracks with a blank or missing name, "
                     "artist or metadata cell (shown as no value)")
    if c.get("id_conflicts"):
        lines.append(f"  id conflicts         {c['id_conflicts']:>9,}  rows whose features differ from the "
                     "first row of their id (first kept)")
    for same in c.get("case_only_genres", []):
        lines.append(f"  warning: genres {', '.join(repr(g) for g in same)} differ only in case; kept apart as "
                     "different genres")
    if c.get("skipped_columns"):
        lines.append(f"  optional columns not in the file: {', '.join(c['skipped_columns'])}")
    pca, idx = m["pca"], m["index"]
    lines += [
        "",
        f"vectors  PCA {pca['input_dimensions']} -> {pca['components']} dimensions, "
        f"{pca['explained_variance']:.1%} of the variance"
        f"{_whitening(manifest)}; L2-normalized"
        + (f"; constant in this catalog, so of no weight: {', '.join(pca['constant_features'])}"
           if pca.get("constant_features") else ""),
        f"index    {idx['kind']}, {idx['tracks']:,} vectors of {idx['dim']} dims (cosine = inner product)",
    ]
    if "recall_at_10" in idx:
        lines.append(f"         recall@10 vs exact {idx['recall_at_10']:.4f} on {idx['queries']} catalog queries; "
                     f"p50 query {idx['index_query_ms_p50']:.3f} ms vs exact {idx['exact_query_ms_p50']:.3f} ms")
    mo = m["moods"]
    ka = mo.get("coassoc") or {}  # with the co-association: its moods and how other tracks are assigned
    kind = MOOD_KINDS[ka.get("cells", "k-means")] if ka.get("moods") == "medoid" else "HDBSCAN clusters"
    kind = kind.removesuffix("s") if mo["clusters"] == 1 else kind  # "1 octant", "1 HDBSCAN cluster"
    nearest = "mood centroid" if ka.get("assign") == "centroid" else "core"
    cores = (f"HDBSCAN cores hold {mo['core_coverage']:.1%} of tracks, the rest assigned to the nearest {nearest}"
             if mo["core_coverage"] > 0 else "HDBSCAN found no core track"
             + (": one mood holds every track" if mo["clusters"] == 1 else ""))
    lines += [
        "",
        f"moods    {mo['clusters']} {kind} (fitted on {mo['fit_tracks']:,} tracks); {cores}",
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
    g = m.get("genre")
    if g and "skipped" not in g:
        lines += ["", *genre_lines(g)]
    else:
        reason = g["skipped"] if g else "the catalog has no genre labels"
        lines += ["", f"genres   no classifier: {reason}"]
    sim = m.get("similar", {})
    if "genre_precision_at_10_reranked" in sim:
        lines += [
            "",
            f"similar  {sim['candidates']} cosine candidates re-ranked with genre_weight {sim['genre_weight']}; on "
            f"{sim['queries']:,} {'by-id' if 'genre_precision_at_10_reranked_in_sample' in sim else 'held-out-artist'}"
            " queries (own song excluded), genre-precision@10",
            f"         {sim['genre_precision_at_10_reranked']:.3f} re-ranked vs "
            f"{sim['genre_precision_at_10_cosine']:.3f} by cosine alone",
        ]
        if "genre_precision_at_10_reranked_in_sample" in sim:
            lines.append(f"         (re-ranked with the seed's out-of-fold genre probabilities, as by-id queries are: "
                         f"held out); with the shipped model's, which saw the seed: "
                         f"{sim['genre_precision_at_10_reranked_in_sample']:.3f}")
        if "genre_precision_at_10_plain_standardization" in sim:
            lines.append(f"         audio only (genre_weight 0): {sim['genre_precision_at_10_cosine']:.3f} in these "
                         f"vectors vs {sim['genre_precision_at_10_plain_standardization']:.3f} on the raw features "
                         "standardized (no transforms, no PCA), same queries")
    elif "genre_precision_at_10_cosine" in sim:  # no classifier: no re-ranking, but the labels still score
        lines += ["", f"similar  cosine alone (no genre classifier to re-rank with); on {sim['queries']:,} by-id "
                      "queries of labelled tracks (own song excluded), genre-precision@10",
                  f"         {sim['genre_precision_at_10_cosine']:.3f} in these vectors vs "
                  f"{sim['genre_precision_at_10_plain_standardization']:.3f} on the raw features standardized (no "
                  "transforms, no PCA), same queries"]
    t = manifest.get("timings_seconds", {})
    # from 2026-12-06 the genre stage runs beside the moods, and the total is the build's wall time
    beside = " (the genre stage beside the moods)" if "build_seconds" in manifest and "genre" in t else ""
    total = manifest.get("build_seconds", sum(t.values()))
    lines += [
        "",
        "time     " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()) + f"; total {total:.1f} s{beside}",
        f"memory   peak RSS {manifest.get('peak_memory_mib', 0):,.0f} MiB",
    ]
    return "\n".join(lines)


def genre_lines(g: dict[str, Any]) -> list[str]:
    """The genre classifier's section: how it was evaluated (the split named), top-k that inform for
    this many genres, baselines, how its capacity was chosen, and genre families or why there are none."""
    ks = informative_ks(g["n_genres"])
    if "folds" in g:
        how = (f"{g['folds']}-fold cross-validation split {g['split']} ({g['test_tracks']:,} tracks, each scored by "
               "the fold model that did not see it):")
    else:  # a bundle evaluated on one held-out split (before cross-fitting)
        how = f"held-out artists ({g['test_tracks']:,} tracks):"
    lines = [
        f"genres   XGBoost ({g['multi_strategy']}, {g['rounds']} rounds), {g['n_genres']} genres; {how}",
        "         " + "  ".join(f"top-{k} {g[f'top{k}']:.3f}" for k in ks if f"top{k}" in g)
        + f"  macro-F1 {g['macro_f1']:.3f}",
        "         baselines: majority " + " ".join(f"top-{k} {g[f'majority_top{k}']:.3f}" for k in ks
                                                   if f"majority_top{k}" in g)
        + "; random " + " ".join(f"top-{k} {g[f'random_top{k}']:.3f}" for k in ks if f"random_top{k}" in g),
    ]
    tuning = g.get("tuning")
    if tuning and "chosen" in tuning:
        default = tuning["candidates"][0]
        lines.append(f"         capacity chosen by cross-validation on these folds among {len(tuning['candidates'])} "
                     f"(small catalog): {tuning['chosen']}; top-1 by candidate: "
                     + ", ".join(f"{c['top1']:.3f}" for c in tuning["candidates"])
                     + f" (the first is the default, {default['name']}); the winner's score is mildly optimistic")
    elif tuning:
        lines.append(f"         capacity as configured: {tuning['skipped']}")
    if "per_song" in g:  # a catalog of segments: the honest score votes once per song
        ps = g["per_song"]
        lines.append(f"         one vote per song ({ps['songs']:,} songs, {ps['segments_per_song']:g} segments each): "
                     + "  ".join(f"top-{k} {ps[f'top{k}']:.3f}" for k in ks if f"top{k}" in ps))
    if "ece_top1" in g:
        lines.append(f"         calibration: expected calibration error {g['ece_top1']:.3f} "
                     f"(mean top-1 probability {g['mean_top1_probability']:.3f})")
    fam = g.get("families", {})
    if "top1" in fam:
        lines.append(f"         {fam['n_families']} genre families: "
                     + "  ".join(f"top-{k} {fam[f'top{k}']:.3f}" for k in TOP_KS if f"top{k}" in fam)
                     + f"  ECE {fam['ece_top1']:.3f}; "
                     f"majority top-1 {fam['majority_top1']:.3f}, random {fam['random_top1']:.3f}")
        for f in fam["per_family"]:
            acc = "-" if f["top1"] is None else f"{f['top1']:.3f}"
            lines.append(f"           {f['family']:<26} {f['test_tracks']:>6,} test tracks  top-1 {acc}")
    elif fam.get("skipped"):
        lines.append(f"         genre families not scored: {fam['skipped']}")
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


HEAVY_DROP = 0.2  # one reason dropping this share of the rows read is worth a warning


def heavy_drops(dropped: Mapping[str, int], rows_read: int, imputed: Mapping[str, int] | None = None) -> list[str]:
    """A warning for each reason that dropped (or imputed) at least ``HEAVY_DROP`` of the rows read, with the
    way round it."""
    out = [f"{n:,} of the {rows_read:,} rows ({n / rows_read:.0%}) had {reason}, set to the column's median: "
           "the column says little about those tracks; consider leaving it out of the feature columns"
           for reason, n in (imputed or {}).items() if rows_read and n / rows_read >= HEAVY_DROP]
    for reason, n in dropped.items():
        if rows_read and n / rows_read >= HEAVY_DROP:
            column = reason.removeprefix("missing or non-finite ")
            how = (f"--missing impute keeps them (the column's median), or leave {column} out of the feature "
                   "columns" if column != reason else f"check the column's values and unit ({reason})")
            out.append(f"{n:,} of the {rows_read:,} rows ({n / rows_read:.0%}) were dropped for one reason, {reason}: "
                       + how)
    return out


def update_lines(update: Mapping[str, Any] | None) -> list[str]:
    """What ``musicrec add`` changed (engine/_update.py), and which figures are still the last full build's."""
    if not update:
        return []
    since = update.get("since_full_build") or {}
    verdict = (update.get("drift") or {}).get("verdict")
    return [f"update   {update['added']:,} tracks added and {update['removed']:,} removed by musicrec add, from "
            f"{update['base']['path']} ({update['base']['tracks']:,} tracks); since the last full build "
            f"{since.get('added', 0):,} added and {since.get('removed', 0):,} removed"
            + (f"; {verdict}" if verdict else ""),
            "         the rows, moods (but their table's sizes), genre and similar figures below are the last full "
            "build's; tracks indexed is this version's"]


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
    return [f"         stability: ARI {st['ari_subsample_all_tracks']} over {over} against a fit on a random "
            f"{st['subsample_share']:.0%} ({there}"
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


def _whitening(manifest: Mapping[str, Any]) -> str:
    """The vectors line's word on whitening: whether, and how far the variances were shrunk first."""
    pca = manifest["metrics"]["pca"]
    chosen = pca.get("whitening", {})
    if chosen.get("measured"):
        said = (f"; whiten = \"auto\": audio-only genre-precision@10 {chosen['genre_precision_at_10_whitened']:.3f} "
                f"whitened vs {chosen['genre_precision_at_10_not_whitened']:.3f} not, {chosen['queries']:,} labelled "
                "tracks as queries")
        if not chosen["whitened"]:
            return f", not whitened ({said[2:]})"
    else:
        said = f"; whiten = \"auto\": {chosen['why']}" if chosen else ""  # unsaid where a rotation (below)
    if not pca.get("whitened", manifest.get("config", {}).get("preprocess", {}).get("whiten")):
        return ""
    a = pca.get("whiten_shrinkage")
    if a is None:  # a bundle from before the shrinkage: fully whitened
        return ", whitened"
    fitted = pca.get("fit_tracks", manifest["counts"]["tracks"])  # tracks added later were not fitted
    if a >= 1:
        return (f", not whitened in effect ({pca['input_dimensions']} dimensions for {fitted:,} tracks fitted: too "
                "few tracks to estimate their variances)")
    return (f", whitened (variances shrunk {a:.3g} of the way toward their mean: {pca['input_dimensions']} "
            f"dimensions over {fitted:,} tracks fitted{said})")
