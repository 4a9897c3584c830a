"""musicrec bench --html: the run's table and its latency pictures against the floor in one HTML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicrec.cli import main
from server import RunningServer
from tests.engine.test_figures import png_widths


def test_bench_html_draws_percentiles_and_histograms(running: RunningServer, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out, as_json = tmp_path / "bench.html", tmp_path / "bench.json"
    code = main(["bench", "--address", f"127.0.0.1:{running.port}", "--rpc", "similar", "--rpc", "classify",
                 "--rounds", "1", "--duration", "0.4", "--warmup", "0.1", "--html", str(out), "--json", str(as_json)])
    assert code == 0
    page = out.read_text(encoding="utf-8")
    for heading in ("Results", "Percentiles against the floor", "similar: latency distribution",
                    "classify: latency distribution"):
        assert f">{heading}</h2>" in page
    widths = png_widths(page)
    assert len(widths) == 3 and min(widths) > 300
    assert "p50/floor" in page  # the same table as the terminal
    assert "latencies" not in as_json.read_text()  # the samples stay out of the JSON report
    assert "wrote" in capsys.readouterr().err


def test_the_log_axes_are_labelled_in_plain_numbers() -> None:
    """Before: with maths text off for the whole process (engine plain_figure_text, for genre names holding "$"),
    a log axis's default labels drew as their source, ``$\\mathdefault{10^{3}}$``."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    from engine import plain_figure_text
    from server._bench_report import _histogram, _percentiles

    drawn: list[Figure] = []

    def recorded(*args: object, **kwargs: object) -> Figure:
        drawn.append(Figure(*args, **kwargs))
        return drawn[-1]

    rng = np.random.default_rng(0)
    floor, calls = rng.lognormal(5.5, 0.3, 500), rng.lognormal(6.5, 0.6, 500)  # us: one to a few decades
    with matplotlib.rc_context():  # the setting is the process's: put back after
        plain_figure_text()
        _percentiles(recorded, floor, ["similar"], {"similar": (calls / 1e3).tolist()})
        _histogram(recorded, floor, calls, "similar", "#2563eb")
    labels = [t.get_text() for fig in drawn for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
              for t in [*axis.get_ticklabels(), *axis.get_ticklabels(minor=True)]]
    assert any(label.strip() for label in labels)
    assert not [label for label in labels if "$" in label or "mathdefault" in label]
