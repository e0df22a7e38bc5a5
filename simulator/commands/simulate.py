"""``layerpipe simulate``: build one schedule, run it, print every metric.

Prints the headline figures (cycles per minibatch, speedups over sequential and PipeDream,
utilization, communication, memory, lower bound and efficiency) and the per-processor and
per-layer detail (the nominal staleness S(l), the realised forward and backward lags of the
steady state, minibatches per update, weight versions kept); ``--json`` prints a one-element list with the fields of ``compare``.
"""

from __future__ import annotations

import argparse

from schedules.planning.partition import plan_text
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
from simulator.evaluate import check_something_fits, compare
from simulator.limits import human_bytes
from simulator.output import format_table, mib, to_json


def steady_line(row: dict) -> str:
    """Which figure the row holds, and for an exact one the period it was read at and what sets it.

    >>> steady_line({"steady_state": "exact", "steady_period_minibatches": 1, "minibatches": 40,
    ...              "critical_cycle": ["F1.3", "B1.3", "update round 3 of layer 1"]})
    'steady state: exact (40 minibatches simulated; the orders repeat every minibatch); critical cycle F1.3 -> B1.3 -> update round 3 of layer 1'
    """
    state = row["steady_state"]
    if state != "exact":
        return f"steady state: {state} ({row['minibatches']:.0f} minibatches simulated)"
    k = row["steady_period_minibatches"]
    every = "every minibatch" if k == 1 else f"every {k} minibatches"
    cycle = row["critical_cycle"] or []
    shown = " -> ".join(cycle[:8]) + (f" -> ... ({len(cycle)} events)" if len(cycle) > 8 else "")
    return (f"steady state: exact ({row['minibatches']:.0f} minibatches simulated; the orders repeat {every}); "
            f"critical cycle {shown}")


def optimal_line(row: dict) -> str | None:
    """For the optimal schedule: what the solver found and proved (None for any other schedule).

    >>> optimal_line({"info": {"optimal_of": "layerpipe", "interval": 3104, "unroll": 1, "solver_status": "optimal",
    ...               "proven_lower_bound": "3104", "solver_deterministic_seconds": 6.3}})
    "solver: layerpipe's task graph and delays; interval 3104 cycles per minibatch, proven optimal (no modulo schedule below 3104; 6.3 s of CP-SAT's deterministic time)"
    """
    info = row.get("info") or {}
    if "solver_status" not in info:
        return None
    status = info["solver_status"]
    per = "minibatch" if info["unroll"] == 1 else f"{info['unroll']} minibatches"
    proof = {"optimal": "proven optimal", "gap": "the time limit left a gap",
             "too large": "too large to model"}.get(status, status)
    text = (f"solver: {info['optimal_of']}'s task graph and delays; interval {info['interval']} cycles per {per}, "
            f"{proof} (no modulo schedule below {info['proven_lower_bound']}; "
            f"{info['solver_deterministic_seconds']:g} s of CP-SAT's deterministic time)")
    if info.get("solver_message"):
        text += f"; {info['solver_message']}"
    return text


def print_rows(rows: list[dict]) -> None:
    """One table line per row; ``P used`` how many of the platform's processors the schedule occupies
    (utilization is their mean), ``planned`` the planner's predicted period, ``cycles/minibatch``
    the simulated one."""
    table = []
    for r in rows:
        stages = r["plan"]["stages"] if r["plan"] else (r["info"] or {}).get("stages")  # chunked: their chunks
        line = {"schedule": r["schedule"], "plan": plan_text(stages) if stages else "-",
                "P used": f"{r['processors_used']}/{r['processors']}" if r["feasible"] else "-",
                "planned": r["plan"]["predicted_cycles_per_minibatch"] if r["plan"] else "-"}
        if not r["feasible"]:
            line["cycles/minibatch"] = f"does not fit: needs {human_bytes(r['memory_needed_bytes'])}"
            table.append(line)
            continue
        measured = r["cycles_per_minibatch"] if r["steady_state"] != "not measured" else "not measured"
        line.update({"cycles/minibatch": measured, "vs sequential": r["speedup_vs_sequential"],
                     "vs pipedream": r["speedup_vs_pipedream"], "utilization": r["utilization_mean"],
                     "bubble": r["bubble_rate"], "comm MiB/mb": mib(r["comm_bytes_per_minibatch"]), "comm overhead": r["comm_overhead"],
                     "peak mem (MiB)": mib(max(r["peak_memory_bytes"])), "lower bound": r["lower_bound_cycles"], "bound set by": r["lower_bound_kind"],
                     "efficiency": r["efficiency"]})
        table.append(line)
    print(format_table(table, columns=["schedule", "plan", "P used", "planned", "cycles/minibatch", "vs sequential", "vs pipedream",
                                       "utilization", "bubble", "comm MiB/mb", "comm overhead", "peak mem (MiB)",
                                       "lower bound", "bound set by", "efficiency"]))
    print("lower bound: each schedule's own - the largest of its work over the processors it uses, its largest "
          "task, and the loop its delays close (the iteration bound); efficiency = lower bound / cycles")


def run(args: argparse.Namespace) -> int:
    check_sizes(args)
    net, plat = network_from_args(args), platform_from_args(args)
    rows = compare(net, [args.schedule], plat, minibatches=args.minibatches, batch=args.batch, no_limits=args.no_limits,
                   **schedule_options(args))
    check_something_fits(rows)
    if args.json:
        print(to_json(rows))
        return 0
    r = rows[0]
    print(f"{r['schedule']} on {r['network']}, {r['platform']} ({r['processors_used']} of {r['processors']} "
          f"processors used), batch {args.batch}, {run_length(args)}")
    print_rows(rows)
    print(steady_line(r))
    solved = optimal_line(r)
    if solved:
        print(solved)
    print()
    print(format_table([{"processor": f"P{p}", "utilization": u, "peak memory (MiB)": mib(m)}
                        for p, (u, m) in enumerate(zip(r["utilization"], r["peak_memory_bytes"]))]))
    print()
    realised = {s["layer"]: s for s in r["staleness"] or []}

    def lags(s, side):
        lo, hi = s[f"{side}_min"], s[f"{side}_max"]
        return f"{lo}" if lo == hi else f"{lo}-{hi} (mean {s[f'{side}_mean']:.2f})"

    print(format_table([{"layer": l, "delay (slots)": d, "S(l) nominal": d // 2,
                         "forward lag (realised)": lags(realised[l], "forward") if l in realised else "-",
                         "backward lag": lags(realised[l], "backward") if l in realised else "-",
                         "minibatches per update": realised[l]["round_minibatches"] if l in realised else "-",
                         "weight versions": r["weight_versions"].get(l, 1)}
                        for l, d in r["delays"].items()]))
    return 0


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("simulate", help=SUMMARIES["simulate"], description=__doc__)
    add_run_arguments(p)
    add_schedule_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(run=run)
    return p
