"""``layerpipe sweep``: run a grid of configurations, one CSV row per run, resumable.

The grid is networks x hardware x links x topologies x processors x schedules, from an
experiment file (YAML or TOML; see ``examples/experiment.yaml``) and/or the options below
(an option replaces the file's value). Each finished run is appended to the CSV at once;
running the same command again skips the runs already there, so an interrupted sweep
resumes where it stopped. When the sweep ends the CSV is rewritten in grid order: the
same inputs give the same file. Runs go to the local cores (``--jobs``, default all), or
to a Dask cluster with ``--dask-scheduler tcp://HOST:PORT``. ``--plots DIR`` draws the
speedup, utilization and memory plots of the results.

    layerpipe sweep --networks lenet5 alexnet --schedules pipedream layerpipe --processors 2-9 -o results.csv
    layerpipe sweep examples/experiment.yaml --plots plots/

Lists take spaces or commas (``--processors 2,4,8``, ``2-9``); links take spaces only
(``--links 100,16 none``) since a link contains a comma.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path

from models.errors import LayerPipeError
from simulator.commands import SUMMARIES
from simulator.output import format_table, to_json

PLOT_KINDS = ("speedup", "utilization", "memory")


def _split(values: list[str] | None, commas: bool = True) -> list[str] | None:
    """Space-separated values, each also split at commas unless ``commas`` is false; a
    ``uniform:`` network spec keeps its commas (they separate its own fields)."""
    if values is None:
        return None
    out = []
    for v in values:
        whole = not commas or v.strip().lower().startswith("uniform:")
        out.extend([v] if whole else [p for p in v.split(",") if p.strip()])
    return [v.strip() for v in out]


def _add_option_axes(grid) -> None:
    """One list flag per schedule option of the registry (what ``simulate`` takes), as grid axes."""
    from schedules.registry import METHODS, OPTIONS
    from simulator.sweep import OPTION_AXES

    for name in OPTION_AXES:
        opt = OPTIONS[name]
        who = ", ".join(m.name for m in METHODS.values() if name in m.options)
        values = "true false" if opt.flag else " ".join(opt.choices) if opt.choices else (opt.metavar or "VALUE")
        note = " (space-separated: a group list has commas)" if name == "groups" else ""
        grid.add_argument(f"--{name.replace('_', '-')}", nargs="+", dest=name, metavar="V",
                          help=f"{who}: {opt.help}; values such as {values}, or default{note}")


def experiment_from_args(args: argparse.Namespace):
    """The :class:`simulator.sweep.Experiment` of the file (if any) with the options applied."""
    from simulator.sweep import OPTION_AXES, Experiment, SweepError, experiment_from_mapping, read_experiment

    data = read_experiment(args.experiment).to_dict() if args.experiment else {}
    cli = {
        "networks": _split(args.networks), "schedules": _split(args.schedules),
        "processors": _split(args.processors), "hardware": _split(args.hardware),
        "links": _split(args.links, commas=False), "topologies": _split(args.topologies),
        "memory_capacities": _split(args.memory_capacities), "parallelism": _split(args.parallelism),
        **{name: _split(getattr(args, name), commas=name != "groups") for name in OPTION_AXES},
        "batch": args.batch, "minibatches": args.minibatches, "microbatches": args.microbatches,
        "input": args.input, "output": args.output, "plots": args.plots,
    }
    data.update({k: v for k, v in cli.items() if v is not None})
    if args.no_overlap:
        data["overlap"] = False
    if not data.get("networks"):
        raise SweepError("no networks to sweep: give --networks or an experiment file")
    exp = experiment_from_mapping(data, source=args.experiment or "command line")
    assert isinstance(exp, Experiment)
    return exp


def speedup_table(rows: list[dict]) -> list[dict]:
    """One line per (network, platform, P) with each schedule's speedup over PipeDream; a run
    with schedule options set is its own column (``layerpipe2 groups=2``)."""
    from schedules.registry import SCHEDULES
    from simulator.sweep import labelled

    rows = labelled(rows)
    varying = [c for c in ("hardware", "link", "topology", "memory_capacity", "parallelism")
               if len({r.get(c) for r in rows}) > 1]
    names = {r["schedule"] for r in rows}
    schedules = [s for s in SCHEDULES if s in names] + sorted(names - set(SCHEDULES),
                                                             key=lambda n: (SCHEDULES.index(n.split()[0])
                                                                            if n.split()[0] in SCHEDULES else 99, n))
    lines: dict[tuple, dict] = {}
    for r in rows:
        key = (r["network"], *(r.get(c) for c in varying), r["processors"])
        line = lines.setdefault(key, {"network": r["network"], **{c: r.get(c) for c in varying},
                                      "P": r["processors"]})
        value = r.get("speedup_vs_pipedream")
        if r.get("error"):
            line[r["schedule"]] = "failed"
        elif r.get("feasible") is False:
            line[r["schedule"]] = "does not fit"
        else:
            line[r["schedule"]] = value if value is not None else ""
    head = ["network", *varying, "P"]
    return [{**{c: line[c] for c in head}, **{s: line.get(s, "") for s in schedules}} for line in lines.values()]


def draw_plots(rows: list[dict], folder: Path, formats: list[str]) -> list[str]:
    """speedup, utilization and memory plots of ``rows`` into ``folder``; the files written."""
    from simulator.plots import memory_figure, speedup_figure, utilization_figure

    if not folder.exists():
        folder.mkdir(parents=True)
    elif not folder.is_dir():
        raise LayerPipeError(f"--plots {str(folder)!r} is not a directory")
    from simulator.sweep import labelled

    rows = labelled(rows)
    written = []
    for kind, fn in (("speedup", speedup_figure), ("utilization", utilization_figure), ("memory", memory_figure)):
        paths = [folder / f"{kind}.{fmt}" for fmt in formats]
        fn(rows, paths)
        written += [str(p) for p in paths]
    return written


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise LayerPipeError(f"--plot-format must list png, svg or pdf, got {text!r}")
    return formats


def _quiet_cluster_logs(args: argparse.Namespace) -> None:
    """After a Dask sweep, its client's background tasks may still report a lost scheduler as the
    process exits, though the sweep has said so in one line: this process ends with the command,
    so their loggers are silenced for good (once distributed has made them)."""
    if args.dask_scheduler is None:
        return
    import logging

    from simulator.sweep import cluster_loggers

    for log in cluster_loggers():
        log.setLevel(logging.CRITICAL + 1)


def run(args: argparse.Namespace) -> int:
    from simulator.sweep import SweepError, run_sweep

    exp = experiment_from_args(args)
    formats = parse_formats(args.plot_format)
    if args.jobs is not None and args.jobs < 1:
        raise SweepError(f"--jobs must be a positive integer, got {args.jobs}")
    if not (math.isfinite(args.dask_timeout) and 0 < args.dask_timeout <= 3600):
        raise SweepError(f"--dask-timeout must be a number of seconds in (0, 3600], got {args.dask_timeout}")
    if args.dask_scheduler is not None and args.jobs is not None:
        raise SweepError("give either --jobs (local processes) or --dask-scheduler, not both")
    output = Path(exp.output or "sweep.csv")
    progress = sys.stderr.isatty() if args.progress is None else args.progress

    def terminated(signum, frame):  # SIGTERM stops the workers like Ctrl-C does
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = signal.signal(signal.SIGTERM, terminated) if main_thread else None
    try:
        result = run_sweep(exp, output, jobs=args.jobs, dask_scheduler=args.dask_scheduler,
                           dask_timeout=args.dask_timeout, progress=progress, overwrite=args.overwrite)
    except KeyboardInterrupt:
        _quiet_cluster_logs(args)
        print(f"\nlayerpipe sweep: interrupted; the finished runs are in {output}: run the same command again "
              "to resume", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        _quiet_cluster_logs(args)
    plots = draw_plots(result.rows, Path(exp.plots), formats) if exp.plots and any(
        not r.get("error") for r in result.rows) else []
    failed = [r for r in result.rows if r.get("error")]
    if args.json:
        print(to_json({**result.summary(), "plots": plots}))
    else:
        print(f"{result.runs} runs: {result.computed} computed, {result.skipped} already in {output}, "
              f"{result.failed} failed; {result.seconds:.1f} s")
        print("speedup over PipeDream (PipeDream's cycles per minibatch / the schedule's):")
        print(format_table(speedup_table(result.rows)))
        print(f"wrote {output}" + (f" and {len(plots)} plots in {exp.plots}" if plots else ""))
    for r in failed[:5]:
        print(f"layerpipe sweep: run failed: {r['network']} {r['schedule']} P={r['processors']} {r['hardware']} "
              f"link {r['link']} {r['topology']}: {r['error']}", file=sys.stderr)
    if len(failed) > 5:
        print(f"layerpipe sweep: ... and {len(failed) - 5} more failed runs (see the error column)", file=sys.stderr)
    return 0


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help=SUMMARIES["sweep"], description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", nargs="?", default=None, metavar="EXPERIMENT",
                   help="experiment file (.yaml, .yml or .toml); options below override its values")
    grid = p.add_argument_group("grid (each option takes one or more values)")
    grid.add_argument("--networks", nargs="+", metavar="NET",
                      help="zoo names, mlp:N0-N1-..., uniform:p=P,f=F,b=B,w=W (kept whole), or network files")
    grid.add_argument("--schedules", nargs="+", metavar="NAME", help="schedules (default: all but sequential)")
    grid.add_argument("--processors", "-p", nargs="+", metavar="P", help="processor counts, e.g. 2 4 8 or 2-9 "
                                                                         "(default 2,4,8)")
    grid.add_argument("--hardware", nargs="+", metavar="TEXT", help="cost models, e.g. mac:256 systolic:32x32:ws "
                                                                    "(default mac:256)")
    grid.add_argument("--links", "--link", nargs="+", metavar="LAT,BW", dest="links",
                      help="links, latency cycles,bytes per cycle or none, space-separated (default 100,16)")
    grid.add_argument("--topologies", "--topology", nargs="+", metavar="NAME", dest="topologies",
                      help="full, ring or mesh (default full)")
    grid.add_argument("--memory-capacities", "--memory-capacity", nargs="+", metavar="SIZE", dest="memory_capacities",
                      help="memory per processor, e.g. 8GiB, or none (default none: unlimited)")
    grid.add_argument("--parallelism", nargs="+", metavar="MODE", dest="parallelism",
                      help="pipeline and/or hybrid (default hybrid)")
    _add_option_axes(grid)
    shared = p.add_argument_group("settings shared by every run")
    shared.add_argument("--batch", "-b", type=int, default=None, metavar="B", help="samples per minibatch (32)")
    shared.add_argument("--minibatches", "-n", default=None, metavar="N",
                        help="optimizer steps simulated, or auto (default auto: max(32, 4 x (weight layers + 1)))")
    shared.add_argument("--microbatches", "-m", type=int, default=None, metavar="M",
                        help="micro-batches per step of the flush schedules (gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-h2, "
                             "zb-v; default: the builder's)")
    shared.add_argument("--input", default=None, metavar="CxHxW", help="input shape per sample (the network's)")
    shared.add_argument("--no-overlap", action="store_true", help="processors cannot compute while they send")
    out = p.add_argument_group("output and execution")
    out.add_argument("--output", "-o", default=None, metavar="CSV", help="results file (default sweep.csv, or the "
                                                                         "experiment file's output)")
    out.add_argument("--overwrite", action="store_true", help="start the CSV afresh instead of resuming")
    out.add_argument("--plots", default=None, metavar="DIR", help="also draw speedup, utilization and memory plots "
                                                                  "into DIR")
    out.add_argument("--plot-format", default="png", metavar="FMT", help="png, svg, pdf or a list like png,svg "
                                                                         "(default png)")
    out.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                     help="local worker processes (default: every core; 1 runs in this process)")
    out.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                     help="run on the Dask distributed cluster whose scheduler is at ADDRESS (tcp://HOST:PORT)")
    out.add_argument("--dask-timeout", type=float, default=10.0, metavar="SECONDS",
                     help="how long to wait for the Dask scheduler to answer (default 10)")
    bar = out.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show a progress bar (default: when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the table")
    p.set_defaults(run=run)
    return p


__all__ = ["register", "run", "experiment_from_args", "speedup_table", "draw_plots"]
