"""``layerpipe trace``: simulate one schedule and write every task and transfer to a file.

The default output is the Chrome trace event format (``.json``): open it in
https://ui.perfetto.dev or chrome://tracing; one thread per processor, one per link
direction, flow arrows from a task to the transfers it sends, 1 cycle shown as 1 us. A
file ending in ``.jsonl`` gets one JSON record per line instead, streamed while the
simulation runs (``simulator.trace.read_jsonl`` reads it back). ``--check`` verifies the
trace against the schedule with the independent checker before writing it.

    layerpipe trace lenet5 --schedule pipedream --processors 4 --link 100,16 -o trace.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.errors import LayerPipeError
from simulator.commands import SUMMARIES
from simulator.commands.common import add_run_arguments, add_schedule_options, resolve
from simulator.output import to_json

FORMATS = (".json", ".jsonl")


def output_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in FORMATS:
        raise LayerPipeError(f"cannot write a trace to {text!r}: use a name ending in .json (Chrome trace "
                             "events, for Perfetto) or .jsonl (one record per line)")
    if path.parent and not path.parent.exists():
        raise LayerPipeError(f"cannot write {text!r}: directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise LayerPipeError(f"cannot write {text!r}: it is a directory")
    return path


def write_trace(schedule, platform, path: Path, *, check: bool = False, title: str = "layerpipe") -> dict:
    """Simulate ``schedule`` on ``platform`` into ``path``; return a summary dict."""
    from simulator.checker import check_trace
    from simulator.engine import simulate
    from simulator.trace import JsonlTrace, MemoryTrace, read_jsonl, to_chrome

    if path.suffix.lower() == ".jsonl":
        result = simulate(schedule, platform, trace=JsonlTrace(path))
        trace = read_jsonl(path) if check else None
    else:
        trace = MemoryTrace()
        result = simulate(schedule, platform, trace=trace)
    if check:
        check_trace(trace, schedule, platform)
    if path.suffix.lower() == ".json":
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(to_chrome(trace, name=title, graph=schedule.graph), fh)
    st = result.stats
    return {"file": str(path), "format": "jsonl" if path.suffix.lower() == ".jsonl" else "chrome",
            "schedule": schedule.name, "processors": schedule.processors, "units": st.units,
            "tasks": st.tasks_run, "makespan": st.makespan, "cycles_per_minibatch": st.cycles_per_step,
            "bytes_moved": st.bytes_moved, "checked": check}


def run(args: argparse.Namespace) -> int:
    path = output_path(args.output)
    network, platform, schedule = resolve(args)
    try:
        summary = write_trace(schedule, platform, path, check=args.check,
                              title=f"{schedule.name} on {network.name}, {schedule.processors} processors")
    except OSError as exc:  # unwritable place (permissions, read-only or special file system)
        raise LayerPipeError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    summary["network"] = network.name
    if args.json:
        print(to_json(summary))
        return 0
    print(f"{summary['network']} / {summary['schedule']} on {platform.describe()}: {summary['tasks']:,} tasks of "
          f"{summary['units']} units, makespan {summary['makespan']:,} cycles, "
          f"{summary['cycles_per_minibatch']:,.1f} cycles per minibatch"
          + (", trace checked" if args.check else ""))
    hint = " (open it in https://ui.perfetto.dev)" if summary["format"] == "chrome" else ""
    print(f"wrote {summary['file']}{hint}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("trace", help=SUMMARIES["trace"],
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    add_schedule_options(p)  # the same schedule variants simulate and compare take
    p.add_argument("--output", "-o", default="trace.json", metavar="FILE",
                   help="trace file: .json (Chrome trace events, default trace.json) or .jsonl")
    p.add_argument("--check", action="store_true", help="verify the trace with the independent checker first")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.set_defaults(run=run)
    return p
