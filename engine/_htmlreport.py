"""The build report with pictures: one self-contained HTML file (``musicrec report BUNDLE --html FILE``,
and ``/console/report.html`` on a server's HTTP port).

Every figure is drawn with matplotlib's object API (``Figure``, no pyplot: no global state, safe in
a server thread) on the Agg canvas and embedded as a base64 PNG, so the file needs nothing beside
it. What is drawn comes from the bundle only: the manifest's metrics, the moods, the mood map
(engine/_moodmap.py) and the genre evaluation's arrays (engine/_diagnostics.py); a bundle built
before the last two existed gets the rest and a line saying what is missing. matplotlib is the
optional ``report`` extra, imported on first use.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._diagnostics import load_diagnostics
from ._families import family_matrix
from ._loaded import Bundle
from ._report import UNREADABLE, format_report, unreadable

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 1.5em 2em 4em; color: #1d2430; background: #fbfbfc; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #dde1e7; }
.sub { color: #5b6472; } pre { background: #f1f3f6; padding: 1em; overflow-x: auto; font-size: 12.5px; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e3e6eb; background: #fff; }
figcaption { color: #4b5563; font-size: .92em; max-width: 60em; }
table { border-collapse: collapse; font-size: .9em; } td, th { padding: .25em .6em; border-bottom: 1px solid #e5e7eb; }
th { text-align: left; background: #f1f3f6; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: .6em 1em; }
nav a { margin-right: 1em; }
"""


def mood_colours(n: int) -> list[str]:
    """One distinct colour per mood, the same list the console uses (server/console/console.js):
    evenly spaced hues by the golden angle, alternating lightness."""
    out = []
    for i in range(n):
        hue = (i * 137.508) % 360
        light = 42 if i % 2 else 55
        out.append(_hsl(hue, 65, light))
    return out


def _hsl(h: float, s: float, lum: float) -> str:
    import colorsys

    r, g, b = colorsys.hls_to_rgb(h / 360, lum / 100, s / 100)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def plain_figure_text() -> None:
    """Draw every label as the text it is: a "$" pair in a genre, mood or feature name was read as mathtext (a
    genre "$\\foo$ metal" failed the report, blamed on the manifest; "cla$\\sqrt{x}$ical" was drawn "cla√xical").
    matplotlib's own setting, for this process: no figure of musicrec's draws mathematics."""
    import matplotlib

    matplotlib.rcParams["text.parse_math"] = False


def figure_data_uri(fig: Any, dpi: int = 100) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_html(fig: Any, caption: str, alt: str, *, dpi: int = 100) -> str:
    """A figure as an embedded PNG with its caption. A large ``dpi`` keeps small labels legible when
    the reader zooms into the image (the page shows it scaled to its width)."""
    return (f'<figure><img src="{figure_data_uri(fig, dpi)}" alt="{html.escape(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def html_document(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """A page of (heading, body HTML) sections with a table of contents."""
    nav = " ".join(f'<a href="#s{i}">{html.escape(h)}</a>' for i, (h, _) in enumerate(sections))
    body = "\n".join(f'<h2 id="s{i}">{html.escape(h)}</h2>\n{b}' for i, (h, b) in enumerate(sections))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><h1>{html.escape(title)}</h1><p class="sub">{subtitle}</p><nav>{nav}</nav>\n{body}\n'
            "</body></html>\n")


def bundle_report_html(bundle: Bundle) -> str:
    """The whole report of a loaded bundle as one HTML document. A figure of the manifest that its pictures
    cannot read (edited into text or null, as the text report refuses them) is :class:`BundleIntegrityError`."""
    from matplotlib.figure import Figure  # the report extra; Agg is the default canvas of a bare Figure

    plain_figure_text()
    m = bundle.manifest
    clusters = bundle.moods.clusters_
    where = str(bundle.path / "manifest.json")
    report = format_report(m, moods=clusters, where=where)
    sections = [("Build report", f"<pre>{html.escape(report)}</pre>")]
    sections.append(("Mood map", _mood_map(Figure, bundle)))  # from the checksummed arrays, not the manifest
    sections.append(("Mood profiles", _mood_profiles(Figure, bundle)))
    try:  # the genre evaluation's, the PCA's and the index's figures, as the manifest records them
        sections += _recorded(Figure, bundle)
        subtitle = (f"{html.escape(str(m['source']['path']))} · {bundle.tracks.ids.shape[0]:,} tracks · "
                    f"{len(clusters)} moods · built {html.escape(m['created_at'])} · "
                    f"bundle {html.escape(bundle.version)}")
    except UNREADABLE as exc:
        raise unreadable(where, exc) from exc
    return html_document("musicrec bundle report", subtitle, sections)


def _recorded(figure: Any, bundle: Bundle) -> list[tuple[str, str]]:
    m = bundle.manifest
    diag = load_diagnostics(bundle.path)
    sections = []
    g = m["metrics"].get("genre") or {}
    if "skipped" in g or not g:
        sections.append(("Genres", f"<p>No genre classifier: {html.escape(str(g.get('skipped', 'no labels')))}.</p>"))
    elif not diag:
        sections.append(("Genres", '<p class="note">This bundle was built before the evaluation\'s confusion '
                                   "matrices and reliability bins were stored (evaluation.npz); rebuild it to see "
                                   "them. Its summary scores are in the build report above.</p>"))
    else:
        for level, title in (("genre", "Genre confusion"), ("family", "Genre-family confusion")):
            if level in diag:
                sections.append((title, _confusion(figure, diag[level], level, g)))
        sections.append(("Reliability", _reliability(figure, diag, g)))
        sections.append(("Per-genre accuracy", _per_label(figure, diag["genre"], g)))
    sections.append(("PCA explained variance", _pca(figure, m["metrics"]["pca"])))
    sections.append(("Index", _index(figure, m["metrics"]["index"])))
    return sections


def _mood_map(figure: Any, bundle: Bundle) -> str:
    mood_map = bundle.mood_map
    if mood_map is None:
        return ('<p class="note">This bundle was built before mood maps were stored (moodmap.npz); rebuild it to '
                "see the map.</p>")
    labels = bundle.moods.labels_
    clusters = bundle.moods.clusters_
    colours = mood_colours(len(clusters))
    fig = figure(layout="constrained", figsize=(11, 8))
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))  # no mood drawn wholly on top of another
    xy = mood_map.xy[order]
    size = 2.0 if len(labels) > 20_000 else 6.0
    ax.scatter(xy[:, 0], xy[:, 1], c=[colours[i] for i in labels[order]], s=size, alpha=0.55, linewidths=0,
               rasterized=True)
    for cl in clusters:
        inside = mood_map.xy[labels == cl["id"]]
        if len(inside):
            x, y = np.median(inside, axis=0)
            ax.annotate(str(cl["id"]), (x, y), ha="center", va="center", fontsize=9, fontweight="bold",
                        color="white", bbox={"boxstyle": "circle,pad=0.2", "fc": colours[cl["id"]], "ec": "white"})
    handles = [ax.scatter([], [], c=colours[cl["id"]], s=30, label=f"{cl['id']}  {cl['name']} ({cl['size']:,})")
               for cl in clusters]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              ncols=1 if len(clusters) <= 30 else 2)
    x_label, y_label = mood_map.axis_labels()
    ax.set_xlabel(f"axis 1: {x_label}")
    ax.set_ylabel(f"axis 2: {y_label}")
    ax.set_title("Every track, coloured by mood (numbers mark each mood's median position)")
    caption = (f"Projection: {html.escape(mood_map.method)}. Each axis is a weighted sum of the standardized mood "
               "features; its strongest terms are in the label. The web console draws the same coordinates.")
    return figure_html(fig, caption, "mood map")


def _mood_profiles(figure: Any, bundle: Bundle) -> str:
    clusters = bundle.moods.clusters_
    if not clusters or "z" not in clusters[0]:
        return "<p>This bundle's moods carry no standardized means.</p>"
    columns = list(bundle.mood_map.columns) if bundle.mood_map is not None else []
    features = [f for f in columns if f in clusters[0]["z"]] or list(clusters[0]["z"])[:8]
    z = np.array([[cl["z"][f] for f in features] for cl in clusters])
    mean = np.array([[cl["mean"][f] for f in features] for cl in clusters])
    fig = figure(layout="constrained", figsize=(1.3 * len(features) + 4.5, 0.34 * len(clusters) + 1.6))
    ax = fig.subplots()
    limit = max(1.0, float(np.abs(z).max()))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=30, ha="right")
    ax.set_yticks(range(len(clusters)), [f"{cl['id']}  {cl['name']}" for cl in clusters], fontsize=8)
    for i in range(len(clusters)):
        for j, f in enumerate(features):
            text = f"{mean[i, j]:.0f}" if f == "tempo" or abs(mean[i, j]) >= 10 else f"{mean[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if abs(z[i, j]) > 0.6 * limit else "#1d2430")
    fig.colorbar(image, ax=ax, label="mood mean, standard deviations from the catalog mean", shrink=0.8)
    ax.set_title("Each mood's profile: its mean of each mood feature")
    return figure_html(fig, "Colour: how far the mood's mean lies from the catalog's, in catalog standard deviations "
                            "(red above, blue below); the number is the mean itself.", "mood profiles")


def _evaluated_on(g: dict[str, Any]) -> tuple[str, str]:
    """(short, long) names of the tracks the genre evaluation scored: every labelled track out of fold
    (cross-fitted bundles), or one held-out split of artists (bundles built before)."""
    if "folds" in g:
        return ("out-of-fold tracks", f"Every labelled track, predicted by the fold model that did not see it "
                f"({g['folds']}-fold cross-validation split {g['split']}).")
    return ("held-out artists", "Tracks from the genre evaluation's held-out artists, predicted by the evaluation "
            "model that never saw them.")


def _confusion(figure: Any, level: dict[str, Any], name: str, g: dict[str, Any]) -> str:
    confusion = np.asarray(level["confusion"], dtype=np.float64)
    names = level["names"]
    groups = _family_groups(names) if name == "genre" else None
    if groups is not None:  # genres next to their family's: confusion within a family shows as blocks
        order = groups[0]
        confusion = confusion[np.ix_(order, order)]
        names = [names[i] for i in order]
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    k = len(names)
    side = max(6.0, 0.55 * k + 2) if k <= 20 else min(18.0, 0.16 * k + 3)  # room for the shares in the cells
    fig = figure(layout="constrained", figsize=(side + 1.5, side))
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    font = 9 if k <= 20 else max(5.0, 9 - k / 25)
    ax.set_xticks(range(k), names, rotation=90, fontsize=font)
    ax.set_yticks(range(k), names, fontsize=font)
    for b in (groups[1] if groups is not None else []):
        ax.axhline(b - 0.5, color="#d1242f", lw=0.4)
        ax.axvline(b - 0.5, color="#d1242f", lw=0.4)
    ax.set_xlabel("predicted (top-1)")
    ax.set_ylabel("true")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if share[i, j] >= 0.005:
                    ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.55 else "#1d2430")
    short, long = _evaluated_on(g)
    fig.colorbar(image, ax=ax, label="share of the true label's evaluated tracks", shrink=0.7)
    correct = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f"{name.capitalize()} confusion on {short} ({int(confusion.sum()):,} tracks, "
                 f"top-1 {correct:.3f})")
    caption = ("Rows: the true label (for a track with several, the predicted one when it is among them, else its "
               "first); columns: the top-1 prediction; each row sums to 1. " + long
               + (" Genres are grouped by family; red lines separate the families." if groups is not None else "")
               + (" Zoom into the image to read the labels." if k > 40 else ""))
    return figure_html(fig, caption, f"{name} confusion matrix", dpi=100 if k <= 40 else 160)


def _family_groups(names: list[str]) -> tuple[list[int], list[int]] | None:
    """Genre positions ordered by family (engine/_families.py), and where each new family starts."""
    found = family_matrix(tuple(names))
    if found is None:
        return None
    m, _ = found
    family = np.argmax(m, axis=1)
    order = sorted(range(len(names)), key=lambda i: (family[i], names[i]))
    bounds = [j for j in range(1, len(order)) if family[order[j]] != family[order[j - 1]]]
    return order, bounds


def _reliability(figure: Any, diag: dict[str, dict[str, Any]], g: dict[str, Any]) -> str:
    levels = [lv for lv in ("genre", "family") if lv in diag]
    fig = figure(layout="constrained", figsize=(6.2 * len(levels), 5.2))
    axes = np.atleast_1d(fig.subplots(1, len(levels)))
    ece = {"genre": g.get("ece_top1"), "family": (g.get("families") or {}).get("ece_top1")}
    for ax, level in zip(axes, levels, strict=True):
        d = diag[level]
        count = np.asarray(d["bin_count"], dtype=np.float64)
        edges = np.linspace(0, 1, len(count) + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        filled = count > 0
        confidence = np.asarray(d["bin_confidence"])[filled] / count[filled]
        accuracy = np.asarray(d["bin_correct"])[filled] / count[filled]
        solid = count[filled] >= MIN_BIN_TRACKS  # a bin of a handful of tracks says little: drawn hollow, unjoined
        twin = ax.twinx()
        twin.bar(centres, count, width=edges[1] - edges[0], color="#d9dee7", zorder=0)
        twin.set_ylabel("evaluated tracks in the bin", color="#8a94a6")
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot([0, 1], [0, 1], ls="--", color="#8a94a6", label="perfect calibration")
        ax.plot(confidence[solid], accuracy[solid], "o-", color="#1f6feb", label="observed")
        ax.plot(confidence[~solid], accuracy[~solid], "o", mfc="none", color="#1f6feb",
                label=f"bins of fewer than {MIN_BIN_TRACKS} tracks")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("top-1 probability (mean in the bin)")
        ax.set_ylabel("share whose top-1 is right")
        title = {"genre": "genres", "family": "genre families"}[level]
        title += f": ECE {ece[level]:.3f}" if ece.get(level) is not None else ""
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
    caption = (f"Reliability: {_evaluated_on(g)[0]} binned by the probability of their top-1 label; a point below the "
               "diagonal is over-confident. ECE (expected calibration error) is the count-weighted mean gap, the "
               "same bins as the build report's figure.")
    return figure_html(fig, caption, "reliability diagram")


MIN_BIN_TRACKS = 10


def _per_label(figure: Any, level: dict[str, Any], g: dict[str, Any]) -> str:
    tracks = np.asarray(level["tracks"], dtype=np.float64)
    hits = np.asarray(level["hits"], dtype=np.float64)
    present = tracks > 0
    names = [n for n, p in zip(level["names"], present, strict=True) if p]
    accuracy = hits[present] / tracks[present]
    order = np.argsort(accuracy)
    k = len(names)
    fig = figure(layout="constrained", figsize=(9, max(3.0, 0.2 * k + 1.2)))
    ax = fig.subplots()
    ax.barh(range(k), accuracy[order], color="#1f6feb", height=0.75)
    ax.set_yticks(range(k), [f"{names[i]} ({int(tracks[present][i])})" for i in order],
                  fontsize=max(6.5, 9 - k / 25))
    short, long = _evaluated_on(g)
    ax.axvline(g["top1"], color="#d1242f", ls="-", label=f"all {short} {g['top1']:.3f}")
    ax.axvline(g["random_top1"], color="#8a94a6", ls="--", label=f"random {g['random_top1']:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, k - 0.4)
    ax.set_xlabel("top-1 accuracy (any of the track's genres counts)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Top-1 accuracy per genre, {short} (tracks in brackets)")
    return figure_html(fig, "A track with several genres counts under each of them. " + long, "per-genre accuracy",
                       dpi=100 if k <= 40 else 130)


def _pca(figure: Any, pca: dict[str, Any]) -> str:
    ratio = np.asarray(pca["explained_variance_ratio"])
    kept = pca["components"]
    fig = figure(layout="constrained", figsize=(8, 4.2))
    ax = fig.subplots()
    xs = np.arange(1, len(ratio) + 1)
    ax.bar(xs, ratio, color=["#1f6feb" if i < kept else "#c9d1dc" for i in range(len(ratio))])
    ax.plot(xs, np.cumsum(ratio), "o-", color="#d1242f", label="cumulative")
    ax.axvline(kept + 0.5, color="#8a94a6", ls="--")
    ax.text(kept + 0.6, 0.05, f"{kept} kept: {pca['explained_variance']:.1%}", fontsize=9, color="#4b5563")
    ax.set_xticks(xs)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("principal component")
    ax.set_ylabel("share of the variance")
    ax.legend(loc="center right", fontsize=8)
    ax.set_title(f"PCA of the {pca['input_dimensions']} transformed, standardized features")
    return figure_html(fig, "Blue: the components kept as the search vectors (before L2 normalization).",
                       "PCA explained variance")


def _index(figure: Any, idx: dict[str, Any]) -> str:
    rows = [(f"{idx['kind']} (the index)", idx)] if "recall_at_10" in idx else []
    new = idx.get("new_track_index")
    if isinstance(new, dict):
        rows.append((f"{new['kind']} (new-track index)", new))
    if not rows:
        return (f"<p>{html.escape(idx['kind'])} index of {idx['tracks']:,} vectors of {idx['dim']} dimensions: exact "
                "search, so recall is 1 by construction.</p>")
    labels, values = [], []
    for name, metrics in rows:
        for key, value in metrics.items():
            if key.startswith("recall_at_"):
                labels.append(f"{name}\nrecall@{key.removeprefix('recall_at_')}")
                values.append(float(value))
    fig = figure(layout="constrained", figsize=(max(5.0, 1.8 * len(values) + 2), 3.8))
    ax = fig.subplots()
    bars = ax.bar(range(len(values)), values, color="#1f6feb", width=0.6)
    ax.bar_label(bars, [f"{v:.4f}" for v in values], fontsize=9)
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    ax.set_ylim(min(values) - 0.05 if min(values) > 0.5 else 0, 1.0)
    ax.set_ylabel("recall vs exact search")
    ax.set_title(f"Approximate search: recall against exact inner-product search ({rows[0][1].get('queries', '?')} "
                 "catalog queries)")
    exact = "" if "recall_at_10" in idx else f"The index itself ({html.escape(idx['kind'])}) is exact; "
    return figure_html(fig, exact + "recall@k: the share of the exact k nearest tracks the approximate index "
                                    "returns.", "index recall")
