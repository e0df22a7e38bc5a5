"""What the study scripts share: cells of a grid run by ``simulator.evaluate.compare`` in parallel,
their CSV, and the attribution ladders of ``simulator.explain``.

A :class:`Cell` is one network on one platform in one parallelism mode with a list of
schedules; :func:`run_cells` compares them on every core (the rows come back in cell order, so
the output does not depend on how the work was spread) and tags each row with the cell's
columns. Imported by ``benchmarks/layerpipe_study.py`` and ``benchmarks/spikepipe_study.py``
(run as scripts, so ``benchmarks/`` is on ``sys.path``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from models.network.snn_zoo import SNN_ZOO, get_snn_network
from models.network.spec import weight_layers
from models.network.zoo import get_network
from schedules.planning.partition import StagePlan, plan_text
from schedules.registry import build_schedule
from simulator.engine import simulate
from simulator.evaluate import compare
from simulator.explain import explain
from simulator.metrics import processor_memory
from simulator.platform import PlatformSpec, format_bytes

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"


@dataclass(frozen=True)
class Cell:
    """One comparison: ``schedules`` of ``network`` on a platform, in a parallelism mode."""

    network: str
    processors: int
    hardware: str
    parallelism: str
    schedules: tuple[str, ...]
    link: str = "100,16"
    memory_capacity: int | None = None
    batch: int = 32
    minibatches: int = 48
    options: tuple[tuple[str, object], ...] = ()
    tags: tuple[tuple[str, object], ...] = field(default=())  # extra columns of the rows

    def platform(self) -> PlatformSpec:
        return PlatformSpec(self.processors, self.hardware, self.link, memory_capacity=self.memory_capacity)


def network(name: str):
    return get_snn_network(name) if name in SNN_ZOO else get_network(name)


def run_cell(cell: Cell) -> list[dict]:
    t0 = time.time()
    rows = compare(network(cell.network), cell.schedules, cell.platform().build(), minibatches=cell.minibatches,
                   batch=cell.batch, parallelism=cell.parallelism, **dict(cell.options))
    columns = {"network": cell.network, "hardware": cell.hardware, "parallelism": cell.parallelism,
               "memory_capacity": cell.memory_capacity, **dict(cell.options), **dict(cell.tags)}
    print(f"{cell.hardware:18s} {cell.parallelism:8s} {format_bytes(cell.memory_capacity) if cell.memory_capacity else '-':>8s} "
          f"{cell.network:9s} P={cell.processors:2d} {dict(cell.options) or ''} {time.time() - t0:5.1f}s", flush=True)
    return [{**r, "platform_detail": r["platform"], **columns} for r in rows]


def run_cells(cells: list[Cell], jobs: int | None = None) -> list[dict]:
    """Every cell's rows, in cell order, computed on ``jobs`` processes (default: every core)."""
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1:
        return [row for cell in cells for row in run_cell(cell)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return [row for rows in pool.map(run_cell, cells) for row in rows]


def replication_capacity(name: str, hardware: str, fraction: float = 0.75) -> int:
    """``fraction`` of the memory data parallelism needs on ``name`` (every layer replicated: each
    replica holds the whole model with its buffers), rounded down to two significant digits: a
    capacity at which replicating everything no longer fits."""
    net, platform = network(name), PlatformSpec(2, hardware).build()
    everything = StagePlan(((1, len(weight_layers(net)), 2),), 0.0)
    result = simulate(build_schedule("pipedream", net, platform, minibatches=8, batch=32, plan=everything), platform)
    full = max(m.total for m in processor_memory(result))
    scale = 10 ** max(0, len(str(int(fraction * full))) - 2)
    return int(fraction * full) // scale * scale


def ladder(name: str, method: str, processors: int, hardware: str, parallelism: str, *, memory_capacity=None,
           batch: int = 32, minibatches: int = 48, **options) -> dict:
    spec = PlatformSpec(processors, hardware, memory_capacity=memory_capacity)
    lad = explain(network(name), method, spec.build(), minibatches=minibatches, batch=batch, parallelism=parallelism,
                  **options)
    return {**lad.to_dict(), "processors": processors, "hardware": hardware, "parallelism": parallelism,
            "memory_capacity": memory_capacity}


def flat(row: dict) -> dict:
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}


def write_csv(rows: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat(r) for r in rows)


def read_csv(path: Path) -> list[dict]:
    """Rows as :func:`write_csv` wrote them (JSON cells decoded, numbers parsed, empty cells None)."""
    rows = []
    with open(path, newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {}
            for k, v in raw.items():
                if v == "":
                    row[k] = None
                    continue
                if v in ("nan", "inf", "-inf"):  # how csv writes a float that is not a number
                    row[k] = float(v)
                    continue
                try:
                    row[k] = json.loads(v)
                except (json.JSONDecodeError, TypeError):
                    row[k] = v
            rows.append(row)
    return rows


def by(rows, **keys) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in keys.items())]


def one(rows, **keys) -> dict:
    found = by(rows, **keys)
    if len(found) != 1:
        raise LookupError(f"{len(found)} rows match {keys}")
    return found[0]


def ladder_markdown(lad: dict) -> list[str]:
    mode = lad["parallelism"] + (f", {format_bytes(lad['memory_capacity'])} per processor"
                                 if lad["memory_capacity"] else "")
    lines = [f"**{lad['method']} on {lad['network']}, P={lad['processors']}, {lad['hardware']}, {mode}**: "
             + ("not measured" if math.isnan(lad["speedup"]) else f"{lad['speedup']:.3f}x") + " over PipeDream", "",
             "| rung | plan | cycles/minibatch | factor | peak memory (MB) | bytes/minibatch (MB) |",
             "|---|---|---|---|---|---|"]
    def num(x, fmt: str) -> str:
        return "not measured" if x is None or math.isnan(x) else format(x, fmt)

    for r in lad["rungs"]:
        lines.append(f"| {r['rung']} | {plan_text(r['stages']) if r['stages'] else '-'} | "
                     f"{num(r['cycles_per_minibatch'], ',.0f')} | x{num(r['factor'], '.3f')} | "
                     f"{r['peak_memory_bytes'] / 1e6:,.0f} | {r['comm_bytes_per_minibatch'] / 1e6:,.2f} |")
    return lines + [""]


__all__ = ["Cell", "run_cell", "run_cells", "replication_capacity", "ladder", "write_csv", "read_csv", "by", "one",
           "plan_text", "ladder_markdown", "ROOT", "OUT", "network"]


def replace_marked_block(path: Path, name: str, block: str) -> None:
    """Put ``block`` between the ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` markers of ``path``
    (a README table a study regenerates); a file without them is an error, not a silent append."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin} ... {end} block to regenerate")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{block}\n{end}{tail}")
