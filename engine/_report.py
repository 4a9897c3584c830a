"""A readable build report from a bundle manifest (the same facts as the JSON)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import Any

from ._errors import BundleIntegrityError
from ._genre_metrics import TOP_KS, informative_ks
from ._ingest import rows_named
from ._moodreport import mood_lines


def format_report(manifest: dict[str, Any], *, moods: list[dict[str, Any]] | None = None,
                  width: int | None = None, where: str = "the manifest") -> str:
    """The report as text; ``width`` (a terminal's) narrows the mood table's last column to fit.

    A bundle's manifest has no checksum of its own, and its shape check (engine/_manifest.py) covers the keys the
    report reads as structure, not every figure it prints: a figure edited into text or null is refused here as
    damage (:class:`BundleIntegrityError` naming ``where``), not a TypeError from a format string."""
    try:
        return _report_text(manifest, moods=moods, width=width)
    except UNREADABLE as exc:
        raise unreadable(where, exc) from exc


# what reading a figure of the wrong type or shape raises, in a format string, numpy or matplotlib
UNREADABLE = (TypeError, ValueError, KeyError, IndexError, AttributeError)


def unreadable(where: str, exc: Exception) -> BundleIntegrityError:
    """The error for a manifest ``where`` whose figures a report cannot read (``exc``, one of ``UNREADABLE``)."""
    return BundleIntegrityError(f"{where}: the report cannot read it ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:160]}); if the manifest was edited or is damaged, "
                                "rebuild the bundle; if not, this is a bug: please report it")


def _report_text(manifest: dict[str, Any], *, moods: list[dict[str, Any]] | None, width: int | None) -> str:
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
        rows = rows_named(c.get("dropped_rows", {}).get(reason, []), n)
        lines.append(f"  dropped              {n:>9,}  {reason}" + (f" ({rows})" if rows else ""))
    lines += [f"  warning: {w}" for w in heavy_drops(c["dropped"], c["rows_read"], c["imputed"])]
    lines += [
        f"  merged by id         {c['duplicates_merged']:>9,}  (rows of an id read before: their genres added,"
        f" the first row's features kept; {c['multi_genre_tracks']:,} tracks have several genres)",
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
        where = (", ".join(f"{col} {n:,}" for col, n in c["blank_cells"].items()) if c.get("blank_cells")
                 else "name, artist or metadata")  # (bundles before 2026-12-06 have no per-column counts)
        lines.append(f"  a field blank         {c['missing_metadata']:>8,}  tracks with a blank cell: {where} "
                     "(shown as no value)")
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
        f"index    {idx['kind']}, {idx['tracks']:,} vectors of {idx['dim']} dims (cosine = inner product)"
        + (f"; {idx['nlist']:,} lists, {idx['nprobe']:,} probed" if "nlist" in idx else ""),
    ]
    if idx.get("nlist_lowered"):
        lines.append(f"         warning: {idx['nlist_lowered']}")
    if "recall_at_10" in idx:
        lines.append(f"         recall@10 vs exact {idx['recall_at_10']:.4f} on {idx['queries']} catalog queries; "
                     f"p50 query {idx['index_query_ms_p50']:.3f} ms vs exact {idx['exact_query_ms_p50']:.3f} ms")
    if new := idx.get("new_track_index"):  # approximate, where the main index is exact
        fetch = next((k for k in new if k.startswith("recall_at_") and k != "recall_at_10"), None)
        lines += [f"         new-track index {new['kind']}, {new['nlist']:,} lists, {new['nprobe']:,} probed: what "
                  "unfiltered queries seeded only by new tracks search",
                  f"         its recall@10 vs exact {new['recall_at_10']:.4f}"
                  + (f", @{fetch.removeprefix('recall_at_')} (their first fetch) {new[fetch]:.4f}" if fetch else "")
                  + f" on {new['queries']:,} catalog queries"]
    lines += mood_lines(m["moods"], moods, width)
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
    if width is not None:  # a terminal's: its prose wrapped under the text column, tables as they are
        lines = [part for line in lines for part in _wrapped(line, width)]
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
    tuning = g.get("tuning") or {}
    linear = tuning.get("linear")
    blended = " with a logistic regression blended in" if linear and linear["weight"] > 0 else ""
    lines = [
        f"genres   XGBoost ({g['multi_strategy']}, {g['rounds']} rounds){blended}, {g['n_genres']} genres; {how}",
        "         " + "  ".join(f"top-{k} {g[f'top{k}']:.3f}" for k in ks if f"top{k}" in g)
        + f"  macro-F1 {g['macro_f1']:.3f}",
        "         baselines: majority " + " ".join(f"top-{k} {g[f'majority_top{k}']:.3f}" for k in ks
                                                   if f"majority_top{k}" in g)
        + "; random " + " ".join(f"top-{k} {g[f'random_top{k}']:.3f}" for k in ks if f"random_top{k}" in g),
    ]
    chance = max(g.get("majority_top1", 0.0), g.get("random_top1", 0.0))
    if "top1" in g and g["top1"] <= chance:  # printed beside its baselines, true, and easy to read past
        lines.append(f"         warning: top-1 {g['top1']:.3f} is no better than chance ({chance:.3f}): these features "
                     "do not tell these genres apart here, and similar tracks are re-ranked by it all the same "
                     "(similar.genre_weight; 0 ranks by cosine alone)")
    if "chosen" in tuning:
        default = tuning["candidates"][0]
        lines.append(f"         capacity chosen by cross-validation on these folds among {len(tuning['candidates'])} "
                     f"(small catalog): {tuning['chosen']}; top-1 by candidate: "
                     + ", ".join(f"{c['top1']:.3f}" for c in tuning["candidates"])
                     + f" (the first: {default['name']}); the winner's score is mildly optimistic")
    elif tuning:
        lines.append(f"         capacity as configured: {tuning['skipped']}")
    if linear:
        lines.append(linear_line(linear))
    elif "linear_skipped" in tuning:
        lines.append(f"         no blend with a logistic regression: {tuning['linear_skipped']}")
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


HEAVY_DROP = 0.2  # one reason dropping this share of the rows read is worth a warning


def linear_line(linear: Mapping[str, Any]) -> str:
    """The report's line on the logistic regression blended into a small catalog's trees (engine/_linear.py)."""
    by_weight = ", ".join(f"{c['top1']:.3f} at {c['weight']:g}" for c in linear["candidates"])
    alone = linear["linear_alone"]["top1"]
    if linear["weight"] > 0:
        head = f"a logistic regression blended into the trees' margin at weight {linear['weight']:g}"
    else:
        head = "the trees alone: no blend with a logistic regression scored higher"
    return (f"         {head} (chosen on these folds; top-1 by weight {by_weight}; the regression alone "
            f"{alone:.3f})")


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
            "         the rows, moods (but their table's sizes), genre, similar and time figures below are the last "
            "full build's; tracks indexed is this version's"]


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


_PROSE = re.compile(r"^(?:[a-z]+ +|\s{9})\S")  # "moods    text" or a note under the text column
_TABLE_ROW = re.compile(r"^ {0,8}\d")  # the mood table's rows; prose sits 9 in


def _wrapped(line: str, width: int) -> list[str]:
    """``line`` wrapped to ``width`` under the report's text column (9 characters in) when it is prose; a table's
    row, or a line that fits, as it is."""
    if len(line) <= width or not _PROSE.match(line) or _TABLE_ROW.match(line) or width < 40:
        return [line]
    return textwrap.wrap(line, width, subsequent_indent=" " * 9, break_long_words=False, break_on_hyphens=False)
