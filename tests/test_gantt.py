"""Gantt and memory plots, and the ``trace`` / ``gantt`` subcommands."""

import json

import pytest

from models.errors import LayerPipeError
from models.graph.synthetic import uniform_pipeline_graph
from schedules.planning.orders import one_f_one_b_orders
from schedules.schedule import Schedule
from simulator.costs import LinkModel, MacArray
from simulator.engine import simulate
from simulator.platform import Platform
from simulator.plots.gantt import KIND_COLORS, plot_gantt, plot_memory
from simulator.trace import MemoryTrace, read_jsonl

PNG = b"\x89PNG\r\n\x1a\n"


def zb_trace(p=8, m=16, link=LinkModel(1, 64.0)):
    s = Schedule("zb-h1", uniform_pipeline_graph(p, 2, 3, 1, act_bytes=64), one_f_one_b_orders(p, m, defer_w=True),
                 microbatches_per_step=m)
    t = MemoryTrace()
    simulate(s, Platform.homogeneous(p, MacArray(1), link), trace=t)
    return s, t


def test_gantt_8_processors_16_minibatches_png_and_svg(tmp_path):
    _, t = zb_trace()
    fig = plot_gantt(t, tmp_path / "g.png", title="ZB-H1")
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG
    ax = fig.axes[0]
    rows = [label.get_text() for label in ax.get_yticklabels()]
    assert rows[:8] == [f"P{p}" for p in range(8)] and "P0\u2192P1" in rows and len(rows) == 8 + 14
    assert ax.get_xlabel() == "cycles" and ax.get_title(loc="left") == "ZB-H1"
    legend = [x.get_text() for x in ax.get_legend().get_texts()]
    assert legend[:3] == ["F (forward)", "B (backward)", "W (weight grad)"]
    texts = [x.get_text() for x in ax.texts]
    assert texts and set(texts) <= {str(u) for u in range(16)} | {x.label for x in t.tasks}
    w, h = fig.get_size_inches()
    assert w >= 12 and 5 <= h <= 12  # a row is about 0.4 inch: readable
    plot_gantt(t, tmp_path / "g.svg", links=False)
    svg = (tmp_path / "g.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_labels_only_where_they_fit():
    _, t = zb_trace(p=2, m=4)
    wide = plot_gantt(t, width=30)
    narrow = plot_gantt(t, width=2.5)
    assert len(wide.axes[0].texts) > len(narrow.axes[0].texts)
    assert any("." in x.get_text() for x in wide.axes[0].texts)  # full labels such as F1.2 when wide
    assert not plot_gantt(t, labels=False).axes[0].texts


def test_rows_and_colours():
    _, t = zb_trace(p=3, m=3)
    ax = plot_gantt(t, links=False).axes[0]
    assert [x.get_text() for x in ax.get_yticklabels()] == ["P0", "P1", "P2"]
    colours = {tuple(round(c, 3) for c in coll.get_facecolor()[0][:3]) for coll in ax.collections}
    assert len(colours) == 3 and set(KIND_COLORS) >= {"F", "B", "W"}
    zoom = plot_gantt(t, start=10, end=20).axes[0]
    assert zoom.get_xlim() == (10, 20)


def test_bad_plot_requests():
    _, t = zb_trace(p=2, m=2)
    with pytest.raises(LayerPipeError, match=r"\.png, \.svg"):
        plot_gantt(t, "chart.txt")
    with pytest.raises(LayerPipeError, match="empty"):
        plot_gantt(MemoryTrace())
    with pytest.raises(LayerPipeError, match="window"):
        plot_gantt(t, start=5, end=5)


def test_memory_plot(tmp_path):
    s, t = zb_trace(p=4, m=8)
    fig = plot_memory(t, s, tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG
    ax = fig.axes[0]
    assert len(ax.lines) == 4 and ax.get_xlabel() == "cycles"
    assert any("peak" in x.get_text() for x in ax.get_legend().get_texts())


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cli():
    pytest.importorskip("schedules.registry")
    pytest.importorskip("models.network.zoo")
    from simulator.cli import main
    return main


def test_trace_command_writes_chrome_json(cli, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert cli(["trace", "mlp", "--schedule", "pipedream", "--processors", "3", "--minibatches", "4",
                "--batch", "4", "--link", "20,16", "-o", str(out), "--check"]) == 0
    assert "wrote" in capsys.readouterr().out
    events = json.loads(out.read_text())["traceEvents"]
    tasks = [e for e in events if e["ph"] == "X" and e["cat"] != "transfer"]
    assert tasks and all(e["dur"] >= 0 for e in tasks)
    assert {e["args"]["name"] for e in events if e.get("name") == "thread_name"} >= {"P0", "P1", "P2"}


def test_chrome_flows_run_producer_to_link_to_every_reader(cli, tmp_path):
    """Every transfer has an arrow from the task that produced it to its first hop, and from its
    last hop to each task on the destination that reads it: checked against the task graph
    (each reader is a successor of the producer through that tensor) and against time (an arrow
    never runs backwards), on a ring where transfers take two hops."""
    from models.graph.build import training_graph
    from models.graph.tasks import edge_tensor
    from models.network.zoo import get_network
    from simulator.trace import tensor_name

    out = tmp_path / "t.json"
    assert cli(["trace", "lenet5", "-s", "layerpipe", "-p", "4", "-n", "6", "-b", "4", "--link", "30,16",
                "--topology", "ring", "-o", str(out)]) == 0
    events = json.loads(out.read_text())["traceEvents"]
    slices = {(e["tid"], e["ts"]): e for e in events if e["ph"] == "X"}
    flows: dict = {}
    for e in events:
        if e.get("cat") == "flow":
            flows.setdefault(e["id"], {})[e["ph"]] = e
    assert flows and all(set(f) == {"s", "f"} for f in flows.values())
    graph = training_graph(get_network("lenet5"), 4, view="layerpipe")
    received = 0
    for f in flows.values():
        start, end = f["s"], f["f"]
        assert end["ts"] >= start["ts"]  # arrows run forward in time
        if start["name"] != "receive":
            continue
        received += 1
        link = slices[(start["tid"], next(ts for (tid, ts), x in slices.items() if tid == start["tid"]
                                           and abs(ts + x["dur"] - start["ts"]) < 1e-9))]
        reader = slices[(end["tid"], end["ts"])]
        producer = link["args"]["producer"].rsplit(".", 1)[0]  # "AG2_3.5" -> "AG2_3"
        task = next(n for n in graph if f"{n[0]}{'_' if n[0][-1].isdigit() else ''}{n[1]}" == producer)
        readers = {(s[0], s[1]) for s in graph.successors(task)
                   if tensor_name(edge_tensor(graph, task, s)) == link["args"]["tensor"]}
        assert (reader["args"]["kind"], reader["args"]["layer"]) in readers
        assert reader["args"]["unit"] == link["args"]["unit"] and end["tid"] == link["args"]["to"]
    transfers = [e for e in events if e.get("cat") == "transfer" and e["args"]["what"] != "weights"
                 and e["args"]["dst"] == e["args"]["to"]]
    assert received >= len(transfers) > 0  # every last hop reaches at least one reader


def test_trace_command_jsonl_and_json_summary(cli, tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert cli(["trace", "mlp", "-s", "1f1b", "-p", "3", "-n", "2", "-m", "4", "-b", "8", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["schedule"] == "1f1b" and summary["units"] == 8 and summary["format"] == "jsonl"
    assert len(read_jsonl(out).tasks) == summary["tasks"]


def test_gantt_command(cli, tmp_path, capsys):
    png, svg = tmp_path / "g.png", tmp_path / "m.svg"
    assert cli(["gantt", "lenet5", "-s", "layerpipe", "-p", "3", "-n", "4", "-b", "2", "--link", "50,16",
                "--topology", "ring", "-o", str(png), "--memory-plot", str(svg)]) == 0
    assert png.read_bytes()[:8] == PNG and "<svg" in svg.read_text()
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["gantt", "mlp", "-s", "nosuch", "-o", "x.png"], "unknown schedule"),
    (["gantt", "mlp", "-s", "gpipe", "-o", "x.txt"], ".png"),
    (["trace", "mlp", "-s", "gpipe", "-o", "x.csv"], ".json"),
    (["trace", "mlp", "-s", "gpipe", "--link", "fast"], "link"),
    (["trace", "mlp", "-s", "gpipe", "--hardware", "gpu"], "hardware"),
    (["trace", "mlp", "-s", "gpipe", "--processors", "0"], "processors"),
    (["trace", "mlp", "-s", "gpipe", "--minibatches", "0"], "minibatches"),
    (["trace", "mlp", "-s", "gpipe", "--microbatches", "0"], "microbatches"),
    (["trace", "nonet", "-s", "gpipe"], "nonet"),
    (["gantt", "mlp", "-s", "gpipe", "--start", "9", "--end", "3", "-o", "x.png"], "--end"),
])
def test_bad_input_is_one_line_and_exit_2(cli, capsys, argv, needle):
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_common_options_resolve():
    pytest.importorskip("schedules.registry")
    import argparse

    from simulator.commands.common import add_run_arguments, resolve
    ap = argparse.ArgumentParser()
    add_run_arguments(ap)
    args = ap.parse_args(["mlp", "-s", "gpipe", "-p", "2", "--link", "10,8", "--topology", "ring", "-m", "4",
                          "--no-overlap", "--input", "1x8x8"])
    net, plat, sched = resolve(args)
    assert net.input_shape == (1, 8, 8) and plat.size == 2 and not plat.overlap_comm
    assert plat.link.latency == 10 and sched.name == "gpipe" and sched.microbatches_per_step == 4
