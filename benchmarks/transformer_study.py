"""Transformers and the modern schedules: LayerPipe, LayerPipe2 and PipeDream beside 1F1B,
interleaved 1F1B, ZB-H1, ZB-H2 and ZB-V on GPT-2 and the zero-bubble paper's 1.5B model.

Every method runs a straight pipeline (``--parallelism pipeline``: the zero-bubble paper's
setting; no method replicates stages) on the default platform (mac:256, links of latency 100
and 16 bytes/cycle), with batch 2P sequences and, for the flush methods, m = 2P micro-batches
of one sequence (what ZB-H2 and ZB-V need to reach their steady state without bubbles). The
one-stage-per-processor methods pick their plans from the same candidates; the chunked ones cut
the network into v P chunks by the same DP (``schedules.planning.chunks``) and cannot run where
there are fewer layers than chunks. Rows: cycles per minibatch and the speedup over 1F1B, the
bubble rate (``simulator.metrics``), the peak memory of the fullest processor, the efficiency
against the method's own lower bound. The attribution ladder says where LayerPipe's figure
comes from (``layerpipe explain``).

Usage::

    python benchmarks/transformer_study.py            # writes docs/results/transformer_study.{csv,md}
    python benchmarks/transformer_study.py --from-csv docs/results/transformer_study.csv
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study_tools import OUT, Cell, ladder, ladder_markdown, network, one, read_csv, run_cells, write_csv  # noqa: E402

from schedules.planning.partition import plan_text  # noqa: E402
from schedules.registry import applicable  # noqa: E402

CELLS = (("gpt2", 4), ("gpt2", 8), ("gpt3-1.5b", 4), ("gpt3-1.5b", 8), ("gpt3-1.5b", 16), ("gpt3-1.5b", 32))
SCHEDULES = ("pipedream", "layerpipe", "layerpipe2", "1f1b", "interleaved-1f1b", "zb-h1", "zb-h2", "zb-v")
HARDWARE = "mac:256"
LADDERS = (("gpt3-1.5b", "layerpipe", 8), ("gpt2", "layerpipe", 8))


def cells() -> list[Cell]:
    out = []
    for net, P in CELLS:
        names = tuple(s for s in SCHEDULES if applicable(s, network(net), P, 2 * P, microbatches=2 * P))
        out.append(Cell(net, P, HARDWARE, "pipeline", names, batch=2 * P, minibatches=32,
                        options=(("microbatches", 2 * P),)))
    return out


def _num(x, fmt: str) -> str:
    return "not measured" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def markdown(rows, ladders) -> str:
    lines = ["# Transformers and the modern schedules", "",
             "Command: `python benchmarks/transformer_study.py`. Straight pipelines for every method (no stage "
             "replication), mac:256 processors, links of latency 100 cycles and 16 bytes/cycle, batch 2P sequences "
             "of 1,024 tokens; the flush methods run m = 2P micro-batches of one sequence. A chunked schedule "
             "(interleaved 1F1B, v = 2; ZB-V) needs a weight layer per chunk: it is left out where the network has "
             "fewer than 2P. Speedup is 1F1B's cycles per minibatch over the method's; the bubble rate is the idle "
             "share of a step on the busiest processor (the zero-bubble paper's figure); memory is the peak of the "
             "fullest processor (weights, stashed activations, gradient and optimizer buffers); efficiency is the "
             "method's own lower bound over its cycles per minibatch.", ""]
    for net, P in CELLS:
        cell_rows = [r for r in rows if r["network"] == net and r["processors"] == P]
        base = one(cell_rows, schedule="1f1b")["cycles_per_minibatch"]
        lines += [f"## {net}, P = {P}", "",
                  "| schedule | plan (stages or chunks) | cycles/minibatch | vs 1F1B | bubble rate | peak memory (MB) "
                  "| efficiency |", "|---|---|---|---|---|---|---|"]
        for r in cell_rows:
            stages = r["plan"]["stages"] if r["plan"] else (r["info"] or {}).get("stages")
            cpm = r["cycles_per_minibatch"]
            lines.append(f"| {r['schedule']} | {plan_text(stages) if stages else '-'} | {_num(cpm, '.4g')} | "
                         f"{_num(base / cpm if cpm else float('nan'), '.3f')} | {_num(r['bubble_rate'], '.3f')} | "
                         f"{max(r['peak_memory_bytes']) / 1e6:,.0f} | {_num(r['efficiency'], '.3f')} |")
        missing = [s for s in SCHEDULES if not any(r["schedule"] == s for r in cell_rows)]
        if missing:
            lines.append(f"\nNot run ({', '.join(missing)}): fewer than {2 * P} weight layers for 2 chunks per "
                         "processor.")
        lines.append("")
    lines += ["## Attribution ladders (`layerpipe explain`)", ""]
    for lad in ladders:
        lines += ladder_markdown(lad)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default docs/results)")
    ap.add_argument("--from-csv", type=Path, help="re-render the tables from a CSV this script wrote")
    ap.add_argument("--jobs", "-j", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    stem = "transformer_study"
    if args.from_csv:
        rows = read_csv(args.from_csv)
        ladders = json.loads((args.from_csv.parent / "transformer_ladders.json").read_text())
    else:
        rows = run_cells(cells(), args.jobs)
        ladders = [ladder(n, m, p, HARDWARE, "pipeline", batch=2 * p) for n, m, p in LADDERS]
        write_csv(rows, args.out / f"{stem}.csv")
        (args.out / "transformer_ladders.json").write_text(json.dumps(ladders, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(rows, ladders))
    print((args.out / f"{stem}.md").read_text())
    print(f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
