"""DHO2 at the paper's scale: a PROJECTION from the study's measured steps to ResNet-sized models on 8-64 devices.

Protocol (every number in docs/results/dho2_projection.md comes from here):

1. Cycles per step (measured by the engine, as in ``benchmarks/dho2_study.py``): every design of
   :mod:`simulator.studies.dho2` for deep-mlp (1.04M parameters, 8x8 inputs), ResNet-18 (11.7M) and
   ResNet-50 (25.6M, bottleneck blocks; both 224x224 inputs), global minibatch 256, fp16 words, on
   P = 8, 16, 32, 64 devices of two platforms: the study's (``mac:256`` devices, link ``100,16``:
   32 flops per byte of link) and one whose devices are 64x larger on the same link (``mac:16384``:
   2,048 flops per byte, about a GPU's on NVLink; A100: 312 TFLOP/s fp16 over 300 GB/s is 1,040).
   Curvature settings and the refresh period T in steps are the study's (k = 10, m = 40, a 128-sample
   curvature batch, T = 90 steps); DHO2 tries every split of the devices whose staleness the study's
   sweep covers (``dho2_candidates(max_staleness=...)``).
2. Steps (borrowed): each optimizer's median steps to the target on each workload of the study
   (``docs/results/dho2_steps.json``), DHO2's from FOSI's staleness sweep at the measured staleness at
   or above the split's (:class:`simulator.studies.dho2_projection.MeasuredSteps`).
3. Projected time to target = 1 x 2; speedups against the best first-order (dp-sgd, dp-adam) and the
   best second-order design (dp-kfac, fosi-dp) on at most P devices (the baselines also run on 1, 2 and
   4): DHO2's split may leave all but one device to the curvature, so a baseline may leave devices idle.

What this assumes and cannot check: that a ResNet needs the steps, and the step ratios between
optimizers, of a digits workload. What holds without it: the per-step price (DHO2's cycles per step
over the best first-order design's), which is the step cut FOSI must beat for DHO2 to win.

Run ``python benchmarks/dho2_projection.py`` (32 minutes on 2 cores shared with the study;
``--costs-cache FILE`` keeps the engine's costs for a rerun with new steps) or ``--quick`` (ResNet-18 at
P = 8 only). Writes docs/results/dho2_projection.md and dho2_projection.csv, and the README's projection
table (between its ``dho2-projection`` markers; not with ``--quick``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from study_tools import replace_marked_block  # noqa: E402

from models.network.zoo import load_network  # noqa: E402
from simulator.commands.dho2 import platform_for, study_network  # noqa: E402
from simulator.studies.dho2 import BASELINES, DESIGNS, DesignConfig  # noqa: E402
from simulator.studies.dho2_projection import MeasuredSteps, design_costs, project, speedups  # noqa: E402

MODELS = ("deep-mlp", "resnet18", "resnet50")
DEVICES = (8, 16, 32, 64)
FEWER = (1, 2, 4)  # the baselines also run on these: "at most P devices"
PLATFORMS = {"study": ("mac:256", "100,16"), "gpu-like": ("mac:16384", "100,16")}
LINK_TOPOLOGY = "full"
BATCH = 256
PAPER = (1.4, 2.1)


def model(name: str):
    return study_network(name)[0] if name.startswith("deep-") else load_network(name)


def costs_job(job: tuple) -> tuple[tuple[str, str, int], dict]:
    """Every design's costs for one (model, platform, P): what the workloads are combined with (a
    job ending in ``"baselines"``: only the baselines', on fewer devices than the sweep's)."""
    name, platform, P, refresh, max_staleness = job[:5]
    hardware, link = PLATFORMS[platform]
    net = model(name)
    plat = platform_for(P, hardware, link, LINK_TOPOLOGY)
    cfg = DesignConfig(batch=BATCH, refresh=refresh)
    designs = BASELINES if job[5:] == ("baselines",) else DESIGNS
    costs = design_costs(net, P, plat, cfg, designs, max_staleness=max_staleness)
    for c in [*costs.get("dho2", []), *(v for k, v in costs.items() if k != "dho2")]:
        c.schedules = {}  # the makespans are what the projection needs; the graphs would only travel
    return (name, platform, P), {"costs": costs, "params": net.total_params()}


def load_cache(path: str | None) -> dict:
    if not path or not Path(path).exists():
        return {}
    try:
        cache = pickle.loads(Path(path).read_bytes())  # our own file, written below
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise SystemExit(f"cannot read the costs cache {path}: {e}") from None
    return cache if isinstance(cache, dict) else {}


def fmt(x: float | None, suffix: str = "x") -> str:
    return "-" if x is None else f"{x:.2f}{suffix}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default=str(ROOT / "docs" / "results" / "dho2_steps.json"),
                    help="the study's measured steps (benchmarks/dho2_study.py writes it)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"))
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="resnet18 at P = 8 on both platforms")
    ap.add_argument("--costs-cache", default=None, metavar="FILE",
                    help="keep the engine's costs in FILE (they do not depend on the steps) and reuse them")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        workloads = MeasuredSteps.from_json(json.loads(Path(args.steps).read_text()))
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read the measured steps {args.steps}: {e}") from None
    refresh = {w.refresh for w in workloads}
    if len(refresh) != 1 or 0 in refresh:
        raise SystemExit(f"the workloads' refresh periods differ or are unstated ({sorted(refresh)}): "
                         "the projection needs one T")
    T = refresh.pop()
    max_staleness = min(w.fosi_by_staleness[-1][0] for w in workloads)
    models, devices = (("resnet18",), (8,)) if args.quick else (MODELS, DEVICES)
    jobs = [(m, p, P, T, max_staleness) for m in models for p in PLATFORMS for P in devices]
    jobs += [(m, p, P, T, max_staleness, "baselines") for m in models for p in PLATFORMS for P in FEWER]
    jobs.sort(key=lambda j: -j[2])  # the slowest (most devices) first, so the pool ends together
    # the engine's costs are a function of the job alone (the workloads' steps do not enter them), so a
    # cache of them gives the same bytes; it only saves their minutes when the steps change
    cache = load_cache(args.costs_cache)
    todo = [j for j in jobs if j not in cache]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for job, (key, got) in zip(todo, pool.map(costs_job, todo)):
            cache[job] = (key, got)
    if args.costs_cache:
        Path(args.costs_cache).write_bytes(pickle.dumps(cache))
    done = {j[:3]: cache[j][1] for j in jobs}
    rows = []
    for (name, platform, P), got in sorted(done.items(), key=lambda kv: (MODELS.index(kv[0][0]), kv[0][1], kv[0][2])):
        if P not in devices:
            continue
        hardware, link = PLATFORMS[platform]
        for w in workloads:
            proj = project(got["costs"], w)
            # the baselines on fewer devices, of the sweep or below it: the same freedom DHO2's split has
            fewer = [r for (n, pl, q), g in done.items() if n == name and pl == platform and q < P
                     for r in project({d: c for d, c in g["costs"].items() if d in BASELINES}, w)]
            s = speedups(proj, fewer=fewer)
            by = {r.design: r for r in proj}
            d = by["dho2"]
            for r in proj:
                rows.append({
                    "model": name, "params": got["params"], "platform": platform, "hardware": hardware, "link": link,
                    "devices": P, "workload": w.workload, "design": r.design,
                    "update_devices": r.cost.update_devices, "curvature_devices": r.cost.curvature_devices,
                    "staleness": r.cost.staleness, "cycles_per_step": r.cycles_per_step,
                    "steps": r.steps, "time_to_target": r.time_to_target,
                    "memory_bytes": r.cost.memory_words_max * 2,
                    "dho2_vs_first_order": s["vs_first_order"] if r is d else None,
                    "dho2_vs_second_order": s["vs_second_order"] if r is d else None,
                    "dho2_step_price": s["step_price"] if r is d else None,
                })
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / ("dho2_projection_quick.csv" if args.quick else "dho2_projection.csv"))
    command = "python benchmarks/dho2_projection.py" + (" --quick" if args.quick else "")
    elapsed = f"{time.time() - t0:.0f} s" + (f" (the engine's costs of {len(jobs) - len(todo)} of its {len(jobs)} "
                                              "jobs read from its --costs-cache file)" if len(todo) < len(jobs) else "")
    text = markdown(rows, workloads, models, devices, command, elapsed, T)
    md = out / ("dho2_projection_quick.md" if args.quick else "dho2_projection.md")
    md.write_text(text)
    if not args.quick:
        replace_marked_block(Path(args.readme), "dho2-projection", readme_block(rows, workloads, models, devices))
    print(f"wrote {md}" + ("" if args.quick else " and the README's projection table") + f" in {time.time() - t0:.0f}s")
    return 0


CSV_COLUMNS = ["model", "params", "platform", "hardware", "link", "devices", "workload", "design", "update_devices",
               "curvature_devices", "staleness", "cycles_per_step", "steps", "time_to_target", "memory_bytes",
               "dho2_vs_first_order", "dho2_vs_second_order", "dho2_step_price"]


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _dho2(rows, **key) -> list[dict]:
    return [r for r in rows if r["design"] == "dho2" and all(r[k] == v for k, v in key.items())]


def cell(r: dict) -> str:
    """DHO2's projected speedup vs first- / second-order, or why there is none."""
    if r["steps"] is None:
        return "beyond sweep"
    if not math.isfinite(r["steps"]):
        return "never"
    return f"{fmt(r['dho2_vs_first_order'])} / {fmt(r['dho2_vs_second_order'])}"


def verdict(rows: list[dict], workloads: list[MeasuredSteps]) -> list[str]:
    """Where the paper's 1.4x-2.1x holds in the projection, counted over every cell."""
    d = [r for r in rows if r["design"] == "dho2"]
    both = [r for r in d if (r["dho2_vs_first_order"] or 0) >= PAPER[0] and (r["dho2_vs_second_order"] or 0) >= PAPER[0]]
    first = [r for r in d if (r["dho2_vs_first_order"] or 0) >= PAPER[0]]
    wins = [r for r in d if (r["dho2_vs_first_order"] or 0) > 1 and (r["dho2_vs_second_order"] or 0) > 1]
    where = sorted({(r["workload"], r["model"], r["platform"]) for r in both})
    lines = [f"Of {len(d)} projected cells (workload x model x platform x P), DHO2 is faster than both the best "
             f"first-order and the best second-order design in {len(wins)}, at least {PAPER[0]}x faster than the "
             f"best first-order in {len(first)}, and at least {PAPER[0]}x faster than both in {len(both)}"
             + (": " + "; ".join(f"{w} steps on {m} ({p})" for w, m, p in where) if where else "") + "."]
    prices = [r["dho2_step_price"] for r in d]
    lines.append(f"DHO2's price per step over the best first-order design: {min(prices):.2f}x - {max(prices):.2f}x; "
                 "FOSI must cut the steps by more than that for DHO2 to win. Measured step cuts (best first-order "
                 "steps / FOSI's, staleness 0): " + ", ".join(
                     f"{w.workload} {min(w.steps['sgd'], w.steps['adam']) / w.steps['fosi']:.2f}x"
                     if math.isfinite(w.steps["fosi"]) else f"{w.workload} never" for w in workloads) + ".")
    return lines


def markdown(rows, workloads, models, devices, command, elapsed, T) -> str:
    lines = ["# DHO2 at ResNet scale: a PROJECTION", "",
             f"Generated by `{command}` in {elapsed}. **A projection, not a measurement**: cycles per step "
             "are the engine's for each model (measured), steps are each optimizer's on a digits workload of the "
             "study (`docs/results/dho2_steps.json`, borrowed). A row reads: *if this model needed the steps this "
             f"workload needed* (refresh period T = {T} steps, global minibatch {BATCH}).", "",
             "## Verdict", "", *verdict(rows, workloads), "",
             "## DHO2's projected speedup (vs the best first-order / vs the best second-order design, each on at most "
             "P devices)", "",
             *speedup_table(rows, workloads, models, devices, "workload (steps from)")]
    lines += ["", "## Per-step price and memory of every design (independent of the workload)", "",
              "| model | platform | P | " + " | ".join(DESIGNS) + " | dho2 split (upd/curv, staleness) | "
              "memory, fullest device: dp-adam / fosi-dp / dho2 (MB) |",
              "|---|---|---|" + "---|" * len(DESIGNS) + "---|---|"]
    w0 = workloads[0].workload
    for m in models:
        for p in PLATFORMS:
            for P in devices:
                by = {r["design"]: r for r in rows if r["model"] == m and r["platform"] == p and r["devices"] == P
                      and r["workload"] == w0}
                if not by:
                    continue
                d = by["dho2"]  # the split of the first workload; the others may pick another
                lines.append(f"| {m} ({by['dp-sgd']['params'] / 1e6:.2f}M) | {p} | {P} | "
                             + " | ".join(_mcycles(by[x]["cycles_per_step"]) for x in DESIGNS)
                             + f" | {d['update_devices']}/{d['curvature_devices']}, {d['staleness']} | "
                             + " / ".join(f"{by[x]['memory_bytes'] / 1e6:.1f}" for x in ("dp-adam", "fosi-dp", "dho2"))
                             + " |")
    lines += ["", f"Cycles per step in Mcycles; dho2's split is the one chosen for the {w0} workload's steps.", "",
              "## Steps borrowed from the study", "",
              "| workload | params | sgd | adam | kfac | fosi | fosi-release | FOSI at staleness |", "|---|---|---|---|---|---|---|---|"]
    for w in workloads:
        lines.append(f"| {w.workload} | {w.params} | " + " | ".join(_steps(w.steps[k]) for k in
                                                                   ("sgd", "adam", "kfac", "fosi", "fosi-release"))
                     + " | " + ", ".join(f"{s}: {_steps(v)}" for s, v in w.fosi_by_staleness) + " |")
    return "\n".join(lines) + "\n"


def _mcycles(cycles: float) -> str:
    m = cycles / 1e6
    return f"{m:,.0f}M" if m >= 100 else f"{m:.3g}M"


def _steps(v: float) -> str:
    return "never" if not math.isfinite(v) else f"{v:g}"


def readme_block(rows, workloads, models, devices) -> str:
    """The README's projection table: the two million-parameter workloads' steps, every model and P."""
    shown = [w for w in workloads if w.workload.startswith("deep-")] or workloads
    return "\n".join([*speedup_table(rows, shown, models, devices, "steps from"), "", *verdict(rows, workloads)])


def speedup_table(rows, workloads, models, devices, first: str) -> list[str]:
    """DHO2's projected speedups, a row per (workload, model, platform) and a column per P."""
    lines = [f"| {first} | model | platform | " + " | ".join(f"P={P}" for P in devices) + " |",
             "|---|---|---|" + "---|" * len(devices)]
    for w in workloads:
        for m in models:
            for p in PLATFORMS:
                cells = [_dho2(rows, workload=w.workload, model=m, platform=p, devices=P) for P in devices]
                lines.append(f"| {w.workload} | {m} | {p} | " + " | ".join(cell(c[0]) if c else "-" for c in cells) + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
