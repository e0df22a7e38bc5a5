"""``layerpipe gantt``: simulate one schedule and draw its Gantt chart (PNG or SVG).

One row per processor, boxes coloured by task kind and labelled when they are wide
enough, plus one thin row per link direction that carried a transfer (``--no-links`` to
leave them out). ``--memory-plot FILE`` also draws every processor's memory over time.
``--start``/``--end`` zoom on a window of cycles.

    layerpipe gantt lenet5 --schedule layerpipe --processors 4 -o gantt.png --memory-plot memory.svg
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from models.errors import LayerPipeError
from simulator.commands import SUMMARIES
from simulator.commands.common import add_run_arguments, add_schedule_options, resolve
from simulator.output import to_json


def plot_path(text: str | None) -> Path | None:
    if text is None:
        return None
    from simulator.plots.gantt import FORMATS

    path = Path(text)
    if path.suffix.lower() not in FORMATS:
        raise LayerPipeError(f"cannot write a plot to {text!r}: use a name ending in {', '.join(FORMATS)}")
    if not path.parent.exists():
        raise LayerPipeError(f"cannot write {text!r}: directory {str(path.parent)!r} does not exist")
    return path


def run(args: argparse.Namespace) -> int:
    from simulator.engine import simulate
    from simulator.plots.gantt import plot_gantt, plot_memory
    from simulator.trace import MemoryTrace

    out, mem_out = plot_path(args.output), plot_path(args.memory_plot)
    for flag, value in (("--start", args.start), ("--end", args.end)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise LayerPipeError(f"{flag} must be a cycle count >= 0, got {value}")
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise LayerPipeError(f"--end ({args.end}) must be after --start ({args.start})")
    network, platform, schedule = resolve(args)
    trace = MemoryTrace()
    result = simulate(schedule, platform, trace=trace, record_versions=True)
    st = result.stats
    used = (f"{schedule.processors} processors" if schedule.processors == platform.size
            else f"{schedule.processors} of {platform.size} processors used")
    title = args.title or (f"{schedule.name} on {network.name}: {used}, {st.units} units, "
                           f"{st.cycles_per_step:,.0f} cycles per minibatch")
    plot_gantt(trace, out, title=title, links=args.links, start=args.start, end=args.end)
    if mem_out is not None:
        plot_memory(trace, schedule, mem_out, title=f"memory per processor: {schedule.name} on {network.name}",
                    kept=result.versions.kept)
    summary = {"file": str(out), "memory_file": str(mem_out) if mem_out else None, "network": network.name,
               "schedule": schedule.name, "processors": platform.size, "processors_used": schedule.processors,
               "units": st.units,
               "makespan": st.makespan, "cycles_per_minibatch": st.cycles_per_step}
    if args.json:
        print(to_json(summary))
    else:
        print(f"wrote {out}" + (f" and {mem_out}" if mem_out else "") + f": {title}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("gantt", help=SUMMARIES["gantt"],
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    add_schedule_options(p)  # the same schedule variants simulate and compare take
    p.add_argument("--output", "-o", default="gantt.png", metavar="FILE",
                   help="chart file, .png or .svg (or .pdf) (default gantt.png)")
    p.add_argument("--memory-plot", metavar="FILE", default=None,
                   help="also plot memory per processor over time into FILE (--memory is the schedule option)")
    p.add_argument("--no-links", dest="links", action="store_false", help="leave out the link rows")
    p.add_argument("--start", type=float, default=None, metavar="CYCLE", help="first cycle shown")
    p.add_argument("--end", type=float, default=None, metavar="CYCLE", help="last cycle shown")
    p.add_argument("--title", default=None, help="chart title (default: schedule, network and figures)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.set_defaults(run=run)
    return p
