"""``layerpipe train``: train a network on the bundled digits with pipeline-delayed gradients.

Runs the NumPy training core (:mod:`models.training`) with stale gradients: either the staleness
a schedule really produces (``--schedule NAME --processors P`` and the platform options of
``simulate``: the engine runs the schedule, records which weight version every forward and
backward used and how replicated stages group their updates, and the trainer replays exactly
that, minibatch by minibatch, then periodically from the steady state; ``--staleness nominal``
uses the schedule's S(l) instead), or per-weight-layer delays in weight updates
(``--delays 3,2,1,0``). Compensation modes none / stash / nostash / ema / predict; SGD with
momentum or Adam.
Prints test accuracy, final training loss, the per-layer delays used and the weight
copies each layer keeps; ``--json`` prints the same fields plus the per-epoch curve.
A progress bar over epochs appears when stderr is a terminal.

``NETWORK`` is a zoo name (``mlp:64-128-128-64-10``, ``mlp``, ``resnet18_cifar``, ...),
``digits-cnn`` (a small CNN for 8x8 images), or a network file; it is re-targeted to the
dataset's 1x8x8 input.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> register(sub).prog.endswith("train")
True
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from models.errors import NetworkError, TrainingError
from models.network.spec import NetworkSpec
from models.network.spiking import is_spiking
from models.training.data import DATASETS, DIGITS_NETWORKS, Dataset, load_dataset
from models.training.optim import OPTIMIZERS, OptimizerConfig
from models.training.snn import train_snn
from models.training.staleness import StalenessPattern
from models.training.trainer import COMPENSATIONS, DIVERGENCE_FACTOR, ROUND_LR, TrainConfig, TrainResult, train
from schedules.planning.candidates import PARALLELISM
from simulator.commands import SUMMARIES
from simulator.commands.common import add_platform_arguments, bounded_int
from simulator.output import format_table, to_json

#: learning rates of the command line: stable with the delays 3,2,1,0 of a 4-stage pipeline
#: (the library's SGD default 0.05 with momentum 0.9 diverges there; see docs/results/delay_accuracy.md)
CLI_DEFAULT_LR = {"sgd": 0.01, "adam": 0.002}


MAX_EPOCHS = 1_000
MAX_DELAY = 10_000


def parse_delays(text: str) -> list[int]:
    """``"3,2,1,0"`` -> ``[3, 2, 1, 0]`` (argparse type; a bad list is a usage error, exit 2).

    >>> parse_delays("2, 1,0")
    [2, 1, 0]
    """
    try:
        delays = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"delays must be comma-separated integers, got {text!r}") from None
    if any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError(f"delays must be non-negative, got {text[:40]!r}")
    if any(d > MAX_DELAY for d in delays):  # each delay keeps d + 1 weight copies of its layer
        raise argparse.ArgumentTypeError(f"delays must be at most {MAX_DELAY:,} updates, got {max(delays):,}")
    return delays


def resolve_network(name: str, data: Dataset) -> NetworkSpec:
    """The network called ``name``, with its input re-targeted to the dataset's images.

    A built-in SNN name trains its digits instance (:func:`models.network.snn_zoo.digits_snn`: the
    same structure on 1x8x8 inputs, rate-coded), since NumPy BPTT at 32x32 would take hours.
    """
    key = name.strip().lower()
    if key in DIGITS_NETWORKS:
        return DIGITS_NETWORKS[key]()
    from models.network.snn_zoo import SNN_ZOO, digits_snn

    if key in SNN_ZOO:
        return digits_snn(key)
    from models.network.transformer import is_token_layer
    from models.network.zoo import load_network  # the zoo is only needed for zoo names and files

    own = load_network(name)
    kinds = sorted({n.layer.kind for n in own.nodes if is_token_layer(n.layer) or hasattr(n.layer, "task_cycles")})
    if kinds:  # say so before re-targeting it to the digits, which would fail in a less helpful way
        raise NetworkError(f"{own.name}: the NumPy training core has no {', '.join(kinds)} layers; this network can "
                           "be simulated (compare, simulate), not trained")
    return load_network(name, input_shape=data.input_shape)


def resolve_staleness(args: argparse.Namespace, net: NetworkSpec) -> tuple[list[int] | None, StalenessPattern | None]:
    """``(delays, pattern)``: what the trainer replays.

    ``--delays`` gives per-weight-layer delays directly (nominal: forward d_l updates behind,
    backward through the current weights). ``--schedule NAME --processors P`` runs that schedule
    on the platform the options describe, with the plan ``compare`` would choose
    (:func:`simulator.staleness.schedule_staleness`); ``--staleness replay`` (the default) then
    trains with the versions the engine recorded, minibatch by minibatch, update rounds of
    replicated stages included, and ``--staleness nominal`` with the schedule's S(l) only.
    """
    if args.schedule is None:
        if args.processors is not None:
            raise TrainingError("--processors goes with --schedule")
        return args.delays, None
    if args.delays is not None:
        raise TrainingError("give either --delays or --schedule, not both")
    from simulator.commands.common import platform_from_args
    from simulator.staleness import schedule_staleness

    if args.processors is None or args.processors < 1:
        raise TrainingError("--schedule needs --processors P (a positive integer)")
    platform = platform_from_args(args)
    trial, pattern = schedule_staleness(args.schedule, net, platform, batch=args.batch_size,
                                        parallelism=args.parallelism)
    if args.staleness == "nominal":
        return trial.schedule.layer_staleness(), None
    return list(pattern.nominal), pattern


def lag_ranges(rows) -> str:
    """Per layer, the range of lags over the minibatches listed: ``((2, 0), (1, 0)) -> '1-2,0'``."""
    out = []
    for k in range(len(rows[0])):
        lo, hi = min(r[k] for r in rows), max(r[k] for r in rows)
        out.append(str(lo) if lo == hi else f"{lo}-{hi}")
    return ",".join(out)


def layer_rows(result: TrainResult) -> list[dict[str, Any]]:
    return [
        {"layer": name, "params": n, "delay": d, "weight_copies": c, "stored_values": n * c}
        for name, n, d, c in zip(result.layers, result.params_per_layer, result.delays, result.weight_copies)
    ]


def run(args: argparse.Namespace) -> int:
    data = load_dataset(args.dataset)
    net = resolve_network(args.network, data)
    delays, pattern = resolve_staleness(args, net)
    lr = args.lr if args.lr is not None else CLI_DEFAULT_LR[args.optimizer]
    optimizer = OptimizerConfig(args.optimizer, lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    config = TrainConfig(
        compensation=args.compensation, delays=tuple(delays) if delays is not None else None, optimizer=optimizer,
        batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, ema_beta=args.ema_beta,
        warmup_steps=args.warmup_steps, staleness=pattern, round_lr=args.replica_lr,
    )
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; keep working without a bar
        tqdm = None
    show_bar = tqdm is not None and sys.stderr.isatty()
    bar = tqdm(total=args.epochs, desc=f"train {net.name}", unit="epoch", file=sys.stderr, leave=False) if show_bar else None

    def on_epoch(point: dict[str, float]) -> None:
        if bar is not None:
            bar.set_postfix(loss=f"{point['train_loss']:.3f}", acc=f"{point['test_accuracy']:.3f}")
            bar.update(1)

    try:
        if any(is_spiking(n.layer) for n in net.nodes):  # rate-coded inputs, BPTT through the LIF neurons
            result = train_snn(net, data, config, on_epoch=on_epoch)
        else:
            result = train(net, data, config, on_epoch=on_epoch)
    finally:
        if bar is not None:
            bar.close()

    if args.json:
        print(to_json(result.to_dict()))
        return 0
    print(f"network {result.network} on {result.dataset}: compensation {result.compensation}, optimizer "
          f"{result.optimizer} (lr {result.learning_rate:g}), {result.epochs} epochs, seed {result.seed}")
    print(format_table(layer_rows(result), headers={"weight_copies": "weight copies", "stored_values": "stored values"}))
    if args.compensation == "none" and delays and any(delays):
        print("note: compensation 'none' is the synchronous baseline and ignores --delays")
    n_test = len(data.y_test)
    correct = round(result.test_accuracy * n_test)
    print(f"test accuracy   {result.test_accuracy:.4f} ({correct}/{n_test})")
    print(f"final loss      {result.final_loss:.4f}")
    print(f"delays          {','.join(map(str, result.delays))} (weight updates, nominal)")
    if pattern is not None:
        steady = pattern.forward_lag[-pattern.period:]
        print(f"staleness       replayed from the simulated {args.schedule} run: steady-state forward lags "
              f"{lag_ranges(steady)} updates, one update per {','.join(map(str, pattern.round_size))} minibatches")
    print(f"weight copies   {','.join(map(str, result.weight_copies))} (total stored weight values {result.weight_memory})")
    if result.diverged:
        print(f"diverged        yes (loss not finite or over {DIVERGENCE_FACTOR:g}x its first value after {result.steps} updates)")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` parser to ``subparsers`` (see :mod:`simulator.cli`)."""
    parser = subparsers.add_parser(
        "train",
        help=SUMMARIES["train"],
        description="Train NETWORK with gradients that are d_l weight updates stale at layer l (the number of "
        "pipeline stages after the layer's stage) and compensate the staleness: none (synchronous baseline, "
        "delays ignored), stash (PipeDream weight stashing, d_l+1 weight copies), nostash (stale forward, "
        "backward through the current weights), ema (LayerPipe2: past weights rebuilt from an EMA of the "
        "updates, 2 copies), predict (SpecTrain weight prediction from the momentum). Prints test accuracy, "
        "final loss, the delays used and the weight copies kept.",
    )
    parser.add_argument("network", metavar="NETWORK",
                        help="zoo name (e.g. mlp:64-128-128-64-10), digits-cnn, or a network file")
    parser.add_argument("--dataset", choices=DATASETS, default="digits", help="training data (default digits)")
    parser.add_argument("--delays", type=parse_delays, default=None, metavar="D1,D2,...",
                        help="per-weight-layer delays in weight updates, first layer first (default: all 0)")
    parser.add_argument("--schedule", "-s", metavar="NAME", default=None,
                        help="train with the staleness this schedule realises when simulated on --processors P "
                             "(and the other platform options), e.g. layerpipe")
    add_platform_arguments(parser, processors=None, processors_help="processors --schedule runs on")
    parser.add_argument("--parallelism", choices=PARALLELISM, default="hybrid",
                        help="parallelism --schedule plans with: pipeline (no stage replication) or hybrid "
                             "(default)")
    parser.add_argument("--staleness", choices=("replay", "nominal"), default="replay",
                        help="with --schedule: replay the weight versions the simulated run used, minibatch by "
                             "minibatch, update rounds included (default), or train with its nominal S(l)")
    parser.add_argument("--replica-lr", choices=ROUND_LR, default="same",
                        help="with --schedule: a stage replicated R ways updates once per R minibatches, with the "
                             "same learning rate on the mean gradient (default) or R times it (linear scaling)")
    parser.add_argument("--no-limits", dest="no_limits", action="store_true",
                        help="simulate --schedule even if simulator/limits.py estimates the run too large")
    parser.add_argument("--compensation", choices=COMPENSATIONS, default="stash",
                        help="how stale gradients are compensated (default stash)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="sgd (momentum) or adam (default sgd)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"learning rate (default sgd {CLI_DEFAULT_LR['sgd']}, adam {CLI_DEFAULT_LR['adam']})")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    parser.add_argument("--batch", "-b", "--batch-size", dest="batch_size", type=bounded_int(1, 100_000), default=32,
                        help="minibatch size (default 32; --batch-size is the old spelling)")
    parser.add_argument("--epochs", type=bounded_int(1, MAX_EPOCHS), default=20,
                        help=f"epochs (default 20, at most {MAX_EPOCHS:,})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and minibatch order (default 0)")
    parser.add_argument("--ema-beta", type=float, default=None,
                        help="one EMA beta for every layer (default per layer (d-1)/(d+1))")
    parser.add_argument("--warmup-steps", type=int, default=0,
                        help="PipeMare learning-rate warm-up steps for delayed layers (default 0: none)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)
    return parser


__all__ = ["register", "run", "parse_delays", "resolve_network", "resolve_staleness", "lag_ranges"]
