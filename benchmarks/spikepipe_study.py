"""The SpikePipe study under the fair-comparison contract (docs/design.md section 11).

SpikePipe against PipeDream-style (``pipedream``) and GPipe-style (``gpipe``) pipelining of the
three built-in SNNs (snn_mlp, snn_cnn, snn_vgg; T = 8 time steps) on 2..9 processors, each a
32x32 weight-stationary systolic array (the paper's setting) or a MAC array of 256 MACs/cycle,
links of latency 100 cycles and 16 bytes/cycle, batch 32. Every method chooses its plan from the
same candidates by simulated period (``simulator.selection``), in the ``pipeline`` setting (no
stage replication for anyone) and the ``hybrid`` one (replication allowed for everyone).
SpikePipe's communication overhead (its extra bytes over PipeDream as a fraction of the bytes a
training step reads and writes) is reported with spikes counted as 1 byte and as 1 bit. Writes
into docs/results/: spikepipe_study.csv, spikepipe_study.md, spikepipe_speedup.png.

    python benchmarks/spikepipe_study.py           # about 1 minute on 2 cores
    python benchmarks/spikepipe_study.py --quick   # P in {2, 4, 8}, systolic arrays
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from study_tools import OUT, Cell, one, plan_text, run_cells, write_csv  # noqa: E402

from models.network.snn_zoo import snn_network_names  # noqa: E402

PROCESSORS = (2, 3, 4, 5, 6, 7, 8, 9)
HARDWARE = {"systolic": "systolic:32x32:ws", "mac": "mac:256"}
SCHEDULES = ("pipedream", "gpipe", "spikepipe")
SETTINGS = ("pipeline", "hybrid")


def cells(processors, hardware) -> list[Cell]:
    return [Cell(net, P, HARDWARE[hw], setting, SCHEDULES, options=(("spike_bits", bits),),
                 tags=(("platform_name", hw),))
            for hw in hardware for setting in SETTINGS for net in snn_network_names() for P in processors
            for bits in (False, True)]


def _ratio(rows, hw, setting, net, p, base) -> float:
    sp = one(rows, platform_name=hw, parallelism=setting, network=net, processors=p, schedule="spikepipe",
             spike_bits=False)
    b = one(rows, platform_name=hw, parallelism=setting, network=net, processors=p, schedule=base, spike_bits=False)
    return b["cycles_per_minibatch"] / sp["cycles_per_minibatch"]


def markdown(rows, processors, hardware) -> str:
    nets = snn_network_names()
    lines = ["# SpikePipe study under the fair-comparison contract", "",
             "Command: `python benchmarks/spikepipe_study.py`. T = 8 time steps, batch 32, 48 minibatches (each run "
             "lengthened until its steady state converges), links of latency 100 cycles and 16 bytes/cycle. Every "
             "method picks its plan from the same candidates by simulated period. Spikes crossing processors count 1 "
             "byte per element unless stated.", ""]
    for hw in hardware:
        lines += [f"## {HARDWARE[hw]}", ""]
        for setting in SETTINGS:
            for base in ("pipedream", "gpipe"):
                lines += [f"**SpikePipe over {base}-style pipelining, {setting}** (their cycles per minibatch / "
                          "SpikePipe's):", "", "| network | " + " | ".join(f"P={p}" for p in processors) + " |",
                          "|---|" + "---|" * len(processors)]
                ratios = []
                for net in nets:
                    row = [_ratio(rows, hw, setting, net, p, base) for p in processors]
                    ratios += row
                    lines.append(f"| {net} | " + " | ".join(f"{x:.2f}" for x in row) + " |")
                lines += ["", f"Mean **{statistics.mean(ratios):.2f}x**, min {min(ratios):.2f}, max {max(ratios):.2f}.",
                          ""]
            lines += [f"Plans at P=8 and the communication overhead of SpikePipe ({setting}; its extra bytes over "
                      "PipeDream per step as a % of the bytes a step reads and writes, spikes as 1 byte / 1 bit):", "",
                      "| network | pipedream | gpipe | spikepipe | overhead (byte) | overhead (bit) |",
                      "|---|---|---|---|---|---|"]
            for net in nets:
                plans = [plan_text(one(rows, platform_name=hw, parallelism=setting, network=net, processors=8,
                                       schedule=s, spike_bits=False)["plan"]["stages"]) for s in SCHEDULES]
                over = [100 * one(rows, platform_name=hw, parallelism=setting, network=net, processors=8,
                                  schedule="spikepipe", spike_bits=b)["comm_overhead"] for b in (False, True)]
                lines.append(f"| {net} | " + " | ".join(plans) + f" | {over[0]:+.2f}% | {over[1]:+.2f}% |")
            lines.append("")
    return "\n".join(lines) + "\n"


def plot(rows, processors, hardware, path: Path) -> None:
    fig, axes = plt.subplots(1, len(SETTINGS) * len(hardware), figsize=(5.0 * len(SETTINGS) * len(hardware), 4.0),
                             squeeze=False, sharey=True)
    panels = [(hw, s) for hw in hardware for s in SETTINGS]
    for ax, (hw, setting) in zip(axes[0], panels):
        for net in snn_network_names():
            for base, style in (("pipedream", "-o"), ("gpipe", "--s")):
                ax.plot(processors, [_ratio(rows, hw, setting, net, p, base) for p in processors], style,
                        label=f"{net} vs {base}")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{HARDWARE[hw]}, {setting}", fontsize=10)
        ax.set_xlabel("processors")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("speedup (baseline cycles / SpikePipe cycles)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("SpikePipe over standard pipelining, the same planner freedom for all", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="P in {2, 4, 8}, systolic arrays only")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/results)")
    ap.add_argument("--jobs", "-j", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args(argv)
    processors, hardware = ((2, 4, 8), ("systolic",)) if args.quick else (PROCESSORS, tuple(HARDWARE))
    t0 = time.time()
    rows = run_cells(cells(processors, hardware), args.jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "spikepipe_study_quick" if args.quick else "spikepipe_study"
    write_csv(rows, args.out / f"{stem}.csv")
    (args.out / f"{stem}.md").write_text(markdown(rows, processors, hardware))
    plot(rows, processors, hardware, args.out / f"{stem.replace('study', 'speedup')}.png")
    print((args.out / f"{stem}.md").read_text())
    print(f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
