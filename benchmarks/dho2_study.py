"""DHO2 study: time-to-accuracy and per-device memory of distributed FOSI against its baselines, P = 1..16.

Protocol (every number in docs/results/dho2.md comes from here):

1. Networks: the digits MLP 64-128-64-10 (17,226 parameters), logistic regression 64-10
   (650 parameters), a bottleneck autoencoder 64-32-8-32-64 (4,744 parameters, half the squared
   error of reconstructing each image), and two of about a million parameters: deep-mlp
   64-576-576-576-576-10 (1,040,266) and deep-autoencoder 64-800-400-200-20-200-400-800-64 (913,284);
   global minibatch 128, trained on scikit-learn's digits (1437 / 360 split). Target: full training
   loss <= 0.01 (MLP) / 0.05 (logistic regression) / 1.5 (autoencoder: about a third of the pixels'
   variance explained) / 0.001 (deep-mlp) / 0.25 (deep-autoencoder: 450 Adam steps, 2,500 the budget).
2. Learning rates: every optimizer gets the best of a five-point grid, a factor 2 apart (three points on
   deep-autoencoder, whose runs take minutes)
   (``PRESETS[..].grids``; a choice at an end of the grid that beats its neighbour, or a method that
   reaches the target at no rate of the grid, is marked in the tables),
   by the median over three seeds of the steps to the target (over seed 0 alone on the two large
   workloads, whose chosen rates then run on all three); FOSI at staleness 0, with a heavy-ball
   base (Adam on the autoencoders), alpha 0.01, k = 10, m = 40, T = 8 epochs (90 steps, the
   released DHO2's period), first refresh before the 10th update, fixed curvature batch of 128;
   K-FAC T_inv = 10.
3. Cycles per step: ``simulator.studies.dho2`` task graphs on P devices of ``mac:256`` linked by
   ``100,16`` (latency 100 cycles, 16 bytes/cycle, fully connected), fp16 words.
4. DHO2: every split of the P devices into update and curvature devices; ``dho2`` is the split with
   the shortest time-to-accuracy, ``dho2-half`` the split P_c = P // 2 (the memory-oriented choice).
   Its steps come from FOSI runs whose eigenvectors are ``staleness`` steps old, rounded up
   (``round_staleness``: to a multiple of 8 - 32 on deep-mlp, 64 on deep-autoencoder - up to 128
   steps, then to 192, 256, 384, ...).
5. Staleness sweep: FOSI's steps as a function of the curvature delay alone.

Run ``python benchmarks/dho2_study.py`` (about an hour on 2 cores, ``--jobs 2``) or ``--quick`` (the
three small workloads, one seed, no grid, P <= 4, two minutes). Writes docs/results/dho2.md, dho2.csv, dho2_steps.json (the measured steps, which
``benchmarks/dho2_projection.py`` projects to ResNet scale), dho2_time.png, dho2_memory.png and
dho2_staleness.png.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: BLAS threads only fight over the cores
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from study_tools import replace_marked_block  # noqa: E402

from simulator.commands.dho2 import (  # noqa: E402
    FIRST_ORDER,
    METHOD_OF,
    PRESETS,
    SECOND_ORDER,
    DesignResult,
    StepsOracle,
    TrainSettings,
    evaluate,
    platform_for,
    study_network,
)
from simulator.studies.dho2 import DesignConfig, dho2_candidates  # noqa: E402

HARDWARE, LINK, TOPOLOGY = "mac:256", "100,16", "full"
DESIGN_ORDER = ("dp-sgd", "dp-adam", "dp-kfac", "fosi", "fosi-dp", "dho2", "dho2-half", "dho2-release")
BASELINES_FIRST, BASELINES_SECOND = FIRST_ORDER, SECOND_ORDER  # the CLI's: K-FAC and FOSI with data-parallel HVPs
SMALL = "mlp,logreg,autoencoder"  # --quick's: the three that train in seconds
PAPER = {"speedup": (1.4, 2.1), "memory": "about linear in 1/P"}


def tune(oracle: StepsOracle, log, jobs: int = 1) -> tuple[dict[str, float], dict[str, str]]:
    """Best learning rate per method on its grid (median steps over the preset's tuning seeds; ties
    to the smaller rate), and what to say of a choice that may not be the method's optimum: ``grid
    edge`` (the best is an end of the grid and strictly better than its neighbour, so the trend may go
    on beyond it) or ``never reached`` (no rate of the grid reaches the target)."""
    chosen, caveat = {}, {}
    seeds = oracle.preset.tune_seeds or oracle.settings.seeds
    oracle.prefetch([(m, lr, 0, seeds) for m, grid in oracle.preset.grids.items() for lr in grid], jobs)
    for method, grid in oracle.preset.grids.items():
        scores = [(oracle.steps(method, lr, seeds=seeds), lr) for lr in grid]
        best = min(scores)
        chosen[method] = best[1]
        i = [lr for _, lr in scores].index(best[1])
        if not math.isfinite(best[0]):
            caveat[method] = "never reached"
        elif (i == 0 and best[0] < scores[1][0]) or (i == len(scores) - 1 and best[0] < scores[-2][0]):
            caveat[method] = "grid edge"
        log(f"  {method}: " + ", ".join(f"lr {lr:g} -> {s:g}" for s, lr in scores) + f"  => {best[1]:g}")
    return chosen, caveat


STALENESS_SWEEP = (0, 8, 16, 32, 64, 128, 256)


def study_network_rows(name: str, devices: list[int], settings: TrainSettings, dcfg: DesignConfig, grid: bool,
                       log, jobs: int = 1) -> tuple[list[dict], dict, list[dict], dict]:
    net, preset = study_network(name)
    settings = replace(settings, fosi_base=settings.fosi_base or preset.fosi_base)
    oracle = StepsOracle(net, preset, settings)
    settings = oracle.settings  # T in steps from the preset's epochs
    dcfg = replace(dcfg, fosi_base=settings.fosi_base, refresh=settings.refresh)
    log(f"{name}: {net.total_params()} parameters, target {preset.target.describe()}, "
        f"T = {preset.refresh_epochs:g} epochs = {settings.refresh} steps")
    caveat: dict[str, str] = {}
    if grid:
        lrs, caveat = tune(oracle, log, jobs)
        preset = replace(preset, lr=lrs)
        oracle.preset = preset
    # every run the tables below ask for, in parallel: each method at its rate, FOSI at the staleness
    # of every DHO2 split (and P/2's) and of the sweep
    platforms = {P: platform_for(P, HARDWARE, LINK, TOPOLOGY) for P in devices}
    splits = {P: dho2_candidates(net, P, platforms[P], dcfg) for P in devices if P >= 2}  # priced once per P
    stale = {c.staleness for cands in splits.values() for c in cands}
    wanted = [(m, None, 0, settings.seeds) for m in dict.fromkeys(METHOD_OF.values())]
    sweep_points = list(dict.fromkeys(oracle.quantize(st) for st in STALENESS_SWEEP))
    wanted += [("fosi", None, st, settings.seeds) for st in sorted({oracle.quantize(st) for st in stale}
                                                                     | set(sweep_points))]
    oracle.prefetch(wanted, jobs)
    rows = []
    for P in devices:
        t0 = time.time()
        plat = platforms[P]
        results = evaluate(net, P, plat, dcfg, oracle, candidates=splits.get(P))
        by = {r.design: r for r in results}
        dho2 = by["dho2"]
        half = DesignResult("dho2-half", P, dho2.cost, dho2.steps, dho2.staleness_trained, dho2.time_to_target)
        if P >= 2:
            want = P // 2
            if dho2.cost.curvature_devices != want:
                c = next(c for c in splits[P] if c.curvature_devices == want)
                steps = oracle.steps("fosi", staleness=c.staleness)
                half = DesignResult("dho2-half", P, c, steps, oracle.quantize(c.staleness), steps * c.cycles_per_step)
        if P >= 2:
            half.curvature_used = oracle.settings.curvature_used(half.staleness_trained, half.steps)
        for r in [*results, half]:
            row = r.row(dcfg.word_bytes)
            row.update(network=name, params=net.total_params(), target=preset.target.describe(),
                       lr=preset.lr[METHOD_OF[r.design if r.design != "dho2-half" else "dho2"]])
            rows.append(row)
        log(f"  P={P}: {time.time() - t0:.1f}s " + ", ".join(
            f"{r['design']} {r['time_to_target'] / 1e6:.3g}M" for r in rows if r["devices"] == P and r["network"] == name))
    mine = [r for r in rows if r["network"] == name]

    def best(designs, P, upto):
        return min(r["time_to_target"] for r in mine if r["design"] in designs
                   and (r["devices"] <= P if upto else r["devices"] == P))

    def ratio(a, b):
        return a / b if b and math.isfinite(b) and math.isfinite(a) else 0.0

    for r in mine:
        P, tt = r["devices"], r["time_to_target"]
        # same P: every design uses all P devices; <= P: a baseline may leave devices idle
        # (a 650-parameter model does not get faster on 16 devices)
        r["speedup_vs_first_order"] = ratio(best(BASELINES_FIRST, P, False), tt)
        r["speedup_vs_second_order"] = ratio(best(BASELINES_SECOND, P, False), tt)
        r["speedup_vs_first_order_upto"] = ratio(best(BASELINES_FIRST, P, True), tt)
        r["speedup_vs_second_order_upto"] = ratio(best(BASELINES_SECOND, P, True), tt)
        r["speedup_vs_dp_sgd"] = ratio(best(("dp-sgd",), P, False), tt)
        r["speedup_vs_fosi_dp"] = ratio(best(("fosi-dp",), P, False), tt)
        # the factor by which FOSI would have to cut SGD's steps for this design to tie with the
        # best baseline on at most P devices (1.4x that for the paper's lowest speedup)
        r["break_even_step_ratio"] = ratio(r["cycles_per_step"] * oracle.steps("sgd"),
                                           best(BASELINES_FIRST + BASELINES_SECOND, P, True))
    sweep = []
    for s in sweep_points:
        runs = oracle.runs("fosi", staleness=s)
        sweep.append({"network": name, "staleness": s, "steps": oracle.steps("fosi", staleness=s),
                      "per_seed": [r.steps_to_target for r in runs]})
    facts = {"network": name, "params": net.total_params(), "target": preset.target.describe(), "lr": dict(preset.lr),
             "lr_caveat": caveat, "fosi_base": settings.fosi_base,
             "sgd_steps": oracle.steps("sgd"), "fosi_steps": oracle.steps("fosi"), "kfac_steps": oracle.steps("kfac"),
             "adam_steps": oracle.steps("adam"), "release_steps": oracle.steps("fosi-release"),
             "refresh_epochs": preset.refresh_epochs, "refresh_steps": settings.refresh,
             "tune_seeds": preset.tune_seeds or settings.seeds, "seeds": settings.seeds, "warmup": settings.warmup,
             "staleness_quantum": settings.staleness_quantum}
    return rows, facts, sweep, {}


# --------------------------------------------------------------------------- outputs


CSV_COLUMNS = ["network", "devices", "design", "update_devices", "curvature_devices", "steps", "cycles_per_step",
               "time_to_target", "speedup_vs_first_order", "speedup_vs_second_order", "speedup_vs_first_order_upto",
               "speedup_vs_second_order_upto", "speedup_vs_dp_sgd", "speedup_vs_fosi_dp", "break_even_step_ratio", "staleness",
               "staleness_trained", "curvature_used", "refresh_period", "memory_bytes", "basis_bytes", "eigvec_bytes",
               "lr", "target", "params"]


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in CSV_COLUMNS})


def write_steps(facts: list[dict], sweep: list[dict], path: Path) -> None:
    """The measured steps per workload (what ``benchmarks/dho2_projection.py`` projects from);
    a target never reached is ``null``."""
    def finite(v):
        return v if not isinstance(v, float) or math.isfinite(v) else None

    doc = {"workloads": [{**{k: finite(v) for k, v in f.items()},
                          "fosi_by_staleness": [{"staleness": s["staleness"], "steps": finite(s["steps"]),
                                                 "per_seed": s["per_seed"]} for s in sweep if s["network"] == f["network"]]}
                         for f in facts]}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def plot(rows: list[dict], sweep: list[dict], out: Path, networks: list[str]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"dp-sgd": ("C0", "o"), "dp-adam": ("C1", "s"), "dp-kfac": ("C2", "^"), "fosi": ("C3", "v"),
              "fosi-dp": ("C6", "P"), "dho2": ("C4", "D"), "dho2-half": ("C5", "x"), "dho2-release": ("C7", "*")}
    files = []
    fig, axes = plt.subplots(1, len(networks), figsize=(6 * len(networks), 4.2), squeeze=False)
    for ax, net in zip(axes[0], networks):
        for d in DESIGN_ORDER:
            pts = sorted((r["devices"], r["time_to_target"] / 1e6) for r in rows if r["network"] == net and r["design"] == d)
            if pts:
                c, m = styles[d]
                ax.plot(*zip(*pts), marker=m, color=c, label=d)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("devices P")
        ax.set_ylabel("time to target (Mcycles)")
        ax.set_title(f"{net}: time-to-accuracy")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "dho2_time.png", dpi=120)
    plt.close(fig)
    files.append("dho2_time.png")

    fig, axes = plt.subplots(1, len(networks), figsize=(6 * len(networks), 4.2), squeeze=False)
    for ax, net in zip(axes[0], networks):
        for d in DESIGN_ORDER:
            pts = sorted((r["devices"], r["memory_bytes"] / 1024) for r in rows if r["network"] == net and r["design"] == d)
            if pts:
                c, m = styles[d]
                ax.plot(*zip(*pts), marker=m, color=c, label=d)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("devices P")
        ax.set_ylabel("memory of the fullest device (KB)")
        ax.set_title(f"{net}: memory per device")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    fig.savefig(out / "dho2_memory.png", dpi=120)
    plt.close(fig)
    files.append("dho2_memory.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, net in enumerate(networks):
        pts = [(s["staleness"], s["steps"]) for s in sweep if s["network"] == net and math.isfinite(s["steps"])]
        if pts:
            ax.plot(*zip(*pts), marker="o", color=f"C{i}", label=f"{net} FOSI")
            sgd = next(r["steps"] for r in rows if r["network"] == net and r["design"] == "dp-sgd")
            ax.axhline(sgd, color=f"C{i}", ls="--", lw=1, label=f"{net} SGD (heavy-ball)")
    ax.set_xlabel("staleness of the eigenvectors (steps)")
    ax.set_ylabel("steps to target (median)")
    ax.set_title("FOSI with stale curvature (DHO2's overlap)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "dho2_staleness.png", dpi=120)
    plt.close(fig)
    files.append("dho2_staleness.png")
    return files


def _fmt(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return "never"
    return f"{x:.{digits}g}"


def summary(rows: list[dict], networks: list[str], devices: list[int]) -> list[str]:
    """The paper's two claims next to ours, per network."""
    multi = [P for P in devices if P >= 2]
    lines = ["## Paper vs ours", "",
             "| claim | paper (Gu et al.) | " + " | ".join(networks) + " |",
             "|---|---|" + "---|" * len(networks)]

    def span(values):
        values = [v for v in values if v]
        return f"{min(values):.2f}x - {max(values):.2f}x" if values else "n/a"

    def get(net, design, P):
        return next(r for r in rows if r["network"] == net and r["design"] == design and r["devices"] == P)

    cells = {k: [] for k in ("first", "first_upto", "second", "second_upto", "fosi_dp", "mem", "mem_fosi", "needed",
                             "release_first", "release_second")}
    for net in networks:
        d = [get(net, "dho2", P) for P in multi]
        rel = [get(net, "dho2-release", P) for P in multi]
        cells["release_first"].append(span([r["speedup_vs_first_order"] for r in rel]))
        cells["release_second"].append(span([r["speedup_vs_second_order"] for r in rel]))
        cells["first"].append(span([r["speedup_vs_first_order"] for r in d]))
        cells["first_upto"].append(span([r["speedup_vs_first_order_upto"] for r in d]))
        cells["second"].append(span([r["speedup_vs_second_order"] for r in d]))
        cells["second_upto"].append(span([r["speedup_vs_second_order_upto"] for r in d]))
        cells["fosi_dp"].append(span([r["speedup_vs_fosi_dp"] for r in d]))
        cells["needed"].append(span([r["break_even_step_ratio"] for r in d]))
        if len(multi) >= 2:
            lo, hi = multi[0], multi[-1]
            h0, h1 = get(net, "dho2-half", lo)["memory_bytes"], get(net, "dho2-half", hi)["memory_bytes"]
            f0, f1 = get(net, "fosi", lo)["memory_bytes"], get(net, "fosi", hi)["memory_bytes"]
            cells["mem"].append(f"{h0 / 1024:.0f} KB -> {h1 / 1024:.0f} KB ({h0 / h1:.1f}x for {hi // lo}x devices)")
            cells["mem_fosi"].append(f"{f0 / 1024:.0f} KB -> {f1 / 1024:.0f} KB")
        else:
            cells["mem"].append("n/a")
            cells["mem_fosi"].append("n/a")
    P_txt = f"P = {multi[0]}..{multi[-1]}" if multi else "P >= 2"
    lines += [
        f"| DHO2 total-time speedup vs distributed first-order, same P ({P_txt}) | 1.4x - 2.1x | " + " | ".join(cells["first"]) + " |",
        "| ... vs the best first-order design on at most P devices | | " + " | ".join(cells["first_upto"]) + " |",
        "| DHO2 speedup vs distributed second-order (the better of K-FAC and FOSI with data-parallel HVPs), same P "
        "| 1.4x - 2.1x | " + " | ".join(cells["second"]) + " |",
        "| ... vs those on at most P devices | | " + " | ".join(cells["second_upto"]) + " |",
        "| DHO2 speedup vs FOSI with data-parallel HVPs (the same optimizer, its refresh blocking every device), same P "
        "| | " + " | ".join(cells["fosi_dp"]) + " |",
        f"| per-device memory, DHO2 (P_c = P/2), P = {multi[0] if multi else '-'} -> {multi[-1] if multi else '-'} | "
        "falls about linearly with P | " + " | ".join(cells["mem"]) + " |",
        "| per-device memory, FOSI with the curvature on one device | (grows with m*n on that device) | "
        + " | ".join(cells["mem_fosi"]) + " |",
        "| step cut FOSI would need over SGD for DHO2 to tie the best baseline (<= P) | | "
        + " | ".join(cells["needed"]) + " |",
        "| the released DHO2 (its update rule, blocking sharded Lanczos) vs distributed first-order, same P | | "
        + " | ".join(cells["release_first"]) + " |",
        "| ... vs distributed second-order, same P | | " + " | ".join(cells["release_second"]) + " |",
        ""]
    return lines


def verdict(rows: list[dict], networks: list[str]) -> str:
    """Where the paper's 1.4x - 2.1x holds, counted over every workload and P >= 2."""
    lo = PAPER["speedup"][0]
    d = [r for r in rows if r["design"] == "dho2" and r["devices"] >= 2 and r["network"] in networks]
    if not d:
        return "No device count of two or more was measured."
    first = [r for r in d if r["speedup_vs_first_order"] >= lo]
    second = [r for r in d if r["speedup_vs_second_order"] >= lo]
    both = [r for r in first if r in second]
    wins = [r for r in d if r["speedup_vs_first_order"] > 1 and r["speedup_vs_second_order"] > 1]

    def where(rs):
        return "; ".join(f"{r['network']} P = {r['devices']}" for r in rs) or "nowhere"

    return (f"DHO2 (the best split) against the best baseline on the same P, over {len(d)} measured cells "
            f"(workload x P = {min(r['devices'] for r in d)}..{max(r['devices'] for r in d)}): faster than both the best first-order and the best second-order design in "
            f"{len(wins)} ({where(wins)}); at least {lo}x faster than the best first-order in {len(first)} "
            f"({where(first)}), than the best second-order in {len(second)} ({where(second)}), than both in "
            f"{len(both)}.")


def readme_block(rows: list[dict], networks: list[str], devices: list[int]) -> str:
    """The README's DHO2 tables: the paper's claims against ours, and (folded) every design on every
    workload and device count - steps, cycles per step, time to target and memory."""
    lines = [*summary(rows, networks, devices)[2:], verdict(rows, networks), "",
             "<details><summary>Every design on every workload and device count (steps to target, cycles per "
             "step, time to target, memory of the fullest device)</summary>", "",
             "| workload | P | design | upd/curv | steps | cycles/step | time (Mcycles) | memory (KB) |",
             "|---|---|---|---|---|---|---|---|"]
    for net in networks:
        for P in devices:
            for dname in DESIGN_ORDER:
                r = next((r for r in rows if r["network"] == net and r["devices"] == P and r["design"] == dname), None)
                if r is not None:
                    lines.append(f"| {net} | {P} | {dname} | {r['update_devices']}/{r['curvature_devices']} | "
                                 f"{_fmt(r['steps'])} | {r['cycles_per_step']:,.0f} | {_fmt(r['time_to_target'] / 1e6)} | "
                                 f"{r['memory_bytes'] / 1024:,.1f} |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def load_results(out: Path) -> tuple[list[dict], list[str], list[int]]:
    """The rows a finished run wrote (dho2.csv), for ``--readme-only``."""
    ints = {"devices", "update_devices", "curvature_devices", "staleness", "staleness_trained", "refresh_period", "params"}
    texts = {"network", "design", "target"}
    rows = []
    with (out / "dho2.csv").open() as f:
        for r in csv.DictReader(f):
            rows.append({k: (v if k in texts else v == "True" if k == "curvature_used" else int(v) if k in ints
                             else float(v)) for k, v in r.items()})
    networks = list(dict.fromkeys(r["network"] for r in rows))
    devices = sorted({r["devices"] for r in rows})
    return rows, networks, devices


def markdown(rows: list[dict], facts: list[dict], sweep: list[dict], networks: list[str], devices: list[int],
             command: str, elapsed: float, files: list[str]) -> str:
    lines = ["# DHO2 study: time-to-accuracy and memory per device", "",
             f"Generated by `{command}` in {elapsed:.0f} s. Hardware: {HARDWARE} per device, link {LINK} "
             f"(latency cycles, bytes/cycle), {TOPOLOGY} topology, fp16 words. Global minibatch 128.", ""]
    lines += summary(rows, networks, devices)
    lines += [verdict(rows, networks), ""]
    lines += ["## Steps to target (NumPy training, median of seeds, best learning rate of the grid)", "",
              "| network | target | dp-sgd (heavy-ball) | dp-adam | dp-kfac | fosi (its base) | released DHO2 rule | "
              "learning rates |",
              "|---|---|---|---|---|---|---|---|"]
    for f in facts:
        lines.append(f"| {f['network']} ({f['params']} params) | {f['target']} | {_fmt(f['sgd_steps'])} | "
                     f"{_fmt(f['adam_steps'])} | {_fmt(f['kfac_steps'])} | {_fmt(f['fosi_steps'])} "
                     f"({f['fosi_base']}) | {_fmt(f['release_steps'])} | "
                     + ", ".join(f"{k} {v:g}" + (f" ({f['lr_caveat'][k]})" if k in f["lr_caveat"] else "")
                                 for k, v in f["lr"].items()) + " |")
    for net in networks:
        lines += ["", f"## {net}: time to target (Mcycles) and memory of the fullest device (KB)", "",
                  "| P | design | upd/curv | steps | cycles/step | time (Mcycles) | vs 1st-order (=P / <=P) | "
                  "vs K-FAC (=P / <=P) | staleness | memory (KB) | basis (KB) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for P in devices:
            for d in DESIGN_ORDER:
                r = next((r for r in rows if r["network"] == net and r["devices"] == P and r["design"] == d), None)
                if r is None:
                    continue
                stale = f"{r['staleness']}" + ("" if r["curvature_used"] else " (too late)")
                reached = math.isfinite(r["time_to_target"])  # a design that never gets there has no speedup
                first = (f"{r['speedup_vs_first_order']:.2f}x / {r['speedup_vs_first_order_upto']:.2f}x"
                         if reached else "never")
                second = (f"{r['speedup_vs_second_order']:.2f}x / {r['speedup_vs_second_order_upto']:.2f}x"
                          if reached else "never")
                lines.append(
                    f"| {P} | {d} | {r['update_devices']}/{r['curvature_devices']} | {_fmt(r['steps'])} | "
                    f"{r['cycles_per_step']:.0f} | {_fmt(r['time_to_target'] / 1e6)} | {first} | {second} | "
                    f"{stale} | {r['memory_bytes'] / 1024:.1f} | {r['basis_bytes'] / 1024:.1f} |")
    points = sorted({s["staleness"] for s in sweep})
    lines += ["", "## FOSI with stale eigenvectors (steps to target, median; per seed)", "",
              "| network | " + " | ".join(f"s={p}" for p in points) + " |", "|---|" + "---|" * len(points)]
    for net in networks:
        at = {s["staleness"]: s for s in sweep if s["network"] == net}
        lines.append(f"| {net} | " + " | ".join(
            f"{_fmt(at[p]['steps'])} ({','.join(str(x) for x in at[p]['per_seed'])})" if p in at else "-"
            for p in points) + " |")
    lines += ["", "Plots: " + ", ".join(f"[{f}]({f})" for f in files), "", NOTES]
    return "\n".join(lines)


NOTES = """## How to read these numbers

* **steps** are optimizer steps of the NumPy training core to the target (median of the seeds); data
  parallelism does not change them. DHO2's steps come from FOSI runs whose eigenvectors are
  `staleness` steps old (rounded up, to a multiple of 8, 32 or 64 and beyond 128 steps to 192, 256, 384, ...);
  `(too late)` marks a split whose first
  eigenvectors would only arrive after the target.
* **cycles/step** are simulated (SimPy engine) task graphs of one step on P devices; for fosi, fosi-dp and dp-kfac
  the refresh step's extra cycles are spread over T (90) or T_inv (10) steps, for DHO2 one refresh period
  (max(T, staleness) update steps next to one Lanczos refresh) is simulated and divided by its steps.
* **=P / <=P**: speedup against the best baseline using the same P devices, and against the best baseline
  using at most P devices of this sweep (a small model gets slower on more devices: the all-reduce is
  latency bound, so a fair user would leave devices idle).
* **memory** is the fullest device (model, gradient, optimizer state, Lanczos basis, eigenvectors, K-FAC
  factors and inverses, Lanczos workspace) in fp16 words; **basis** its Lanczos basis.
* **fosi** runs Lanczos on device 0 while the others wait; **fosi-dp** is FOSI as hsivan/fosi runs on
  several devices (`b_parallel`): every device computes the HVPs of its share of the curvature batch, an
  all-reduce averages them each iteration, and every device keeps the whole basis.
* **dho2** is the split with the shortest time-to-accuracy, **dho2-half** the split with P/2 curvature
  devices (the memory-oriented choice).
* **dho2-release** is DHO2 as its code is released (ShunxianGu/DHO2, `DHO2_ADMM_v2.py`): FOSI's update on
  Adam with a dual vector pi added to the gradient and, at the end of every refresh period, the weights
  moved by pi / sigma (the sum of every period's displacement so far; sigma = 5e-9, also added to the
  eigenvalues), no warm-up; every device runs the Lanczos with the basis sharded, blocking the updates, and
  keeps the whole V. Its steps are those of that rule (the "released DHO2 rule" column), tuned on its own grid.

Modelling choices that differ from the paper (whose tables are not public): simulated 256-MAC devices and a
16 B/cycle, 100-cycle-latency link instead of GPUs; ring collectives as fixed-duration tasks without link
contention; K-FAC is the empirical-Fisher, every-device-preconditions (KAISA COMM-OPT-like) variant with
T_inv = 10; FOSI uses a heavy-ball base (Adam on the autoencoder, where heavy-ball SGD never leaves the mean
image's plateau), k = 10, m = 40, T = 8 epochs (90 steps), a fixed 128-sample curvature batch and a
first refresh before the 10th update, by hsivan/fosi's rule (the library's default W = T is longer than these
runs); dho2 is the first version (no ADMM) with a ZeRO-like sharded FOSI update and the split of the devices
chosen per P; dho2-release is the released code's update and schedule, except that its Hessian-vector products
use this study's fixed 128-sample curvature batch (the release keeps rank 0's 16-sample local batch) and its
k and alpha are this study's (k = 10, alpha = 0.01; the release: 16, 0.028; T is the release's 8 epochs).
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, no learning-rate grid, P in 1, 2, 4")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"), help="output directory")
    ap.add_argument("--networks", default=None,
                    help=f"comma-separated (default all: {', '.join(PRESETS)}; --quick: the three small ones)")
    ap.add_argument("--jobs", type=int, default=2, help="training runs in parallel (the results do not depend on it)")
    ap.add_argument("--devices", default=None, help="comma-separated P values (default 1,2,4,8,16)")
    ap.add_argument("--readme", default=str(ROOT / "README.md"),
                    help="README whose dho2-study block is regenerated (not with --quick)")
    ap.add_argument("--readme-only", action="store_true",
                    help="only regenerate the README block from a finished run's dho2.csv in --out")
    args = ap.parse_args(argv)
    t0 = time.time()
    out = Path(args.out)
    if args.readme_only:
        rows, networks, devices = load_results(out)
        replace_marked_block(Path(args.readme), "dho2-study", readme_block(rows, networks, devices))
        print(f"regenerated the dho2-study block of {args.readme} from {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    networks = [n.strip() for n in (args.networks or (SMALL if args.quick else ",".join(PRESETS))).split(",") if n.strip()]
    devices = [int(p) for p in args.devices.split(",")] if args.devices else ([1, 2, 4] if args.quick else [1, 2, 4, 8, 16])
    settings = TrainSettings(seeds=1 if args.quick else 3)
    dcfg = DesignConfig()
    rows, facts, sweep = [], [], []

    def log(msg: str) -> None:
        print(msg, flush=True)

    for name in networks:
        if name not in PRESETS:
            raise SystemExit(f"unknown study network {name!r} (known: {', '.join(PRESETS)})")
        r, f, s, _ = study_network_rows(name, devices, settings, dcfg, grid=not args.quick, log=log, jobs=args.jobs)
        rows += r
        facts.append(f)
        sweep += s
    write_csv(rows, out / "dho2.csv")
    write_steps(facts, sweep, out / "dho2_steps.json")
    files = plot(rows, sweep, out, networks)
    command = "python benchmarks/dho2_study.py" + (" --quick" if args.quick else "")
    (out / "dho2.md").write_text(markdown(rows, facts, sweep, networks, devices, command, time.time() - t0, files))
    if not args.quick:
        replace_marked_block(Path(args.readme), "dho2-study", readme_block(rows, networks, devices))
    log(f"wrote {out / 'dho2.md'}, dho2.csv, {', '.join(files)} in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
