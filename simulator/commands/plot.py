"""``layerpipe plot``: draw speedup, utilization, memory or Gantt charts (PNG, SVG or PDF).

    layerpipe plot speedup results.csv -o speedup.png            # from a `layerpipe sweep` CSV
    layerpipe plot speedup lenet5 alexnet --processors 2-9 --schedules pipedream layerpipe -o speedup.svg
    layerpipe plot utilization results.csv --processors 8 -o util.png
    layerpipe plot memory lenet5 --processors 4 -o memory.png
    layerpipe plot gantt lenet5 --schedule layerpipe --processors 4 -o gantt.png   # = layerpipe gantt

``speedup``, ``utilization`` and ``memory`` read their rows from a CSV that ``layerpipe
sweep`` wrote, or, given networks instead, run that small sweep in memory first (with
the grid options of ``layerpipe sweep``). With a CSV the same options filter its rows.
``-o`` may be given several times (``-o fig.png -o fig.svg``); the extension picks the format.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.errors import LayerPipeError
from simulator.commands import SUMMARIES
from simulator.commands.sweep import _split
from simulator.output import to_json


def _rows(args: argparse.Namespace) -> tuple[list[dict], str]:
    """The rows to draw and where they came from."""
    from simulator.plots import filter_rows
    from simulator.sweep import (
        experiment_from_mapping,
        is_results_file,
        labelled,
        parse_processors,
        read_rows,
        run_sweep,
    )

    sources = args.sources
    csvs = [s for s in sources if s.lower().endswith(".csv") and is_results_file(s)]
    processors = list(parse_processors(_split(args.processors))) if args.processors else None
    if csvs:
        if len(csvs) != len(sources):
            raise LayerPipeError("give either results CSV files or networks, not both")
        rows = [r for path in csvs for r in read_rows(path)]
        networks = _split(args.networks)
        rows = filter_rows(rows, networks=networks, schedules=_split(args.schedules), processors=processors,
                           hardware=_split(args.hardware), links=_split(args.links, commas=False),
                           topologies=_split(args.topologies))
        if not rows:
            raise LayerPipeError(f"no rows of {', '.join(csvs)} match the options given")
        return labelled(rows), ", ".join(csvs)
    if args.networks:
        raise LayerPipeError("--networks filters a results CSV; to simulate, name the networks as arguments")
    data = {"networks": sources, "schedules": _split(args.schedules) or ["pipedream", "layerpipe"],
            "processors": processors or ([2, 4, 8] if args.kind == "speedup" else [4]),
            "hardware": _split(args.hardware) or ["mac:256"], "links": _split(args.links, commas=False) or ["100,16"],
            "topologies": _split(args.topologies) or ["full"], "batch": args.batch or 32,
            "minibatches": args.minibatches or "auto", "microbatches": args.microbatches}
    result = run_sweep(experiment_from_mapping(data, source="command line"), None, jobs=args.jobs or 1)
    return result.rows, "simulation"


def _outputs(args: argparse.Namespace) -> list[Path]:
    from simulator.plots.gantt import FORMATS

    paths = [Path(o) for o in (args.output or [f"{args.kind}.png"])]
    for p in paths:
        if p.suffix.lower() not in FORMATS:
            raise LayerPipeError(f"cannot write a plot to {str(p)!r}: use a name ending in {', '.join(FORMATS)}")
        if not p.parent.exists():
            raise LayerPipeError(f"cannot write {str(p)!r}: directory {str(p.parent)!r} does not exist")
    return paths


def run(args: argparse.Namespace) -> int:
    from simulator.plots import memory_figure, speedup_figure, utilization_figure

    paths = _outputs(args)
    rows, source = _rows(args)
    if args.kind == "speedup":
        fig = speedup_figure(rows, paths, baseline=args.baseline, title=args.title)
    elif args.kind == "utilization":
        fig = utilization_figure(rows, paths, title=args.title)
    else:
        fig = memory_figure(rows, paths, title=args.title)
    title = fig._suptitle.get_text() if fig._suptitle is not None else args.kind
    if args.json:
        print(to_json({"files": [str(p) for p in paths], "kind": args.kind, "rows": len(rows), "source": source,
                       "title": title}))
    else:
        print(f"wrote {', '.join(str(p) for p in paths)}: {title} ({len(rows)} runs from {source})")
    return 0


def _add_row_parser(sub, kind: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(kind, help=help_text, description=f"{help_text}. " + __doc__.split("\n\n", 2)[2],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="CSV_OR_NETWORK",
                   help="results CSV(s) written by `layerpipe sweep`, or networks to simulate now")
    grid = p.add_argument_group("rows (filters for a CSV; the grid to simulate otherwise)")
    grid.add_argument("--networks", nargs="+", metavar="NET", help="only these networks (CSV)")
    grid.add_argument("--schedules", nargs="+", metavar="NAME",
                      help="schedules (default: all in the CSV; pipedream layerpipe when simulating)")
    grid.add_argument("--processors", "-p", nargs="+", metavar="P",
                      help="processor counts, e.g. 2 4 8 or 2-9 (simulating: default 2,4,8 for speedup, 4 "
                           "otherwise); utilization and memory draw the largest count in each panel")
    grid.add_argument("--hardware", nargs="+", metavar="TEXT", help="cost models (simulating: default mac:256)")
    grid.add_argument("--links", "--link", nargs="+", dest="links", metavar="LAT,BW",
                      help="links (simulating: default 100,16)")
    grid.add_argument("--topologies", "--topology", nargs="+", dest="topologies", metavar="NAME",
                      help="topologies (simulating: default full)")
    grid.add_argument("--batch", "-b", type=int, default=None, metavar="B", help="samples per minibatch (32)")
    grid.add_argument("--minibatches", "-n", default=None, metavar="N", help="optimizer steps simulated (auto)")
    grid.add_argument("--microbatches", "-m", type=int, default=None, metavar="M",
                      help="micro-batches per step of the flush schedules")
    grid.add_argument("--jobs", "-j", type=int, default=None, metavar="N", help="processes when simulating (1)")
    if kind == "speedup":
        p.add_argument("--baseline", choices=("pipedream", "sequential"), default="pipedream",
                       help="speedup over PipeDream (default) or over one processor running every task")
    p.add_argument("--output", "-o", action="append", metavar="FILE",
                   help=f"file to write, .png, .svg or .pdf; repeat for several (default {kind}.png)")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(run=run, kind=kind, baseline="pipedream")
    return p


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("plot", help=SUMMARIES["plot"],
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", parser_class=type(p))
    kinds.required = True
    _add_row_parser(kinds, "speedup", "speedup against processors, per network and schedule")
    _add_row_parser(kinds, "utilization", "utilization of every processor, per schedule")
    _add_row_parser(kinds, "memory", "peak memory of every processor, per schedule")
    from . import gantt

    gantt.register(kinds)  # `layerpipe plot gantt` is `layerpipe gantt`
    return p


__all__ = ["register", "run"]
