"""Figures of sweep results and of single schedules (matplotlib, Agg; no pyplot state).

From rows - those of :func:`simulator.sweep.run_sweep` / :func:`simulator.sweep.read_rows`
(or of :func:`simulator.evaluate.compare`):

* :func:`speedup_figure` - speedup against processors, one panel per network (and
  platform), one line per schedule; against PipeDream (a dashed line marks 1) or against
  one processor (a dotted line marks the ideal, P).
* :func:`utilization_figure` - utilization of each processor (busy compute cycles /
  cycles of the steady-state window, in %), grouped bars per schedule; one panel per
  network and platform, at the largest processor count (or the one asked for).
* :func:`memory_figure` - peak memory of each processor (weights x versions, optimizer
  state, gradient buffers and stashed activations), same layout.

From one simulated schedule (:func:`schedule_run` returns a :class:`ScheduleRun` with
its trace and metrics): :meth:`ScheduleRun.gantt` (the Gantt chart of
:func:`simulator.plots.gantt.plot_gantt`), :meth:`ScheduleRun.memory_over_time`
(:func:`simulator.plots.gantt.plot_memory`) and :meth:`ScheduleRun.memory_breakdown` (stacked
bars per processor: weights, optimizer state, gradient buffers, stash peak).

Every function returns the :class:`matplotlib.figure.Figure` and, given ``path`` (one
path or a list), saves it as PNG or SVG (or PDF) by the file's extension. Panels share
one colour and marker per schedule across all figures (:data:`SCHEDULE_STYLE`).

>>> from simulator.sweep import experiment_from_mapping, run_sweep
>>> rows = run_sweep(experiment_from_mapping({"networks": "mlp", "schedules": ["pipedream", "layerpipe"],
...                                          "processors": [2, 3]}), jobs=1).rows
>>> fig = speedup_figure(rows)
>>> fig.axes[0].get_xlabel(), fig.axes[0].get_title()
('processors P', 'mlp')
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator, PercentFormatter

from models.errors import LayerPipeError
from simulator.plots.gantt import MIB, _new_figure, mib_axis, plot_gantt, plot_memory, save

#: colour and marker of each schedule in every figure (colour-blind friendly palette)
SCHEDULE_STYLE: dict[str, dict[str, str]] = {
    "sequential": {"color": "#555555", "marker": "."},
    "pipedream": {"color": "#0173B2", "marker": "o"},
    "gpipe": {"color": "#949494", "marker": "v"},
    "1f1b": {"color": "#CC78BC", "marker": "^"},
    "zb-h1": {"color": "#CA9161", "marker": "D"},
    "layerpipe": {"color": "#D55E00", "marker": "s"},
    "layerpipe2": {"color": "#029E73", "marker": "P"},
}
_EXTRA_COLORS = ("#DE8F05", "#56B4E9", "#ECE133", "#FBAFE4", "#000000")
_EXTRA_MARKERS = ("X", "*", "h", "<", ">")
BASELINES = ("pipedream", "sequential")


class PlotError(LayerPipeError):
    """Nothing to draw, or a bad plot request (one line; the CLI exits with 2)."""


def schedule_style(name: str, known: Sequence[str] = ()) -> dict[str, str]:
    """Colour and marker of schedule ``name`` (unknown names get the next spare style)."""
    if name in SCHEDULE_STYLE:
        return SCHEDULE_STYLE[name]
    others = [s for s in known if s not in SCHEDULE_STYLE]
    i = others.index(name) if name in others else 0
    return {"color": _EXTRA_COLORS[i % len(_EXTRA_COLORS)], "marker": _EXTRA_MARKERS[i % len(_EXTRA_MARKERS)]}


def _schedule_order(names: Iterable[str]) -> list[str]:
    from schedules.registry import SCHEDULES

    names = set(names)
    return [s for s in SCHEDULES if s in names] + sorted(names - set(SCHEDULES))


# --------------------------------------------------------------------------- rows


def _platform_label(row: Mapping[str, Any]) -> str:
    """``mac:256, link 100,16`` (plus the topology unless fully connected, the memory capacity
    and the parallelism mode when not the defaults)."""
    if row.get("hardware") is not None:
        label = f"{row['hardware']}, link {row.get('link', '?')}"
        topo = row.get("topology")
        if topo and topo != "full":
            label += f", {topo}"
        memory = row.get("memory_capacity")
        if memory and memory != "none":
            label += f", {memory} per processor"
        if row.get("parallelism", "hybrid") != "hybrid":
            label += f", {row['parallelism']}"
        return label
    text = str(row.get("platform", ""))
    head, sep, rest = text.partition(" x ")  # compare() rows: "4 x mac 256/cycle, ..."
    return rest if sep and head.strip().isdigit() else text


def _ok(rows: Iterable[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]]:
    out = []
    for r in rows:
        value = r.get(metric)
        if r.get("error") or value is None:
            continue
        # NaN ("not measured"), infinite or negative figures are not results: never drawn
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not (math.isfinite(value)
                                                                                  and value >= 0):
            continue
        out.append(r)
    return out


def filter_rows(rows: Iterable[Mapping[str, Any]], *, networks: Sequence[str] | None = None,
                schedules: Sequence[str] | None = None, processors: Sequence[int] | None = None,
                hardware: Sequence[str] | None = None, links: Sequence[str] | None = None,
                topologies: Sequence[str] | None = None) -> list[Mapping[str, Any]]:
    """The rows matching every criterion given (``None``: any). Networks match the
    configuration (``network``) or the network's own name (``network_name``)."""
    out = []
    for r in rows:
        if networks is not None and r.get("network") not in networks and r.get("network_name") not in networks:
            continue
        if schedules is not None and r.get("schedule") not in schedules:
            continue
        if processors is not None and r.get("processors") not in processors:
            continue
        if hardware is not None and r.get("hardware") not in hardware:
            continue
        if links is not None and r.get("link") not in links:
            continue
        if topologies is not None and r.get("topology", "full") not in topologies:
            continue
        out.append(r)
    return out


def _facets(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Rows by (network, platform label), in order of first appearance."""
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        groups.setdefault((str(r.get("network")), _platform_label(r)), []).append(r)
    return groups


def _grid(n: int, panel_w: float, panel_h: float, dpi: int, max_cols: int = 3):
    cols = min(max_cols, n)
    nrows = math.ceil(n / cols)
    fig = Figure(figsize=(panel_w * cols, panel_h * nrows + 0.9), dpi=dpi, layout="constrained")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, cols, squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _panel_titles(fig: Figure, axes, keys: list[tuple[str, str]], title: str,
                  extra: Sequence[str] | None = None) -> None:
    """Panel titles: the network (and the platform when the panels' platforms differ)."""
    platforms = {k[1] for k in keys}
    one_platform = len(platforms) == 1
    for i, (ax, (net, plat)) in enumerate(zip(axes, keys)):
        text = net if one_platform else f"{net}\n{plat}"
        if extra:
            text += f" ({extra[i]})"
        ax.set_title(text, fontsize=10)
    suffix = f"  -  {next(iter(platforms))}" if one_platform and platforms != {""} else ""
    fig.suptitle(title + suffix, fontsize=12)


def _style_axes(ax) -> None:
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _save(fig: Figure, path) -> Figure:
    if path is None:
        return fig
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    for p in paths:
        save(fig, p)
    return fig


# --------------------------------------------------------------------------- speedup


def speedup_figure(rows: Iterable[Mapping[str, Any]], path=None, *, baseline: str = "pipedream",
                   title: str | None = None, dpi: int = 120) -> Figure:
    """Speedup against processors, per network (and platform) and schedule.

    ``baseline="pipedream"`` plots ``speedup_vs_pipedream`` (PipeDream's cycles per
    minibatch / the schedule's; PipeDream itself is the dashed line at 1);
    ``baseline="sequential"`` plots ``speedup_vs_sequential`` (one processor running every
    task / the schedule), with the ideal speedup P dotted.
    """
    if baseline not in BASELINES:
        raise PlotError(f"unknown baseline {baseline!r} (known: {', '.join(BASELINES)})")
    metric = f"speedup_vs_{baseline}"
    rows = _ok(rows, metric)
    if not rows:
        raise PlotError("no successful runs to plot")
    groups = _facets(rows)
    fig, axes = _grid(len(groups), 5.0, 3.6, dpi)
    names = _schedule_order(r["schedule"] for r in rows)
    drawn: dict[str, Line2D] = {}
    for ax, (key, group) in zip(axes, groups.items()):
        ps = sorted({int(r["processors"]) for r in group})
        for s in names:
            if baseline == "pipedream" and s == "pipedream":
                continue
            pts = sorted((int(r["processors"]), float(r[metric])) for r in group if r["schedule"] == s)
            if not pts:
                continue
            style = schedule_style(s, names)
            (line,) = ax.plot([p for p, _ in pts], [y for _, y in pts], marker=style["marker"], color=style["color"],
                              linewidth=1.6, markersize=5, label=s)
            drawn.setdefault(s, line)
        if baseline == "pipedream":
            ref = ax.axhline(1.0, color=SCHEDULE_STYLE["pipedream"]["color"], linestyle="--", linewidth=1.0)
            drawn.setdefault("pipedream (baseline = 1)", ref)
        else:
            (ref,) = ax.plot(ps, ps, linestyle=":", color="#777777", linewidth=1.0)
            drawn.setdefault("ideal (speedup = P)", ref)
        ax.set_xlabel("processors P")
        ax.set_ylabel("speedup over PipeDream (x)" if baseline == "pipedream" else "speedup over 1 processor (x)")
        ax.set_xticks(ps)
        if baseline == "sequential":
            ax.set_ylim(bottom=0)
        _style_axes(ax)
    _panel_titles(fig, axes, list(groups), title or ("Speedup over PipeDream (cycles per minibatch ratio)"
                                                    if baseline == "pipedream" else
                                                    "Speedup over one processor (cycles per minibatch ratio)"))
    fig.legend(list(drawn.values()), list(drawn), loc="outside lower center", ncols=min(len(drawn), 7),
               frameon=False, fontsize=9)
    return _save(fig, path)


def ladder_figure(ladder, path=None, *, title: str | None = None, dpi: int = 120) -> Figure:
    """The attribution ladder (:func:`simulator.explain.explain`) as a waterfall: each rung's
    factor is a bar from the speedup over PipeDream before it to the speedup after it (log scale,
    so the bars add up to the method's speedup), labelled with the factor and the rung's memory."""
    rungs = ladder.rungs
    fig = _new_figure(8.0, 0.55 * len(rungs) + 1.4, dpi)
    ax = fig.add_subplot(1, 1, 1)
    level = 1.0
    for i, r in enumerate(rungs):
        after = rungs[0].cycles_per_minibatch / r.cycles_per_minibatch
        lo, hi = sorted((level, after))
        color = "#029E73" if after > level * (1 + 1e-9) else "#D55E00" if after < level * (1 - 1e-9) else "#949494"
        if i == 0:
            ax.plot([1.0, 1.0], [i - 0.3, i + 0.3], color="#0173B2", linewidth=3)
        else:
            ax.barh(i, hi - lo, left=lo, color=color, height=0.55)
        ax.annotate(f"x{r.factor:.3f}   {r.peak_memory / MIB:,.0f} MiB", xy=(max(level, after), i),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
        level = after
    ax.set_yticks(range(len(rungs)))
    ax.set_yticklabels([r.name for r in rungs], fontsize=9)
    ax.invert_yaxis()
    ax.set_xscale("log")
    levels = [1.0] + [rungs[0].cycles_per_minibatch / r.cycles_per_minibatch for r in rungs]
    ax.set_xlim(min(levels) / 1.04, max(levels) * 1.25)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    ax.axvline(1.0, color="#0173B2", linestyle="--", linewidth=1.0)
    ax.set_xlabel("speedup over PipeDream (x, log scale)")
    _style_axes(ax)
    ax.set_title(title or f"{ladder.method} on {ladder.network}: x{ladder.speedup:.3f} over PipeDream, rung by rung",
                 fontsize=11, loc="left")
    fig.tight_layout()
    return _save(fig, path)


def tta_figure(rows, path=None, *, title: str | None = None, dpi: int = 120) -> Figure:
    """Test accuracy against simulated cycles, one line per schedule of
    :func:`simulator.studies.tta.time_to_accuracy` (the mean over its seeds, the band their
    minimum to maximum; x = minibatches x the schedule's cycles per minibatch), with the target
    dashed."""
    rows = [r for r in rows if r.runs and r.runs[0].curve]
    if not rows:
        raise PlotError("no accuracy measurements to plot")
    fig = _new_figure(7.0, 4.4, dpi)
    ax = fig.add_subplot(1, 1, 1)
    for r in rows:
        steps = [s for s, _ in r.runs[0].curve]
        accs = [[acc for _, acc in run.curve] for run in r.runs]
        n = min(len(a) for a in accs)
        xs = [steps[i] * r.cycles_per_minibatch for i in range(n)]
        mean = [sum(a[i] for a in accs) / len(accs) for i in range(n)]
        lo = [min(a[i] for a in accs) for i in range(n)]
        hi = [max(a[i] for a in accs) for i in range(n)]
        style = schedule_style(r.method, [x.method for x in rows])
        ax.plot(xs, mean, color=style["color"], linewidth=1.5, label=r.schedule,
                linestyle="-" if r.schedule == r.method else "--")
        ax.fill_between(xs, lo, hi, color=style["color"], alpha=0.15, linewidth=0)
    ax.axhline(rows[0].target, color="#555555", linestyle=":", linewidth=1.0, label=f"target {rows[0].target:.0%}")
    ax.set_xlim(left=0)
    ax.set_xlabel("simulated cycles")
    ax.set_ylabel("test accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _style_axes(ax)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(title or "Time to accuracy", fontsize=11, loc="left")
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- per processor


def _at_processors(groups, processors: int | None):
    """Each facet's rows at ``processors`` (default: the facet's largest processor count)."""
    out = {}
    for key, group in groups.items():
        p = processors if processors is not None else max(int(r["processors"]) for r in group)
        sel = [r for r in group if int(r["processors"]) == p]
        if sel:
            out[key] = (p, sel)
    return out


def _per_processor_figure(rows, metric: str, *, processors: int | None, title: str, ylabel: str,
                          scale: float, legend_value, axis_setup, dpi: int) -> Figure:
    rows = _ok(rows, metric)
    if not rows:
        raise PlotError("no successful runs to plot")
    chosen = _at_processors(_facets(rows), processors)
    if not chosen:
        have = sorted({int(r["processors"]) for r in rows})
        raise PlotError(f"no run with {processors} processors (the rows have {', '.join(map(str, have))})")
    fig, axes = _grid(len(chosen), 5.6, 4.4, dpi, max_cols=2)
    names = _schedule_order(r["schedule"] for r in rows)
    for ax, (key, (p, group)) in zip(axes, chosen.items()):
        present = [s for s in names if any(r["schedule"] == s for r in group)]
        width = 0.8 / max(1, len(present))
        for i, s in enumerate(present):
            r = next(r for r in group if r["schedule"] == s)
            values = [float(v) * scale for v in r[metric]]
            label = f"{s} ({legend_value(r, values)}"
            if len(values) < p:  # the schedule left some processors unused: draw them as 0
                label += f", uses {len(values)} of {p}"
                values += [0.0] * (p - len(values))
            xs = [x - 0.4 + width * (i + 0.5) for x in range(len(values))]
            style = schedule_style(s, names)
            ax.bar(xs, values, width=width * 0.95, color=style["color"], label=label + ")")
        ax.set_xticks(range(p))
        ax.set_xticklabels([f"P{i}" for i in range(p)], fontsize=8 if p <= 12 else 6)
        ax.set_xlim(-0.6, p - 0.4)
        ax.set_xlabel("processor")
        ax.set_ylabel(ylabel)
        axis_setup(ax)
        _style_axes(ax)
        ax.grid(axis="x", visible=False)
        # below the panel, in columns: a legend beside it took 40% of the width
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncols=min(2, len(present)))
    _panel_titles(fig, axes, list(chosen), title, extra=[f"P = {p}" for p, _ in chosen.values()])
    return fig


def utilization_figure(rows: Iterable[Mapping[str, Any]], path=None, *, processors: int | None = None,
                       title: str | None = None, dpi: int = 120) -> Figure:
    """Utilization of every processor (%, busy compute cycles / steady-state window), grouped
    by schedule; one panel per network and platform at ``processors`` (default: the largest)."""

    def setup(ax):
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))

    fig = _per_processor_figure(
        rows, "utilization", processors=processors, title=title or "Utilization per processor (steady state)",
        ylabel="utilization (% of cycles busy)", scale=100.0,
        legend_value=lambda r, v: f"mean {float(r.get('utilization_mean') or sum(v) / 100 / len(v)):.0%}",
        axis_setup=setup, dpi=dpi)
    return _save(fig, path)


def memory_figure(rows: Iterable[Mapping[str, Any]], path=None, *, processors: int | None = None,
                  title: str | None = None, dpi: int = 120) -> Figure:
    """Peak memory of every processor (weights x versions, optimizer state, gradient buffers,
    stashed activations), grouped by schedule; layout as :func:`utilization_figure`."""

    def setup(ax):
        ax.set_ylim(bottom=0)
        mib_axis(ax)

    fig = _per_processor_figure(
        rows, "peak_memory_bytes", processors=processors, title=title or "Peak memory per processor",
        ylabel="peak memory (MiB)", scale=1 / MIB,
        legend_value=lambda r, v: f"max {max(v):.4g} MiB", axis_setup=setup, dpi=dpi)
    return _save(fig, path)


# --------------------------------------------------------------------------- one schedule


@dataclass
class ScheduleRun:
    """One schedule simulated with a full trace: what the Gantt and memory charts draw."""

    network: Any
    schedule: Any
    platform: Any
    result: Any
    trace: Any
    metrics: Any

    @property
    def label(self) -> str:
        used, size = self.schedule.processors, self.platform.size
        procs = f"{used} processors" if used == size else f"{used} of {size} processors used"
        return f"{self.schedule.name} on {self.network.name}, {procs}"

    def gantt(self, path=None, *, title: str | None = None, **options) -> Figure:
        """The Gantt chart (:func:`simulator.plots.gantt.plot_gantt`; ``options`` go to it)."""
        m = self.metrics
        title = title or (f"{self.label}: {m.cycles_per_minibatch:,.0f} cycles per minibatch, lower bound "
                          f"{m.lower_bound:,.0f} (efficiency {m.efficiency:.0%})")
        return plot_gantt(self.trace, path, title=title, **options)

    def memory_over_time(self, path=None, *, title: str | None = None, **options) -> Figure:
        """Memory of each processor over time (:func:`simulator.plots.gantt.plot_memory`)."""
        kept = self.result.versions.kept if self.result.versions is not None else None
        return plot_memory(self.trace, self.schedule, path, title=title or f"Memory per processor: {self.label}",
                           kept=kept, **options)

    def memory_breakdown(self, path=None, *, title: str | None = None, dpi: int = 120) -> Figure:
        """Stacked bars per processor: weights x versions, optimizer state, gradient buffers, stash peak."""
        parts = (("weights", "weights x versions", "#0173B2"), ("optimizer", "optimizer state", "#949494"),
                 ("gradients", "gradient buffers", "#029E73"), ("stash_peak", "stashed activations (peak)", "#DE8F05"))
        mem = self.metrics.memory
        fig = _new_figure(max(6.0, 1.0 + 0.6 * len(mem)), 4.6, dpi)
        ax = fig.add_subplot(1, 1, 1)
        bottom = [0.0] * len(mem)
        for attr, label, color in parts:
            values = [float(getattr(m, attr)) / MIB for m in mem]
            ax.bar(range(len(mem)), values, bottom=bottom, color=color, width=0.7, label=label)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(mem)))
        ax.set_xticklabels([f"P{i}" for i in range(len(mem))])
        ax.set_xlabel("processor")
        ax.set_ylabel("memory (MiB)")
        ax.set_ylim(0, max(bottom + [1 / MIB]) * 1.08)
        mib_axis(ax)
        _style_axes(ax)
        ax.grid(axis="x", visible=False)
        ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=4)
        ax.set_title(title or f"Memory per processor: {self.label}", fontsize=11, loc="left")
        fig.tight_layout()
        return _save(fig, path)

    def utilization(self, path=None, *, title: str | None = None, dpi: int = 120) -> Figure:
        """Utilization of each processor (%), with the mean dashed."""
        util = [100.0 * u for u in self.metrics.utilization]
        fig = _new_figure(max(5.0, 1.0 + 0.6 * len(util)), 3.6, dpi)
        ax = fig.add_subplot(1, 1, 1)
        style = schedule_style(self.schedule.name)
        ax.bar(range(len(util)), util, color=style["color"], width=0.7)
        mean = 100.0 * self.metrics.mean_utilization
        ax.axhline(mean, color="#333333", linestyle="--", linewidth=1.0, label=f"mean {mean:.0f}%")
        ax.set_xticks(range(len(util)))
        ax.set_xticklabels([f"P{i}" for i in range(len(util))])
        ax.set_xlabel("processor")
        ax.set_ylabel("utilization (% of cycles busy)")
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        _style_axes(ax)
        ax.grid(axis="x", visible=False)
        ax.legend(fontsize=8, frameon=False, loc="lower right")
        ax.set_title(title or f"Utilization per processor: {self.label}", fontsize=11, loc="left")
        fig.tight_layout()
        return _save(fig, path)


def schedule_run(network, schedule: str, processors: int, *, hardware: str = "mac:256", link: str = "100,16",
                 topology: str = "full", batch: int = 32, minibatches: int | None = None,
                 microbatches: int | None = None, overlap: bool = True, **options) -> ScheduleRun:
    """Build ``schedule`` for ``network`` (a NetworkSpec or a name/file :func:`models.network.zoo.load_network`
    reads) on ``processors`` processors, simulate it with a full trace and summarize it
    (:func:`simulator.metrics.summarize`: utilization, memory, lower bounds, efficiency).
    The run is as long as :func:`simulator.evaluate.compare` makes it, so the cycles per
    minibatch are the same as in ``layerpipe simulate`` and sweeps."""
    from models.network.zoo import load_network
    from simulator.limits import guarded_platform
    from simulator.metrics import summarize
    from simulator.platform import PlatformSpec
    from simulator.runs import run_until_converged
    from simulator.trace import MemoryTrace

    net = load_network(network) if isinstance(network, str) else network
    platform = guarded_platform(PlatformSpec(processors, hardware, link, topology, overlap), override=None)
    if microbatches is not None:
        options["microbatches"] = microbatches
    # the run length of simulator.evaluate.compare, so the figures here equal the rows of compare and sweeps
    traces: list[MemoryTrace] = []

    def new_trace() -> MemoryTrace:
        traces.append(MemoryTrace())
        return traces[-1]

    sched, result = run_until_converged(schedule, net, platform, minibatches=minibatches, batch=batch, trace=new_trace,
                                        record_versions=True, **options)
    return ScheduleRun(net, sched, platform, result, traces[-1], summarize(result))


__all__ = ["SCHEDULE_STYLE", "BASELINES", "PlotError", "ScheduleRun", "schedule_run", "schedule_style", "filter_rows",
           "speedup_figure", "utilization_figure", "memory_figure", "ladder_figure", "tta_figure"]
