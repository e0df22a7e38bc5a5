"""``layerpipe explain``: where a method's speedup over PipeDream comes from, rung by rung.

Runs the attribution ladder of :mod:`simulator.explain` (PipeDream as planned -> PipeDream
on the method's plan -> split tasks with PipeDream's delays -> + weight-gradient offloading
-> + the method's own delays -> the method) on one network and platform, and prints each
rung's cycles per minibatch, its factor over the rung before (the factors multiply to the
method's speedup), its peak memory and the bytes it moves. ``--plot FILE`` draws the ladder
as a waterfall.

    layerpipe explain alexnet -p 8 --parallelism pipeline --plot ladder.png
"""

from __future__ import annotations

import argparse

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
from simulator.commands.gantt import plot_path
from simulator.output import format_table, mib, to_json


def run(args: argparse.Namespace) -> int:
    from simulator.explain import explain

    out = plot_path(args.plot)
    check_sizes(args)
    net, plat = network_from_args(args), platform_from_args(args)
    ladder = explain(net, args.schedule, plat, minibatches=args.minibatches, batch=args.batch, optimal=args.optimal,
                     **schedule_options(args))
    if out is not None:
        from simulator.plots import ladder_figure

        try:
            ladder_figure(ladder, out)
        except OSError as exc:
            from models.errors import LayerPipeError

            raise LayerPipeError(f"cannot write a plot to {args.plot!r}: {exc.strerror or exc}") from None
    if args.json:
        print(to_json(ladder.to_dict()))
        return 0
    print(f"{ladder.method} on {ladder.network}, {ladder.platform}, batch {args.batch}, {run_length(args)}: "
          f"{ladder.speedup:.3f}x over PipeDream")
    cumulative = 1.0
    rows = []
    for r in ladder.rungs:
        cumulative *= r.factor
        rows.append({"rung": r.name, "cycles/minibatch": r.cycles_per_minibatch, "factor": r.factor,
                     "vs pipedream": cumulative, "peak mem (MiB)": mib(r.peak_memory),
                     "comm MiB/mb": mib(r.bytes_per_minibatch)})
    print(format_table(rows))
    b = ladder.optimal
    if b is not None:
        print(f"beyond the ladder: the optimal schedule of {ladder.method}'s task graph and delays runs at "
              f"{b.cycles_per_minibatch:,.1f} cycles per minibatch (solver interval {b.interval:,}, "
              f"{'proven optimal' if b.status == 'optimal' else b.status}, no modulo schedule below "
              f"{b.proven_bound:,}): {ladder.method}'s planner leaves a factor {b.planner_factor:.3f}"
              + (f"; {b.note}" if b.note else ""))
    if out is not None:
        print(f"wrote {out}")
    return 0


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("explain", help=SUMMARIES["explain"],
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, schedule=False)
    p.add_argument("--schedule", "-s", default="layerpipe", metavar="NAME",
                   help="the method to explain (default layerpipe; layerpipe2 and spikepipe have every rung)")
    add_schedule_options(p)
    p.add_argument("--plot", metavar="FILE", default=None, help="draw the ladder as a waterfall (.png, .svg, .pdf)")
    p.add_argument("--optimal", action="store_true",
                   help="also solve for the optimal schedule of the method's task graph and delays (CP-SAT, "
                        "--time-limit; needs one update per minibatch: --parallelism pipeline)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)
    return p
