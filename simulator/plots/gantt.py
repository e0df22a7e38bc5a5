"""Gantt charts and memory plots of a trace (matplotlib, Agg; no pyplot, no global state).

:func:`plot_gantt` draws one row per processor (and, optionally, one row per directed
link that carried a transfer) with a box per task, coloured by task kind, labelled
``F3.12`` when the box is wide enough (just the unit ``12`` when only that fits), with a
legend, a title and cycles on the x axis. :func:`plot_memory` draws each processor's
memory (weights, optimizer state, gradient buffers and stashed activations) over time.
Both return the :class:`matplotlib.figure.Figure` and, given a path, save it as PNG or
SVG (or PDF) by the file's extension.

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from schedules.planning.orders import one_f_one_b_orders
>>> from schedules.schedule import Schedule
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> from simulator.engine import simulate
>>> from simulator.trace import MemoryTrace
>>> t = MemoryTrace()
>>> s = Schedule("1f1b", uniform_pipeline_graph(2, 1, 1, 1), one_f_one_b_orders(2, 4), microbatches_per_step=4)
>>> _ = simulate(s, Platform.homogeneous(2, MacArray(1)), trace=t)
>>> fig = plot_gantt(t, title="1F1B")
>>> [label.get_text() for label in fig.axes[0].get_yticklabels()]
['P0', 'P1']
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from models.errors import LayerPipeError
from simulator.metrics import memory_timeline

#: colours of task kinds (colour-blind friendly, after Okabe & Ito / seaborn "colorblind")
KIND_COLORS = {
    "F": "#0173B2", "B": "#DE8F05", "W": "#029E73", "WG": "#029E73", "AG1": "#D55E00",
    "AG2": "#CC78BC", "U": "#949494", "HVP": "#CA9161", "CURV": "#56B4E9", "EIG": "#FBAFE4", "COLL": "#ECE133",
}
KIND_NAMES = {"F": "forward", "B": "backward", "W": "weight grad", "WG": "weight grad", "AG1": "act. grad 1",
              "AG2": "act. grad 2", "U": "update", "HVP": "Hessian-vector product", "CURV": "curvature vectors",
              "EIG": "eigen-solve", "COLL": "collective"}
TRANSFER_COLORS = {"activation": "#8CC2E6", "gradient": "#F3C57A", "weights": "#7FCDB0"}
FORMATS = (".png", ".svg", ".pdf")


def _check_path(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise LayerPipeError(f"cannot write a plot to {str(path)!r}: use a file name ending in "
                             f"{', '.join(FORMATS)}")
    return path


def save(fig: Figure, path) -> Path:
    """Save ``fig`` to ``path`` in the format its extension names."""
    path = _check_path(path)
    if path.is_dir():
        raise LayerPipeError(f"cannot write a plot to {str(path)!r}: it is a directory")
    try:
        fig.savefig(path, dpi=fig.dpi, bbox_inches="tight")
    except OSError as exc:  # unwritable place: permissions, a read-only or special file system
        raise LayerPipeError(f"cannot write a plot to {str(path)!r}: {exc.strerror or exc}") from None
    return path


def _new_figure(width: float, height: float, dpi: int) -> Figure:
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _cycles_formatter(x, _pos) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def plot_gantt(trace, path=None, *, title: str | None = None, links: bool = True, labels: bool = True,
               start: float | None = None, end: float | None = None, width: float = 14.0, dpi: int = 120,
               label_size: float = 7.0) -> Figure:
    """Gantt chart of ``trace`` (see the module docstring).

    ``start``/``end`` zoom on a window of cycles; ``links`` adds a row per directed link
    that carried a transfer; ``labels`` writes task names in boxes wide enough for them.
    """
    procs = sorted({t.proc for t in trace.tasks})
    link_rows = sorted({(x.src, x.dst) for x in trace.transfers}) if links else []
    rows = [f"P{p}" for p in procs] + [f"P{a}\u2192P{b}" for a, b in link_rows]
    if not rows:
        raise LayerPipeError("the trace is empty: nothing to draw")
    # processor rows are 1 apart; link rows, thinner, 0.55 apart below them
    row_of = {("p", p): float(i) for i, p in enumerate(procs)}
    row_of.update({("l", hop): len(procs) + 0.2 + 0.55 * i for i, hop in enumerate(link_rows)})
    ticks = [row_of[("p", p)] for p in procs] + [row_of[("l", hop)] for hop in link_rows]
    t_end = max([t.end for t in trace.tasks] + [x.end for x in trace.transfers], default=1)
    lo = 0.0 if start is None else float(start)
    hi = float(t_end if end is None else end)
    if hi <= lo:
        raise LayerPipeError(f"empty time window [{lo}, {hi}]")

    height = 1.5 + 0.42 * len(procs) + 0.24 * len(link_rows)
    fig = _new_figure(width, height, dpi)
    ax = fig.add_subplot(1, 1, 1)
    bar_h = 0.8

    boxes: dict[tuple[int, str], list] = defaultdict(list)
    for t in trace.tasks:
        if t.end > t.start and t.end > lo and t.start < hi:
            boxes[(row_of[("p", t.proc)], t.kind)].append((t.start, t.end - t.start))
    for (row, kind), spans in boxes.items():
        ax.broken_barh(spans, (row - bar_h / 2, bar_h), facecolors=KIND_COLORS.get(kind, "#777777"),
                       edgecolor="white", linewidth=0.4)
    xboxes: dict[tuple[int, str], list] = defaultdict(list)
    for x in (trace.transfers if links else ()):
        if x.end > x.start and x.end > lo and x.start < hi:
            xboxes[(row_of[("l", (x.src, x.dst))], x.what)].append((x.start, x.end - x.start))
    for (row, what), spans in xboxes.items():
        # edged in their own colour: a transfer is often far shorter than a pixel of a long run,
        # and white edges (or none) made the link rows vanish at large time scales
        colour = TRANSFER_COLORS.get(what, "#999999")
        ax.broken_barh(spans, (row - 0.22, 0.44), facecolors=colour, edgecolor=colour, linewidth=0.8)

    ax.set_xlim(lo, hi)
    ax.set_ylim(ticks[-1] + (0.35 if link_rows else 0.5), -0.5)
    ax.set_yticks(ticks)
    ax.set_yticklabels(rows, fontsize=9)
    for label in ax.get_yticklabels()[len(procs):]:
        label.set_fontsize(7.5)
        label.set_color("#555555")
    ax.set_xlabel("cycles")
    ax.xaxis.set_major_formatter(FuncFormatter(_cycles_formatter))
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if link_rows:
        ax.axhline(len(procs) - 0.5, color="#999999", linewidth=0.8)
    ax.set_title(title or "Gantt chart", fontsize=11, loc="left", pad=24)  # room for the legend below it

    if labels:
        fig.canvas.draw()  # fixes the axes' size in pixels
        px_per_cycle = ax.get_window_extent().width / (hi - lo)
        char_px = label_size * 0.62 * dpi / 72
        for t in trace.tasks:
            s, e = max(t.start, lo), min(t.end, hi)
            if e <= s:
                continue
            box_px = (e - s) * px_per_cycle
            for text in (t.label, str(t.unit)):
                if len(text) * char_px + 4 <= box_px:
                    colour = "white" if t.kind in ("F", "AG1", "W", "WG") else "black"
                    ax.text((s + e) / 2, row_of[("p", t.proc)], text, ha="center", va="center",
                            fontsize=label_size, color=colour, clip_on=True)
                    break

    kinds = sorted({t.kind for t in trace.tasks}, key=lambda k: list(KIND_COLORS).index(k) if k in KIND_COLORS else 99)
    handles = [Patch(facecolor=KIND_COLORS.get(k, "#777777"), label=f"{k} ({KIND_NAMES.get(k, k)})") for k in kinds]
    if link_rows:
        whats = sorted({x.what for x in trace.transfers})
        handles += [Patch(facecolor=TRANSFER_COLORS.get(w, "#999999"), label=f"{w} transfer") for w in whats]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=min(len(handles), 8),
              fontsize=8, frameon=False, borderaxespad=0.3, handlelength=1.2, columnspacing=1.2)
    if path is not None:
        save(fig, path)
    return fig


#: memory axes are in MiB, the unit of every table (simulator.output.mib)
MIB = 2**20


def mib_axis(ax, nbins: int = 6) -> None:
    """Round MiB ticks (1, 2, 2.5 or 5 times a power of ten) printed plainly (2.5, not 2.500)."""
    ax.yaxis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))


def plot_memory(trace, schedule, path=None, *, title: str | None = None, static: bool = True,
                width: float = 12.0, dpi: int = 120, kept: dict | None = None) -> Figure:
    """Memory of every processor over time (a step function per processor, one line each).

    With ``static`` the weights x versions, optimizer state and gradient buffers are
    included (``kept``: the versions a recorded run really held); the changing part is the stash
    of activations (see :func:`simulator.metrics.memory_timeline`).
    """
    timeline = memory_timeline(trace, schedule, static=static, kept=kept)
    t_end = max([t.end for t in trace.tasks] + [x.end for x in trace.transfers], default=1)
    fig = _new_figure(width, 4.5, dpi)
    ax = fig.add_subplot(1, 1, 1)
    for p, points in sorted(timeline.items()):
        xs = [t for t, _ in points] + [t_end]
        ys = [b / MIB for _, b in points] + [points[-1][1] / MIB]
        ax.step(xs, ys, where="post", linewidth=1.4, label=f"P{p} (peak {max(ys):.4g} MiB)")
    ax.set_xlim(0, t_end)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("cycles")
    ax.set_ylabel("MiB" + (": weights, optimizer, gradients, stash" if static else ": stashed activations"))
    ax.xaxis.set_major_formatter(FuncFormatter(_cycles_formatter))
    mib_axis(ax, nbins=7)
    ax.grid(color="#dddddd", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or "memory per processor", fontsize=11, loc="left")
    if path is not None:
        save(fig, path)
    return fig


__all__ = ["plot_gantt", "plot_memory", "save", "KIND_COLORS", "TRANSFER_COLORS", "FORMATS"]
