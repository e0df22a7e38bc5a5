"""The LayerPipe study: LayerPipe and the baselines against PipeDream on the zoo.

Runs lenet5, alexnet, vgg16, resnet18 and the mlp on 2..9 and 16 processors, on a
MAC-array platform and a systolic-array platform, and writes into docs/results/:

* layerpipe_study.csv - one row per (platform, network, processors, schedule) with every
  metric of ``simulator.evaluate.compare``;
* layerpipe_study.md - speedup of each schedule over PipeDream, efficiency against the
  lower bound, communication and memory, plus the summary figures the README quotes;
* layerpipe_speedup.png - speedup of LayerPipe over PipeDream versus processors.

    python benchmarks/layerpipe_study.py            # the full study (a few minutes)
    python benchmarks/layerpipe_study.py --quick    # 3 networks, P in {2, 4, 8}
    python benchmarks/layerpipe_study.py --from-csv docs/results/layerpipe_study.csv   # re-render only
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from models.network.zoo import get_network  # noqa: E402
from simulator.costs import LinkModel, MacArray, SystolicArray  # noqa: E402
from simulator.evaluate import compare  # noqa: E402
from simulator.platform import Platform  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"
NETWORKS = ("lenet5", "alexnet", "vgg16", "resnet18", "mlp")
PROCESSORS = (2, 3, 4, 5, 6, 7, 8, 9, 16)
SCHEDULES = ("pipedream", "gpipe", "1f1b", "zb-h1", "layerpipe", "layerpipe2")
PLATFORMS = {
    "mac": (MacArray(256), "MAC array, 256 MACs/cycle"),
    "systolic": (SystolicArray(32, 32, "ws"), "32x32 weight-stationary systolic array"),
}
LINK = LinkModel(100, 16.0)
BATCH, MINIBATCHES = 32, 48


def run(networks, processors, platforms) -> list[dict]:
    rows = []
    for plat_name in platforms:
        cost, _ = PLATFORMS[plat_name]
        for net_name in networks:
            net = get_network(net_name)
            for P in processors:
                t0 = time.time()
                plat = Platform.homogeneous(P, cost, LINK)
                for r in compare(net, SCHEDULES, plat, minibatches=MINIBATCHES, batch=BATCH):
                    rows.append({**r, "platform": plat_name, "platform_detail": r["platform"], "network": net_name})
                print(f"{plat_name:9s} {net_name:9s} P={P:2d} {time.time() - t0:5.1f}s", flush=True)
    return rows


def flat(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        out[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
    return out


def read_csv(path: Path) -> list[dict]:
    """Rows as :func:`run` made them (JSON cells decoded, numbers parsed)."""
    rows = []
    with open(path, newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {}
            for k, v in raw.items():
                try:
                    row[k] = json.loads(v)
                except (json.JSONDecodeError, TypeError):
                    row[k] = v
            rows.append(row)
    return rows


def by(rows, **keys):
    return [r for r in rows if all(r[k] == v for k, v in keys.items())]


def markdown(rows, networks, processors, platforms) -> str:
    lines = ["# LayerPipe study", "",
             f"Command: `python benchmarks/layerpipe_study.py`; batch {BATCH}, {MINIBATCHES} minibatches, "
             f"link latency {LINK.latency} cycles and {LINK.bytes_per_cycle:g} bytes/cycle, fully connected.", ""]
    for plat in platforms:
        lines += [f"## {PLATFORMS[plat][1]}", "", "Speedup of LayerPipe over PipeDream (cycles per minibatch of PipeDream / LayerPipe):", ""]
        lines.append("| network | " + " | ".join(f"P={p}" for p in processors) + " |")
        lines.append("|---|" + "---|" * len(processors))
        for net in networks:
            cells = [f"{by(rows, platform=plat, network=net, processors=p, schedule='layerpipe')[0]['speedup_vs_pipedream']:.2f}"
                     for p in processors]
            lines.append(f"| {net} | " + " | ".join(cells) + " |")
        lp = [r["speedup_vs_pipedream"] for r in by(rows, platform=plat, schedule="layerpipe")]
        big = [r["speedup_vs_pipedream"] for r in by(rows, platform=plat, schedule="layerpipe") if 7 <= r["processors"] <= 9]
        lines += ["", f"Mean over all cases: **{statistics.mean(lp):.2f}x** (min {min(lp):.2f}, max {max(lp):.2f}); "
                  f"with 7 to 9 processors: mean {statistics.mean(big):.2f}x, max {max(big):.2f}x." if big else "", ""]
        lines += ["Every schedule at the largest P <= 9, per network: speedup vs PipeDream / efficiency (lower bound / achieved) / "
                  "bytes crossing processors per minibatch (MB) / peak memory of the fullest processor (MB):", ""]
        p_show = max(p for p in processors if p <= 9)
        lines.append("| network | " + " | ".join(SCHEDULES) + " |")
        lines.append("|---|" + "---|" * len(SCHEDULES))
        for net in networks:
            cells = []
            for s in SCHEDULES:
                r = by(rows, platform=plat, network=net, processors=p_show, schedule=s)[0]
                cells.append(f"{r['speedup_vs_pipedream']:.2f} / {r['efficiency']:.2f} / "
                             f"{r['comm_bytes_per_minibatch'] / 1e6:.2f} / {max(r['peak_memory_bytes']) / 1e6:.0f}")
            lines.append(f"| {net} (P={p_show}) | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(rows, networks, processors, platforms, path: Path) -> None:
    fig, axes = plt.subplots(1, len(platforms), figsize=(6.5 * len(platforms), 4.5), squeeze=False)
    for ax, plat in zip(axes[0], platforms):
        for net in networks:
            ys = [by(rows, platform=plat, network=net, processors=p, schedule="layerpipe")[0]["speedup_vs_pipedream"]
                  for p in processors]
            ax.plot(processors, ys, marker="o", label=net)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(f"LayerPipe vs PipeDream - {PLATFORMS[plat][1]}")
        ax.set_xlabel("processors")
        ax.set_ylabel("speedup (PipeDream cycles / LayerPipe cycles)")
        ax.set_xticks(list(processors))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 networks on P in {2, 4, 8}, MAC platform only")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/results)")
    ap.add_argument("--from-csv", type=Path, help="re-render the table and plot from a CSV this script wrote")
    args = ap.parse_args(argv)
    networks, processors, platforms = NETWORKS, PROCESSORS, tuple(PLATFORMS)
    if args.quick:
        networks, processors, platforms = ("lenet5", "alexnet", "mlp"), (2, 4, 8), ("mac",)
    if args.from_csv:
        rows = read_csv(args.from_csv)
        networks = tuple(dict.fromkeys(r["network"] for r in rows))
        processors = tuple(sorted({r["processors"] for r in rows}))
        platforms = tuple(dict.fromkeys(r["platform"] for r in rows))
    else:
        rows = run(networks, processors, platforms)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "layerpipe_study_quick" if args.quick else "layerpipe_study"
    if not args.from_csv:
        with open(args.out / f"{stem}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(flat(rows[0])))
            writer.writeheader()
            writer.writerows(flat(r) for r in rows)
    (args.out / f"{stem}.md").write_text(markdown(rows, networks, processors, platforms))
    plot(rows, networks, processors, platforms, args.out / ("layerpipe_speedup_quick.png" if args.quick else "layerpipe_speedup.png"))
    print((args.out / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
