"""How far each method is from the best schedule its own task graph and delays allow.

For every network, processor count and asynchronous method (pipeline mode, default platform:
mac:256 processors, links of latency 100 and 16 B/cycle, full topology) one row of
:func:`simulator.studies.optimal_gap.gap_row`: the method's cycles per minibatch, the optimal
modulo schedule of its graph and delays (CP-SAT, ``--time-limit`` deterministic seconds per
instance, warm-started from the method), the bound the solver proved, the analytic bound, and
the method's distance to that bound split into its planner's share and the bound's.

Writes ``docs/results/optimal_study.csv`` and ``.md``. Usage:
``python benchmarks/optimal_study.py [--time-limit S] [--jobs N]``; ``--from-csv`` rewrites the
``.md`` from the CSV without solving anything.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.platform import PlatformSpec  # noqa: E402
from simulator.studies.optimal_gap import gap_row  # noqa: E402

SMALL = ("lenet5", "alexnet", "mlp", "snn_mlp")
LARGE = ("vgg16", "resnet18")
METHODS = ("pipedream", "layerpipe", "layerpipe2")
PROCESSORS = range(2, 9)
OUT = ROOT / "docs" / "results"


def cells() -> list[tuple[str, int, str]]:
    out = []
    for net in SMALL + LARGE:
        for p in PROCESSORS:
            for m in METHODS + (("spikepipe",) if net == "snn_mlp" else ()):
                out.append((net, p, m))
    return out


def run(cell: tuple[str, int, str], time_limit: float) -> dict:
    net, p, m = cell
    t0 = time.process_time()
    row = gap_row(net, m, PlatformSpec(p), time_limit=time_limit).to_dict()
    row["cpu_seconds"] = round(time.process_time() - t0, 1)
    return row


def markdown(rows: list[dict], time_limit: float) -> list[str]:
    proven = sum(r["status"] == "optimal" for r in rows)
    lines = ["# How far each method is from the optimal schedule of its own task graph and delays", "",
             f"Command: `python benchmarks/optimal_study.py --time-limit {time_limit:g}`. Pipeline mode (no "
             "stage replication), default platform (mac:256, links 100 cycles + 16 "
             "B/cycle, full topology), batch 32. *method*: its exact cycles per minibatch; *optimal*: the best "
             "modulo schedule (every minibatch placed and timed alike) of the method's task graph and delays, "
             "found by CP-SAT within the limit and run by the engine; *proven*: no such schedule has an interval "
             "below it; *analytic*: max(work / P, largest task, iteration bound). *planner* = method / optimal "
             "(what the method's placement and order lose), *bound* = optimal / analytic (what no schedule of "
             "the class recovers, up to the solver's gap); the two multiply to method / analytic.", "",
             f"{proven} of {len(rows)} instances proven optimal; the rest show the solver's gap "
             "(interval above proven) or are too large to model (the analytic bound only).", "",
             "| network | P | method | method | optimal | proven | analytic (kind) | status | planner | bound |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['processors']} | {r['method']} | {r['method_cycles']:,.0f} | "
                     f"{r['optimal_cycles']:,.1f} | {r['proven_bound']:,} | {r['analytic_bound']:,.0f} "
                     f"({r['analytic_kind']}) | {r['status']}{' (relaxed)' if r['relaxed'] else ''} | "
                     f"{r['planner_factor']:.3f} | "
                     f"{r['bound_factor']:.3f} |")
    relaxed = [r for r in rows if r["relaxed"]]
    if relaxed:
        lines += ["", f"{len(relaxed)} instances (*relaxed*) were too large for the first-come link rule over every "
                  "placement: their bound is proven without it (a relaxation, so still a bound), their schedule is "
                  "a placement (the method's, then the relaxation's) timed with it."]
    below = [r for r in rows if r["below_proven"]]
    over = [r for r in rows if r["engine_over_interval"] > 0]
    # (a model too large to build runs the method's own schedule, planned for another run length)
    worse = [r for r in rows if r["status"] != "too large" and r["engine_cycles"] > r["method_cycles"]]
    lines += ["", f"Methods below the proven bound (their orders repeat over several minibatches): {len(below)}. "
              f"Solver schedules the engine ran slower than their interval: {len(over)}. Solver schedules slower "
              f"than the method they started from: {len(worse)}"
              + (" (" + ", ".join(f"{r['network']} P={r['processors']} {r['method']}" for r in worse) + ")"
                 if worse else "") + "."]
    return lines


def read_rows(path: Path) -> list[dict]:
    """The CSV's rows with their numbers and flags typed again."""
    def typed(value: str):
        if value in ("True", "False"):
            return value == "True"
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value

    with open(path, newline="") as fh:
        return [{k: typed(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=15.0, help="CP-SAT deterministic seconds per instance")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--from-csv", action="store_true", help="rewrite the .md from the CSV, solving nothing")
    args = ap.parse_args(argv)
    if args.from_csv:
        rows = read_rows(OUT / "optimal_study.csv")
        (OUT / "optimal_study.md").write_text("\n".join(markdown(rows, args.time_limit)) + "\n")
        print(f"rewrote {OUT / 'optimal_study.md'} from {len(rows)} rows")
        return 0
    t0 = time.time()
    todo = cells()
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(run, todo, [args.time_limit] * len(todo)):  # in the cells' order
            rows.append(row)
            print(f"[{len(rows)}/{len(todo)}] {row['network']} P={row['processors']} {row['method']}: "
                  f"{row['status']} in {row['cpu_seconds']} s CPU", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0])
    with open(OUT / "optimal_study.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[f for f in fields if f != "cpu_seconds"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    (OUT / "optimal_study.md").write_text("\n".join(markdown(rows, args.time_limit)) + "\n")
    print(f"{len(rows)} instances in {time.time() - t0:.0f} s with {args.jobs} jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
