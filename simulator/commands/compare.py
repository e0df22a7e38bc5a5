"""``layerpipe compare``: every schedule (or those named) on one network, one row each.

Speedups are against the sequential reference (one processor, every task in order) and
against PipeDream on the same network, processor count and platform.
"""

from __future__ import annotations

import argparse

from models.errors import LayerPipeError
from schedules.registry import SCHEDULES, default_schedules
from simulator.commands import SUMMARIES
from simulator.commands.common import (
    add_run_arguments,
    add_schedule_options,
    check_sizes,
    network_from_args,
    platform_from_args,
    run_length,
    schedule_options,
)
from simulator.commands.simulate import print_rows
from simulator.evaluate import check_something_fits, compare
from simulator.output import to_json


def run(args: argparse.Namespace) -> int:
    check_sizes(args)
    skipped: dict[str, str] = {}
    if args.schedules is None:
        names = list(default_schedules(network_from_args(args)))
        skipped = _skipped(names, args)
        names = [n for n in names if n not in skipped]
    else:
        names = [s.strip() for text in args.schedules for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCHEDULES]
    if unknown or not names:
        raise LayerPipeError(f"unknown schedule(s) {', '.join(unknown) or '(none given)'} (known: {', '.join(SCHEDULES)})")
    net, plat = network_from_args(args), platform_from_args(args)
    rows = compare(net, names, plat, minibatches=args.minibatches, batch=args.batch, no_limits=args.no_limits,
                   **schedule_options(args))
    check_something_fits(rows)
    if args.json:
        print(to_json(rows))
        return 0
    print(f"{net.name} on {rows[0]['platform']}, batch {args.batch}, {run_length(args)}")
    print_rows(rows)
    for name, why in skipped.items():
        print(f"not run: {name} ({why})")
    return 0


def _skipped(names: list[str], args: argparse.Namespace) -> dict[str, str]:
    """The default schedules that cannot run this network on this many processors, and why."""
    from schedules.registry import method

    net = network_from_args(args)
    out = {}
    for name in names:
        why = method(name).not_applicable(net, args.processors, schedule_options(args), args.batch)
        if why is not None:
            out[name] = why
    return out


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("compare", help=SUMMARIES["compare"], description=__doc__)
    add_run_arguments(p, schedule=False)
    p.add_argument("--schedules", nargs="+", default=None, metavar="NAME",
                   help="schedules, separated by commas or spaces as in sweep (default: all but sequential, "
                        f"spikepipe only for spiking networks, and those that apply; known: {', '.join(SCHEDULES)})")
    add_schedule_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)
    return p
