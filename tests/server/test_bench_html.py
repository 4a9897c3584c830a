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
