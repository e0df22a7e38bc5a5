"""The SpikePipe study: SpikePipe against standard pipelining of the same SNNs on systolic arrays.

Runs the three built-in SNNs (snn_mlp, snn_cnn, snn_vgg; T = 8 time steps) on 2..9 processors,
each a 32x32 weight-stationary systolic array, and compares ``spikepipe`` with PipeDream-style
(``pipedream``) and GPipe-style (``gpipe``) pipelining. Writes into docs/results/:

* spikepipe_study.csv - every metric of every run;
* spikepipe_study.md - speedups over both baselines, utilization, and SpikePipe's extra
  communication as a fraction of all bytes a training step reads and writes (the paper's
  "communication overhead"), with spikes counted as 1 byte and as 1 bit per element;
* spikepipe_speedup.png - speedup versus processors.

    python benchmarks/spikepipe_study.py           # about a minute
    python benchmarks/spikepipe_study.py --quick   # P in {2, 4, 8}
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from layerpipe_study import by, flat  # noqa: E402  (run as a script: benchmarks/ is on sys.path)

from models.network.snn_zoo import get_snn_network, snn_network_names  # noqa: E402
from simulator.costs import LinkModel, SystolicArray  # noqa: E402
from simulator.evaluate import compare  # noqa: E402
from simulator.platform import Platform  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"
PROCESSORS = (2, 3, 4, 5, 6, 7, 8, 9)
SCHEDULES = ("pipedream", "gpipe", "spikepipe")
ARRAY = SystolicArray(32, 32, "ws")
LINK = LinkModel(100, 16.0)
BATCH, MINIBATCHES = 32, 48


def run(processors) -> list[dict]:
    rows = []
    for name in snn_network_names():
        net = get_snn_network(name)
        for P in processors:
            t0 = time.time()
            plat = Platform.homogeneous(P, ARRAY, LINK)
            for bits in (False, True):
                for r in compare(net, SCHEDULES, plat, minibatches=MINIBATCHES, batch=BATCH, spike_bits=bits):
                    rows.append({**r, "network": name, "spike_bits": bits})
            print(f"{name:8s} P={P} {time.time() - t0:5.1f}s", flush=True)
    return rows


def markdown(rows, processors) -> str:
    nets = tuple(dict.fromkeys(r["network"] for r in rows))
    lines = ["# SpikePipe study", "",
             f"Command: `python benchmarks/spikepipe_study.py`; each processor a {ARRAY.describe()} array, batch {BATCH}, "
             f"{MINIBATCHES} minibatches (lengthened until the steady state converges), link latency {LINK.latency} cycles "
             f"and {LINK.bytes_per_cycle:g} bytes/cycle. Spikes crossing processors count 1 byte per element unless stated.", ""]
    for base in ("pipedream", "gpipe"):
        lines += [f"Speedup of SpikePipe over {base}-style pipelining (their cycles per minibatch / SpikePipe's):", ""]
        lines.append("| network | " + " | ".join(f"P={p}" for p in processors) + " |")
        lines.append("|---|" + "---|" * len(processors))
        for net in nets:
            cells = []
            for p in processors:
                sp = by(rows, network=net, processors=p, schedule="spikepipe", spike_bits=False)[0]
                b = by(rows, network=net, processors=p, schedule=base, spike_bits=False)[0]
                cells.append(f"{b['cycles_per_minibatch'] / sp['cycles_per_minibatch']:.2f}")
            lines.append(f"| {net} | " + " | ".join(cells) + " |")
        ratios = [by(rows, network=n, processors=p, schedule=base, spike_bits=False)[0]["cycles_per_minibatch"]
                  / by(rows, network=n, processors=p, schedule="spikepipe", spike_bits=False)[0]["cycles_per_minibatch"]
                  for n in nets for p in processors]
        lines += ["", f"Mean **{statistics.mean(ratios):.2f}x**, min {min(ratios):.2f}, max {max(ratios):.2f}.", ""]
    lines += ["Per network and P: utilization (SpikePipe / PipeDream / GPipe), efficiency of SpikePipe (lower bound / "
              "achieved), and SpikePipe's extra bytes over PipeDream per step as a % of the bytes a step reads and "
              "writes (spikes as 1 byte / as 1 bit):", "",
              "| network | P | utilization | efficiency | comm overhead (byte) | comm overhead (bit) |", "|---|---|---|---|---|---|"]
    for net in nets:
        for p in processors:
            sp, pd, gp = (by(rows, network=net, processors=p, schedule=s, spike_bits=False)[0] for s in ("spikepipe", "pipedream", "gpipe"))
            bit = by(rows, network=net, processors=p, schedule="spikepipe", spike_bits=True)[0]
            lines.append(f"| {net} | {p} | {sp['utilization_mean']:.2f} / {pd['utilization_mean']:.2f} / {gp['utilization_mean']:.2f} "
                         f"| {sp['efficiency']:.2f} | {100 * sp['comm_overhead']:+.2f}% | {100 * bit['comm_overhead']:+.2f}% |")
    return "\n".join(lines) + "\n"


def plot(rows, processors, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for net in dict.fromkeys(r["network"] for r in rows):
        for base, style in (("pipedream", "-o"), ("gpipe", "--s")):
            ys = [by(rows, network=net, processors=p, schedule=base, spike_bits=False)[0]["cycles_per_minibatch"]
                  / by(rows, network=net, processors=p, schedule="spikepipe", spike_bits=False)[0]["cycles_per_minibatch"]
                  for p in processors]
            ax.plot(processors, ys, style, label=f"{net} vs {base}")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_title(f"SpikePipe speedup over standard pipelining ({ARRAY.describe()})")
    ax.set_xlabel("processors")
    ax.set_ylabel("speedup (baseline cycles / SpikePipe cycles)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="P in {2, 4, 8}")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/results)")
    args = ap.parse_args(argv)
    processors = (2, 4, 8) if args.quick else PROCESSORS
    rows = run(processors)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "spikepipe_study_quick" if args.quick else "spikepipe_study"
    with open(args.out / f"{stem}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(flat(rows[0])))
        writer.writeheader()
        writer.writerows(flat(r) for r in rows)
    (args.out / f"{stem}.md").write_text(markdown(rows, processors))
    plot(rows, processors, args.out / f"{stem.replace('study', 'speedup')}.png")
    print((args.out / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
