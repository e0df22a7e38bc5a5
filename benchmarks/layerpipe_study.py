"""The LayerPipe study under the fair-comparison contract (docs/design.md section 11).

LayerPipe and LayerPipe2 against PipeDream on lenet5, alexnet, vgg16, resnet18 and the mlp,
2..9 and 16 processors, MAC arrays (256 MACs/cycle) and 32x32 weight-stationary systolic
arrays, links of latency 100 cycles and 16 bytes/cycle, batch 32. Every method chooses its
plan from the same candidates by simulated period (``simulator.selection``), in three settings:

* ``pipeline``: no stage replication for anyone (PipeDream's ``--straight_pipeline``; the
  setting of the old "straight PipeDream" comparison);
* ``hybrid``: replication allowed for every method (PipeDream's default), unlimited memory;
* ``hybrid`` with a memory capacity per processor of 90% of what data parallelism (every layer
  replicated) needs on that network, so replicating everything stops fitting.

Also: the flush baselines (GPipe, 1F1B, ZB-H1) on the MAC platform; LayerPipe with the other
readings of its inter-layer split (``balanced`` and fixed fractions rho of AG1's product moved
to the layer below) in the pipeline setting; and the attribution ladder (``layerpipe explain``)
of a few cells. Writes into docs/results/: layerpipe_study.csv, layerpipe_study.md,
layerpipe_speedup.png, layerpipe_ladders.json.

    python benchmarks/layerpipe_study.py            # the full study (about 35 minutes on 2 cores)
    python benchmarks/layerpipe_study.py --quick    # 3 networks, P in {2, 4, 8}, MAC arrays
    python benchmarks/layerpipe_study.py --from-csv docs/results/layerpipe_study.csv   # re-render only
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from study_tools import (  # noqa: E402
    OUT,
    Cell,
    ladder,
    ladder_markdown,
    one,
    plan_text,
    read_csv,
    replication_capacity,
    run_cells,
    write_csv,
)

from simulator.platform import format_bytes  # noqa: E402

NETWORKS = ("lenet5", "alexnet", "vgg16", "resnet18", "mlp")
PROCESSORS = (2, 3, 4, 5, 6, 7, 8, 9, 16)
HARDWARE = {"mac": "mac:256", "systolic": "systolic:32x32:ws"}
METHODS = ("pipedream", "layerpipe", "layerpipe2")
FLUSH = ("gpipe", "1f1b", "zb-h1")
SETTINGS = (("pipeline", False), ("hybrid", False), ("hybrid", True))  # (parallelism, memory-limited)
SPLITS = ("design", "balanced", 0.25, 0.5, 0.75)
SPLIT_PROCESSORS = (2, 4, 6, 8)
LADDERS = (("alexnet", "layerpipe", 8, "mac", "pipeline", False), ("vgg16", "layerpipe", 8, "mac", "pipeline", False),
           ("vgg16", "layerpipe2", 8, "mac", "pipeline", False), ("mlp", "layerpipe", 8, "mac", "pipeline", False),
           ("lenet5", "layerpipe", 4, "systolic", "pipeline", False), ("mlp", "layerpipe", 8, "mac", "hybrid", False),
           ("vgg16", "layerpipe2", 8, "mac", "hybrid", True), ("resnet18", "layerpipe2", 8, "mac", "hybrid", True))


def setting_name(parallelism: str, limited: bool) -> str:
    return f"{parallelism}, memory-limited" if limited else parallelism


def cells(networks, processors, hardware, capacities) -> list[Cell]:
    out = []
    for hw_name in hardware:
        for parallelism, limited in SETTINGS:
            for net in networks:
                for P in processors:
                    schedules = METHODS + (FLUSH if hw_name == "mac" else ())
                    out.append(Cell(net, P, HARDWARE[hw_name], parallelism, schedules,
                                    memory_capacity=capacities[net] if limited else None,
                                    tags=(("setting", setting_name(parallelism, limited)), ("platform_name", hw_name))))
    for net in networks:
        for P in SPLIT_PROCESSORS:
            for split in SPLITS[1:]:
                out.append(Cell(net, P, HARDWARE["mac"], "pipeline", ("layerpipe",), options=(("ag_split", split),),
                                tags=(("setting", "ag-split"), ("platform_name", "mac"))))
    return out


def _speedups(rows, platform_name, setting, method, networks, processors):
    out = {}
    for net in networks:
        for p in processors:
            r = one(rows, platform_name=platform_name, setting=setting, network=net, processors=p, schedule=method)
            out[(net, p)] = r["speedup_vs_pipedream"]
    return out


def _fmt(x) -> str:
    if x is None:
        return "does not fit"
    return "not measured" if math.isnan(x) else f"{x:.2f}"


def _summary(values: list) -> str:
    xs = [v for v in values if v is not None and not math.isnan(v)]
    unmeasured = sum(1 for v in values if v is not None and math.isnan(v))
    if not xs:
        return "no cell fits" if not unmeasured else "no cell measured"
    more = f"; {unmeasured} not measured" if unmeasured else ""
    return f"mean **{statistics.mean(xs):.2f}x** (min {min(xs):.2f}, max {max(xs):.2f}, {len(xs)} cells{more})"


def markdown(rows, ladders, networks, processors, hardware, capacities) -> str:
    lines = ["# LayerPipe study under the fair-comparison contract", "",
             "Command: `python benchmarks/layerpipe_study.py`. Batch 32, 48 minibatches "
             "(each run lengthened until its steady state converges), links of latency 100 cycles and 16 bytes/cycle, "
             "fully connected. Every method picks its plan from the same candidates (PipeDream's DP with its cut "
             "rule over both task groupings, straight and, in the hybrid setting, replicated) by simulated period, "
             "within the memory capacity.", "",
             "Memory capacity of the memory-limited setting (90% of what data parallelism needs on the network): "
             + ", ".join(f"{n} {format_bytes(capacities[n])}" for n in networks) + ".", ""]
    for hw_name in hardware:
        lines += [f"## {HARDWARE[hw_name]}", ""]
        for parallelism, limited in SETTINGS:
            setting = setting_name(parallelism, limited)
            for method in ("layerpipe", "layerpipe2"):
                sp = _speedups(rows, hw_name, setting, method, networks, processors)
                lines += [f"**{method} over PipeDream, {setting}** (PipeDream's cycles per minibatch / {method}'s):", "",
                          "| network | " + " | ".join(f"P={p}" for p in processors) + " |",
                          "|---|" + "---|" * len(processors)]
                for net in networks:
                    lines.append(f"| {net} | " + " | ".join(_fmt(sp[(net, p)]) for p in processors) + " |")
                big = [sp[(n, p)] for n in networks for p in processors if 7 <= p <= 9]
                lines += ["", f"All cells: {_summary(list(sp.values()))}; 7 to 9 processors: {_summary(big)}.", ""]
            lines += [f"Plans at P=8 ({setting}; stages as first-last layer, x replicas):", "",
                      "| network | pipedream | layerpipe | layerpipe2 |", "|---|---|---|---|"]
            for net in networks:
                cells_ = []
                for m in METHODS:
                    r = one(rows, platform_name=hw_name, setting=setting, network=net, processors=8, schedule=m)
                    cells_.append(plan_text(r["plan"]["stages"]) if r["feasible"] else "does not fit")
                lines.append(f"| {net} | " + " | ".join(cells_) + " |")
            lines += ["", f"Peak memory of the fullest processor at P=8 ({setting}, MB): PipeDream / LayerPipe / "
                      "LayerPipe2:", "", "| network | memory |", "|---|---|"]
            for net in networks:
                mems = []
                for m in METHODS:
                    r = one(rows, platform_name=hw_name, setting=setting, network=net, processors=8, schedule=m)
                    mems.append(f"{max(r['peak_memory_bytes']) / 1e6:,.1f}" if r["feasible"] else "-")
                lines.append(f"| {net} | " + " / ".join(mems) + " |")
            lines.append("")
    lines += ["## The flush baselines (mac:256)", "",
              "Speedup over PipeDream at P=8 (GPipe / 1F1B / ZB-H1, micro-batches of 32/m samples, one update per "
              "step):", "", "| network | pipeline | hybrid | hybrid, memory-limited |", "|---|---|---|---|"]
    for net in networks:
        cells_ = []
        for setting in ("pipeline", "hybrid", "hybrid, memory-limited"):
            cells_.append(" / ".join(_fmt(one(rows, platform_name="mac", setting=setting, network=net, processors=8,
                                               schedule=s)["speedup_vs_pipedream"]) for s in FLUSH))
        lines.append(f"| {net} | " + " | ".join(cells_) + " |")
    lines += ["", "## The inter-layer split as a study axis (mac:256, pipeline)", "",
              "LayerPipe's speedup over PipeDream with each reading of the activation-gradient split: `design` "
              "(AG1 on layer l, the element-wise AG2 on l-1: the default), `balanced` (a fraction of AG1's product "
              "moves to layer l-1 to equalise the two layers' work) and fixed fractions rho:", "",
              "| network | P | " + " | ".join(str(s) for s in SPLITS) + " |", "|---|---|" + "---|" * len(SPLITS)]
    for net in networks:
        for p in SPLIT_PROCESSORS:
            cells_ = [one(rows, platform_name="mac", setting="pipeline", network=net, processors=p,
                          schedule="layerpipe")["speedup_vs_pipedream"]]
            cells_ += [one(rows, setting="ag-split", network=net, processors=p, ag_split=s)["speedup_vs_pipedream"]
                       for s in SPLITS[1:]]
            lines.append(f"| {net} | {p} | " + " | ".join(_fmt(c) for c in cells_) + " |")
    lines += ["", "## Attribution ladders (`layerpipe explain`)", ""]
    for lad in ladders:
        lines += ladder_markdown(lad)
    return "\n".join(lines) + "\n"


def plot(rows, networks, processors, hardware, path: Path) -> None:
    settings = [setting_name(*s) for s in SETTINGS]
    fig, axes = plt.subplots(len(hardware), len(settings), figsize=(5.2 * len(settings), 3.9 * len(hardware)),
                             squeeze=False, sharey=True)
    for i, hw_name in enumerate(hardware):
        for j, setting in enumerate(settings):
            ax = axes[i][j]
            sp = _speedups(rows, hw_name, setting, "layerpipe", networks, processors)
            for net in networks:
                pts = [(p, sp[(net, p)]) for p in processors if sp[(net, p)] is not None]
                ax.plot([p for p, _ in pts], [y for _, y in pts], marker="o", label=net)
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
            ax.set_title(f"{HARDWARE[hw_name]}, {setting}", fontsize=10)
            ax.set_xlabel("processors")
            ax.set_xticks(list(processors))
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("LayerPipe speedup over PipeDream")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("LayerPipe over PipeDream, the same planner freedom for both", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    global SPLIT_PROCESSORS, LADDERS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 networks on P in {2, 4, 8}, MAC arrays only")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/results)")
    ap.add_argument("--from-csv", type=Path, help="re-render the tables and the plot from a CSV this script wrote")
    ap.add_argument("--jobs", "-j", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args(argv)
    networks, processors, hardware = NETWORKS, PROCESSORS, tuple(HARDWARE)
    stem = "layerpipe_study"
    if args.quick:
        networks, processors, hardware, stem = ("lenet5", "alexnet", "mlp"), (2, 4, 8), ("mac",), "layerpipe_study_quick"
        SPLIT_PROCESSORS = (2, 4, 8)
        LADDERS = tuple(c for c in LADDERS if c[0] in networks and c[3] == "mac")
    capacities = {n: replication_capacity(n, HARDWARE["mac"], 0.9) for n in networks}
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.from_csv:
        rows = read_csv(args.from_csv)
        ladders = json.loads((args.from_csv.parent / f"{args.from_csv.stem.replace('study', 'ladders')}.json").read_text())
    else:
        rows = run_cells(cells(networks, processors, hardware, capacities), args.jobs)
        ladders = [ladder(n, m, p, HARDWARE[h], par, memory_capacity=capacities[n] if lim else None)
                   for n, m, p, h, par, lim in LADDERS]
        write_csv(rows, args.out / f"{stem}.csv")
        (args.out / f"{stem.replace('study', 'ladders')}.json").write_text(json.dumps(ladders, indent=1) + "\n")
    seconds = time.time() - t0 if not args.from_csv else 0
    (args.out / f"{stem}.md").write_text(markdown(rows, ladders, networks, processors, hardware, capacities))
    plot(rows, networks, processors, hardware, args.out / f"{stem.replace('study', 'speedup')}.png")
    print((args.out / f"{stem}.md").read_text())
    print(f"{seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
