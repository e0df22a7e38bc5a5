"""Plots of sweep rows and of single schedules, and ``layerpipe plot``."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest
from matplotlib.patches import Rectangle

from models.errors import LayerPipeError
from simulator.cli import main
from simulator.plots import (
    SCHEDULE_STYLE,
    PlotError,
    filter_rows,
    memory_figure,
    schedule_run,
    speedup_figure,
    utilization_figure,
)
from simulator.sweep import experiment_from_mapping, run_sweep

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "results.csv"
    exp = experiment_from_mapping({"networks": ["mlp", "lenet5"], "schedules": ["pipedream", "gpipe", "layerpipe"],
                                   "processors": [2, 3, 4]})
    run_sweep(exp, path, jobs=1)
    return path


@pytest.fixture(scope="module")
def rows(sweep_csv):
    from simulator.sweep import read_rows

    return read_rows(sweep_csv)


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_speedup_figure_has_a_panel_per_network_and_a_line_per_schedule(rows, tmp_path):
    fig = speedup_figure(rows, [tmp_path / "s.png", tmp_path / "s.svg"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["mlp", "lenet5"]
    assert "Speedup over PipeDream" in fig._suptitle.get_text() and "mac:256" in fig._suptitle.get_text()
    for ax, net in zip(axes, ("mlp", "lenet5")):
        assert ax.get_xlabel() == "processors P" and "(x)" in ax.get_ylabel()
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert {"gpipe", "layerpipe"} <= set(lines)
        lp = lines["layerpipe"]
        expected = [r["speedup_vs_pipedream"] for r in filter_rows(rows, networks=[net], schedules=["layerpipe"])]
        assert list(lp.get_xdata()) == [2, 3, 4] and list(lp.get_ydata()) == expected
        assert lp.get_color().lower() == SCHEDULE_STYLE["layerpipe"]["color"].lower()
        # PipeDream is the dashed reference at 1, not a line of its own
        assert "pipedream" not in lines and any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.get_lines())
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["gpipe", "layerpipe", "pipedream (baseline = 1)"]
    assert (tmp_path / "s.png").read_bytes().startswith(PNG)
    root = ET.parse(tmp_path / "s.svg").getroot()
    assert root.tag.endswith("svg")


def test_speedup_over_one_processor_draws_the_ideal(rows):
    fig = speedup_figure(filter_rows(rows, networks=["mlp"]), baseline="sequential")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "pipedream" in labels
    ideal = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert ideal and list(ideal[0].get_xdata()) == list(ideal[0].get_ydata()) == [2, 3, 4]
    assert "over 1 processor" in ax.get_ylabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()][-1] == "ideal (speedup = P)"


def test_utilization_bars_are_the_rows_values_at_the_largest_p(rows):
    fig = utilization_figure(rows)
    ax = fig.axes[0]
    assert ax.get_title() == "mlp (P = 4)" and "%" in ax.get_ylabel() and ax.get_xlabel() == "processor"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["P0", "P1", "P2", "P3"]
    heights = [b.get_height() for b in _bars(ax)]
    expected = []
    for s in ("pipedream", "gpipe", "layerpipe"):
        (r,) = filter_rows(rows, networks=["mlp"], schedules=[s], processors=[4])
        values = [100 * u for u in r["utilization"]]
        expected += values + [0.0] * (4 - len(values))  # unused processors are drawn as 0
    assert heights == pytest.approx(expected)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("pipedream (mean ")


def test_utilization_at_a_chosen_processor_count(rows):
    fig = utilization_figure(rows, processors=2)
    assert [ax.get_title() for ax in fig.axes] == ["mlp (P = 2)", "lenet5 (P = 2)"]
    with pytest.raises(PlotError, match="no run with 7 processors"):
        utilization_figure(rows, processors=7)


def test_memory_bars_are_peak_mib(rows):
    sel = filter_rows(rows, networks=["lenet5"], processors=[3])
    fig = memory_figure(sel)
    ax = fig.axes[0]
    heights = [b.get_height() for b in _bars(ax)]
    expected = []
    for r in sel:
        expected += [float(b) / 2**20 for b in r["peak_memory_bytes"]] + [0.0] * (3 - len(r["peak_memory_bytes"]))
    assert heights == pytest.approx(expected)
    assert "MiB" in ax.get_ylabel()
    ticks = list(ax.get_yticks())  # round ticks: multiples of 1, 2, 2.5 or 5 times a power of ten
    step = ticks[1] - ticks[0]
    assert any(abs(step / 10 ** math.floor(math.log10(step)) - k) < 1e-9 for k in (1, 2, 2.5, 5))
    assert all(abs(t / step - round(t / step)) < 1e-6 for t in ticks)


def test_compare_rows_plot_too():
    from models.network.zoo import load_network
    from simulator.costs import MacArray
    from simulator.evaluate import compare
    from simulator.platform import Platform

    rows = []
    for p in (2, 3):
        rows += compare(load_network("mlp"), ["pipedream", "layerpipe"], Platform.homogeneous(p, MacArray(256)),
                        minibatches=16, batch=8)
    fig = speedup_figure(rows)
    assert fig.axes[0].get_title() == "mlp"
    assert "mac 256/cycle" in fig._suptitle.get_text()


def test_nothing_to_draw_and_bad_files(rows, tmp_path):
    with pytest.raises(PlotError):
        speedup_figure([])
    with pytest.raises(PlotError):
        memory_figure([{**rows[0], "error": "boom"}])
    with pytest.raises(PlotError, match="baseline"):
        speedup_figure(rows, baseline="gpipe")
    with pytest.raises(LayerPipeError, match="png"):
        speedup_figure(rows, tmp_path / "s.jpg")


def test_schedule_run_gantt_memory_and_utilization(tmp_path):
    run = schedule_run("mlp", "layerpipe", 3, minibatches=8)
    m = run.metrics
    fig = run.gantt(tmp_path / "g.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:3] == ["P0", "P1", "P2"]
    assert ax.get_xlabel() == "cycles" and "lower bound" in ax.get_title(loc="left")
    assert (tmp_path / "g.png").read_bytes().startswith(PNG)
    fig = run.memory_breakdown(tmp_path / "m.svg")
    ax = fig.axes[0]
    tops = {}
    for b in _bars(ax):
        x = round(b.get_x() + b.get_width() / 2)
        tops[x] = max(tops.get(x, 0), b.get_y() + b.get_height())
    assert [tops[p] for p in sorted(tops)] == pytest.approx([x.total / 2**20 for x in m.memory])  # in MiB
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "weights x versions", "optimizer state", "gradient buffers", "stashed activations (peak)"]
    fig = run.utilization()
    assert [b.get_height() for b in _bars(fig.axes[0])] == pytest.approx([100 * u for u in m.utilization])
    fig = run.memory_over_time()
    assert fig.axes[0].get_xlabel() == "cycles"


def test_schedule_run_measures_what_sweeps_and_simulate_report():
    from simulator.sweep import RunConfig, run_one

    for schedule in ("layerpipe", "gpipe"):
        run = schedule_run("lenet5", schedule, 3)
        row = run_one(RunConfig("lenet5", schedule, 3))
        assert run.metrics.cycles_per_minibatch == row["cycles_per_minibatch"]
        assert run.metrics.utilization == row["utilization"]
        assert run.metrics.lower_bound == row["lower_bound_cycles"]


# --------------------------------------------------------------------------- layerpipe plot


def test_cli_plot_from_a_sweep_csv(sweep_csv, tmp_path, capsys):
    out_png, out_svg = tmp_path / "speedup.png", tmp_path / "speedup.svg"
    assert main(["plot", "speedup", str(sweep_csv), "-o", str(out_png), "-o", str(out_svg)]) == 0
    assert out_png.read_bytes().startswith(PNG) and out_svg.stat().st_size > 1000
    assert "18 runs from" in capsys.readouterr().out
    assert main(["plot", "utilization", str(sweep_csv), "--networks", "lenet5", "-p", "3", "-o",
                 str(tmp_path / "u.png"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 3 and summary["files"] == [str(tmp_path / "u.png")]
    assert main(["plot", "memory", str(sweep_csv), "--schedules", "layerpipe", "-o", str(tmp_path / "m.svg")]) == 0


def test_cli_plot_simulates_networks(tmp_path, capsys):
    assert main(["plot", "utilization", "mlp", "-p", "3", "--schedules", "pipedream", "layerpipe",
                 "-o", str(tmp_path / "u.png"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["source"] == "simulation" and summary["rows"] == 2
    assert main(["plot", "gantt", "mlp", "--schedule", "layerpipe", "-p", "2", "-n", "8",
                 "-o", str(tmp_path / "g.svg")]) == 0
    assert (tmp_path / "g.svg").stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["plot", "speedup", "no_such_net", "-o", "x.png"], "no_such_net"),
    (["plot", "speedup", "mlp", "-o", "x.jpg"], "x.jpg"),
    (["plot", "memory", "mlp", "-p", "0"], "positive"),
    (["plot", "speedup", "mlp", "--schedules", "bogus"], "unknown schedule"),
])
def test_cli_plot_bad_input(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerpipe plot: error:") and message in err and err.count("\n") == 1


def test_cli_plot_csv_filters_that_match_nothing(sweep_csv, capsys, tmp_path):
    assert main(["plot", "speedup", str(sweep_csv), "--networks", "vgg16", "-o", str(tmp_path / "x.png")]) == 2
    assert "no rows" in capsys.readouterr().err
