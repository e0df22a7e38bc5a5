"""Delayed-gradient training: the staleness a pipeline schedule creates, and its compensation.

Stale-gradient semantics (delays are in weight *updates*: ``d_l = S(l)``, the number of
pipeline stages after layer l's stage; docs/design.md section 4's Delay(l) = 2*S(l) is the same delay
in slots). Write ``W^l_j`` for layer l's weights after j updates, with ``W^l_j = W^l_0`` for
j < 0 (the pipeline fills with the initial weights).

* Minibatch t is the t-th to enter the pipeline. Its forward passes layer k while layer k
  holds ``W^k_{t-d_k}``: each layer's *own* stale version, so the forward runs at the mixed
  point ``{W^k_{t-d_k}}_k``, as in a real pipeline (PipeDream's 1F1B: stage s of N has
  applied N-1-s fewer updates than it will have when the minibatch's gradient returns).
* Its gradient returns to layer l when layer l holds ``W^l_t`` and is applied there as
  update t: ``W^l_{t+1} = opt(W^l_t, g^l_t)``. So the gradient layer l applies at update t was
  computed on a minibatch that entered d_l of layer l's updates ago — ``d_l`` updates stale.
  (Counting instead a layer's d_l warm-up steps, during which no gradient has come back,
  as empty updates relabels this as "update t of layer l applies the gradient of minibatch
  t - d_l"; the sequence of weights is the same.)
* The pipeline never drains between epochs: the minibatch stream just goes on.
* That is the *nominal* pattern of per-layer delays. ``TrainConfig.staleness`` replaces it with a
  :class:`~models.training.staleness.StalenessPattern`, the versions a simulated schedule really
  used (``simulator.staleness.replay_pattern``): per minibatch and layer a forward lag and a
  backward lag (how many updates the versions used are behind the round the gradient joins),
  and per layer an update round of R minibatches (a stage replicated R ways applies the mean
  of R gradients as one update). The nominal pattern is forward lag d_l, backward lag 0, R = 1.

The compensation mode decides which weights the forward and the backward use (the backward
of layer l needs the weights of the layers above it to propagate the error, the AG1 task
of docs/design.md section 3; a parameter gradient itself needs only the stored activations):

=========  =====================================  ===========================================  ======================
mode       forward of layer l                      backward through layer l                      weight copies kept
=========  =====================================  ===========================================  ======================
none       ``W_t`` (delays forced to 0)            ``W_t``                                       1 (synchronous)
stash      ``W_{t-d}`` (stored)                    the same stored ``W_{t-d}`` (PipeDream)        d_l + 1
nostash    ``W_{t-d}`` (as it was then)            current ``W_t``                               1
ema        ``W_{t-d}`` (as it was then)            ``W_t - d * m_t`` rebuilt (LayerPipe2)        2 whatever d_l (1 if 0)
predict    ``W_{t-d} + d * step_{t-d}`` predicted  current ``W_t``                               1 (+ optimizer state)
=========  =====================================  ===========================================  ======================

"As it was then" costs nothing in a real pipeline — the forward ran d_l updates ago with the
weights of that moment. The simulator still keeps those past versions to replay that
forward; only the copies a mode needs *for its backward* count as its memory.

EMA reconstruction (docs/design.md section 4): after each update ``dW_{t-1} = W_t - W_{t-1}``,
``m_t = beta*m_{t-1} + (1-beta)*dW_{t-1}``, and the past weights are ``W_{t-d} ~= W_t - d*m_hat_t``
with the bias-corrected ``m_hat_t = m_t / (1 - beta^t)`` (so the estimate is exact from the
first update on when the updates are constant; ``d`` is clipped to the t updates made so far).
Our choice of beta per layer is ``beta_l = (d_l - 1) / (d_l + 1)``: the EMA then has the same
centre of mass, (d-1)/2 updates back, as the exact sum of the last d updates it stands for
(the usual N-period-average <-> EMA equivalence). It makes d = 1 exact (beta = 0 keeps the
last update), and longer delays average over a proportionally longer window.
``TrainConfig.ema_beta`` overrides it with one beta for every layer.

Prediction (SpecTrain; REFERENCE "Delay compensation"): when minibatch t passes layer l the
weights will be d_l updates older than when its gradient returns, so the forward uses
``W_hat = W_{t-d} + s * step`` with ``step`` the optimizer's expected next update
(``-lr * v`` for SGD's momentum buffer, Adam's bias-corrected step) and ``s = min(d, t)``;
the backward, at update time, uses the current weights. ``TrainConfig.warmup_steps > 0``
adds PipeMare's learning-rate warm-up ``lr / d^(1 - min(k/K, 1))`` for delayed layers,
in any mode.

>>> from models.training.data import load_digits_split
>>> from models.network.zoo import mlp
>>> cfg = TrainConfig(compensation="stash", delays=(3, 2, 1, 0), epochs=1)
>>> result = train(mlp((64, 128, 128, 64, 10)), load_digits_split(), cfg)
>>> result.weight_copies, result.delays
([4, 3, 2, 1], [3, 2, 1, 0])
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.errors import TrainingError
from models.network.spec import NetworkSpec
from models.training.data import Dataset
from models.training.nn import Net
from models.training.optim import OptimizerConfig
from models.training.staleness import StalenessPattern

COMPENSATIONS = ("none", "stash", "nostash", "ema", "predict")
#: a minibatch loss this many times the first one's (cross-entropy starts near ln(classes)) means the run diverged:
#: logits a million times too large, from which no run of the studies ever came back (their worst final loss is 2.7)
DIVERGENCE_FACTOR = 1e6


def diverged_loss(loss: float, first: float) -> bool:
    """Whether a minibatch ``loss`` says training diverged: not finite, or above
    :data:`DIVERGENCE_FACTOR` x the ``first`` minibatch's (a loss that explodes while staying
    finite, e.g. Adam at a learning rate of 1e10, is no result either).

    >>> diverged_loss(float("nan"), 2.3), diverged_loss(5.8e9, 2.3), diverged_loss(0.1, 2.3)
    (True, True, False)
    """
    return not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * max(first, 1e-12)
#: the learning rate of an update round of R minibatches (a stage replicated R ways): the same as
#: for one minibatch, on the mean gradient, or R times it (the linear scaling rule)
ROUND_LR = ("same", "linear")


# --------------------------------------------------------------------------- delays and memory


def check_delays(delays: Sequence[int] | None, num_layers: int) -> list[int]:
    """Validate a per-weight-layer delay list (``None`` means no delay anywhere).

    >>> check_delays([2, 1, 0], 3)
    [2, 1, 0]
    """
    if delays is None:
        return [0] * num_layers
    delays = list(delays)
    if len(delays) != num_layers:
        raise TrainingError(f"got {len(delays)} delays for a network with {num_layers} weight layers")
    for d in delays:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
            raise TrainingError(f"delays must be non-negative integers (weight updates), got {d!r}")
    return [int(d) for d in delays]


def stage_delays(stage_of_layer: Sequence[int]) -> list[int]:
    """Delay of each weight layer, in updates, from the (0-based) pipeline stage that holds it.

    ``d_l = S(l)``, the number of stages after layer l's stage; layers of one stage share a delay.

    >>> stage_delays([0, 1, 2, 3])
    [3, 2, 1, 0]
    >>> stage_delays([0, 0, 1, 1])
    [1, 1, 0, 0]
    """
    if not stage_of_layer:
        return []
    last = max(stage_of_layer)
    return [last - s for s in stage_of_layer]


def weight_copies(compensation: str, delays: Sequence[int]) -> list[int]:
    """Versions of each layer's weights a mode keeps (docs/design.md section 4).

    Stashing keeps d_l + 1; EMA keeps the current weights and one moving-average buffer,
    2 whatever d_l > 0 (a layer without delay rebuilds nothing and keeps 1, as
    ``schedules.methods.layerpipe2`` counts it); the other modes keep only the current weights
    (prediction uses the optimizer's momentum, which every mode holds anyway).

    >>> weight_copies("stash", [3, 2, 1, 0]), weight_copies("ema", [3, 2, 1, 0])
    ([4, 3, 2, 1], [2, 2, 2, 1])
    """
    _check_mode(compensation)
    if compensation == "stash":
        return [d + 1 for d in delays]
    if compensation == "ema":
        return [2 if d > 0 else 1 for d in delays]
    return [1 for _ in delays]


def _check_mode(compensation: str) -> None:
    if compensation not in COMPENSATIONS:
        raise TrainingError(f"unknown compensation {compensation!r} (known: {', '.join(COMPENSATIONS)})")


# --------------------------------------------------------------------------- reconstruction / prediction


def ema_beta(delay: int) -> float:
    """Our per-layer EMA coefficient: ``(d - 1) / (d + 1)`` (same centre of mass as the last d updates).

    >>> [ema_beta(d) for d in (0, 1, 3)]
    [0.0, 0.0, 0.5]
    """
    return max(delay - 1, 0) / (delay + 1)


class UpdateEMA:
    """Moving average of a layer's weight updates, and the past weights rebuilt from it.

    >>> ema = UpdateEMA(beta=0.5)
    >>> for _ in range(4): ema.update(np.array([0.1]))
    >>> ema.reconstruct(np.array([1.0]), 3)   # W_{t-3} = W_t - 3 * 0.1
    array([0.7])
    """

    def __init__(self, beta: float):
        if not 0 <= beta < 1:
            raise TrainingError(f"EMA beta must be in [0, 1), got {beta}")
        self.beta = beta
        self.m: np.ndarray | None = None
        self.count = 0

    def update(self, delta: np.ndarray) -> None:
        """Fold in one applied update ``dW = W_{t+1} - W_t``."""
        if self.m is None:
            self.m = (1.0 - self.beta) * delta
        else:
            self.m *= self.beta
            self.m += (1.0 - self.beta) * delta
        self.count += 1

    def estimate(self) -> np.ndarray | None:
        """Bias-corrected mean update ``m_t / (1 - beta^t)`` (None before the first update)."""
        if self.m is None:
            return None
        return self.m / (1.0 - self.beta ** self.count)

    def reconstruct(self, current: np.ndarray, delay: int) -> np.ndarray:
        """``W_{t-d} ~= W_t - d * m_hat``, with d clipped to the updates made so far."""
        d = min(delay, self.count)
        if d == 0:
            return current  # no arithmetic, so zero delay is bit-exact
        return current - d * self.estimate()


def predict_weights(weights: np.ndarray, step: np.ndarray, ahead: int) -> np.ndarray:
    """Extrapolate ``ahead`` updates along the expected per-update ``step`` (SpecTrain).

    >>> predict_weights(np.array([1.0]), np.array([-0.1]), 3)
    array([0.7])
    """
    if ahead == 0:
        return weights
    return weights + ahead * step


# --------------------------------------------------------------------------- trainer


@dataclass(frozen=True)
class TrainConfig:
    """Everything a delayed-gradient training run depends on (with ``seed``, it fixes the numbers).

    ``delays`` are per weight layer, in updates (a Schedule's S(l)); ``None`` = all zero.
    ``staleness`` replays a measured pattern instead (:class:`StalenessPattern`: per minibatch
    and layer, the versions a schedule's forward and backward really used, and the update rounds
    of replicated stages); ``delays`` is then its nominal staleness.
    """

    compensation: str = "none"
    delays: tuple[int, ...] | None = None
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    batch_size: int = 32
    epochs: int = 20
    seed: int = 0
    ema_beta: float | None = None
    warmup_steps: int = 0
    dtype: str = "float64"
    staleness: StalenessPattern | None = None
    eval_every: int = 0  # also measure test accuracy every this many minibatches (0: per epoch only)
    round_lr: str = "same"  # an update round of R minibatches: "same" lr on the mean gradient, "linear": R x lr

    def __post_init__(self) -> None:
        _check_mode(self.compensation)
        if self.staleness is not None:
            if self.delays is not None and tuple(self.delays) != self.staleness.nominal:
                raise TrainingError("give either delays or a staleness pattern (its nominal delays differ)")
            object.__setattr__(self, "delays", self.staleness.nominal)
        if self.delays is not None:
            object.__setattr__(self, "delays", tuple(self.delays))
        if self.batch_size <= 0 or self.epochs < 0 or self.warmup_steps < 0 or self.eval_every < 0:
            raise TrainingError("batch size must be positive, epochs and warm-up steps non-negative, and eval_every >= 0")
        if self.ema_beta is not None and not 0 <= self.ema_beta < 1:
            raise TrainingError(f"EMA beta must be in [0, 1), got {self.ema_beta}")
        if self.round_lr not in ROUND_LR:
            raise TrainingError(f"round_lr must be one of {', '.join(ROUND_LR)}, got {self.round_lr!r}")

    def pattern(self, num_layers: int) -> StalenessPattern:
        """The pattern this run replays: the given one, or the nominal one of ``delays``
        (synchronous for ``compensation="none"``, which ignores both)."""
        if self.staleness is None:
            delays = check_delays(self.delays, num_layers)
        if self.compensation == "none":
            return StalenessPattern.from_delays([0] * num_layers)
        if self.staleness is not None:
            if self.staleness.num_layers != num_layers:
                raise TrainingError(f"the staleness pattern has {self.staleness.num_layers} layers, the network "
                                    f"{num_layers} weight layers")
            return self.staleness
        return StalenessPattern.from_delays(delays)


class _Version:
    """A past version of a layer's weights, with what the mode derives from it at that moment."""

    __slots__ = ("weights", "step", "ema_mean", "ema_count")

    def __init__(self, weights, step=None, ema_mean=None, ema_count=0):
        self.weights, self.step, self.ema_mean, self.ema_count = weights, step, ema_mean, ema_count


class DelayedTrainer:
    """Applies stale gradients to a :class:`Net` the way one compensation mode prescribes.

    ``step(x, y)`` processes the next minibatch of the stream (see the module docstring) and
    returns its loss at the mixed point. The versions it uses come from the config's
    :class:`StalenessPattern` (nominal delays, or a schedule's measured pattern): minibatch t's
    forward of layer l uses version ``max(0, r - forward lag)`` and its backward version
    ``max(0, r - backward lag)``, r the update round t's gradient joins; a round of R
    minibatches applies their mean gradient as one update (at R times the learning rate with
    ``round_lr="linear"``). ``params`` are the current weights
    (updated in place); ``last_grads`` the gradients of the last minibatch.

    >>> from models.network.zoo import mlp
    >>> net = Net(mlp((64, 128, 128, 64, 10)))
    >>> tr = DelayedTrainer(net, net.init_params(np.random.default_rng(0)),
    ...                     TrainConfig(compensation="ema", delays=(3, 2, 1, 0)))
    >>> x, y = np.zeros((4, 64)), np.array([0, 1, 2, 3])
    >>> round(tr.step(x, y), 3), tr.t
    (2.303, 1)
    """

    def __init__(self, net: Net, params: list[np.ndarray], config: TrainConfig):
        self.net, self.params, self.config = net, params, config
        self.mode = config.compensation
        self.pattern = config.pattern(net.num_layers)
        self.delays = list(self.pattern.nominal)
        L = net.num_layers
        self.optimizers = [config.optimizer.build(p) for p in params]
        self.updates = [0] * L  # updates applied to each layer: its current version
        # past versions for replaying stale forwards (and, when the pattern says so, backwards)
        self.keep = [self.pattern.max_forward_lag(l) for l in range(L)]
        self.history: list[dict[int, _Version]] = [{} for _ in range(L)]
        # one moving average per delayed layer (an undelayed layer has nothing to rebuild)
        self.ema: list[UpdateEMA | None] = [
            (UpdateEMA(config.ema_beta if config.ema_beta is not None else ema_beta(d)) if d > 0 else None)
            for d in self.delays
        ] if self.mode == "ema" else [None] * L
        self.pending: list[np.ndarray | None] = [None] * L  # gradient sum of the open round
        self.t = 0
        self.last_grads: list[np.ndarray] | None = None

    # -- which weights ----------------------------------------------------------------

    def _version(self, l: int, v: int) -> _Version | None:
        """Version ``v`` of layer ``l`` (None: it is the current weights)."""
        if v >= self.updates[l]:
            return None
        return self.history[l][v]

    def versions(self, l: int, t: int | None = None) -> tuple[int, int, int]:
        """``(forward version, backward version, round)`` of layer ``l`` for minibatch ``t``
        (default: the next one)."""
        t = self.t if t is None else t
        fwd_lag, bwd_lag = self.pattern.lags(t)
        r = t // self.pattern.round_size[l]
        return max(0, r - fwd_lag[l]), max(0, r - bwd_lag[l]), r

    def forward_weights(self, l: int, v: int | None = None, r: int | None = None) -> np.ndarray:
        """Weights layer ``l`` (0-based) uses in the forward when it holds version ``v`` and the
        gradient will join round ``r`` (default: those of the next minibatch)."""
        if v is None or r is None:
            v, _, r = self.versions(l)
        past = self._version(l, v)
        if self.mode == "predict":
            if past is None:
                return self.params[l]
            return predict_weights(past.weights, past.step, r - v)
        return self.params[l] if past is None else past.weights

    def backward_weights(self, l: int, forward: np.ndarray | None, v: int | None = None,
                         u: int | None = None) -> np.ndarray:
        """Weights the backward propagates through at layer ``l`` (forward version ``v``, the
        layer holding version ``u`` when the backward runs; default: the next minibatch's)."""
        if v is None or u is None:
            v, u, _ = self.versions(l)
        if self.mode in ("none", "stash"):
            return forward
        held = self._version(l, u)
        current = self.params[l] if held is None else held.weights
        if self.mode == "ema":
            ema = self.ema[l]
            if ema is None:
                return current
            if held is None:
                return ema.reconstruct(current, u - v)
            d = min(u - v, held.ema_count)  # the average as it was at version u
            return current if d == 0 else current - d * held.ema_mean
        return current  # nostash, predict: whatever the layer holds then

    def lr_scale(self, l: int) -> float:
        """PipeMare's warm-up factor ``1 / d^(1 - min(k/K, 1))`` (1 without warm-up or delay)."""
        d, warm = self.delays[l], self.config.warmup_steps
        if warm == 0 or d <= 1:
            return 1.0
        return float(d) ** -(1.0 - min(self.t / warm, 1.0))

    # -- one minibatch ------------------------------------------------------------------

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        t, pattern = self.t, self.pattern
        at = [self.versions(l, t) for l in range(self.net.num_layers)]
        forward = [self.forward_weights(l, v, r) for l, (v, _, r) in enumerate(at)]
        backward = [self.backward_weights(l, w, v, u) for l, (w, (v, u, _)) in enumerate(zip(forward, at))]
        loss, grads = self.net.loss_and_grads(x, y, forward, backward)
        for l, g in enumerate(grads):
            size = pattern.round_size[l]
            if size == 1:
                self._update(l, g)
                continue
            self.pending[l] = g.copy() if self.pending[l] is None else self.pending[l] + g
            if (t + 1) % size == 0:  # the round is complete: one update with the mean gradient
                total, self.pending[l] = self.pending[l], None
                self._update(l, total / size, size if self.config.round_lr == "linear" else 1)
        self.last_grads = grads
        self.t += 1
        return loss

    def _update(self, l: int, g: np.ndarray, lr_factor: float = 1) -> None:
        p, opt, ema = self.params[l], self.optimizers[l], self.ema[l]
        v = self.updates[l]
        if self.keep[l]:
            # W_v becomes "the past" for later minibatches
            entry = _Version(p.copy())
            if self.mode == "predict":
                entry.step = opt.predicted_step()
            if ema is not None and ema.m is not None:
                entry.ema_mean, entry.ema_count = ema.estimate(), ema.count
            self.history[l][v] = entry
            # later minibatches use versions >= v + 1 - keep: the one below that is no longer needed
            self.history[l].pop(v - self.keep[l], None)
        before = p.copy() if ema is not None else None
        opt.step(g, self.lr_scale(l) * lr_factor if lr_factor != 1 else self.lr_scale(l))
        if ema is not None:
            ema.update(p - before)
        self.updates[l] = v + 1


# --------------------------------------------------------------------------- whole runs


@dataclass
class TrainResult:
    """Outcome of one training run; ``to_dict`` is what ``layerpipe train --json`` prints.

    ``final_loss`` is the cross-entropy of the final weights on the whole training set
    (evaluation mode); ``curve`` has per epoch the mean minibatch loss the pipeline saw (at
    its mixed points) and the test accuracy of the weights at the epoch's end.
    ``weight_memory`` counts stored weight values: sum over layers of copies x parameters.
    ``eval_curve`` has the test accuracy after every ``eval_every`` minibatches (when set);
    ``staleness`` says where the versions came from: ``nominal`` delays or a ``replay``.
    """

    network: str
    dataset: str
    compensation: str
    optimizer: str
    learning_rate: float
    seed: int
    epochs: int
    layers: list[str]
    params_per_layer: list[int]
    delays: list[int]
    weight_copies: list[int]
    weight_memory: int
    test_accuracy: float
    final_loss: float
    diverged: bool
    steps: int
    curve: list[dict[str, float]] = field(default_factory=list)
    eval_curve: list[dict[str, float]] = field(default_factory=list)
    staleness: str = "nominal"
    round_size: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _one_blas_thread():
    """Run BLAS on one thread: these matrices are tiny, and a multi-threaded BLAS on a busy
    machine spins waiting for its threads (measured: 0.1 s -> 4 s for 5 epochs of an MLP on
    2 loaded cores). threadpoolctl comes with scikit-learn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def train(spec: NetworkSpec, data: Dataset, config: TrainConfig,
          on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``spec`` on ``data`` with delayed gradients; deterministic for a given config.

    The seed spawns two independent streams, one for the initial weights and one for the
    minibatch order, so every mode starts from the same weights and sees the same minibatches.
    A run whose loss becomes infinite or NaN stops and is reported as diverged.
    """
    net = Net(spec, dtype=config.dtype)
    out_shape = spec.shapes[spec.output.name]
    if out_shape != (data.num_classes,):
        raise TrainingError(f"network {spec.name!r} outputs shape {out_shape}, but {data.name} has {data.num_classes} classes")
    init_seq, order_seq = np.random.SeedSequence(config.seed).spawn(2)
    params = net.init_params(np.random.default_rng(init_seq))
    order_rng = np.random.default_rng(order_seq)
    trainer = DelayedTrainer(net, params, config)
    x_train = net.prepare_input(data.x_train)
    y_train = data.y_train
    n = len(y_train)
    curve: list[dict[str, float]] = []
    checks = EvalCurve(config.eval_every, lambda: net.evaluate(data.x_test, data.y_test, params)[1])
    diverged, first_loss = False, None
    with _one_blas_thread(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(config.epochs):
            order = order_rng.permutation(n)
            losses = []
            for start in range(0, n, config.batch_size):
                idx = order[start:start + config.batch_size]
                losses.append(trainer.step(x_train[idx], y_train[idx]))
                first_loss = losses[-1] if first_loss is None else first_loss
                if diverged_loss(losses[-1], first_loss):
                    diverged = True
                    break
                checks.after(trainer.t)
            _, accuracy = net.evaluate(data.x_test, data.y_test, params)
            point = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "test_accuracy": accuracy}
            curve.append(point)
            if on_epoch is not None:
                on_epoch(point)
            if diverged:
                break
        final_loss, _ = net.evaluate(x_train, y_train, params)
        _, test_accuracy = net.evaluate(data.x_test, data.y_test, params)
    return make_result(spec.name, data.name, config, net, trainer, test_accuracy, final_loss, diverged, curve,
                       checks.points)


class EvalCurve:
    """Test accuracy every ``every`` minibatches (nothing when ``every`` is 0)."""

    def __init__(self, every: int, accuracy: Callable[[], float]):
        self.every, self.accuracy = every, accuracy
        self.points: list[dict[str, float]] = []

    def after(self, steps: int) -> None:
        if self.every and steps % self.every == 0:
            self.points.append({"step": steps, "test_accuracy": float(self.accuracy())})


def make_result(network: str, dataset: str, config: "TrainConfig", net, trainer: "DelayedTrainer",
                test_accuracy: float, final_loss: float, diverged: bool, curve: list,
                eval_curve: list | None = None) -> "TrainResult":
    """The :class:`TrainResult` of a finished run (shared by :func:`train` and ``models.training.snn.train_snn``)."""
    copies = weight_copies(config.compensation, trainer.delays)
    counts = net.param_counts()
    return TrainResult(
        network=network, dataset=dataset, compensation=config.compensation,
        optimizer=config.optimizer.name, learning_rate=config.optimizer.learning_rate, seed=config.seed,
        epochs=config.epochs, layers=net.layer_names(), params_per_layer=counts, delays=list(trainer.delays),
        weight_copies=copies, weight_memory=int(sum(c * n for c, n in zip(copies, counts))),
        test_accuracy=float(test_accuracy), final_loss=float(final_loss), diverged=diverged, steps=trainer.t,
        curve=curve, eval_curve=list(eval_curve or []), staleness=trainer.pattern.source,
        round_size=list(trainer.pattern.round_size),
    )


__all__ = ["DIVERGENCE_FACTOR", "diverged_loss", 
    "COMPENSATIONS", "ROUND_LR", "check_delays", "stage_delays", "weight_copies", "ema_beta", "UpdateEMA", "predict_weights",
    "TrainConfig", "DelayedTrainer", "TrainResult", "EvalCurve", "train", "make_result", "StalenessPattern",
]
