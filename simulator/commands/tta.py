"""``layerpipe tta``: time to accuracy, each schedule trained with the staleness its simulated run realises.

For every schedule: the engine runs it on the platform (the plan ``compare`` would choose) and
records which weight version each forward and backward used; the NumPy trainer replays that
pattern on the same network (the digits-sized instance: ``mlp`` is 64-128-64-10, ``digits-cnn``
a small CNN for 8x8 images, the SNNs their 8x8 rate-coded instances; other zoo networks are
re-targeted to the 1x8x8 input where their layers allow). Prints, per schedule: steps to the
target (mean over the seeds that all reached it, else how many did), cycles per minibatch, cycles
to the target, final accuracy (mean +- std), peak memory and the realised staleness.
``--plot FILE`` draws accuracy against simulated cycles with the seeds' spread.

A schedule is ``NAME`` or ``NAME:MODE`` with MODE a compensation (``layerpipe2:stash`` trains
LayerPipe2's delays with weight stashing and counts its memory so).

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> register(sub).prog.endswith("tta")
True
"""

from __future__ import annotations

import argparse
import sys

from models.errors import LayerPipeError
from models.network.spiking import is_spiking
from models.training.data import DATASETS, load_dataset
from models.training.optim import OPTIMIZERS, OptimizerConfig
from models.training.trainer import ROUND_LR
from schedules.planning.candidates import PARALLELISM
from schedules.planning.partition import plan_text
from simulator.commands import SUMMARIES
from simulator.commands.common import add_platform_arguments, bounded_int, platform_from_args
from simulator.commands.train import CLI_DEFAULT_LR, resolve_network
from simulator.output import format_table, mib, to_json

#: bounds on the work one command may ask for
MAX_SEEDS, MAX_EPOCHS = 20, 500


def default_schedules(spiking: bool) -> list[str]:
    base = ["pipedream", "layerpipe", "layerpipe2", "layerpipe2:stash", "gpipe", "1f1b"]
    return base + ["spikepipe"] if spiking else base


def _fmt_steps(row) -> str:
    if row.steps_to_target is not None:
        return f"{row.steps_to_target:.0f} +- {row.steps_std:.0f}"
    return f"not reached ({row.reached}/{len(row.runs)} seeds)"


def run(args: argparse.Namespace) -> int:
    if not 0 < args.target <= 1:
        raise LayerPipeError(f"--target must be an accuracy in (0, 1], got {args.target!r}")
    if not 1 <= args.seeds <= MAX_SEEDS or not 1 <= args.epochs <= MAX_EPOCHS or args.eval_every < 1:
        raise LayerPipeError(f"--seeds must be 1..{MAX_SEEDS}, --epochs 1..{MAX_EPOCHS} and --eval-every >= 1")
    if args.processors is None or args.processors < 1:
        raise LayerPipeError("--processors must be a positive integer")
    from simulator.commands.gantt import plot_path
    from simulator.studies.tta import Entry, check_reached, time_to_accuracy

    plot = plot_path(args.plot)  # refuse an unwritable plot before hours of training
    data = load_dataset(args.dataset)
    net = resolve_network(args.network, data)
    spiking = any(is_spiking(n.layer) for n in net.nodes)
    names = [s for s in args.schedules.split(",") if s.strip()] if args.schedules else default_schedules(spiking)
    entries = [Entry.parse(s) for s in names]
    platform = platform_from_args(args)
    # spiking networks train with Adam unless told otherwise (models.training.snn's default)
    name = args.optimizer or ("adam" if spiking else "sgd")
    lr = args.lr if args.lr is not None else CLI_DEFAULT_LR[name]
    optimizer = OptimizerConfig(name, lr=lr, momentum=args.momentum)
    rows = time_to_accuracy(net, entries, platform, data, target=args.target, seeds=args.seeds, epochs=args.epochs,
                            eval_every=args.eval_every, optimizer=optimizer, batch=args.batch_size,
                            round_lr=args.replica_lr, parallelism=args.parallelism)
    check_reached(rows)
    if plot is not None:
        from simulator.plots.figures import tta_figure

        tta_figure(rows, plot, title=f"{net.name} on {platform.describe()}")
    if args.json:
        print(to_json([r.to_dict() for r in rows]))
        return 0
    print(f"{net.name} on {data.name}, {platform.describe()}, batch {args.batch_size}, target {args.target:.1%}, "
          f"{args.seeds} seeds, at most {rows[0].budget_steps} minibatches, {optimizer.name} lr {lr:g}")
    table = []
    for r in rows:
        table.append({
            "schedule": r.schedule, "compensation": r.compensation,
            "plan": plan_text(r.plan) if r.plan else "-",
            "steps to target": _fmt_steps(r), "cycles/minibatch": r.cycles_per_minibatch,
            "cycles to target": r.cycles_to_target, "final accuracy": f"{r.final_accuracy:.3f} +- {r.final_std:.3f}",
            "peak mem (MiB)": mib(r.peak_memory_bytes),
            "staleness (nominal/realised)": ",".join(f"{s.nominal}/{s.forward_min}" + (
                f"-{s.forward_max}" if s.forward_max != s.forward_min else "") for s in r.staleness),
            "update every": ",".join(map(str, r.round_size)),
        })
    print(format_table(table))
    diverged = [r.schedule for r in rows if r.diverged]
    if diverged:
        print(f"diverged on some seed: {', '.join(diverged)}", file=sys.stderr)
    return 0


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("tta", help=SUMMARIES["tta"],
                       description=__doc__.split("\n\n>>>")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("network", metavar="NETWORK", help="mlp, digits-cnn, snn_mlp, ... (trained on the dataset)")
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="training data (default digits)")
    p.add_argument("--target", type=float, required=True, metavar="ACC", help="test accuracy to reach, e.g. 0.95")
    p.add_argument("--schedules", default=None, metavar="S1,S2,...",
                   help="schedules, NAME or NAME:MODE (default: " + ",".join(default_schedules(False))
                        + " and spikepipe for spiking networks)")
    add_platform_arguments(p)
    p.add_argument("--parallelism", choices=PARALLELISM, default="hybrid",
                   help="pipeline (no stage replication) or hybrid (default)")
    p.add_argument("--seeds", type=int, default=3, help=f"training seeds per schedule (default 3, at most {MAX_SEEDS})")
    p.add_argument("--epochs", type=int, default=20, help="the step budget, in epochs (default 20)")
    p.add_argument("--eval-every", type=int, default=5, metavar="K",
                   help="measure test accuracy every K minibatches (default 5)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="sgd (momentum) or adam (default sgd; adam for spiking networks)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default sgd {CLI_DEFAULT_LR['sgd']}, adam {CLI_DEFAULT_LR['adam']})")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--replica-lr", choices=ROUND_LR, default="same",
                   help="a stage replicated R ways updates once per R minibatches: with the same learning rate on "
                        "the mean gradient (default) or R times it (linear scaling)")
    p.add_argument("--batch", "-b", "--batch-size", dest="batch_size", type=bounded_int(1, 100_000), default=32,
                   help="minibatch size, simulated and trained (default 32; --batch-size is the old spelling)")
    p.add_argument("--plot", metavar="FILE", default=None, help="draw accuracy against simulated cycles (.png/.svg/.pdf)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-limits", dest="no_limits", action="store_true",
                   help="simulate even if simulator/limits.py estimates a run too large")
    p.set_defaults(run=run)
    return p
