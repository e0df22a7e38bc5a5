"""``layerpipe dho2``: time-to-accuracy and per-device memory of distributed FOSI (DHO2) and its baselines.

Time-to-accuracy = steps x cycles per step:

* **steps** - the NumPy training core (``models``) trains the network on the bundled digits with
  each design's optimizer until the *target* (full training loss <= value, or test accuracy >=
  value) is met; the median over ``--seeds`` seeds. Data parallelism does not change the
  mathematics of a step (same global minibatch), so dp-sgd, dp-adam, dp-kfac, fosi and fosi-dp
  (FOSI with data-parallel HVPs) need the same steps on any number of devices. DHO2's update devices use eigenvectors that are
  ``staleness`` steps old (the simulated refresh time divided by the update-step time); its
  steps come from FOSI runs with that delay, rounded *up* (:func:`round_staleness`) so that a
  few runs cover every split (the rounding can only make DHO2 look slower).
* **cycles per step** - :mod:`simulator.studies.dho2` builds the task graphs of every design on P
  devices and the SimPy engine runs them on ``--hardware`` devices linked by ``--link``.

``dho2-release`` is DHO2 as its code is released (ShunxianGu/DHO2): FOSI's update on an Adam base with
a dual vector and, every refresh period, an extrapolation of the weights by the displacements so far
(:class:`models.training.fosi.Fosi` with ``dual``), no warm-up, and a blocking Lanczos sharded over
every device; its learning rate is tuned on its own grid (``--lr fosi-release=LR``).

DHO2 splits the P devices into update and curvature devices; ``--curvature-devices auto`` (the
default) tries every split and keeps the one with the shortest time-to-accuracy among those whose
first eigenvectors arrive before the run reaches its target (a split whose curvature comes too
late is the base optimizer on fewer devices, not DHO2; if no split qualifies the fastest is kept
and flagged ``curvature_used: false``).

Networks: ``mlp`` (the zoo's 64-128-64-10 MLP, 17,226 parameters), ``logreg`` (logistic
regression, 64-10, 650 parameters), ``autoencoder`` (64-32-8-32-64, 4,744 parameters,
reconstructing the digits with the squared error; its score is the explained variance, and
FOSI's base is Adam), and two of about a million parameters, ``deep-mlp``
(64-576-576-576-576-10) and ``deep-autoencoder`` (64-800-400-200-20-200-400-800-64, hundreds to
thousands of steps), each with the per-method learning rates the study (``benchmarks/dho2_study.py``) selected
on a five-point grid, or any zoo MLP name (``mlp:64-32-10``), which uses the ``mlp`` preset. The
refresh period T is 8 epochs (``--refresh-epochs``; 90 steps of the digits at batch 128) unless
``--refresh`` gives it in steps.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> register(sub).prog.endswith("dho2")
True
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from models.errors import LayerPipeError, TrainingError
from models.network.spec import NetworkSpec
from models.network.zoo import load_network, mlp
from models.training.data import Dataset, digits_reconstruction, load_digits_split
from models.training.fosi import FirstOrder, FosiConfig, RunConfig, RunResult, Target, fosi_factory, run_to_target
from models.training.hvp import Objective
from models.training.kfac import Kfac, KfacConfig
from models.training.nn import Net
from models.training.optim import OptimizerConfig
from models.userfiles import excerpt
from simulator.commands import SUMMARIES
from simulator.commands.common import bounded_int, finite_float
from simulator.costs import parse_hardware, parse_link
from simulator.output import format_table, mib, to_json
from simulator.platform import TOPOLOGIES, Platform
from simulator.studies.dho2 import (
    BASELINES,
    DESIGNS,
    FIRST_ORDER,
    METHOD_OF,
    SECOND_ORDER,
    DesignConfig,
    DesignCost,
    design_cost,
    dho2_candidates,
)

#: the released DHO2's constants (ShunxianGu/DHO2): the dual penalty, also added to every eigenvalue
RELEASE_SIGMA = 5e-9


# --------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """Target and per-method hyper-parameters of one study network.

    ``lr`` maps a method to its learning rate (SGD: heavy-ball, momentum 0.9; FOSI: its
    heavy-ball base). The values are the best of the study's grids (``grids``), chosen by the
    median steps to the target over three seeds; ``benchmarks/dho2_study.py`` re-runs that
    selection and reports it.
    """

    network: str
    target: Target
    lr: dict[str, float]
    kfac_kl_clip: float = 1e-3
    fosi_alpha: float = 0.01
    grids: dict[str, tuple[float, ...]] = field(default_factory=dict)
    max_steps: int = 1500
    #: what is minimised (``models.training.nn.LOSSES``), which says the data: the digits' labels, or
    #: (``mse``, an autoencoder) the images themselves
    loss: str = "cross_entropy"
    #: FOSI's base optimizer unless ``--fosi-base`` says otherwise
    fosi_base: str = "heavyball"
    #: T, the curvature refresh period, in epochs of the training set (the released DHO2's 8)
    refresh_epochs: float = 8.0
    #: steps between checks of the target (each check is a pass over the whole data set)
    eval_every: int = 5
    #: DHO2's staleness is measured rounded up to a multiple of this (:func:`round_staleness`)
    staleness_quantum: int = 8
    #: seeds the learning-rate grid is scored on (None: every seed of the study); the chosen rate
    #: is then run on every seed
    tune_seeds: int | None = None

    @property
    def reconstruction(self) -> bool:
        return self.loss == "mse"

    def dataset(self) -> Dataset:
        return digits_reconstruction() if self.reconstruction else load_digits_split()

    def refresh_steps(self, train_samples: int, batch: int) -> int:
        """T in steps: ``refresh_epochs`` passes over ``train_samples`` at ``batch`` (rounded up).

        >>> PRESETS["mlp"].refresh_steps(1437, 128)     # 8 epochs of the digits' training split
        90
        """
        return refresh_steps(self.refresh_epochs, train_samples, batch)


def round_staleness(staleness: int, quantum: int) -> int:
    """The staleness DHO2's steps are measured at: ``staleness`` rounded *up* to a multiple of
    ``quantum`` up to 128 steps and beyond that to the next of 192, 256, 384, 512, ... (at most
    1.5x more), so that a few training runs cover every split of the devices. Rounding up can only
    make DHO2 look slower.

    >>> [round_staleness(s, 8) for s in (0, 1, 70, 128, 129, 200, 300)]
    [0, 8, 72, 128, 192, 256, 384]
    >>> [round_staleness(s, 32) for s in (14, 70, 129)]
    [32, 96, 192]
    """
    if staleness <= 0:
        return 0
    linear = quantum * math.ceil(staleness / quantum)
    if linear <= 128:
        return linear
    rung = 128
    while rung < staleness:  # 128, 192, 256, 384, 512, ...: alternately x1.5 and x4/3
        rung = rung * 3 // 2 if rung & (rung - 1) == 0 else rung * 4 // 3
    return rung


def refresh_steps(epochs: float, train_samples: int, batch: int) -> int:
    """Steps in ``epochs`` epochs of ``train_samples`` at ``batch`` (rounded up, at least 1)."""
    steps = epochs * train_samples / batch if math.isfinite(epochs) and epochs > 0 else math.nan
    if not 0 < steps <= 1_000_000:  # NaN included; a period longer than any step budget refreshes never
        raise TrainingError(f"a refresh period of {epochs:g} epochs ({steps:g} steps) is outside 1 .. 1,000,000 steps")
    return max(1, math.ceil(steps - 1e-9))


PRESETS: dict[str, Preset] = {
    "mlp": Preset(
        "mlp", Target("train_loss", 0.01),
        lr={"sgd": 0.2, "adam": 0.02, "kfac": 0.05, "fosi": 0.1, "fosi-release": 0.01},
        grids={"sgd": (0.05, 0.1, 0.2, 0.4, 0.8), "adam": (0.005, 0.01, 0.02, 0.04, 0.08),
               "kfac": (0.0125, 0.025, 0.05, 0.1, 0.2), "fosi": (0.0125, 0.025, 0.05, 0.1, 0.2),
               "fosi-release": (0.00125, 0.0025, 0.005, 0.01, 0.02)},
    ),
    "logreg": Preset(
        "logreg", Target("train_loss", 0.05),
        lr={"sgd": 3.2, "adam": 0.32, "kfac": 0.4, "fosi": 1.6, "fosi-release": 0.32}, kfac_kl_clip=1e-2,
        grids={"sgd": (0.8, 1.6, 3.2, 6.4, 12.8), "adam": (0.08, 0.16, 0.32, 0.64, 1.28),
               "kfac": (0.1, 0.2, 0.4, 0.8, 1.6), "fosi": (0.4, 0.8, 1.6, 3.2, 6.4),
               "fosi-release": (0.08, 0.16, 0.32, 0.64, 1.28)},
    ),
    # a bottleneck autoencoder (64-32-8-32-64, ReLU) reconstructing the digits with the squared error:
    # the kind of problem FOSI's paper reports its largest gains on; heavy-ball SGD stays on the plateau
    # of the mean image there at every rate of its grid, and FOSI on it with it, so FOSI runs on an Adam
    # base (the library's fosi_adam)
    "autoencoder": Preset(
        "autoencoder", Target("train_loss", 1.5),
        lr={"sgd": 0.0125, "adam": 0.01, "kfac": 0.0125, "fosi": 0.02, "fosi-release": 0.005}, loss="mse",
        fosi_base="adam",
        grids={"sgd": (0.0125, 0.025, 0.05, 0.1, 0.2), "adam": (0.005, 0.01, 0.02, 0.04, 0.08),
               "kfac": (0.0125, 0.025, 0.05, 0.1, 0.2), "fosi": (0.005, 0.01, 0.02, 0.04, 0.08),
               "fosi-release": (0.005, 0.01, 0.02, 0.04, 0.08)},
    ),
    # about a million parameters: a deeper classifier (four hidden layers of 576), which memorises the
    # 1,437 training digits in about a hundred steps, and a deep autoencoder (Hinton & Salakhutdinov's
    # shape scaled to 8x8 images), which takes Adam about 450 and heavy-ball SGD more than 2,500
    "deep-mlp": Preset(
        "deep-mlp", Target("train_loss", 1e-3),
        lr={"sgd": 0.1, "adam": 0.004, "kfac": 0.05, "fosi": 0.025, "fosi-release": 0.004},
        grids={"sgd": (0.025, 0.05, 0.1, 0.2, 0.4), "adam": (0.0005, 0.001, 0.002, 0.004, 0.008),
               "kfac": (0.0125, 0.025, 0.05, 0.1, 0.2), "fosi": (0.0125, 0.025, 0.05, 0.1, 0.2),
               "fosi-release": (0.0005, 0.001, 0.002, 0.004, 0.008)},
        tune_seeds=1, staleness_quantum=32,
    ),
    "deep-autoencoder": Preset(
        "deep-autoencoder", Target("train_loss", 0.25),
        lr={"sgd": 0.00125, "adam": 0.0005, "kfac": 0.005, "fosi": 0.0005, "fosi-release": 0.0005}, loss="mse",
        # three-point grids and a coarser staleness ladder: a run here is one to four minutes
        fosi_base="adam", max_steps=2500, eval_every=10, tune_seeds=1, staleness_quantum=64,
        grids={"sgd": (0.00125, 0.0025, 0.005), "adam": (0.0005, 0.001, 0.002), "kfac": (0.005, 0.01, 0.02),
               "fosi": (0.0005, 0.001, 0.002), "fosi-release": (0.0005, 0.001, 0.002)},
    ),
}

#: the study networks that are not a zoo MLP name: their layer sizes and descriptions
STUDY_NETWORKS = {
    "mlp": ((64, 128, 64, 10), None),
    "logreg": ((64, 10), "logistic regression 64-10"),
    "autoencoder": ((64, 32, 8, 32, 64), "autoencoder 64-32-8-32-64, ReLU hidden, squared error"),
    "deep-mlp": ((64, 576, 576, 576, 576, 10), "MLP 64-576-576-576-576-10, ReLU hidden"),
    "deep-autoencoder": ((64, 800, 400, 200, 20, 200, 400, 800, 64),
                         "deep autoencoder 64-800-400-200-20-200-400-800-64, ReLU hidden, squared error"),
}


def study_network(name: str) -> tuple[NetworkSpec, Preset]:
    """The network and preset for ``--network`` (``mlp``, ``logreg``, ``autoencoder`` or a zoo MLP name).

    >>> net, preset = study_network("logreg")
    >>> net.total_params(), preset.target.describe()
    (650, 'training loss <= 0.05')
    """
    key = name.strip().lower()
    if key == "mlp":
        return mlp(), PRESETS["mlp"]
    if key in STUDY_NETWORKS:
        sizes, description = STUDY_NETWORKS[key]
        return replace(mlp(sizes), name=key, description=description), PRESETS[key]
    net = load_network(name, input_shape=(64,))
    if Objective(Net(net)).dense is None:
        raise LayerPipeError(f"network {name!r} is not a chain of fully connected layers; "
                             "the DHO2 study needs one (exact HVPs and K-FAC)")
    return net, replace(PRESETS["mlp"], network=net.name)


# --------------------------------------------------------------------------- steps (NumPy training)


@dataclass(frozen=True)
class TrainSettings:
    """What every training run of one study shares (the design's cycles do not depend on them)."""

    batch: int = 128
    curvature_batch: int = 128
    k: int = 10
    l: int = 0
    refresh: int | None = None  # T in steps; None: the preset's refresh_epochs (StepsOracle resolves it)
    warmup: int = 10
    seeds: int = 3
    eval_every: int | None = None  # None: the preset's
    staleness_quantum: int | None = None  # None: the preset's
    fosi_base: str | None = None  # None: the network preset's

    def curvature_used(self, staleness: int, steps: float) -> bool:
        """Whether FOSI's first eigenpairs, ``staleness`` steps late, are used within a run of
        ``steps`` steps (inf: one that never reached its target).

        >>> s = TrainSettings(refresh=90, warmup=10)
        >>> s.curvature_used(8, 18), s.curvature_used(8, 17)
        (True, False)
        """
        if self.refresh is None:
            raise TrainingError("the refresh period is not resolved yet (StepsOracle states it from the preset)")
        first = FosiConfig(refresh=self.refresh, warmup=self.warmup, curvature_delay=staleness).first_refresh
        return first + staleness < steps


class StepsOracle:
    """Median steps to the target per (method, learning rate, staleness), computed once and cached."""

    def __init__(self, net: NetworkSpec, preset: Preset, settings: TrainSettings, data: Dataset | None = None):
        self.net, self.preset, self.settings = net, preset, settings
        self.data = data if data is not None else preset.dataset()
        if settings.refresh is None:
            settings = replace(settings, refresh=preset.refresh_steps(len(self.data.y_train), settings.batch))
        if settings.eval_every is None:
            settings = replace(settings, eval_every=preset.eval_every)
        if settings.staleness_quantum is None:
            settings = replace(settings, staleness_quantum=preset.staleness_quantum)
        self.settings = settings
        self.objective = Objective(Net(net, loss=preset.loss))
        self.cache: dict[tuple[str, float, int, int], RunResult] = {}  # (method, lr, staleness, seed)

    def quantize(self, staleness: int) -> int:
        return round_staleness(staleness, self.settings.staleness_quantum)

    def factory(self, method: str, lr: float, staleness: int = 0, seed: int = 0):
        s, p = self.settings, self.preset
        if method == "sgd":
            return lambda o, w: FirstOrder(o, w, OptimizerConfig("sgd", lr=lr, momentum=0.9))
        if method == "adam":
            return lambda o, w: FirstOrder(o, w, OptimizerConfig("adam", lr=lr))
        if method == "kfac":
            return lambda o, w: Kfac(o, w, KfacConfig(lr=lr, kl_clip=p.kfac_kl_clip))
        if method == "fosi":
            cfg = FosiConfig(base=s.fosi_base or p.fosi_base, lr=lr, alpha=p.fosi_alpha, k=s.k, l=s.l, refresh=s.refresh,
                             warmup=s.warmup, curvature_delay=staleness)
            return fosi_factory(cfg, self.data, s.curvature_batch, seed)
        if method == "fosi-release":  # the released DHO2 update: Adam base, no warm-up, dual and extrapolation
            cfg = FosiConfig(base="adam", lr=lr, alpha=p.fosi_alpha, k=s.k, l=s.l, refresh=s.refresh, warmup=1,
                             dual=RELEASE_SIGMA, eig_shift=RELEASE_SIGMA)
            return fosi_factory(cfg, self.data, s.curvature_batch, seed)
        raise TrainingError(f"unknown method {method!r}")

    def _key(self, method: str, lr: float | None, staleness: int) -> tuple[str, float, int]:
        lr = self.preset.lr[method] if lr is None else lr
        return method, lr, self.quantize(staleness) if method == "fosi" else 0

    def run_one(self, method: str, lr: float, staleness: int, seed: int) -> RunResult:
        """One training run (not cached: :meth:`runs` and :meth:`prefetch` keep them)."""
        s = self.settings
        cfg = RunConfig(batch=s.batch, max_steps=self.preset.max_steps, eval_every=s.eval_every, seed=seed)
        return run_to_target(self.objective, self.data, self.factory(method, lr, staleness, seed),
                             self.preset.target, cfg, f"{method} lr={lr:g} s={staleness}")

    def runs(self, method: str, lr: float | None = None, staleness: int = 0, seeds: int | None = None) -> list[RunResult]:
        """The runs of seeds 0 .. ``seeds`` - 1 (default: the settings' seeds)."""
        key = self._key(method, lr, staleness)
        for seed in range(self.settings.seeds if seeds is None else seeds):
            if (*key, seed) not in self.cache:
                self.cache[(*key, seed)] = self.run_one(*key, seed)
        return [self.cache[(*key, seed)] for seed in range(self.settings.seeds if seeds is None else seeds)]

    def steps(self, method: str, lr: float | None = None, staleness: int = 0, seeds: int | None = None) -> float:
        """Median steps to the target over the seeds (inf when a seed never reaches it)."""
        values = [r.steps_to_target if r.steps_to_target is not None else math.inf
                  for r in self.runs(method, lr, staleness, seeds)]
        return float(statistics.median(values))

    def prefetch(self, wanted: Iterable[tuple[str, float | None, int, int]], jobs: int = 1) -> None:
        """Run every missing ``(method, lr, staleness, seeds)`` in ``jobs`` processes.

        Each run is a function of its seed alone, so the cache holds the same results whatever
        ``jobs`` is; only the wall time changes.
        """
        todo = list(dict.fromkeys((*self._key(m, lr, st), seed) for m, lr, st, seeds in wanted for seed in range(seeds)
                                  if (*self._key(m, lr, st), seed) not in self.cache))
        if jobs <= 1 or len(todo) <= 1:
            for key in todo:
                self.cache[key] = self.run_one(*key)
            return
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = pool.map(_run_in_worker, [(self.net, self.preset, self.settings, key) for key in todo])
            for key, result in zip(todo, results):
                self.cache[key] = result


def _run_in_worker(job: tuple[NetworkSpec, Preset, TrainSettings, tuple[str, float, int, int]]) -> RunResult:
    net, preset, settings, key = job
    return StepsOracle(net, preset, settings).run_one(*key)


# --------------------------------------------------------------------------- designs x steps


@dataclass
class DesignResult:
    """One design on P devices: its cost, the steps its optimizer needs and the product."""

    design: str
    devices: int
    cost: DesignCost
    steps: float
    staleness_trained: int
    time_to_target: float  # cycles
    candidates: list[dict[str, Any]] = field(default_factory=list)
    #: False when DHO2's first eigenvectors would arrive only after the run reached its target
    curvature_used: bool = True

    def row(self, word_bytes: int) -> dict[str, Any]:
        c = self.cost
        worst = max(c.memory, key=lambda m: m.total)
        return {
            "design": self.design, "devices": self.devices, "update_devices": c.update_devices,
            "curvature_devices": c.curvature_devices, "steps": self.steps, "cycles_per_step": c.cycles_per_step,
            "time_to_target": self.time_to_target, "staleness": c.staleness, "staleness_trained": self.staleness_trained,
            "refresh_period": c.refresh_period, "memory_bytes": worst.total * word_bytes,
            "basis_bytes": max(m.lanczos_basis for m in c.memory) * word_bytes,
            "eigvec_bytes": max(m.eigenvectors for m in c.memory) * word_bytes,
            "curvature_used": self.curvature_used,
        }


def platform_for(devices: int, hardware: str, link: str, topology: str) -> Platform:
    from simulator.limits import check_platform

    cost, lk = parse_hardware(hardware), parse_link(link)
    check_platform(devices, topology, link_free=lk.is_free, flag="--devices", override=None)  # before building it
    return Platform.homogeneous(devices, cost, lk, topology=topology)


def evaluate(net: NetworkSpec, devices: int, platform: Platform, dcfg: DesignConfig, oracle: StepsOracle,
             designs: Sequence[str] = DESIGNS, curvature_devices: int | None = None,
             candidates: Sequence[DesignCost] | None = None) -> list[DesignResult]:
    """Every design on ``devices`` devices: cycles per step x steps to the target.

    ``candidates``: DHO2's splits from :func:`dho2_candidates` when the caller already has them
    (they depend on the network, platform and config only, not on the training)."""
    out = []
    for design in designs:
        method = METHOD_OF[design]
        if design == "dho2" and devices >= 2:
            if curvature_devices is not None:
                costs = [design_cost("dho2", net, devices, platform, replace(dcfg, curvature_devices=curvature_devices))]
            else:
                costs = candidates if candidates is not None else dho2_candidates(net, devices, platform, dcfg)
            scored = []
            for c in costs:
                steps = oracle.steps(method, staleness=c.staleness)
                used = oracle.settings.curvature_used(oracle.quantize(c.staleness), steps)
                scored.append((steps * c.cycles_per_step, c, steps, used))
            # a split whose eigenvectors only arrive after the target is the base optimizer on
            # P_u devices, not DHO2: prefer splits that use the curvature
            pool = [t for t in scored if t[3]] or scored
            best = min(pool, key=lambda t: (t[0], t[1].curvature_devices))
            cands = [{"curvature_devices": c.curvature_devices, "staleness": c.staleness,
                      "cycles_per_step": c.cycles_per_step, "steps": st, "time_to_target": t,
                      "memory_words_max": c.memory_words_max, "curvature_used": used} for t, c, st, used in scored]
            out.append(DesignResult(design, devices, best[1], best[2], oracle.quantize(best[1].staleness), best[0],
                                    cands, best[3]))
        else:
            c = design_cost(design, net, devices, platform, dcfg)
            steps = oracle.steps(method)
            out.append(DesignResult(design, devices, c, steps, 0, steps * c.cycles_per_step))
    return out


# --------------------------------------------------------------------------- command


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _method_lr(text: str) -> tuple[str, float]:
    """``METHOD=LR`` for ``--lr``: a known method and a finite positive rate."""
    method, sep, value = text.partition("=")
    method = method.strip().lower()
    methods = tuple(dict.fromkeys(METHOD_OF.values()))  # the optimizers the designs train with
    if not sep or method not in methods:
        raise argparse.ArgumentTypeError(f"expected METHOD=LR with METHOD one of {', '.join(methods)}, got {text!r}")
    return method, finite_float(0.0, strict=True)(value)


def _curvature(text: str) -> int | None:
    return None if text == "auto" else _positive(text)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits  # ships with scikit-learn
    except ImportError:  # pragma: no cover
        from contextlib import nullcontext
        return nullcontext()
    return threadpool_limits(1)


def run(args: argparse.Namespace) -> int:
    if args.network is not None and args.network_option is not None and args.network != args.network_option:
        raise LayerPipeError(f"two networks given: {excerpt(args.network)} and --network {excerpt(args.network_option)}")
    net, preset = study_network(args.network or args.network_option or "mlp")
    if args.target is not None and not math.isfinite(args.target):  # named by its flag; Target refuses it too
        raise LayerPipeError(f"--target must be a finite number, got {args.target}")
    if args.target is not None:
        preset = replace(preset, target=Target(args.target_metric or preset.target.metric, args.target))
    elif args.target_metric is not None:
        raise LayerPipeError("--target-metric needs --target VALUE")
    if preset.reconstruction and preset.target.metric == "test_accuracy":
        raise LayerPipeError(f"{preset.network} reconstructs its inputs and has no accuracy: use --target-metric "
                             "train_loss")
    if args.max_steps is not None:
        preset = replace(preset, max_steps=args.max_steps)
    if args.alpha is not None:
        preset = replace(preset, fosi_alpha=args.alpha)
    if args.lr:
        preset = replace(preset, lr={**preset.lr, **dict(args.lr)})
    P = args.devices
    if args.curvature_devices is not None and not 1 <= args.curvature_devices <= P - 1:
        raise LayerPipeError(f"--curvature-devices must be between 1 and {P - 1} on {P} devices")
    if args.refresh_epochs is not None:
        preset = replace(preset, refresh_epochs=args.refresh_epochs)
    settings = TrainSettings(batch=args.batch, curvature_batch=args.curvature_batch, k=args.k, l=args.l,
                             refresh=args.refresh, warmup=args.warmup, seeds=1 if args.quick else args.seeds,
                             fosi_base=args.fosi_base or preset.fosi_base)
    platform = platform_for(P, args.hardware, args.link, args.topology)
    oracle = StepsOracle(net, preset, settings)
    settings = oracle.settings  # T in steps, from the epochs when --refresh is not given
    dcfg = DesignConfig(batch=args.batch, curvature_batch=args.curvature_batch, k=args.k, l=args.l,
                        refresh=settings.refresh, kfac_refresh=args.kfac_refresh, word_bytes=args.word_bytes,
                        fosi_base=args.fosi_base or preset.fosi_base)
    with _one_blas_thread():  # tiny matrices: threads only fight over the cores
        results = evaluate(net, P, platform, dcfg, oracle, designs=tuple(d for d in DESIGNS if d in args.designs),
                           curvature_devices=args.curvature_devices)
    rows = [r.row(args.word_bytes) for r in results]
    ref = {r["design"]: r["time_to_target"] for r in rows}
    baselines = [d for d in BASELINES if d in ref]
    best_baseline = min((ref[d] for d in baselines), default=math.nan)
    for r in rows:
        # a design that never reaches the target has no speedup (not 0: it is not slower, it never ends)
        t = r["time_to_target"]
        r["speedup_vs_best_baseline"] = best_baseline / t if t and math.isfinite(t) else None
    if args.json:
        print(to_json({
            "network": net.name, "devices": P, "platform": platform.describe(), "target": preset.target.describe(),
            "settings": asdict(settings), "design_config": asdict(dcfg), "learning_rates": preset.lr,
            "designs": rows,
            "memory": {r.design: [m.to_dict() for m in r.cost.memory] for r in results},
            "dho2_candidates": next((r.candidates for r in results if r.design == "dho2"), []),
        }))
        return 0
    print(f"{net.name} ({net.total_params():,} parameters) on {platform.describe()}; target {preset.target.describe()}; "
          f"batch {args.batch}, k={args.k}, m={dcfg.lanczos_iterations}, T={settings.refresh} steps, seeds {settings.seeds}")
    table = [{
        "design": r["design"], "upd/curv": f"{r['update_devices']}/{r['curvature_devices']}",
        "steps": r["steps"], "cycles/step": round(r["cycles_per_step"]), "time (Mcycles)": r["time_to_target"] / 1e6,
        "speedup": r["speedup_vs_best_baseline"], "stale": r["staleness"],
        "mem/device (MiB)": mib(r["memory_bytes"]), "basis (MiB)": mib(r["basis_bytes"]),
    } for r in rows]
    print(format_table(table))
    print(f"speedup: best of {', '.join(baselines) or 'the baselines (none run)'} / design; stale: steps between the weights the "
          "eigenvectors came from and their first use; memory: the fullest device")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``dho2`` parser (see :mod:`simulator.cli`)."""
    p = subparsers.add_parser(
        "dho2", help=SUMMARIES["dho2"],
        description="For each design (data-parallel SGD, Adam, K-FAC; FOSI with the curvature on one device; "
        "FOSI with data-parallel Hessian-vector products, as hsivan/fosi runs on several devices; "
        "DHO2 with the Lanczos basis sharded and the curvature overlapped with updates) print the steps the "
        "NumPy optimizer needs to reach the target on digits, the simulated cycles per step on P devices, their "
        "product (time-to-accuracy) and the memory of the fullest device.")
    # NETWORK and -p as in every other command; --network and --devices stay as the older spellings
    p.add_argument("network", nargs="?", default=None, metavar="NETWORK",
                   help="mlp (64-128-64-10, the default), logreg (64-10), autoencoder (64-32-8-32-64, squared "
                        "error), deep-mlp (1.04M parameters), deep-autoencoder (0.91M), or a zoo MLP name")
    p.add_argument("--network", dest="network_option", default=None, metavar="NETWORK", help="the same as NETWORK")
    p.add_argument("--processors", "-p", "--devices", dest="devices", type=bounded_int(1, 4_096), required=True,
                   metavar="P", help="number of devices")
    p.add_argument("--k", type=bounded_int(0, 1_000), default=10, help="largest eigenpairs kept (default 10)")
    p.add_argument("--l", type=bounded_int(0, 1_000), default=0, help="smallest eigenpairs kept (default 0)")
    period = p.add_mutually_exclusive_group()
    period.add_argument("--refresh", type=bounded_int(1, 1_000_000), default=None, metavar="T",
                        help="curvature refresh period in steps (default: --refresh-epochs)")
    period.add_argument("--refresh-epochs", type=finite_float(0.0, strict=True), default=None, metavar="E",
                        help="curvature refresh period in epochs of the training set, rounded up to whole steps "
                             "(default 8, the released DHO2's)")
    p.add_argument("--warmup", type=bounded_int(0, 1_000_000), default=10,
                   help="W: FOSI's first refresh comes before its W-th update, as in hsivan/fosi (default 10)")
    p.add_argument("--kfac-refresh", type=_positive, default=10, help="K-FAC's factor/inverse refresh period (default 10)")
    p.add_argument("--batch", "-b", type=_positive, default=128, help="global minibatch (default 128)")
    p.add_argument("--curvature-batch", type=_positive, default=128, help="FOSI's fixed Lanczos batch (default 128)")
    p.add_argument("--curvature-devices", type=_curvature, default=None, metavar="auto|N",
                   help="DHO2's curvature devices (default auto: the split with the shortest time-to-accuracy)")
    p.add_argument("--target", type=float, default=None, help="target value (default: the network's preset)")
    p.add_argument("--target-metric", choices=("train_loss", "test_accuracy"), default=None)
    p.add_argument("--max-steps", type=bounded_int(1, 100_000), default=None,
                   help="step budget of every training run (at most 100,000)")
    p.add_argument("--seeds", type=bounded_int(1, 100), default=3,
                   help="training seeds; the median steps count (default 3, at most 100)")
    p.add_argument("--quick", action="store_true", help="one seed")
    p.add_argument("--hardware", default="mac:256", help="device cost model (default mac:256)")
    p.add_argument("--link", default="100,16", help="link LATENCY,BYTES_PER_CYCLE (default 100,16)")
    p.add_argument("--topology", choices=TOPOLOGIES, default="full", help="device topology (default full)")
    p.add_argument("--word-bytes", type=bounded_int(1, 16), default=2, help="bytes per value (default 2, at most 16)")
    p.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS), metavar="DESIGN",
                   help=f"designs to evaluate (default all: {', '.join(DESIGNS)})")
    p.add_argument("--fosi-base", choices=("heavyball", "sgd", "adam"), default=None,
                   help="FOSI's base optimizer, in fosi, fosi-dp and dho2 (dho2-release keeps its Adam; default: "
                        "heavyball, momentum 0.9; adam for "
                        "the autoencoder)")
    p.add_argument("--alpha", type=finite_float(0.0), default=None,
                   help="FOSI's Newton step size (default: the network's preset, 0.01)")
    p.add_argument("--lr", type=_method_lr, action="append", default=[], metavar="METHOD=LR",
                   help="a method's learning rate, for sgd, adam, kfac or fosi (repeatable; default: the preset's, "
                        "the best of the study's grid)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)
    return p


__all__ = ["BASELINES", "FIRST_ORDER", "SECOND_ORDER", "METHOD_OF", "Preset", "PRESETS", "study_network", "TrainSettings", "StepsOracle", "DesignResult",
           "platform_for", "evaluate", "register", "run"]
