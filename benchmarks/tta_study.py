"""Time to accuracy: does the staleness that buys a schedule its speed cost it steps?

Every schedule is simulated on the platform (the plan ``compare`` chooses) and trained with the
weight versions its simulated run realised (``layerpipe tta``; ``simulator.studies.tta``):
PipeDream, LayerPipe, LayerPipe2 (EMA reconstruction and weight stashing), GPipe and 1F1B, and
SpikePipe on the spiking network, on the digits MLP (64-128-64-10), a small CNN for 8x8 digits
and snn_mlp (rate-coded, T = 8), at 2, 4 and 8 MAC-array processors (256 MACs/cycle, links of
latency 100 cycles and 16 bytes/cycle), in the ``pipeline`` and ``hybrid`` parallelism modes (the
hybrid one twice: a stage replicated R ways applies one update per R minibatches, with the same
learning rate on their mean gradient or R times it, the linear scaling rule);
batch 32, 20 epochs at most, test accuracy every 5 minibatches, 3 seeds. SGD (lr 0.01, momentum
0.9) for the ANNs, Adam (lr 0.002) for the SNN. Writes docs/results/tta_study.csv, tta_study.md
and tta_curves.png.

    python benchmarks/tta_study.py            # the full study (about 10 minutes on 2 cores)
    python benchmarks/tta_study.py --quick    # the MLP at P = 4, one seed
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from study_tools import write_csv  # noqa: E402

from models.training.data import load_dataset  # noqa: E402
from models.training.optim import OptimizerConfig  # noqa: E402
from schedules.planning.partition import plan_text  # noqa: E402
from simulator.commands.train import resolve_network  # noqa: E402
from simulator.platform import PlatformSpec  # noqa: E402
from simulator.studies.tta import time_to_accuracy  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "results"
NETWORKS = {"mlp": 0.95, "digits-cnn": 0.97, "snn_mlp": 0.92}  # network -> target test accuracy
PROCESSORS = (2, 4, 8)
#: (parallelism, learning rate of a replicated stage's update round): the hybrid mode twice, with
#: the same learning rate on the round's mean gradient and with the linear scaling rule
MODES = (("pipeline", "same"), ("hybrid", "same"), ("hybrid", "linear"))
SCHEDULES = ("pipedream", "layerpipe", "layerpipe2", "layerpipe2:stash", "gpipe", "1f1b")
SEEDS, EPOCHS, EVAL_EVERY = 3, 20, 5


def schedules_for(net: str) -> tuple[str, ...]:
    return SCHEDULES + (("spikepipe",) if net.startswith("snn") else ())


def mode_name(mode: tuple[str, str]) -> str:
    return mode[0] if mode[1] == "same" else f"{mode[0]}, lr x R"


def run_cell(cell: tuple) -> list[dict]:
    net_name, P, (parallelism, round_lr), seeds = cell
    t0 = time.time()
    data = load_dataset("digits")
    net = resolve_network(net_name, data)
    spiking = net_name.startswith("snn")
    optimizer = OptimizerConfig("adam", lr=0.002) if spiking else OptimizerConfig("sgd", lr=0.01, momentum=0.9)
    rows = time_to_accuracy(net, schedules_for(net_name), PlatformSpec(P).build(), data, target=NETWORKS[net_name],
                            seeds=seeds, epochs=EPOCHS, eval_every=EVAL_EVERY, optimizer=optimizer,
                            round_lr=round_lr, parallelism=parallelism)
    mode = mode_name((parallelism, round_lr))
    print(f"{net_name:10s} P={P} {mode:16s} {time.time() - t0:6.1f}s", flush=True)
    return [{"network": net_name, "processors": P, "setting": mode, "parallelism": parallelism, "round_lr": round_lr,
             **r.to_dict()} for r in rows]


def _ratio(a, b):
    return None if a is None or b is None else a / b


def markdown(rows: list[dict], seeds: int) -> str:
    lines = ["# Time to accuracy with the staleness each schedule realises", "",
             "Command: `python benchmarks/tta_study.py`. Each schedule is simulated on P MAC-array processors "
             "(256 MACs/cycle, links 100 cycles + 16 B/cycle) with the plan `compare` chooses, and trained on digits "
             f"with the weight versions its run realised (update rounds of replicated stages included); {seeds} "
             f"seed{'s' if seeds > 1 else ''}, at most {EPOCHS} epochs, test accuracy every {EVAL_EVERY} minibatches. Steps and cycles to the "
             "target are means over the seeds, given only when every seed reached it. `per-step` is PipeDream's "
             "cycles per minibatch over the schedule's; `to target` is PipeDream's cycles to the target over the "
             "schedule's: the speedup that counts. `update every`: minibatches per update of each layer (R for a stage "
             "replicated R ways, whose update applies the mean of the R gradients; in `hybrid, lr x R` at R times the "
             "learning rate, the linear scaling rule).", ""]
    for net, target in NETWORKS.items():
        lines += [f"## {net} (target {target:.0%})", ""]
        for mode in map(mode_name, MODES):
            lines += [f"**{mode}**", "",
                      "| P | schedule | plan | update every | realised staleness (nominal/forward) | steps to target | "
                      "cycles/minibatch | cycles to target | per-step | to target | final accuracy | peak memory (KiB) |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for P in PROCESSORS:
                cell = [r for r in rows if r["network"] == net and r["processors"] == P and r["setting"] == mode]
                base = next(r for r in cell if r["schedule"] == "pipedream")
                for r in cell:
                    steps = (f"{r['steps_to_target']:.0f} ± {r['steps_to_target_std']:.0f}"
                             if r["steps_to_target"] is not None else f"not reached ({r['reached']}/{r['seeds']})")
                    per_step = _ratio(base["cycles_per_minibatch"], r["cycles_per_minibatch"])
                    to_target = _ratio(base["cycles_to_target"], r["cycles_to_target"])
                    stale = ",".join(f"{s['nominal']}/{s['forward_min']}" + (
                        f"-{s['forward_max']}" if s["forward_max"] != s["forward_min"] else "") for s in r["staleness"])
                    plan = plan_text(r["plan"])
                    lines.append(
                        f"| {P} | {r['schedule']} | {plan} | {','.join(map(str, r['round_size']))} | {stale} | {steps} | "
                        f"{r['cycles_per_minibatch']:,.0f} | "
                        + (f"{r['cycles_to_target']:,.0f}" if r["cycles_to_target"] is not None else "-")
                        + f" | {per_step:.2f} | " + (f"{to_target:.2f}" if to_target is not None else "-")
                        + f" | {r['final_accuracy']:.3f} ± {r['final_accuracy_std']:.3f} | "
                        f"{r['peak_memory_bytes'] / 1024:,.1f} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(len(NETWORKS), len(PROCESSORS), figsize=(4.6 * len(PROCESSORS), 3.4 * len(NETWORKS)),
                             squeeze=False)
    colors = {"pipedream": "#0173B2", "layerpipe": "#D55E00", "layerpipe2": "#029E73", "layerpipe2:stash": "#029E73",
              "gpipe": "#949494", "1f1b": "#CC78BC", "spikepipe": "#DE8F05"}
    for i, (net, target) in enumerate(NETWORKS.items()):
        for j, P in enumerate(PROCESSORS):
            ax = axes[i][j]
            for r in rows:
                if r["network"] != net or r["processors"] != P or r["setting"] != "pipeline":
                    continue
                runs = r["runs"]
                n = min(len(run["curve"]) for run in runs)
                xs = [runs[0]["curve"][k][0] * r["cycles_per_minibatch"] for k in range(n)]
                mean = [statistics.fmean(run["curve"][k][1] for run in runs) for k in range(n)]
                ax.plot(xs, mean, color=colors.get(r["schedule"], "#000000"), linewidth=1.2,
                        linestyle="--" if ":" in r["schedule"] else "-", label=r["schedule"])
            ax.axhline(target, color="#555555", linestyle=":", linewidth=0.8)
            ax.set_ylim(max(0.0, target - 0.25), 1.0)
            ax.set_xlim(left=0)
            ax.set_title(f"{net}, P={P}, pipeline", fontsize=9)
            ax.set_xlabel("simulated cycles", fontsize=8)
            ax.set_ylabel("test accuracy", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Test accuracy against simulated time, each schedule with its realised staleness (mean of seeds)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    global NETWORKS, PROCESSORS, MODES
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the MLP at P = 4, one seed")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/results)")
    ap.add_argument("--jobs", "-j", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args(argv)
    seeds, stem = SEEDS, "tta_study"
    if args.quick:
        NETWORKS, PROCESSORS, seeds, stem = {"mlp": NETWORKS["mlp"]}, (4,), 1, "tta_study_quick"
    cells = [(net, P, mode, seeds) for net in NETWORKS for mode in MODES for P in PROCESSORS]
    t0 = time.time()
    jobs = args.jobs or os.cpu_count() or 1
    # the slow networks first, so the pool's last tasks are short
    order = sorted(range(len(cells)), key=lambda k: (cells[k][0] == "mlp", k))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = dict(zip(order, pool.map(run_cell, [cells[k] for k in order])))
    rows = [row for k in range(len(cells)) for row in results[k]]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / f"{stem}.csv")
    (args.out / f"{stem}.md").write_text(markdown(rows, seeds))
    plot(rows, args.out / f"{stem.replace('study', 'curves')}.png")
    print((args.out / f"{stem}.md").read_text())
    print(f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
