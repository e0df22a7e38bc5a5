"""How planning scales with processors and layers. Prints one table; run ``python benchmarks/planning_scale.py``.

Each row is the CPU time of ``layerpipe compare NET -p P`` (every default schedule, as the
command line runs it, in this process) and its ratio to the row it is compared with, both
measured in this one run, against the targets of issue 18:

* ``vgg16`` at P = 64 against P = 8 (target: at most 3x);
* an MLP of 128 weight layers (``mlp128``) against one of 16, both at P = 8 (target: at most 12x).

``--quick`` leaves out the 128-layer MLP (it takes many minutes). CPU time
(``time.process_time``), so other load on a shared machine skews the figures little.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.network.zoo import load_network  # noqa: E402
from schedules.registry import default_schedules  # noqa: E402
from simulator.evaluate import compare  # noqa: E402
from simulator.output import format_table  # noqa: E402
from simulator.platform import PlatformSpec  # noqa: E402

MLP16 = "mlp:64-" + "-".join(["128"] * 15) + "-10"


def compare_seconds(network: str, processors: int) -> float:
    """CPU seconds of the ``compare`` the command line runs for ``network`` on ``processors``."""
    net = load_network(network)
    platform = PlatformSpec(processors).build()
    names = list(default_schedules(net, processors, batch=32))  # those the CLI runs (it skips the rest)
    t0 = time.process_time()
    compare(net, names, platform, batch=32, no_limits=True)  # the CLI's default run length
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="leave out the 128-layer MLP")
    args = ap.parse_args(argv)
    pairs = [("vgg16", 8, "vgg16", 64, 3.0)]
    if not args.quick:
        pairs.append((MLP16, 8, "mlp128", 8, 12.0))
    rows = []
    for net_a, p_a, net_b, p_b, target in pairs:
        a, b = compare_seconds(net_a, p_a), compare_seconds(net_b, p_b)
        label = lambda n: "mlp 16 layers" if n == MLP16 else n  # noqa: E731
        rows.append({"measure": f"{label(net_b)} P={p_b} / {label(net_a)} P={p_a}", "value": f"{b / a:.1f}x",
                     "detail": f"{a:.1f} s -> {b:.1f} s CPU", "target": f"<= {target:g}x",
                     "ok": "yes" if b / a <= target else "NO"})
    print(format_table(rows, ["measure", "value", "detail", "target", "ok"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
