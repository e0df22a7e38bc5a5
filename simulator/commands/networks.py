"""``layerpipe networks``: list the built-in network zoo.

One row per zoo network at its default input shape: input shape, weight layers (the
layers the task model pipelines), total nodes, parameters and forward MACs per sample.
The table and ``--json`` show the same exact integers.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> register(sub).prog.endswith("networks")
True
"""

from __future__ import annotations

import argparse
from typing import Any

from models.network.spec import weight_layers
from models.network.zoo import all_network_names, get_network
from simulator.commands import SUMMARIES
from simulator.output import format_table, to_json


def zoo_rows() -> list[dict[str, Any]]:
    """One dict per zoo network, in listing order (exact counts; MACs per sample, forward).

    >>> zoo_rows()[0]["params"]
    61706
    """
    rows = []
    for name in all_network_names():
        net = get_network(name)
        rows.append({
            "name": name,
            "input_shape": list(net.input_shape),
            "weight_layers": len(weight_layers(net)),
            "layers": len(net.nodes),
            "params": net.total_params(),
            "macs": net.total_macs(),
            "description": net.description,
        })
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the zoo as a table, or as JSON with ``--json``; returns the exit code (0)."""
    rows = zoo_rows()
    if args.json:
        print(to_json(rows))
        return 0
    table = [
        {
            "name": r["name"],
            "input": "x".join(str(d) for d in r["input_shape"]),
            "weight_layers": r["weight_layers"],
            "layers": r["layers"],
            "params": r["params"],
            "macs": r["macs"],
            "description": r["description"],
        }
        for r in rows
    ]
    print(format_table(table, headers={"weight_layers": "weight layers", "macs": "MACs/sample"}))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``networks`` parser to ``subparsers`` (see :mod:`simulator.cli`)."""
    parser = subparsers.add_parser(
        "networks",
        help=SUMMARIES["networks"],
        description="List the built-in networks with input shape, weight layers, total layers, parameters "
        "and forward MACs per sample. Other commands also accept 'mlp:N0-N1-...', a YAML/JSON network "
        "file or a SCALE-Sim topology CSV wherever a network is asked for.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)
    return parser


__all__ = ["register", "run", "zoo_rows"]
