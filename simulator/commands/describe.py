"""``layerpipe describe``: per-layer shapes, work and cycles of one training step.

One row per weight layer (element-wise layers are fused into it, docs/design.md section 3):
output shape, parameters, MACs of F / WG / AG1, element-wise operations of AG2, the GEMM
shapes (M, N, K) of F / WG / AG1, and every task's cycles on the chosen hardware.
"""

from __future__ import annotations

import argparse

from models.graph.build import training_graph
from models.graph.tasks import layer_infos, task_work
from models.network.zoo import load_network, parse_input_shape
from simulator.commands import SUMMARIES
from simulator.costs import parse_hardware
from simulator.output import format_table, to_json

KINDS = ("F", "WG", "AG1", "AG2", "U")


def describe_rows(network: str, batch: int, input_shape: str | None, hardware: str) -> tuple[dict, list[dict]]:
    net = load_network(network, parse_input_shape(input_shape))
    cost = parse_hardware(hardware)
    g = training_graph(net, batch)
    info = layer_infos(g)
    rows = []
    for l, layer in sorted(info.items()):
        node = net.node(layer.name)
        row = {"layer": l, "name": layer.name, "kind": layer.kind, "output": "x".join(map(str, net.shapes[node.name])),
               "params": layer.params}
        for kind in KINDS:
            work = task_work(g, (kind, l)) if (kind, l) in g else None
            if kind in ("F", "WG", "AG1"):
                row[f"macs_{kind}"] = work.macs if work else 0
                # a transformer layer's task has several products: the first, and how many more
                more = f" +{len(work.gemms) - 1}" if work and len(work.gemms) > 1 else ""
                row[f"gemm_{kind}"] = "x".join(map(str, work.gemms[0])) + more if work and work.gemms else "-"
            if kind == "AG2":
                row["elementwise_AG2"] = work.elementwise if work else 0
            row[f"cycles_{kind}"] = cost.task_cycles(work) if work else 0
        rows.append(row)
    summary = {"network": net.name, "batch": batch, "input_shape": list(net.input_shape), "hardware": cost.describe(),
               "params": net.total_params(), "forward_macs_per_sample": net.total_macs(),
               "step_cycles_one_processor": sum(r[f"cycles_{k}"] for r in rows for k in KINDS)}
    return summary, rows


def run(args: argparse.Namespace) -> int:
    summary, rows = describe_rows(args.network, args.batch, args.input, args.hardware)
    if args.json:
        print(to_json({**summary, "layers": rows}))
        return 0
    print(f"{summary['network']}: batch {summary['batch']}, input {'x'.join(map(str, summary['input_shape']))}, "
          f"{summary['params']:,} parameters, {summary['forward_macs_per_sample']:,} forward MACs per sample, "
          f"on {summary['hardware']}")
    columns = ["layer", "name", "output", "params", "macs_F", "macs_WG", "macs_AG1", "elementwise_AG2",
               "gemm_F", "gemm_WG", "gemm_AG1", *(f"cycles_{k}" for k in KINDS)]
    print(format_table(rows, columns))
    print(f"one training step on one processor: {summary['step_cycles_one_processor']:,} cycles")
    return 0


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("describe", help=SUMMARIES["describe"],
                       description=__doc__)
    p.add_argument("network", help="zoo name (see `layerpipe networks`) or a .yaml/.json/.csv network file")
    p.add_argument("--batch", type=int, default=32, help="samples per minibatch (default 32)")
    p.add_argument("--input", metavar="CxHxW", help="input shape per sample, e.g. 3x32x32 (default: the network's)")
    p.add_argument("--hardware", default="mac:256",
                   help="processor cost model: mac:MACS[:lanes=N][:overhead=N] or systolic:RxC[:os|ws|is] (default mac:256)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)
    return p
