"""What ``musicrec bench`` reports: the text table (``format_report``) and, with ``--html FILE``, the
table plus pictures of its latency distributions against the floor, as one self-contained HTML file
(the page and figure helpers of engine/_htmlreport.py).

Per RPC: a histogram of its latencies over the floor's (a log time axis, both normalized to a share
of their calls), and the percentile curves of every RPC and the floor on one chart, on the
"nines" axis latency tools use (50, 90, 99, 99.9: each step one more nine), with each RPC's ratio to
the floor at the same percentiles. All from the latencies the run pooled (server/_bench.py
``compare(samples=...)``); matplotlib is the optional report extra.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FLOOR = "health"
PERCENTILES = np.array([50.0, 75, 90, 95, 99, 99.5, 99.9, 99.99])
COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7ea4", "#cf222e")


def format_report(report: dict[str, Any]) -> str:
    """The table ``musicrec bench`` prints: per RPC its latency percentiles, req/s, the share of its calls that
    failed and ratios to the floor; then, when more than the report's ``failure_threshold`` of an RPC's calls
    failed, that the run is not comparable (the calls that failed are not in the latencies)."""
    how = (f"open loop at {report['rate_rps']:g} req/s (latency from the intended send time), at most "
           f"{report['concurrency']} in flight" if report["rate_rps"] else
           f"closed loop, {report['concurrency']} concurrent clients")
    length = f"{report['duration_s']} s" if report["duration_s"] else f"{report['requests_per_round']} requests"
    connections = report.get("connections_per_process", 1)  # runs before it was kept held one
    per = f" of {connections} connections each" if connections > 1 else ""
    asked = report.get("processes_asked", report["processes"])  # what ran, and what was asked when it differs
    fewer = f" ({asked} asked: no more processes than clients)" if asked > report["processes"] else ""
    tls = " over TLS" if report.get("tls") else ""
    width = max([28, *(len(rpc) for rpc in report["rpcs"])])  # "similar in mix(...)" is a row of its own
    lines = [
        f"musicrec bench against {report['address']}{tls}: {how}, in {report['processes']} client "
        f"process{'es' if report['processes'] > 1 else ''}{fewer}{per}; "
        f"{report['rounds']} round{'s' if report['rounds'] != 1 else ''} x {length} per phase "
        f"(+{report['warmup_s']} s warm-up each), "
        "floor and phases alternating",
        f"machine: {report['machine']['cpus']} cpus, {report['machine']['platform']}; {report['date']}",
        "",
        f"{'rpc':<{width}} {'p50 us':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'mean':>8} {'req/s':>8} "
        f"{'failed':>7}  {'p50/floor':>9} {'p99/floor':>9} {'req/s/floor':>11}",
    ]
    shares = {rpc: _failed_share(s) for rpc, s in report["rpcs"].items()}
    for rpc, s in report["rpcs"].items():
        ratio = ("" if rpc == "health" else
                 f"  {s['p50_vs_floor']:>9.2f} {s['p99_vs_floor']:>9.2f} {s['throughput_vs_floor']:>11.2f}")
        lines.append(f"{rpc:<{width}} {s['median_round_p50_us']:>8.0f} {s['p90_us']:>8.0f} {s['p99_us']:>8.0f} "
                     f"{s['p999_us']:>8.0f} {s['max_us']:>8.0f} {s['mean_us']:>8.0f} "
                     f"{s['median_round_throughput_rps']:>8.0f} {percent(shares[rpc]):>7}" + ratio)
    lines.append("(p50 and req/s: median over rounds; the other percentiles pool every round; "
                 "floor = grpc.health.v1 Check on the same server; inside a mix an RPC's req/s is its share; "
                 "failed: the share of the calls that failed, not timed)")
    for rpc, s in report["rpcs"].items():
        if s["errors"]:
            lines.append(f"errors for {rpc} by status: {s['errors']}")
    threshold = report.get("failure_threshold", 0.01)
    over = [rpc for rpc, share in shares.items() if share > threshold]
    if over:
        lines.append(
            f"NOT COMPARABLE: more than {percent(threshold)} of the calls failed for "
            + ", ".join(f"{rpc} ({percent(shares[rpc])})" for rpc in over)
            + ": the latencies, req/s and ratios of these rows time only the calls that succeeded, not the load "
              "asked for: "
              "RESOURCE_EXHAUSTED is a saturated server (its --max-concurrent), UNAVAILABLE one that went away, "
              "CLIENT_BACKLOG this client behind its open-loop schedule (lower --concurrency or --rate, or give "
              "--processes). Exit status 1.")
    return "\n".join(lines)


def _failed_share(s: dict[str, Any]) -> float:
    failed = sum(s["errors"].values())  # from the counts: the report's failed_share is rounded
    return failed / (failed + s["requests"]) if failed else 0.0


def percent(share: float) -> str:
    """0 as "0", a share under 0.1% as "<0.1%" (a failure is never shown as none), else to 0.1%."""
    if share == 0:
        return "0"
    return "<0.1%" if share < 0.001 else f"{share:.1%}"


def bench_report_html(report: dict[str, Any], samples: Mapping[str, Sequence[float]]) -> str:
    from matplotlib.figure import Figure

    from engine import html_document, plain_figure_text  # here, as in the figures' helpers: no engine for the text

    plain_figure_text()

    rpcs = [name for name in report["rpcs"] if name != FLOOR and len(samples.get(name, ())) > 0]
    floor = np.asarray(samples.get(FLOOR, ()), dtype=np.float64) * 1e3  # us
    sections = [("Results", f"<pre>{html.escape(format_report(report))}</pre>"
                            f"<p>Command: <code>{html.escape(report.get('command', 'musicrec bench'))}</code></p>")]
    if len(floor) and rpcs:
        sections.append(("Percentiles against the floor", _percentiles(Figure, floor, rpcs, samples)))
        for i, name in enumerate(rpcs):
            latencies = np.asarray(samples[name], dtype=np.float64) * 1e3
            sections.append((f"{name}: latency distribution",
                             _histogram(Figure, floor, latencies, name, COLOURS[i % len(COLOURS)])))
    else:
        sections.append(("Pictures", "<p>No latencies were recorded (every call failed?).</p>"))
    machine = report["machine"]
    subtitle = html.escape(f"against {report['address']} · {report['mode']}, concurrency {report['concurrency']} · "
                           f"{machine['cpus']} cpus, {machine['platform']} · {report['date']}")
    return html_document("musicrec bench", subtitle, sections)


def _nines(p: np.ndarray) -> np.ndarray:
    """The percentile axis where 90, 99, 99.9 are equally spaced."""
    return -np.log10(1 - np.minimum(p, 99.999) / 100)


def _percentiles(figure: Any, floor: np.ndarray, rpcs: list[str], samples: Mapping[str, Sequence[float]]) -> str:
    from engine import figure_html

    fig = figure(layout="constrained", figsize=(12, 4.8))
    curves, ratios = fig.subplots(1, 2, width_ratios=[3, 2])
    x = _nines(PERCENTILES)
    floor_at = np.percentile(floor, PERCENTILES)
    curves.plot(x, floor_at, "o--", color="#6b7280", label=f"floor ({FLOOR} Check)")
    for i, name in enumerate(rpcs):
        at = np.percentile(np.asarray(samples[name]) * 1e3, PERCENTILES)
        colour = COLOURS[i % len(COLOURS)]
        curves.plot(x, at, "o-", color=colour, label=name)
        ratios.plot(x, at / floor_at, "o-", color=colour, label=name)
    for ax in (curves, ratios):
        ax.set_xticks(x, [f"{p:g}" for p in PERCENTILES])
        ax.set_xlabel("percentile")
        ax.grid(alpha=0.3)
    curves.set_yscale("log")
    _plain_log_labels(curves.yaxis)
    curves.set_ylabel("latency (µs, log scale)")
    curves.set_title("Latency at each percentile")
    curves.legend(fontsize=8)
    ratios.axhline(1.0, color="#6b7280", ls="--")
    ratios.set_ylabel("× the floor at the same percentile")
    ratios.set_title("Ratio to the floor")
    caption = ("Every measured call pooled over the rounds. The floor is a grpc.health.v1 Check on the same server "
               "under the same load, measured in alternating rounds, so the ratio says what the RPC itself costs "
               "on this machine. The percentile axis spaces 90, 99, 99.9 evenly: the tail is where it differs.")
    return figure_html(fig, caption, "latency percentiles against the floor")


def _plain_log_labels(axis: Any) -> None:
    """Plain numbers on a log axis: its default labels are mathtext (``$10^{3}$``), which the engine's figures
    draw as the raw text they are, as they turn maths off (engine ``plain_figure_text``: genre names hold "$")."""
    from matplotlib.ticker import LogFormatter

    axis.set_major_formatter(LogFormatter())
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _histogram(figure: Any, floor: np.ndarray, latencies: np.ndarray, name: str, colour: str) -> str:
    from engine import figure_html

    fig = figure(layout="constrained", figsize=(10, 3.8))
    ax = fig.subplots()
    both = np.concatenate([floor, latencies])
    lo, hi = max(float(both.min()), 1.0), float(both.max())
    bins = np.geomspace(lo, hi * 1.0001, 60) if hi > lo else np.array([lo * 0.9, lo * 1.1])
    for values, label, c in ((floor, f"floor ({FLOOR})", "#6b7280"), (latencies, name, colour)):
        ax.hist(values, bins=bins, weights=np.full(len(values), 1 / len(values)), histtype="stepfilled", alpha=0.35,
                color=c, label=f"{label}: {len(values):,} calls")
        for p, style in ((50, "-"), (99, ":")):
            ax.axvline(np.percentile(values, p), color=c, ls=style, lw=1.2)
    ax.set_xscale("log")
    _plain_log_labels(ax.xaxis)
    ax.set_xlabel("latency (µs, log scale); solid line p50, dotted p99")
    ax.set_ylabel("share of calls")
    ratio = np.percentile(latencies, 50) / np.percentile(floor, 50)
    ax.set_title(f"{name}: p50 of every call {np.percentile(latencies, 50):,.0f} µs = {ratio:.2f}× the floor's "
                 f"{np.percentile(floor, 50):,.0f} µs")
    ax.legend(fontsize=8)
    return figure_html(fig, f"Distribution of {name} latencies over the floor's, each as a share of its calls: "
                            "every round's calls pooled, where the table's p50 is the median of each round's",
                       f"{name} latency histogram")
