"""FOSI: a first-order optimizer with a Newton step in the Hessian's extreme eigen-subspace.

FOSI (Sivan et al., ICLR 2024; REFERENCE "FOSI"). Every ``refresh`` (T) steps Lanczos
(:mod:`models.training.lanczos`) estimates the k largest (and l smallest) eigenpairs (V, lambda) of the
Hessian on a fixed curvature batch, from HVPs (:mod:`models.training.hvp`). With V's rows orthonormal
and gradient g:

* ``g1 = V^T (V g)`` (the gradient in the subspace), ``g2 = g - g1``;
* momentum on g1 - heavy-ball ``m = g1 + mu m``, Adam ``m = (1 - b1) g1 + b1 m``, plain SGD ``m = g1``;
* Newton part ``d1 = V^T ((1 / |lambda|) * (V m))``;
* base part ``u2 = base_optimizer_step(g2)`` (already a step, i.e. ``-lr * ...``), projected
  off the subspace: ``u2 -= V^T (V u2)``;
* update ``w += c * u2 - alpha * d1`` with ``c = clip(lambda_1 / lambda_k, 1, clip_max)``
  (clip_max 3 for SGD / heavy-ball, 1 for Adam): the base optimizer now sees a Hessian whose
  largest eigenvalue is about lambda_k, so its rate may grow by lambda_1 / lambda_k.

Refresh timing follows hsivan/fosi step for step (``scale_by_fosi``'s update): a refresh runs
on the weights before the update of step t (0-based: t updates done) when t + 1 >= W and
(t + 1 - W) mod T = 0, and that step's update already uses it; so with W >= 1 the first refresh
comes before the W-th update (t = W - 1), then every T steps (W = 0, as in the library, acts like
W = T). Before it there are no eigenvectors and FOSI *is* its base optimizer - bit for bit,
which the tests check.

Defaults beside the library's (``fosi.jax_optim.fosi_optimizer.fosi_momentum``) and its paper's
experiments (``experiments/dnn``: the CIFAR-10 autoencoder and MNIST logistic regression):

* k largest / l smallest eigenpairs: here 10 / 0; library 5 / 0; experiments 10 / 0;
* Lanczos iterations m: 4 (k + l) in all three (40 for k = 10);
* alpha, the Newton step: here 0.01; library 0.1; experiments 0.01;
* T, steps between refreshes: here 100; library 100; experiments 800;
* W, the first refresh: T in all three, except one epoch for the logistic regression;
* the clip of c: 3 (Adam: 1) here and in the library; the autoencoder's experiment uses 1;
* momentum on g1: the base optimizer's (0.9) here; the library's decay 0.9; experiments 0.9.

k and alpha follow the experiments rather than the library's defaults; T counts steps, and the
experiments' 800 steps are about 14 epochs of MNIST at batch 1024 (58 steps each) and 4.6 of
CIFAR-10 at 256 (175), so a
study on a smaller dataset states its T in epochs too (:mod:`benchmarks.dho2_study`). The
experiments call the refresh from their training loop on ``max(1, t + 1 - W) mod T = 0`` (a
first refresh T steps later than the library's own rule); this module follows the library.

The base optimizers are the training core's :class:`models.training.optim.SGD` and :class:`Adam`. They
update a vector in place; FOSI needs the step they *would* take on g2, so
:class:`DeltaOptimizer` lets them update a zero scratch vector and reads the step back (this
is why the base optimizer's weight decay must be 0: put L2 into the objective instead).

Staleness (DHO2). ``curvature_delay = s`` makes the eigenpairs computed from the weights after
step t usable only from step t + s on (DHO2 runs Lanczos on other devices while the updates go
on). A new refresh cannot start before the previous one ends, so refreshes start every
``max(T, s)`` steps. s = 0 is FOSI.

:func:`run_to_target` trains any :class:`StepRule` (first-order, FOSI, K-FAC) on a dataset and
reports the number of steps it needed to reach a target test accuracy or training loss - the
first factor of time-to-accuracy (the second, cycles per step, comes from ``simulator.studies.dho2``).

>>> w = np.zeros(2); H = np.diag([10.0, 1.0]); target = np.array([1.0, -2.0])
>>> from models.training.lanczos import Eigenpairs
>>> fosi = FosiUpdate(2, FosiConfig(base="sgd", lr=0.1, alpha=1.0, k=2))
>>> fosi.set_curvature(Eigenpairs(np.array([1.0, 10.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), k=2))
>>> w += fosi.delta(H @ (w - target)); w     # one Newton step lands on the minimiser
array([ 1., -2.])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from models.errors import TrainingError
from models.training.data import Dataset
from models.training.hvp import Objective
from models.training.lanczos import Eigenpairs, extreme_eigenpairs, lanczos_order
from models.training.optim import OptimizerConfig

Array = np.ndarray

BASES = ("sgd", "heavyball", "adam")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class FosiConfig:
    """FOSI's hyper-parameters (defaults: the library's, except where noted).

    base: ``sgd`` (no momentum), ``heavyball`` (SGD momentum ``momentum``) or ``adam``.
    lr: the base optimizer's rate (None: the training core's default, 0.05 SGD / 0.002 Adam).
    k, l: eigenpairs kept (largest, smallest); ``m`` Lanczos iterations (None: 4(k + l)).
    alpha: Newton step size; refresh: T; warmup: W, the first refresh comes before the W-th
    update (None: T; the module docstring gives the rule and the defaults beside the library's).
    clip_max: bound of the base-step scaling c (None: 3 for sgd/heavyball, 1 for adam).
    newton_momentum: momentum on g1 (the library's fosi_momentum / fosi_adam do it).
    curvature_delay: DHO2's staleness s in steps (0: FOSI).
    eig_shift: added to every eigenvalue before ``1 / |lambda|`` (the released DHO2: 5e-9; FOSI: 0).
    dual: the released DHO2's penalty sigma (None: FOSI; see :class:`Fosi`): a dual vector pi joins
    the gradient, and where each refresh period ends the weights jump by pi / sigma.
    seed: Lanczos start vectors.

    >>> FosiConfig(base="adam").scaling_clip, FosiConfig().lanczos_iterations
    (1.0, 40)
    """

    base: str = "heavyball"
    lr: float | None = None
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    k: int = 10
    l: int = 0
    m: int | None = None
    alpha: float = 0.01
    refresh: int = 100
    warmup: int | None = None
    clip_max: float | None = None
    newton_momentum: bool = True
    curvature_delay: int = 0
    eig_shift: float = 0.0
    dual: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise TrainingError(f"unknown FOSI base optimizer {self.base!r} (known: {', '.join(BASES)})")
        if self.k < 0 or self.l < 0:
            raise TrainingError(f"k and l must be >= 0, got k={self.k}, l={self.l}")
        if self.refresh < 1 or (self.warmup is not None and self.warmup < 0) or self.curvature_delay < 0:
            raise TrainingError("refresh must be >= 1, warmup and curvature_delay >= 0")
        if self.alpha < 0 or not 0 <= self.momentum < 1:
            raise TrainingError(f"alpha must be >= 0 and 0 <= momentum < 1, got {self.alpha}, {self.momentum}")
        if self.dual is not None and not (math.isfinite(self.dual) and self.dual > 0):
            raise TrainingError(f"the dual penalty must be a positive number, got {self.dual!r}")
        if self.dual is not None and self.curvature_delay:
            raise TrainingError("the released DHO2 update refreshes in place (no curvature delay)")
        if not math.isfinite(self.eig_shift):
            raise TrainingError(f"eig_shift must be finite, got {self.eig_shift!r}")
        if self.m is not None and self.m < self.k + self.l:
            raise TrainingError(f"m = {self.m} Lanczos iterations cannot give k + l = {self.k + self.l} eigenpairs")

    @property
    def lanczos_iterations(self) -> int:
        return lanczos_order(self.k, self.l) if self.m is None else self.m

    @property
    def scaling_clip(self) -> float:
        if self.clip_max is not None:
            return float(self.clip_max)
        return 1.0 if self.base == "adam" else 3.0

    @property
    def first_update(self) -> int:
        """W: the first refresh comes before the W-th update (``warmup``, default T)."""
        return self.refresh if self.warmup is None else self.warmup

    @property
    def first_refresh(self) -> int:
        """The step (0-based) before whose update the first refresh runs: W - 1, or the period's
        last step for W = 0 (the library's rule, see :meth:`refreshes_at`).

        >>> FosiConfig(refresh=100).first_refresh, FosiConfig(warmup=10).first_refresh, FosiConfig(warmup=0).first_refresh
        (99, 9, 99)
        """
        W = self.first_update
        return W - 1 if W >= 1 else self.refresh_period - 1

    def refreshes_at(self, t: int) -> bool:
        """Whether a refresh runs before the update of step ``t`` (0-based): hsivan/fosi's
        ``count + 1 >= W and (count + 1 - W) mod T == 0``, with T the refresh period (which
        DHO2's staleness may stretch, :attr:`refresh_period`).

        >>> [t for t in range(12) if FosiConfig(refresh=4, warmup=2).refreshes_at(t)]
        [1, 5, 9]
        """
        W = self.first_update
        return t + 1 >= W and (t + 1 - W) % self.refresh_period == 0

    @property
    def refresh_period(self) -> int:
        """Steps between refresh starts: T, or the staleness when a refresh outlasts T steps."""
        return max(self.refresh, self.curvature_delay)

    def base_config(self) -> OptimizerConfig:
        """The training core's optimizer config of the base optimizer."""
        if self.base == "adam":
            return OptimizerConfig("adam", lr=self.lr, betas=self.betas)
        return OptimizerConfig("sgd", lr=self.lr, momentum=self.momentum if self.base == "heavyball" else 0.0)


class DeltaOptimizer:
    """Adapter: the step a :mod:`models.training.optim` optimizer would take, without applying it.

    >>> d = DeltaOptimizer(OptimizerConfig("sgd", lr=0.1, momentum=0.5), 2)
    >>> d.delta(np.array([1.0, 2.0])), d.delta(np.array([1.0, 2.0]))
    (array([-0.1, -0.2]), array([-0.15, -0.3 ]))
    """

    def __init__(self, config: OptimizerConfig, n: int):
        if config.weight_decay:
            raise TrainingError("FOSI's base optimizer must have weight_decay 0 (put L2 into the objective)")
        self._scratch = np.zeros(n)
        self.optimizer = config.build(self._scratch)

    def delta(self, grad: Array) -> Array:
        self._scratch[:] = 0.0
        self.optimizer.step(grad)
        return self._scratch.copy()


# --------------------------------------------------------------------------- the update rule


class FosiUpdate:
    """FOSI's step for given eigenpairs (see the module docstring); no refresh logic.

    >>> u = FosiUpdate(3, FosiConfig(base="sgd", lr=0.5, k=0))
    >>> u.delta(np.array([1.0, 0.0, -2.0]))   # no eigenvectors: exactly the base step
    array([-0.5,  0. ,  1. ])
    """

    def __init__(self, n: int, config: FosiConfig):
        self.n, self.config = n, config
        self.base = DeltaOptimizer(config.base_config(), n)
        self.velocity = np.zeros(n)
        self.vectors: Array | None = None
        self.inv_abs: Array | None = None
        self.scale = 1.0
        self.eigen: Eigenpairs | None = None

    def set_curvature(self, eig: Eigenpairs | None) -> None:
        """Install new eigenpairs (None or empty: plain base optimizer)."""
        if eig is None or len(eig.values) == 0:
            self.vectors, self.inv_abs, self.scale, self.eigen = None, None, 1.0, eig
            return
        if eig.vectors.shape[1] != self.n:
            raise TrainingError(f"eigenvectors have length {eig.vectors.shape[1]}, the model {self.n}")
        self.eigen = eig
        self.vectors = np.asarray(eig.vectors, dtype=np.float64)
        # 1/|lambda + shift|; the floor only guards an exact zero (FOSI itself divides unguarded)
        self.inv_abs = 1.0 / np.maximum(np.abs(eig.values + self.config.eig_shift), 1e-12)
        self.scale = float(np.clip(eig.condition_ratio, 1.0, self.config.scaling_clip)) if eig.k else 1.0

    def _momentum(self, g1: Array) -> None:
        cfg = self.config
        if not cfg.newton_momentum or cfg.base == "sgd":
            self.velocity = g1
        elif cfg.base == "heavyball":
            self.velocity = g1 + cfg.momentum * self.velocity
        else:
            b1 = cfg.betas[0]
            self.velocity = (1.0 - b1) * g1 + b1 * self.velocity

    def delta(self, grad: Array) -> Array:
        """The parameter change for gradient ``grad`` (updates the optimizer state)."""
        V = self.vectors
        if V is None:
            # no subspace: g1 = 0, so the velocity only decays and the base step is the step
            self._momentum(np.zeros(self.n))
            return self.base.delta(grad)
        g1 = V.T @ (V @ grad)
        g2 = grad - g1
        self._momentum(g1)
        d1 = V.T @ (self.inv_abs * (V @ self.velocity))
        u2 = self.base.delta(g2)
        u2 -= V.T @ (V @ u2)  # keep the base step out of the Newton subspace
        return self.scale * u2 - self.config.alpha * d1


# --------------------------------------------------------------------------- step rules


class StepRule(Protocol):
    """One optimizer driving the flat parameter vector ``w`` of an :class:`Objective`."""

    w: Array

    def step(self, x: Array, y: Array) -> float:
        """One update on minibatch (x, y); returns the minibatch loss before it."""
        ...

    def stats(self) -> dict[str, Any]:
        ...


class FirstOrder:
    """SGD (momentum) or Adam of the training core on the whole vector."""

    def __init__(self, objective: Objective, w: Array, config: OptimizerConfig):
        self.objective, self.w, self.config = objective, w, config
        self.optimizer = config.build(w)

    def step(self, x: Array, y: Array) -> float:
        loss, g = self.objective.loss_grad(self.w, x, y)
        self.optimizer.step(g)
        return loss

    def stats(self) -> dict[str, Any]:
        return {}


@dataclass
class _Pending:
    eig: Eigenpairs
    computed_at: int
    ready_at: int


class Fosi:
    """FOSI as a step rule: refreshes the curvature on a fixed batch and applies :class:`FosiUpdate`.

    ``curvature_x, curvature_y``: the fixed batch of the Hessian-vector products (FOSI's static
    batch). ``staleness`` records, for every step, how many steps old the eigenvectors in use are
    (from the weights they were computed at); DHO2 reports its maximum and mean.

    With ``config.dual`` = sigma, the released DHO2 update (ShunxianGu/DHO2, ``DHO2_ADMM_v2.py``): every
    step's gradient is ``g + pi``; a refresh period starts by keeping the weights (``cache = w``, after
    the refresh); where it ends (just before the next refresh) ``pi += sigma (w - cache)`` and then
    ``w += pi / sigma``, so the weights jump by the sum of every period's displacement so far.
    """

    def __init__(self, objective: Objective, w: Array, config: FosiConfig, curvature_x: Array, curvature_y: Array):
        self.objective, self.w, self.config = objective, w, config
        self.cx, self.cy = curvature_x, curvature_y
        self.update = FosiUpdate(objective.n, config)
        self.t = 0
        self.pending: _Pending | None = None
        self.active_since: int | None = None  # step whose weights the active eigenpairs came from
        self.rng = np.random.default_rng(config.seed)
        self.refreshes = 0
        self.hvps = 0
        self.staleness: list[int] = []
        self.eigenvalue_log: list[tuple[int, list[float]]] = []
        self.pi = np.zeros(objective.n) if config.dual is not None else None
        self.cache: Array | None = None  # the weights where the running refresh period began

    def estimate(self) -> Eigenpairs:
        """Extreme eigenpairs of the curvature batch's Hessian at the current weights."""
        cfg = self.config
        w = self.w.copy()  # Lanczos must see the weights of this moment, whatever happens next

        def matvec(v: Array) -> Array:
            return self.objective.hvp(w, v, self.cx, self.cy)

        eig = extreme_eigenpairs(matvec, self.objective.n, cfg.k, cfg.l, cfg.m, seed=self.rng)
        self.hvps += eig.iterations
        self.refreshes += 1
        self.eigenvalue_log.append((self.t, eig.values.tolist()))
        return eig

    def _curvature(self) -> None:
        cfg = self.config
        if cfg.k + cfg.l == 0:
            return
        # install a finished refresh before starting the next (with s >= T they meet on one step)
        if self.pending is not None and self.t >= self.pending.ready_at:
            self.update.set_curvature(self.pending.eig)
            self.active_since = self.pending.computed_at
            self.pending = None
        if cfg.refreshes_at(self.t):
            self.pending = _Pending(self.estimate(), self.t, self.t + cfg.curvature_delay)
            if cfg.curvature_delay == 0:  # FOSI: the estimate is used at once
                self.update.set_curvature(self.pending.eig)
                self.active_since = self.t
                self.pending = None

    def step(self, x: Array, y: Array) -> float:
        dual = self.config.dual
        period_starts = dual is not None and self.config.refreshes_at(self.t)
        if period_starts and self.cache is not None:  # the released DHO2: the period's end
            self.pi += dual * (self.w - self.cache)
            self.w += self.pi / dual
        self._curvature()
        if period_starts:
            self.cache = self.w.copy()
        if self.active_since is not None:
            self.staleness.append(self.t - self.active_since)
        loss, g = self.objective.loss_grad(self.w, x, y)
        if self.pi is not None:
            g = g + self.pi
        self.w += self.update.delta(g)
        self.t += 1
        return loss

    def stats(self) -> dict[str, Any]:
        st = self.staleness
        return {"refreshes": self.refreshes, "hvps": self.hvps,
                "max_staleness": max(st) if st else 0, "mean_staleness": float(np.mean(st)) if st else 0.0,
                "curvature_delay": self.config.curvature_delay}


# --------------------------------------------------------------------------- time (in steps) to a target


@dataclass(frozen=True)
class Target:
    """What "trained" means: test accuracy >= value, or full training loss <= value.

    >>> Target("test_accuracy", 0.95).reached(0.3, 0.96), Target("train_loss", 0.1).reached(0.2, 0.99)
    (True, False)
    """

    metric: str = "test_accuracy"
    value: float = 0.95

    def __post_init__(self) -> None:
        if self.metric not in ("test_accuracy", "train_loss"):
            raise TrainingError(f"target metric must be test_accuracy or train_loss, got {self.metric!r}")
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TrainingError(f"target value must be a finite number, got {v!r}")
        # a loss target of 0 or below, or an accuracy outside (0, 1], is never reached: every run
        # would spend its whole budget and report nothing
        if self.metric == "train_loss" and v <= 0:
            raise TrainingError(f"a training-loss target must be above 0, got {v:g}")
        if self.metric == "test_accuracy" and not 0 < v <= 1:
            raise TrainingError(f"a test-accuracy target must be in (0, 1], got {v:g}")

    def reached(self, train_loss: float, test_accuracy: float) -> bool:
        if self.metric == "test_accuracy":
            return test_accuracy >= self.value
        return train_loss <= self.value

    def describe(self) -> str:
        return f"test accuracy >= {self.value:g}" if self.metric == "test_accuracy" else f"training loss <= {self.value:g}"


@dataclass(frozen=True)
class RunConfig:
    """Minibatch size, step budget, evaluation interval and seed of one run."""

    batch: int = 32
    max_steps: int = 2000
    eval_every: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch < 1 or self.max_steps < 1 or self.eval_every < 1:
            raise TrainingError("batch, max_steps and eval_every must be positive")


@dataclass
class RunResult:
    """Steps a method needed to reach the target (None if it did not within ``max_steps``)."""

    method: str
    target: str
    steps_to_target: int | None
    steps_run: int
    final_train_loss: float
    final_test_accuracy: float
    diverged: bool
    seed: int
    stats: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RuleFactory = Callable[[Objective, Array], StepRule]


def curvature_batch(data: Dataset, objective: Objective, size: int, seed: int = 0) -> tuple[Array, Array]:
    """A fixed batch of ``size`` training samples for the HVPs (FOSI's static Lanczos batch)."""
    if size < 1:
        raise TrainingError(f"curvature batch must have at least one sample, got {size}")
    idx = np.random.default_rng(np.random.SeedSequence([seed, 7])).permutation(len(data.y_train))[:size]
    return objective.inputs(data.x_train[idx]), data.y_train[idx]


def run_to_target(objective: Objective, data: Dataset, make_rule: RuleFactory, target: Target,
                  config: RunConfig = RunConfig(), method: str = "", stop_at_target: bool = True) -> RunResult:
    """Train until ``target`` is met (checked every ``eval_every`` steps) or ``max_steps``.

    Deterministic for a seed: the seed spawns one stream for the initial weights and one for the
    minibatch order (as ``models.training.train``), so every method starts from the same
    weights and sees the same minibatches.

    >>> from models.training.data import load_digits_split
    >>> from models.training.nn import Net
    >>> from models.network.zoo import mlp
    >>> obj = Objective(Net(mlp((64, 10))))
    >>> r = run_to_target(obj, load_digits_split(), lambda o, w: FirstOrder(o, w, OptimizerConfig("sgd", lr=0.1)),
    ...                   Target("test_accuracy", 0.9), RunConfig(max_steps=300), "sgd")
    >>> r.steps_to_target is not None and r.steps_to_target < 300
    True
    """
    init_seq, order_seq = np.random.SeedSequence(config.seed).spawn(2)
    w = objective.init(np.random.default_rng(init_seq))
    rule = make_rule(objective, w)
    order_rng = np.random.default_rng(order_seq)
    x_train, y_train = objective.inputs(data.x_train), data.y_train
    x_test, y_test = objective.inputs(data.x_test), data.y_test
    n = len(y_train)
    curve: list[dict[str, float]] = []
    reached_at: int | None = None
    diverged = False

    def evaluate(step: int) -> tuple[float, float]:
        train_loss, _ = objective.evaluate(rule.w, x_train, y_train)
        _, test_acc = objective.evaluate(rule.w, x_test, y_test)
        curve.append({"step": step, "train_loss": train_loss, "test_accuracy": test_acc})
        return train_loss, test_acc

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, acc = evaluate(0)
        if target.reached(loss, acc):
            reached_at = 0
        step = 0
        order = order_rng.permutation(n)
        pos = 0
        while step < config.max_steps and not (stop_at_target and reached_at is not None):
            if pos + config.batch > n:  # a new epoch; drop the ragged tail so every step has `batch` samples
                order, pos = order_rng.permutation(n), 0
            idx = order[pos:pos + config.batch]
            pos += config.batch
            batch_loss = rule.step(x_train[idx], y_train[idx])
            step += 1
            if not np.isfinite(batch_loss) or not np.all(np.isfinite(rule.w)):
                diverged = True
                break
            if step % config.eval_every == 0 or step == config.max_steps:
                loss, acc = evaluate(step)
                if reached_at is None and target.reached(loss, acc):
                    reached_at = step
        if curve[-1]["step"] != step and not diverged:
            loss, acc = evaluate(step)
    return RunResult(method, target.describe(), reached_at, step, float(curve[-1]["train_loss"]),
                     float(curve[-1]["test_accuracy"]), diverged, config.seed, rule.stats(), curve)


def fosi_factory(config: FosiConfig, data: Dataset, curvature_size: int, seed: int = 0) -> RuleFactory:
    """A :data:`RuleFactory` for FOSI with a fixed curvature batch drawn from ``data``."""
    def make(objective: Objective, w: Array) -> Fosi:
        cx, cy = curvature_batch(data, objective, curvature_size, seed)
        return Fosi(objective, w, replace(config, seed=seed), cx, cy)
    return make


__all__ = [
    "BASES", "FosiConfig", "DeltaOptimizer", "FosiUpdate", "StepRule", "FirstOrder", "Fosi", "Target", "RunConfig",
    "RunResult", "RuleFactory", "curvature_batch", "run_to_target", "fosi_factory",
]
