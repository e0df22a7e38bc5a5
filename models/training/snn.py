"""NumPy spiking networks: snntorch's Leaky neuron, surrogate gradients, BPTT and delayed-gradient training.

The neuron (docs/design.md section 7, snntorch's ``Leaky`` with its defaults ``reset_delay=True``,
``graded_spikes_factor=1``): with ``H(x) = 1 for x > 0`` else 0 and ``U_{-1} = 0``,

    reset_t = H(U_{t-1} - theta)                        (detached: no gradient through the reset)
    U_t = beta * U_{t-1} + I_t - reset_t * theta         reset "subtract"
    U_t = beta * (1 - reset_t) * U_{t-1} + I_t           reset "zero"
    S_t = H(U_t - theta)

The backward replaces dS/dU by a surrogate at ``u = U - theta``: the fast sigmoid
``1 / (k|u| + 1)^2`` (k = 25) or the arctan ``(a/2) / (1 + (pi/2 * a * u)^2)`` (a = 2), as
snntorch's ``surrogate.fast_sigmoid`` and ``surrogate.atan``. Back-propagation through time
runs in reverse t: ``dL/dU_t = dL/dS_t * surrogate(U_t - theta) + dL/dU_t(direct) + c_{t+1}``
with the carry ``c_{t+1} = dL/dU_{t+1} * dU_{t+1}/dU_t``, which is ``beta`` for the subtract
reset and ``beta * (1 - reset_{t+1})`` for the zero reset; the current's gradient is
``dL/dI_t = dL/dU_t``.

the worked example of docs/design.md section 7 (beta 0.5, theta 1, subtract reset):

>>> spk, mem = leaky(np.array([1.2, 0.0, 0.9, 0.9, 0.0]), beta=0.5)
>>> spk.tolist(), [round(float(u), 6) for u in mem]
([1.0, 0.0, 0.0, 1.0, 0.0], [1.2, -0.4, 0.7, 1.25, -0.375])

A :class:`SpikingNet` trains a network of spiking layers (:mod:`models.network.spiking`; pooling
and flatten layers may sit between them) on spike trains of shape ``(T, B, *input_shape)``.
Internally time is folded into the batch (``T*B`` rows), so each synapse is the one matrix
product per task that docs/design.md section 3 describes, and only the membrane recurrence loops
over t. The readout is the time-mean membrane potential of the output layer
(``"membrane"``) or its spike counts (``"spikes"``), fed to softmax cross-entropy.

It has the interface the delayed-gradient trainer of :mod:`models.training` needs
(``num_layers``, ``loss_and_grads(x, y, forward_params, backward_params)``), so
:func:`train_snn` reuses :class:`models.training.DelayedTrainer` and every compensation
mode (none, stash, nostash, ema, predict) unchanged. Parameters are grouped per weight
layer as one flat vector (weight then bias), like :class:`models.training.nn.Net`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.errors import NetworkError, TrainingError
from models.network.spec import INPUT, NetworkSpec, weight_layers
from models.network.spiking import RESETS, SURROGATES, canonical_surrogate, is_spiking
from models.training.data import Dataset, rate_code
from models.training.nn import ParamSlot, make_op, param_views, softmax_cross_entropy
from models.training.optim import OptimizerConfig
from models.training.trainer import (
    DelayedTrainer,
    EvalCurve,
    TrainConfig,
    TrainResult,
    check_delays,
    diverged_loss,
    make_result,
)

Array = np.ndarray

READOUTS = ("membrane", "spikes")
SPIKE_FUNCTIONS = ("heaviside", "smooth")


# --------------------------------------------------------------------------- neuron


def heaviside(x: Array) -> Array:
    """``H(x) = 1`` for ``x > 0``, else 0 (snntorch's spike: ``H(0) = 0``).

    >>> heaviside(np.array([-1.0, 0.0, 0.5]))
    array([0., 0., 1.])
    """
    x = np.asarray(x)
    return (x > 0).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)


@dataclass(frozen=True)
class Surrogate:
    """A surrogate derivative dS/dU of the spike, and the smooth function it is the derivative of.

    ``grad(u)`` is what BPTT uses in place of H'(u) at ``u = U - theta``. ``smooth(u)`` is a
    function whose true derivative is exactly ``grad(u)`` (snntorch's documented smooth
    approximations ``u / (1 + k|u|)`` and ``arctan(pi/2 * a * u) / pi``); a network whose
    forward spikes with ``smooth`` instead of H is differentiable, and its exact gradient
    equals the surrogate BPTT gradient, which lets tests check BPTT by finite differences.

    >>> fs = Surrogate("fast-sigmoid")
    >>> float(fs.grad(np.array(0.0))), float(fs.grad(np.array(0.04)))   # 1 / (25*0.04 + 1)^2
    (1.0, 0.25)
    >>> round(float(Surrogate("atan").grad(np.array(0.0))), 6)    # a / 2
    1.0
    """

    name: str = "arctan"
    slope: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", canonical_surrogate(self.name))
        slope = SURROGATES[self.name] if self.slope is None else float(self.slope)
        if not slope > 0:
            raise NetworkError(f"surrogate slope must be > 0, got {self.slope!r}")
        object.__setattr__(self, "slope", slope)

    def grad(self, u: Array) -> Array:
        if self.name == "fast-sigmoid":
            return 1.0 / (self.slope * np.abs(u) + 1.0) ** 2
        a = self.slope
        return (a / 2.0) / (1.0 + (np.pi / 2.0 * a * u) ** 2)

    def smooth(self, u: Array) -> Array:
        if self.name == "fast-sigmoid":
            return u / (1.0 + self.slope * np.abs(u))
        return np.arctan(np.pi / 2.0 * self.slope * u) / np.pi


def _check_neuron(beta: float, threshold: float, reset: str) -> None:
    if not 0.0 <= beta <= 1.0:
        raise NetworkError(f"beta must lie in [0, 1], got {beta!r}")
    if not threshold > 0:
        raise NetworkError(f"threshold must be > 0, got {threshold!r}")
    if reset not in RESETS:
        raise NetworkError(f"reset must be one of {', '.join(RESETS)}, got {reset!r}")


def lif_forward(currents: Array, beta: float, threshold: float = 1.0, reset: str = "subtract",
                spike_fn: Callable[[Array], Array] | None = None) -> tuple[Array, Array, Array]:
    """LIF neurons over time: ``currents`` (T, ...) -> (spikes, membrane, resets), each (T, ...).

    ``resets[t] = H(U_{t-1} - theta)`` is what BPTT needs for the zero reset. ``spike_fn``
    maps ``U - theta`` to the output spikes (default :func:`heaviside`; the reset always
    uses H, as snntorch's detached reset does).
    """
    _check_neuron(beta, threshold, reset)
    cur = np.asarray(currents)
    if not np.issubdtype(cur.dtype, np.floating):
        cur = cur.astype(np.float64)
    if cur.ndim == 0:
        raise NetworkError("currents need a leading time axis, got a scalar")
    mem = np.empty_like(cur)
    rst = np.empty_like(cur)
    u = np.zeros_like(cur[0])
    for t in range(cur.shape[0]):
        r = heaviside(u - threshold)
        if reset == "subtract":
            u = beta * u + cur[t] - r * threshold
        else:
            u = beta * ((1.0 - r) * u) + cur[t]
        mem[t] = u
        rst[t] = r
    shifted = mem - threshold
    spk = heaviside(shifted) if spike_fn is None else spike_fn(shifted)
    return spk, mem, rst


def lif_backward(dspikes: Array | None, mem: Array, resets: Array, beta: float, threshold: float = 1.0,
                 reset: str = "subtract", surrogate: Surrogate | None = None,
                 dmem: Array | None = None) -> Array:
    """BPTT through :func:`lif_forward`: d(loss)/d(currents) from d(loss)/d(spikes) (and/or d/d(membrane)).

    ``dspikes`` and ``dmem`` (either may be None) have the shape of ``mem``; ``dmem`` is a
    direct dependence of the loss on the membrane (a membrane readout).

    >>> spk, mem, rst = lif_forward(np.array([1.2, 0.0]), beta=0.5)
    >>> lif_backward(None, mem, rst, beta=0.5, dmem=np.array([0.0, 1.0])).tolist()   # dU_1/dI_0 = beta
    [0.5, 1.0]
    """
    surrogate = Surrogate() if surrogate is None else surrogate
    local = np.zeros_like(mem)
    if dspikes is not None:
        local += dspikes * surrogate.grad(mem - threshold)
    if dmem is not None:
        local += dmem
    dcur = np.empty_like(mem)
    carry = np.zeros_like(mem[0])
    for t in range(mem.shape[0] - 1, -1, -1):
        g = local[t] + carry
        dcur[t] = g
        carry = beta * g if reset == "subtract" else beta * (1.0 - resets[t]) * g
    return dcur


def leaky(currents, beta: float, threshold: float = 1.0, reset: str = "subtract") -> tuple[Array, Array]:
    """snntorch's ``Leaky`` run over time: ``currents`` (T, ...) -> (spikes, membrane), both (T, ...).

    >>> spk, mem = leaky(np.array([1.2, 0.0, 0.9, 0.9, 0.0]), beta=0.5, reset="zero")
    >>> spk.tolist(), [round(float(u), 6) for u in mem]
    ([1.0, 0.0, 0.0, 1.0, 0.0], [1.2, 0.0, 0.9, 1.35, 0.0])
    """
    spk, mem, _ = lif_forward(currents, beta, threshold, reset)
    return spk, mem


# --------------------------------------------------------------------------- networks


@dataclass
class SpikeTape:
    """What a forward leaves for the backward: per node its cache, and the output's spikes and membrane."""

    caches: dict[str, Any]
    steps: int
    batch: int
    out_spikes: Array
    out_mem: Array
    rates: dict[str, float] = field(default_factory=dict)


class SpikingNet:
    """A trainable spiking network built from a :class:`NetworkSpec` of spiking layers.

    Every weight layer must be spiking (:class:`models.network.spiking.LIFLinear` or
    :class:`~models.network.spiking.LIFConv2d`) with the same ``time_steps``; the other nodes must
    be parameter-free (pooling, flatten, ...) and the output must be a spiking layer.
    ``spike="smooth"`` makes the forward spike with the surrogate's smooth function (for
    gradient checks; see :class:`Surrogate`). ``init_gain`` scales the initial weights,
    ``N(0, gain^2 / fan_in)``; biases start at zero.

    >>> from models.network.snn_zoo import snn_mlp
    >>> net = SpikingNet(snn_mlp(sizes=(64, 32, 10), time_steps=4))
    >>> params = net.init_params(np.random.default_rng(0))
    >>> x = rate_code(np.full((3, 64), 0.5), 4, np.random.default_rng(1))
    >>> loss, grads = net.loss_and_grads(x, np.array([0, 1, 2]), params)
    >>> [g.shape for g in grads], net.time_steps
    ([(2080,), (330,)], 4)
    """

    def __init__(self, spec: NetworkSpec, dtype: Any = np.float64, readout: str = "membrane",
                 spike: str = "heaviside", init_gain: float = 1.0):
        if readout not in READOUTS:
            raise TrainingError(f"unknown readout {readout!r} (known: {', '.join(READOUTS)})")
        if spike not in SPIKE_FUNCTIONS:
            raise TrainingError(f"unknown spike function {spike!r} (known: {', '.join(SPIKE_FUNCTIONS)})")
        if not init_gain > 0:
            raise TrainingError(f"init_gain must be > 0, got {init_gain!r}")
        self.spec, self.dtype, self.readout, self.spike, self.init_gain = spec, np.dtype(dtype), readout, spike, init_gain
        self.layers = weight_layers(spec)
        steps = set()
        for wl in self.layers:
            if not is_spiking(wl.node.layer):
                raise NetworkError(f"network {spec.name!r}: weight layer {wl.name!r} ({wl.node.layer.kind}) is not "
                                   "spiking; a SpikingNet needs lif_linear / lif_conv2d weight layers")
            steps.add(wl.node.layer.time_steps)
        if len(steps) != 1:
            raise NetworkError(f"network {spec.name!r}: spiking layers disagree on time_steps ({sorted(steps)})")
        self.time_steps = steps.pop()
        if not is_spiking(spec.output.layer):
            raise NetworkError(f"network {spec.name!r}: the output layer {spec.output.name!r} must be spiking "
                               "(its membrane or spikes are the readout)")
        self.ops = {}
        self.surrogates: dict[str, Surrogate] = {}
        for node in spec.order:
            in_shapes, out_shape = spec.input_shapes(node), spec.shapes[node.name]
            if is_spiking(node.layer):
                self.ops[node.name] = make_op(node.layer.synapse(), in_shapes, out_shape)
                self.surrogates[node.name] = Surrogate(node.layer.surrogate, node.layer.surrogate_slope)
            else:
                op = make_op(node.layer, in_shapes, out_shape)
                if op.param_shapes():
                    raise NetworkError(f"network {spec.name!r}: layer {node.name!r} ({node.layer.kind}) has parameters; "
                                       "a SpikingNet supports only parameter-free layers between spiking layers")
                self.ops[node.name] = op
        self.slots: list[list[ParamSlot]] = []
        for wl in self.layers:
            group, offset = [], 0
            for name, shape in self.ops[wl.node.name].param_shapes().items():
                group.append(ParamSlot(wl.node.name, name, tuple(shape), offset))
                offset += group[-1].size
            self.slots.append(group)

    # -- description ------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer_names(self) -> list[str]:
        return [wl.name for wl in self.layers]

    def param_counts(self) -> list[int]:
        return [sum(s.size for s in group) for group in self.slots]

    # -- parameters -------------------------------------------------------------------

    def init_params(self, rng: np.random.Generator) -> list[Array]:
        """Weights ``N(0, init_gain^2 / fan_in)`` and zero biases, one flat vector per weight layer."""
        flats = []
        for group in self.slots:
            flat = np.zeros(sum(s.size for s in group), dtype=self.dtype)
            for s in group:
                if s.name == "weight":
                    fan_in = int(np.prod(s.shape[1:]))
                    flat[s.offset:s.offset + s.size] = (rng.standard_normal(s.size) * self.init_gain / np.sqrt(fan_in))
            flats.append(flat)
        return flats

    def views(self, params: Sequence[Array]) -> dict[str, dict[str, Array]]:
        return param_views(self.spec.name, self.ops, self.slots, params)

    # -- compute ----------------------------------------------------------------------

    def prepare_input(self, x: Array) -> Array:
        """Spike trains ``(T, B, *input_shape)`` (a flat ``(T, B, n)`` is reshaped)."""
        x = np.asarray(x, dtype=self.dtype)
        want = self.spec.input_shape
        if x.ndim < 2 or x.shape[0] != self.time_steps:
            raise TrainingError(f"network {self.spec.name!r} expects spike trains of shape (T={self.time_steps}, B, "
                                f"{', '.join(map(str, want))}), got {x.shape}")
        if x.shape[2:] != want:
            if int(np.prod(x.shape[2:])) != int(np.prod(want)):
                raise TrainingError(f"network {self.spec.name!r} expects inputs of shape {want}, got {x.shape[2:]}")
            x = x.reshape(x.shape[0], x.shape[1], *want)
        return x

    def forward(self, x: Array, params: Sequence[Array], train: bool = True) -> tuple[Array, SpikeTape]:
        """Logits ``(B, classes)`` of spike trains ``x`` and the tape for :meth:`backward`."""
        x = self.prepare_input(x)
        T, B = x.shape[:2]
        p = self.views(params)
        values: dict[str, Array] = {INPUT: x.reshape(T * B, *x.shape[2:])}
        caches: dict[str, Any] = {}
        rates: dict[str, float] = {}
        out_spk = out_mem = None
        for node in self.spec.order:
            xs = [values[i] for i in node.inputs]
            layer = node.layer
            if is_spiking(layer):
                z, syn_cache = self.ops[node.name].forward(xs, p[node.name], train)
                z = z.reshape(T, B, *z.shape[1:])
                spike_fn = self.surrogates[node.name].smooth if self.spike == "smooth" else None
                spk, mem, rst = lif_forward(z, layer.beta, layer.threshold, layer.reset, spike_fn)
                caches[node.name] = (syn_cache, mem, rst)
                values[node.name] = spk.reshape(T * B, *spk.shape[2:])
                rates[node.name] = float(spk.mean())
                if node.name == self.spec.output.name:
                    out_spk, out_mem = spk, mem
            else:
                values[node.name], caches[node.name] = self.ops[node.name].forward(xs, p[node.name], train)
        logits = out_mem.mean(axis=0) if self.readout == "membrane" else out_spk.sum(axis=0)
        return logits, SpikeTape(caches, T, B, out_spk, out_mem, rates)

    def backward(self, dlogits: Array, tape: SpikeTape, params: Sequence[Array],
                 input_grad: bool = False) -> list[Array] | tuple[list[Array], Array]:
        """BPTT: gradients of every weight layer's flat vector from d(loss)/d(logits).

        ``params`` are the weights the backward propagates through (they may differ from the
        forward's, as the delayed-gradient trainer needs). With ``input_grad`` also returns
        d(loss)/d(input spikes), shape (T, B, ...).
        """
        T, B = tape.steps, tape.batch
        p = self.views(params)
        grads = [np.zeros(n, dtype=self.dtype) for n in self.param_counts()]
        gviews = self.views(grads)
        out = self.spec.output.name
        pending: dict[str, Array] = {}
        direct_mem = None
        if self.readout == "membrane":
            direct_mem = np.broadcast_to(dlogits / T, tape.out_mem.shape)
        else:
            pending[out] = np.broadcast_to(dlogits, tape.out_spikes.shape).reshape(T * B, *tape.out_spikes.shape[2:])
        for node in reversed(self.spec.order):
            layer = node.layer
            dy = pending.pop(node.name, None)
            if is_spiking(layer):
                syn_cache, mem, rst = tape.caches[node.name]
                dspk = None if dy is None else dy.reshape(mem.shape)
                dmem = direct_mem if node.name == out else None
                dcur = lif_backward(dspk, mem, rst, layer.beta, layer.threshold, layer.reset,
                                    self.surrogates[node.name], dmem)
                dxs, dp = self.ops[node.name].backward(dcur.reshape(T * B, *mem.shape[2:]), syn_cache, p[node.name])
            else:
                if dy is None:  # nothing downstream depends on this node
                    continue
                dxs, dp = self.ops[node.name].backward(dy, tape.caches[node.name], p[node.name])
            for name, g in dp.items():
                gviews[node.name][name][...] = g
            for src, dx in zip(node.inputs, dxs):
                if src == INPUT and not input_grad:
                    continue
                pending[src] = pending[src] + dx if src in pending else dx
        if input_grad:
            dx = pending.get(INPUT)
            shape = (T, B, *self.spec.input_shape)
            return grads, (np.zeros(shape, dtype=self.dtype) if dx is None else dx.reshape(shape))
        return grads

    def loss_and_grads(self, x: Array, y: Array, params: Sequence[Array],
                       backward_params: Sequence[Array] | None = None) -> tuple[float, list[Array]]:
        """Mean softmax cross-entropy of the readout and the BPTT gradient of every weight layer.

        The forward runs with ``params``; the backward propagates through ``backward_params``
        (default: the same weights).
        """
        logits, tape = self.forward(x, params, train=True)
        loss, dlogits = softmax_cross_entropy(logits, np.asarray(y))
        return loss, self.backward(dlogits, tape, params if backward_params is None else backward_params)

    def logits(self, x: Array, params: Sequence[Array], batch: int = 256) -> Array:
        """Evaluation-mode readout of spike trains ``(T, N, ...)``, in chunks of ``batch`` samples."""
        x = self.prepare_input(x)
        return np.concatenate([self.forward(x[:, i:i + batch], params, train=False)[0]
                               for i in range(0, x.shape[1], batch)])

    def evaluate(self, x: Array, y: Array, params: Sequence[Array]) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on spike trains ``x`` (T, N, ...)."""
        logits = self.logits(x, params)
        loss, _ = softmax_cross_entropy(logits, np.asarray(y))
        return loss, float((logits.argmax(axis=1) == np.asarray(y)).mean())

    def spike_rates(self, x: Array, params: Sequence[Array]) -> dict[str, float]:
        """Mean firing rate (spikes per neuron and step) of every spiking layer on ``x``."""
        return self.forward(x, params, train=False)[1].rates


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class SNNConfig:
    """SNN-specific training options (the rest is :class:`models.training.TrainConfig`).

    ``test_seed`` fixes the rate coding of the test set, so every run, mode and seed is
    evaluated on the same spike trains; the training spikes are drawn per minibatch from a
    stream of the run's seed.
    """

    readout: str = "membrane"
    init_gain: float = 1.0
    test_seed: int = 12345

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            raise TrainingError(f"unknown readout {self.readout!r} (known: {', '.join(READOUTS)})")
        if not self.init_gain > 0:
            raise TrainingError(f"init_gain must be > 0, got {self.init_gain!r}")


def default_snn_train_config(**overrides) -> TrainConfig:
    """Adam (lr 2e-3), batch 32, 15 epochs: the settings the SNN results use unless stated.

    >>> default_snn_train_config(epochs=3).optimizer.name
    'adam'
    """
    base = dict(optimizer=OptimizerConfig("adam", lr=2e-3), batch_size=32, epochs=15)
    base.update(overrides)
    return TrainConfig(**base)


def _one_blas_thread():
    """BLAS on one thread for the duration of a run: the matrices are small, and a multi-threaded
    BLAS on a busy 2-core machine spins waiting for its threads (measured here: a 4096x32 by
    4096x144 product took 76 ms with the default threads under load, 5 ms on one)."""
    try:
        from threadpoolctl import threadpool_limits  # ships with scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _images(data_x: Array, shape: tuple[int, ...]) -> Array:
    x = np.asarray(data_x, dtype=np.float64)
    if x.shape[1:] != shape:
        if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
            raise TrainingError(f"the network expects inputs of shape {shape}, the data has {x.shape[1:]}")
        x = x.reshape(len(x), *shape)
    return x


def train_snn(spec: NetworkSpec, data: Dataset, config: TrainConfig | None = None, snn: SNNConfig | None = None,
              on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train a spiking network on rate-coded ``data`` with delayed gradients (any compensation mode).

    Mirrors :func:`models.training.train`: the seed spawns independent streams for the initial
    weights, the minibatch order and the training spikes, so every mode starts from the same
    weights and sees the same minibatches and spike trains; each minibatch is rate-coded
    (:func:`models.training.data.rate_code`, T = the layers' ``time_steps``) as it enters the pipeline.
    A run whose loss becomes infinite or NaN stops and is reported as diverged. The result's
    ``final_loss`` is the cross-entropy of the final weights on the training images rate-coded
    once with seed ``snn.test_seed + 1``; ``test_accuracy`` is on the fixed test spike trains.
    """
    config = default_snn_train_config() if config is None else config
    snn = SNNConfig() if snn is None else snn
    net = SpikingNet(spec, dtype=config.dtype, readout=snn.readout, init_gain=snn.init_gain)
    out_shape = spec.shapes[spec.output.name]
    if out_shape != (data.num_classes,):
        raise TrainingError(f"network {spec.name!r} outputs shape {out_shape}, but {data.name} has "
                            f"{data.num_classes} classes")
    check_delays(config.delays, net.num_layers)
    T = net.time_steps
    init_seq, order_seq, spike_seq = np.random.SeedSequence(config.seed).spawn(3)
    params = net.init_params(np.random.default_rng(init_seq))
    order_rng, spike_rng = np.random.default_rng(order_seq), np.random.default_rng(spike_seq)
    trainer = DelayedTrainer(net, params, config)
    x_train = _images(data.x_train, spec.input_shape)
    y_train = np.asarray(data.y_train)
    x_test = rate_code(_images(data.x_test, spec.input_shape), T, np.random.default_rng(snn.test_seed))
    n = len(y_train)
    curve: list[dict[str, float]] = []
    checks = EvalCurve(config.eval_every, lambda: net.evaluate(x_test, data.y_test, params)[1])
    diverged, first_loss = False, None
    with _one_blas_thread(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(config.epochs):
            order = order_rng.permutation(n)
            losses = []
            for start in range(0, n, config.batch_size):
                idx = order[start:start + config.batch_size]
                losses.append(trainer.step(rate_code(x_train[idx], T, spike_rng), y_train[idx]))
                first_loss = losses[-1] if first_loss is None else first_loss
                if diverged_loss(losses[-1], first_loss):
                    diverged = True
                    break
                checks.after(trainer.t)
            _, accuracy = net.evaluate(x_test, data.y_test, params)
            point = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "test_accuracy": accuracy}
            curve.append(point)
            if on_epoch is not None:
                on_epoch(point)
            if diverged:
                break
        x_train_spikes = rate_code(x_train, T, np.random.default_rng(snn.test_seed + 1))
        final_loss, _ = net.evaluate(x_train_spikes, y_train, params)
        _, test_accuracy = net.evaluate(x_test, data.y_test, params)
    return make_result(spec.name, f"{data.name} (rate-coded, T={T})", config, net, trainer, test_accuracy,
                       final_loss, diverged, curve, checks.points)


__all__ = [
    "READOUTS", "SPIKE_FUNCTIONS", "heaviside", "Surrogate", "lif_forward", "lif_backward", "leaky", "SpikeTape",
    "SpikingNet", "SNNConfig", "default_snn_train_config", "train_snn",
]
