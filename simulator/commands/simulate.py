"""``layerpipe simulate``: build one schedule, run it, print every metric.

Prints the headline figures (cycles per minibatch, speedups over sequential and PipeDream,
utilization, communication, memory, lower bound and efficiency) and the per-processor and
per-layer detail; ``--json`` prints a one-element list with the fields of ``compare``.
"""

from __future__ import annotations

import argparse

from models.errors import LayerPipeError
from simulator.evaluate import compare
from simulator.output import format_table, to_json

from simulator.commands.common import (add_run_arguments, check_sizes, minibatches_from_args, network_from_args,
                     platform_from_args, schedule_options)


def print_rows(rows: list[dict]) -> None:
    table = [{"schedule": r["schedule"], "cycles/minibatch": r["cycles_per_minibatch"],
              "vs sequential": r["speedup_vs_sequential"], "vs pipedream": r["speedup_vs_pipedream"],
              "utilization": r["utilization_mean"], "comm bytes/mb": r["comm_bytes_per_minibatch"],
              "comm overhead": r["comm_overhead"], "peak mem (MB)": max(r["peak_memory_bytes"]) / 1e6,
              "lower bound": r["lower_bound_cycles"], "efficiency": r["efficiency"]} for r in rows]
    print(format_table(table))


def run(args: argparse.Namespace) -> int:
    check_sizes(args)
    net, plat = network_from_args(args), platform_from_args(args)
    n = minibatches_from_args(args, net)
    rows = compare(net, [args.schedule], args.processors, plat, minibatches=n, batch=args.batch,
                   **schedule_options(args), **_extra(args))
    if args.json:
        print(to_json(rows))
        return 0
    r = rows[0]
    print(f"{r['schedule']} on {r['network']}, {r['processors']} x {r['platform']}, batch {args.batch}, "
          f"{n} minibatches")
    print_rows(rows)
    print()
    print(format_table([{"processor": f"P{p}", "utilization": u, "peak memory (bytes)": m}
                        for p, (u, m) in enumerate(zip(r["utilization"], r["peak_memory_bytes"]))]))
    print()
    print(format_table([{"layer": l, "delay (slots)": d, "weight versions": r["weight_versions"].get(l, 1)}
                        for l, d in r["delays"].items()]))
    return 0


def _extra(args: argparse.Namespace) -> dict:
    extra = {}
    for name in ("groups", "memory"):
        if getattr(args, name, None) is not None:
            extra[name] = getattr(args, name)
    if getattr(args, "no_offload", False):
        extra["offload"] = False
    if getattr(args, "replicate", False):
        extra["replicate"] = True
    if getattr(args, "spike_bits", False):
        extra["spike_bits"] = True
    split = getattr(args, "ag_split", None)
    if split is not None:
        extra["ag_split"] = split if split in ("design", "balanced") else _fraction(split)
    return extra


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise LayerPipeError(f"--ag-split must be design, balanced or a fraction in [0, 1], got {text!r}")
    return value


def add_schedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--groups", help="layerpipe2: layer groups sharing a delay, '1-3,4-6' or a count (default: the stages)")
    p.add_argument("--memory", choices=("ema", "stash"), help="layerpipe2: weight memory model (default ema)")
    p.add_argument("--no-offload", action="store_true", help="layerpipe/layerpipe2: keep every task on its layer's processor")
    p.add_argument("--replicate", action="store_true", help="pipedream: let the planner replicate stages")
    p.add_argument("--spike-bits", action="store_true",
                   help="spiking networks: count binary spike tensors as 1 bit per element (default 1 byte)")
    p.add_argument("--ag-split", metavar="design|balanced|RHO",
                   help="layerpipe family: the activation-gradient split - design (AG1 on layer l, element-wise AG2 "
                        "on l-1; default), balanced (a fraction of AG1's product moves to l-1 to equalise the two "
                        "layers' work) or a fixed fraction RHO")


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("simulate", help="run one schedule on a network and print every metric", description=__doc__)
    add_run_arguments(p)
    add_schedule_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(run=run)
    return p
