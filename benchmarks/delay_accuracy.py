"""Accuracy versus gradient delay for the five compensation modes, with the weight memory each needs.

The study behind LayerPipe2's claim: "EMA reconstruction is close to weight stashing with
O(L) instead of O(L*n) stored weights". We train on scikit-learn's digits (360 test images)
with the delays of a 4-processor LayerPipe schedule, one weight layer per stage,
S = (3, 2, 1, 0) weight updates, scaled by k: delays k*S(l) (k = 0 is synchronous).

Part A  accuracy vs k for none / stash / nostash / ema / predict on an MLP (64-128-128-64-10)
        and a small CNN (digits-cnn), SGD lr 0.01 momentum 0.9 (the test suite's setting),
        and the stored weight values each mode needs at each k.
Part B  where the claim holds and where it breaks: the MLP under other optimizer settings
        (large learning rate without momentum, larger rate with momentum, Adam), plus an
        ablation of the EMA coefficient (one beta 0.9 for all layers instead of our
        per-layer (d-1)/(d+1)).

Writes docs/results/delay_accuracy.md (tables), .csv (one row per run) and .png (plot).
Runs are independent and seeded (the same seed gives the same numbers), spread over
``--jobs`` processes. The default run (378 trainings) takes about 4 minutes on 2 idle cores; ``--quick`` is a
smoke run of well under a minute.

    python benchmarks/delay_accuracy.py            # the study
    python benchmarks/delay_accuracy.py --quick    # a smoke run (1 seed, fewer points)
"""

from __future__ import annotations

import os

# One BLAS thread per process (set before NumPy loads): the matrices are tiny, and
# parallelism comes from running independent trainings side by side.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from models.network.spec import NetworkSpec  # noqa: E402
from models.network.zoo import mlp  # noqa: E402
from models.training.data import digits_cnn, load_digits_split  # noqa: E402
from models.training.nn import Net  # noqa: E402
from models.training.optim import OptimizerConfig  # noqa: E402
from models.training.trainer import TrainConfig, train, weight_copies  # noqa: E402

#: delays (updates) of a 4-processor LayerPipe schedule of a 4-weight-layer network, one layer per stage
BASE_DELAYS = (3, 2, 1, 0)
MODES = ("none", "stash", "nostash", "ema", "predict")
#: series drawn in the plots: the five modes, plus the EMA-coefficient ablation in part B
SERIES_STYLE = {
    "none": dict(color="black", ls="--", marker=""),
    "stash": dict(color="tab:blue", marker="o"),
    "nostash": dict(color="tab:gray", marker="x"),
    "ema": dict(color="tab:red", marker="s"),
    "predict": dict(color="tab:green", marker="^"),
    "ema-b0.9": dict(color="tab:orange", marker="v", ls=":"),
}
NETWORKS = {"mlp": lambda: mlp((64, 128, 128, 64, 10)), "cnn": digits_cnn}


@dataclass(frozen=True)
class Regime:
    """An optimizer setting, with a label for tables."""

    label: str
    optimizer: str
    lr: float
    momentum: float = 0.0

    def config(self) -> OptimizerConfig:
        return OptimizerConfig(self.optimizer, lr=self.lr, momentum=self.momentum)


MAIN = Regime("SGD lr 0.01 mom 0.9", "sgd", 0.01, 0.9)
REGIMES = (
    Regime("SGD lr 0.03 mom 0.9", "sgd", 0.03, 0.9),
    Regime("SGD lr 0.1 mom 0", "sgd", 0.1, 0.0),
    Regime("SGD lr 0.3 mom 0", "sgd", 0.3, 0.0),
    Regime("Adam lr 0.002", "adam", 0.002),
)


@dataclass(frozen=True)
class Job:
    part: str
    network: str
    regime: Regime
    series: str  # a mode, or "ema-b0.9"
    k: int
    seed: int
    epochs: int

    @property
    def mode(self) -> str:
        return "ema" if self.series.startswith("ema") else self.series

    @property
    def delays(self) -> tuple[int, ...]:
        return tuple(self.k * d for d in BASE_DELAYS)


_DATA = None


def _run(job: Job) -> dict:
    global _DATA  # one copy of the digits per worker process
    if _DATA is None:
        _DATA = load_digits_split()
    config = TrainConfig(
        compensation=job.mode, delays=job.delays, optimizer=job.regime.config(), epochs=job.epochs, seed=job.seed,
        ema_beta=0.9 if job.series == "ema-b0.9" else None,
    )
    result = train(NETWORKS[job.network](), _DATA, config)
    return {
        "part": job.part, "network": job.network, "regime": job.regime.label, "optimizer": job.regime.optimizer,
        "lr": job.regime.lr, "momentum": job.regime.momentum, "series": job.series, "k": job.k,
        "delays": " ".join(map(str, result.delays)), "seed": job.seed, "epochs": job.epochs,
        "test_accuracy": result.test_accuracy, "final_loss": result.final_loss, "diverged": result.diverged,
        "weight_copies": " ".join(map(str, result.weight_copies)), "weight_memory": result.weight_memory,
    }


def make_jobs(quick: bool) -> list[Job]:
    seeds = range(1) if quick else range(3)
    epochs = 8 if quick else 20
    ks_a = (1, 4) if quick else (1, 2, 3, 4, 6)
    ks_b = (1, 4) if quick else (1, 2, 4, 8)
    regimes = REGIMES[1:3] if quick else REGIMES
    jobs = []
    for net in NETWORKS:
        for seed in seeds:
            jobs.append(Job("A", net, MAIN, "none", 0, seed, epochs))
            jobs += [Job("A", net, MAIN, m, k, seed, epochs) for m in MODES[1:] for k in ks_a]
    for regime in regimes:
        for seed in seeds:
            jobs.append(Job("B", "mlp", regime, "none", 0, seed, epochs))
            jobs += [Job("B", "mlp", regime, m, k, seed, epochs) for m in (*MODES[1:], "ema-b0.9") for k in ks_b]
    # the CNN runs are the slowest: start them first so the pool ends evenly
    return sorted(jobs, key=lambda j: j.network != "cnn")


# --------------------------------------------------------------------------- reporting


def aggregate(rows: list[dict]) -> dict[tuple, dict]:
    """Mean/std accuracy over seeds per (part, network, regime, series, k)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["part"], r["network"], r["regime"], r["series"], r["k"])].append(r)
    out = {}
    for key, rs in groups.items():
        acc = np.array([r["test_accuracy"] for r in rs])
        out[key] = {"mean": float(acc.mean()), "std": float(acc.std()), "n": len(rs),
                    "diverged": sum(bool(r["diverged"]) for r in rs)}
    return out


def _regimes_in(rows: list[dict]) -> list[str]:
    """Part B's regimes in the order of REGIMES."""
    present = {r["regime"] for r in rows if r["part"] == "B"}
    return [g.label for g in REGIMES if g.label in present]


def _cell(stats: dict | None) -> str:
    if stats is None:
        return ""
    text = f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"
    if stats["diverged"]:
        text += f" ({stats['diverged']}/{stats['n']} div.)"
    return text


def memory_values(spec: NetworkSpec, mode: str, k: int) -> int:
    counts = Net(spec).param_counts()
    delays = [k * d for d in BASE_DELAYS] if mode != "none" else [0] * len(counts)
    return sum(c * n for c, n in zip(weight_copies(mode, delays), counts))


def write_markdown(path: Path, rows: list[dict], stats: dict, elapsed: float, quick: bool) -> None:
    ks_a = sorted({r["k"] for r in rows if r["part"] == "A" and r["k"] > 0})
    ks_b = sorted({r["k"] for r in rows if r["part"] == "B" and r["k"] > 0})
    regimes = _regimes_in(rows)
    seeds = len({r["seed"] for r in rows})
    epochs = rows[0]["epochs"]
    lines = [
        "# Accuracy versus gradient delay: stashing, EMA reconstruction and the others",
        "",
        f"Generated by `python benchmarks/delay_accuracy.py{' --quick' if quick else ''}` in {elapsed:.0f} s. "
        f"Digits (scikit-learn, 1437 train / 360 test images, fixed split), {epochs} epochs, batch 32, "
        f"{seeds} seed(s) per point; cells are test accuracy in % (mean ± std over seeds).",
        "",
        f"Delays are k x S(l) weight updates with S = {BASE_DELAYS}: the stages after each layer's stage in a "
        "4-processor LayerPipe schedule with one weight layer per stage (k = 1 is that schedule; docs/design.md's "
        "Delay(l) = 2*S(l) slots). Modes: none = synchronous baseline (no delay); stash = PipeDream weight "
        "stashing; nostash = stale forward, backward through the current weights; ema = LayerPipe2, past "
        "weights rebuilt as W_t - d*m_t from an EMA of the updates with beta_l = (d_l-1)/(d_l+1); "
        "predict = SpecTrain weight prediction from the momentum. ema-b0.9 = EMA with one beta 0.9 for all layers.",
        "",
        f"## A. Accuracy vs delay scale, {MAIN.label}",
        "",
    ]
    for net in NETWORKS:
        spec = NETWORKS[net]()
        base = stats.get(("A", net, MAIN.label, "none", 0))
        lines += [f"### {spec.name} ({sum(Net(spec).param_counts()):,} weights; synchronous {_cell(base)})", "",
                  "| k | delays | " + " | ".join(MODES[1:]) + " |", "|---|---|" + "---|" * len(MODES[1:])]
        for k in ks_a:
            cells = [_cell(stats.get(("A", net, MAIN.label, m, k))) for m in MODES[1:]]
            lines.append(f"| {k} | {','.join(str(k * d) for d in BASE_DELAYS)} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### Stored weight values (copies x parameters, summed over layers)", "",
              "| network | k | " + " | ".join(MODES) + " |", "|---|---|" + "---|" * len(MODES)]
    for net in NETWORKS:
        spec = NETWORKS[net]()
        for k in [0, *ks_a]:
            vals = [memory_values(spec, m, k) for m in MODES]
            size = vals[0]
            lines.append(f"| {spec.name} | {k} | " + " | ".join(f"{v:,} ({v / size:.2f}x)" for v in vals) + " |")
    lines += ["", "Stashing stores sum_l (d_l + 1) versions, which grows with k (O(L*n) for n stages); EMA stores "
              "2 per delayed layer whatever k (O(L)); nostash and predict store one (predict also reads the "
              "optimizer's momentum, which every mode keeps).", "",
              "## B. Where the claim holds and where it breaks (MLP)", "",
              "| regime | k | none | " + " | ".join((*MODES[1:], "ema-b0.9")) + " |",
              "|---|---|---|" + "---|" * (len(MODES))]
    for regime in regimes:
        base = _cell(stats.get(("B", "mlp", regime, "none", 0)))
        for k in ks_b:
            cells = [_cell(stats.get(("B", "mlp", regime, m, k))) for m in (*MODES[1:], "ema-b0.9")]
            lines.append(f"| {regime} | {k} | {base} | " + " | ".join(cells) + " |")
    lines += ["", "`div.` counts runs whose loss became infinite or NaN (stopped; the weights then classify at "
              "chance, about 10%).", "", "![accuracy vs delay](delay_accuracy.png)", ""]
    path.write_text("\n".join(lines))


def plot(path: Path, stats: dict, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = _regimes_in(rows)
    fig = plt.figure(figsize=(16, 8.5))
    top = [plt.subplot2grid((2, 12), (0, 4 * i), colspan=4, fig=fig) for i in range(3)]
    width = 12 // max(len(regimes), 1)
    bottom = [plt.subplot2grid((2, 12), (1, width * i), colspan=width, fig=fig) for i in range(len(regimes))]

    def draw(ax, part, net, regime, series_list, title):
        ks = sorted({r["k"] for r in rows if r["part"] == part and r["k"] > 0})
        base = stats.get((part, net, regime, "none", 0))
        for s in series_list:
            style = dict(SERIES_STYLE[s])
            if s == "none":
                if base:
                    ax.axhline(100 * base["mean"], label="none (sync)", color="black", ls="--")
                continue
            pts = [(k, stats[(part, net, regime, s, k)]) for k in ks if (part, net, regime, s, k) in stats]
            if pts:
                ax.errorbar([k for k, _ in pts], [100 * v["mean"] for _, v in pts], yerr=[100 * v["std"] for _, v in pts],
                            label=s, capsize=2, **style)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_ylim(0, 102)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("delay scale k (delays k x (3,2,1,0) updates)", fontsize=8)
        ax.set_ylabel("test accuracy (%)", fontsize=8)
        ax.grid(alpha=0.3)

    draw(top[0], "A", "mlp", MAIN.label, MODES, f"MLP 64-128-128-64-10, {MAIN.label}")
    draw(top[1], "A", "cnn", MAIN.label, MODES, f"digits-cnn, {MAIN.label}")
    top[0].legend(fontsize=8, loc="lower left")
    ks = sorted({r["k"] for r in rows if r["part"] == "A"} | {0})
    spec = NETWORKS["mlp"]()
    for m in MODES:
        vals = [memory_values(spec, m, k) / memory_values(spec, "none", 0) for k in ks]
        top[2].plot(ks, vals, label=m, **{k: v for k, v in SERIES_STYLE[m].items() if k != "ls"})
    top[2].set_title("stored weight copies (MLP, relative to one copy)", fontsize=10)
    top[2].set_xlabel("delay scale k", fontsize=8)
    top[2].set_ylabel("stored weights / model size", fontsize=8)
    top[2].legend(fontsize=8)
    top[2].grid(alpha=0.3)
    for ax, regime in zip(bottom, regimes):
        draw(ax, "B", "mlp", regime, (*MODES, "ema-b0.9"), f"MLP, {regime}")
    if bottom:
        bottom[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 8 epochs, fewer delay scales")
    parser.add_argument("--jobs", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "results",
                        help="output folder (default docs/results)")
    args = parser.parse_args(argv)
    jobs = make_jobs(args.quick)
    start = time.time()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    with Pool(args.jobs) as pool:
        results = pool.imap_unordered(_run, jobs, chunksize=1)
        if tqdm is not None:
            results = tqdm(results, total=len(jobs), unit="run", disable=None)
        rows = list(results)
    elapsed = time.time() - start
    rows.sort(key=lambda r: (r["part"], r["network"], r["regime"], r["series"], r["k"], r["seed"]))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "delay_accuracy.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    stats = aggregate(rows)
    write_markdown(args.out / "delay_accuracy.md", rows, stats, elapsed, args.quick)
    plot(args.out / "delay_accuracy.png", stats, rows)
    print(f"{len(rows)} runs in {elapsed:.0f} s -> {args.out / 'delay_accuracy.md'}, .csv, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
