"""Distributed designs of one training step for the DHO2 study: task graphs, Schedules, memory.

Seven designs of training a network with a global minibatch of ``batch`` samples on P devices:

============  ==================================================================================
design        one step
============  ==================================================================================
dp-sgd        data parallel, SGD with heavy-ball momentum: forward + backward of B/P samples per
              device, ring all-reduce of the gradient, update (replicated)
dp-adam       the same with Adam (twice the optimizer state)
dp-kfac       data-parallel K-FAC (KAISA-like): every ``kfac_refresh`` steps factor statistics,
              all-reduce of the factors, inversions spread over the devices (greedy by d^3),
              all-gather of the inverses; every step two GEMMs per layer precondition the gradient
fosi          data-parallel FOSI with the curvature on device 0: every ``refresh`` steps device 0
              runs the m Lanczos iterations (HVPs on the whole curvature batch, Gram-Schmidt on the
              whole basis, m*n values there) while the others wait, then broadcasts V
fosi-dp       data-parallel FOSI as hsivan/fosi runs it on several devices (``b_parallel``): every
              ``refresh`` steps all P devices run the m Lanczos iterations together, each its
              HVPs on its share of the curvature batch with the gradient inside them averaged
              over the devices (an all-reduce of n values per iteration), each keeping the whole
              basis and repeating the Gram-Schmidt (m*n values on every device); no broadcast
dho2          DHO2: P_u update devices train data-parallel with FOSI's update *sharded* by parameter
              index (reduce-scatter of the gradient, k-word all-reduces of the projections,
              all-gather of the weights: optimizer state and V shards n/P_u); P_c = P - P_u
              curvature devices run Lanczos with the basis sharded by parameter index (m*n/P_c
              each, data-parallel HVPs, all-reduced Gram-Schmidt coefficients) *while* the update
              devices go on with the previous eigenvectors, which are therefore ``staleness``
              steps old when they arrive. With P = 1 there is nothing to overlap: dho2 = fosi.
dho2-release  DHO2 as its code is released (ShunxianGu/DHO2, ``DHO2_ADMM_v2.py``): data-parallel
              steps with the whole FOSI update (Adam base) and its dual vector on every device;
              every ``refresh`` steps *all* P devices run Lanczos with the basis sharded by
              parameter index (as dho2's curvature devices) while no update runs (blocking), then
              all-gather V (every device keeps all of it) and take the period's extrapolation step
============  ==================================================================================

Task graphs are built directly as networkx DiGraphs in the project's template form
(:mod:`models.graph.tasks`): nodes ``Task(kind, id)`` with their work and ``layers=()`` (no
weight-delay constraints: every step is synchronous), one unit, per-device orders, and run by
:func:`simulator.engine.simulate` on a :class:`simulator.platform.Platform`. The ``id`` is a
running number per kind; the node attribute ``label`` says what the task is. Kinds:

=====  ===============================================================================================
kind   meaning here
=====  ===============================================================================================
F      forward of the device's share of the minibatch
B      backward of that share (AG1 + AG2 + WG of every layer)
HVP    one Hessian-vector product on the device's share of the curvature batch
COLL   a collective (all-reduce, all-gather, reduce-scatter, broadcast): one task per participant,
       each waiting for every participant's previous task, lasting ``fixed_cycles`` from the link
       model (:mod:`simulator.costs.collectives`); the graph's own edges carry 0 bytes (they only
       synchronise)
CURV   curvature vector work: Lanczos Gram-Schmidt passes and normalisation on a shard; K-FAC
       factor statistics
EIG    eigen-solve: the m x m tridiagonal eigen-decomposition and the Ritz vectors; K-FAC inversions
U      optimizer update (base optimizer, FOSI's projections, K-FAC's preconditioning)
=====  ===============================================================================================

Work of the curvature tasks (MACs; GEMM shapes (M, N, K) for systolic arrays):

* HVP (exact R-operator of :func:`models.training.hvp.hvp_exact`): per dense layer 9 GEMMs of the
  layer's shapes (3 forward-shaped, 3 weight-gradient-shaped, 3 input-gradient-shaped), 4 for
  the first layer, i.e. about 3 gradients;
* Gram-Schmidt pass j on a shard of n_s values: ``Q_s w_s`` (1, j+1, n_s) and ``w_s -= c Q_s``
  (1, n_s, j+1); two passes per iteration (full reorthogonalisation), plus n_s MACs for the norm;
* eigen-solve: m^3 MACs (dense) plus the Ritz vectors ``Y^T Q_s``: (k + l, n_s, m);
* FOSI update: six (1, r, n) products with V (r = k + l) and the base optimizer's element-wise work;
* K-FAC (:class:`KfacLayer`: A of dimension a = d_in + 1, or c_in kh kw + 1 for a convolution, and G
  of g = d_out or the output channels): statistics (d, d, b x positions) per factor, inversion d^3
  MACs (as a (d, d, d) GEMM), preconditioning (g, a, g) and (g, a, a) per layer.

Per-step cycles: the blocking designs (fosi, fosi-dp, dho2-release, dp-kfac) simulate a plain step and a refresh step
(the curvature work blocks every device, so the refresh's extra cycles add up exactly):
``cycles_per_step = plain + (refresh_step - plain) / T``. DHO2 simulates one *refresh period*:
``T_eff = max(T, s)`` update steps on the update devices, the parameter broadcast, the whole
Lanczos chain on the curvature devices and the redistribution of V, which the update devices
join after step ``s`` (the staleness): the smallest s for which they never wait.
``cycles_per_step = period makespan / T_eff``.

Memory per device, in values (``words``; bytes = words x word_bytes):
model n; gradient n (DHO2's update devices hold the full gradient until the reduce-scatter);
optimizer state (momentum n, Adam 2n, FOSI's velocity n more; divided by P_u in DHO2);
Lanczos basis m*n on FOSI's device 0 (on every device in fosi-dp), m*n/P_c on each DHO2 curvature device (m*n/P
on every device in dho2-release, which also keeps the dual vector and the period's starting weights, 2n); eigenvectors
r*n everywhere in FOSI, r*n/P_u (update) and r*n/P_c (curvature) in DHO2; K-FAC factors and
inverses; workspace: the Lanczos residual (n) in FOSI, the gathered Lanczos vector and the HVP
output (2n) on DHO2's curvature devices.

>>> from models.network.zoo import mlp
>>> from simulator.costs import MacArray, LinkModel
>>> from simulator.platform import Platform
>>> plat = Platform.homogeneous(4, MacArray(256), LinkModel(100, 16))
>>> c = design_cost("dp-sgd", mlp(), 4, plat, DesignConfig(batch=128))
>>> c.update_devices, c.staleness, c.memory_words_max == 3 * 17226
(4, 0, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import networkx as nx
import numpy as np

from models.errors import ScheduleError
from models.graph.build import training_graph
from models.graph.tasks import Task, TaskKind, add_task, layer_infos, task_work
from models.graph.work import TaskWork
from models.network.layers import Conv2d, Linear
from models.network.spec import NetworkSpec, weight_layers
from models.training.lanczos import iteration_collectives, lanczos_order, shard_bounds
from schedules.schedule import Action, Schedule
from simulator.costs.collectives import (
    allgather_cycles,
    allreduce_cycles,
    broadcast_cycles,
    collective_cycles,
    redistribute_cycles,
)

DESIGNS = ("dp-sgd", "dp-adam", "dp-kfac", "fosi", "fosi-dp", "dho2", "dho2-release")
#: the designs DHO2 is measured against: distributed first-order, and second-order (K-FAC, FOSI with
#: data-parallel HVPs)
FIRST_ORDER = ("dp-sgd", "dp-adam")
SECOND_ORDER = ("dp-kfac", "fosi-dp")
BASELINES = FIRST_ORDER + SECOND_ORDER
#: the optimizer each design trains with (its steps to a target are that optimizer's)
METHOD_OF = {"dp-sgd": "sgd", "dp-adam": "adam", "dp-kfac": "kfac", "fosi": "fosi", "fosi-dp": "fosi", "dho2": "fosi",
             "dho2-release": "fosi-release"}

KIND_MEANING = {
    TaskKind.F: "forward of the device's share of the minibatch",
    TaskKind.B: "backward of the share",
    TaskKind.HVP: "one Hessian-vector product on the device's share of the curvature batch",
    TaskKind.COLL: "collective (all-reduce / all-gather / reduce-scatter / broadcast), fixed cycles from the link model",
    TaskKind.CURV: "Lanczos Gram-Schmidt / normalisation on a shard; K-FAC factor statistics",
    TaskKind.EIG: "tridiagonal eigen-solve and Ritz vectors; K-FAC factor inversions",
    TaskKind.U: "optimizer update (base optimizer, FOSI projections, K-FAC preconditioning)",
}

#: element-wise operations per parameter of one base-optimizer update
UPDATE_OPS = {"sgd": 2, "heavyball": 2, "adam": 8}
#: optimizer-state values per parameter
STATE_WORDS = {"sgd": 0, "heavyball": 1, "adam": 2}


# --------------------------------------------------------------------------- configuration and results


@dataclass(frozen=True)
class DesignConfig:
    """What every design shares: minibatch, curvature settings, word size.

    batch: global minibatch (split over the devices that compute gradients);
    curvature_batch: FOSI's fixed Lanczos batch; k, l, m: eigenpairs and Lanczos iterations;
    refresh: FOSI / DHO2's T; kfac_refresh: K-FAC's T_inv; fosi_base: FOSI's base optimizer;
    curvature_devices: DHO2's P_c (None: :func:`default_curvature_devices`).

    >>> DesignConfig().lanczos_iterations
    40
    """

    batch: int = 128
    curvature_batch: int = 128
    k: int = 10
    l: int = 0
    m: int | None = None
    refresh: int = 100
    kfac_refresh: int = 10
    fosi_base: str = "heavyball"
    word_bytes: int = 2
    curvature_devices: int | None = None

    def __post_init__(self) -> None:
        if self.batch < 1 or self.curvature_batch < 1:
            raise ScheduleError("batch and curvature batch must be positive")
        if self.k < 0 or self.l < 0 or self.k + self.l == 0:
            raise ScheduleError(f"DHO2 needs k + l >= 1 eigenpairs, got k={self.k}, l={self.l}")
        if self.refresh < 1 or self.kfac_refresh < 1:
            raise ScheduleError("refresh periods must be >= 1 step")
        if self.fosi_base not in UPDATE_OPS:
            raise ScheduleError(f"unknown FOSI base optimizer {self.fosi_base!r}")
        if self.word_bytes < 1:
            raise ScheduleError("word size must be >= 1 byte")
        if self.m is not None and self.m < self.k + self.l:
            raise ScheduleError(f"m = {self.m} < k + l = {self.k + self.l}")

    @property
    def lanczos_iterations(self) -> int:
        return lanczos_order(self.k, self.l) if self.m is None else self.m

    @property
    def rank(self) -> int:
        return self.k + self.l


@dataclass(frozen=True)
class Memory:
    """Values one device stores (multiply by the word size for bytes)."""

    model: int = 0
    gradient: int = 0
    optimizer: int = 0
    lanczos_basis: int = 0
    eigenvectors: int = 0
    curvature: int = 0  # K-FAC factors and inverses
    workspace: int = 0

    @property
    def total(self) -> int:
        return (self.model + self.gradient + self.optimizer + self.lanczos_basis + self.eigenvectors
                + self.curvature + self.workspace)

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


@dataclass
class DesignCost:
    """Cycles per training step and per-device memory of one design on P devices."""

    design: str
    devices: int
    update_devices: int
    curvature_devices: int
    step_cycles: float  # a plain step (no curvature refresh)
    refresh_cycles: float  # refresh step (blocking designs) or Lanczos chain (dho2); 0 for first-order
    cycles_per_step: float  # amortised over the refresh period
    refresh_period: int  # steps between refreshes (T, or max(T, staleness) for dho2)
    staleness: int  # steps between the weights the eigenvectors came from and their first use
    memory: list[Memory]
    schedules: dict[str, Schedule] = field(default_factory=dict, repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def memory_words_max(self) -> int:
        return max(m.total for m in self.memory)

    def memory_bytes_max(self, word_bytes: int) -> int:
        return self.memory_words_max * word_bytes

    def summary(self, word_bytes: int = 2) -> dict[str, Any]:
        worst = max(self.memory, key=lambda m: m.total)
        return {
            "design": self.design, "devices": self.devices, "update_devices": self.update_devices,
            "curvature_devices": self.curvature_devices, "step_cycles": self.step_cycles,
            "refresh_cycles": self.refresh_cycles, "cycles_per_step": self.cycles_per_step,
            "refresh_period": self.refresh_period, "staleness": self.staleness,
            "memory_words_max": self.memory_words_max, "memory_bytes_max": self.memory_words_max * word_bytes,
            "memory_max_device": worst.to_dict(),
        }


# --------------------------------------------------------------------------- work of the network


def _repeat(work: TaskWork, times: int) -> TaskWork:
    return TaskWork(macs=work.macs * times, elementwise=work.elementwise * times, gemms=work.gemms * times,
                    bytes_read=work.bytes_read * times, bytes_written=work.bytes_written * times,
                    fixed_cycles=work.fixed_cycles * times)


def _sum(works: Iterable[TaskWork]) -> TaskWork:
    total = TaskWork()
    for w in works:
        total = total + w
    return total


def _gemm(m: int, n: int, k: int) -> TaskWork:
    if min(m, n, k) <= 0:
        return TaskWork()
    return TaskWork(macs=m * n * k, gemms=((m, n, k),))


@dataclass(frozen=True)
class NetWork:
    """Work of the network for one batch share: forward, backward, HVP."""

    forward: TaskWork
    backward: TaskWork
    hvp: TaskWork
    params: int


@dataclass(frozen=True)
class KfacLayer:
    """A weight layer as K-FAC sees it (KAISA's factors; Grosse & Martens' for convolutions).

    ``a``: dimension of the input-side factor A (d_in, or a convolution's patch c_in kh kw, +1 for
    a bias); ``g``: of the output-side factor G (d_out, or the output channels); ``positions``: the
    outputs per sample that share the weights (1 for a dense layer, oh ow for a convolution), each a
    row of the statistics.
    """

    a: int
    g: int
    positions: int = 1


@lru_cache(maxsize=256)
def _network_work(net: NetworkSpec, batch: int, word_bytes: int) -> NetWork:
    g = training_graph(net, batch, updates=False, word_bytes=word_bytes)
    layers = layer_infos(g)
    fwd, bwd, hvp = [], [], []
    for l in sorted(layers):
        f = task_work(g, ("F", l))
        wg = task_work(g, ("WG", l))
        ag1 = task_work(g, ("AG1", l)) if ("AG1", l) in g else None
        ag2 = task_work(g, ("AG2", l)) if ("AG2", l) in g else None
        fwd.append(f)
        bwd += [wg] + ([ag1] if ag1 else []) + ([ag2] if ag2 else [])
        # R-operator: 9 GEMMs for an inner layer, 4 for the first (see models.training.hvp)
        inner = ag1 is not None
        hvp += [_repeat(f, 3 if inner else 2), _repeat(wg, 3 if inner else 2)]
        if inner:
            hvp.append(_repeat(ag1, 3))
        if ag2 is not None:
            hvp.append(_repeat(ag2, 3))
    return NetWork(_sum(fwd), _sum(bwd), _sum(hvp), int(sum(i.params for i in layers.values())))


@lru_cache(maxsize=64)
def kfac_layers(net: NetworkSpec) -> tuple[KfacLayer, ...]:
    """K-FAC's factors of every weight layer (the parameters fused into a layer, batch norm's,
    are left to the base update, as KAISA does).

    >>> from models.network.spec import chain
    >>> from models.network.layers import Conv2d, Flatten, Linear
    >>> kfac_layers(chain("c", (3, 8, 8), [Conv2d(4, kernel=3, padding=1), Flatten(), Linear(10, bias=False)]))
    (KfacLayer(a=28, g=4, positions=64), KfacLayer(a=256, g=10, positions=1))
    """
    out = []
    for w in weight_layers(net):
        node = net.node(w.name)
        layer, shape_in = node.layer, net.shapes[node.inputs[0]]
        bias = int(bool(getattr(layer, "bias", False)))
        if isinstance(layer, Linear):
            out.append(KfacLayer(int(np.prod(shape_in)) + bias, layer.out_features))
        elif isinstance(layer, Conv2d):
            kh, kw = layer.kernel_hw
            _, oh, ow = net.shapes[node.name]
            out.append(KfacLayer(shape_in[0] * kh * kw + bias, layer.out_channels, oh * ow))
        else:
            raise ScheduleError(f"dp-kfac has no factors for the {layer.kind} layer {w.name!r}")
    return tuple(out)


def network_work(net: NetworkSpec, batch: int, word_bytes: int = 2) -> NetWork:
    """Forward / backward / HVP work of ``batch`` samples (cached; specs are frozen, so hashed by value).

    >>> from models.network.zoo import mlp
    >>> w = network_work(mlp((64, 10)), 4)
    >>> w.forward.macs, w.backward.macs, w.hvp.macs     # logistic regression: F, WG only
    (2560, 2560, 10240)
    """
    return _network_work(net, batch, word_bytes)


def batch_shares(batch: int, p: int) -> list[int]:
    """Samples per device when ``batch`` is split over ``p`` devices (larger shares first).

    >>> batch_shares(10, 4)
    [3, 3, 2, 2]
    """
    return [hi - lo for lo, hi in shard_bounds(batch, p)]


def fosi_update_work(n: int, rank: int, base: str) -> TaskWork:
    """FOSI's update of n parameters: six products with V (rank r) and element-wise work."""
    macs = [_gemm(1, rank, n), _gemm(1, n, rank)] * 3
    return _sum(macs) + TaskWork(elementwise=(UPDATE_OPS[base] + 5) * n)


def kfac_factor_dims(layers: Sequence[KfacLayer]) -> list[int]:
    """Dimension of every K-FAC factor: A and G per layer.

    >>> kfac_factor_dims([KfacLayer(65, 10)])
    [65, 10]
    """
    return [d for layer in layers for d in (layer.a, layer.g)]


# --------------------------------------------------------------------------- graph builder


class _Builder:
    """Adds tasks device by device in dependency order and emits a one-unit Schedule."""

    def __init__(self, devices: int, name: str):
        self.g = nx.DiGraph(network=name, batch=0, word_bytes=0, view="dho2", layers={}, num_layers=0)
        self.orders: dict[int, list[Task]] = {p: [] for p in range(devices)}
        self.last: dict[int, Task | None] = {p: None for p in range(devices)}
        self.ids: dict[str, int] = {}

    def task(self, kind: TaskKind, p: int, work: TaskWork, label: str, after: Iterable = ()) -> Task:
        i = self.ids.get(kind, 0) + 1
        self.ids[kind] = i
        key = Task(kind, i)
        add_task(self.g, key, work, layers=(), label=label, device=p)
        deps = {d for d in (*after, self.last[p]) if d is not None}
        for d in sorted(deps):
            self.g.add_edge(d, key, bytes=0, tensor=("sync", d))
        self.orders[p].append(key)
        self.last[p] = key
        return key

    def collective(self, devices: Sequence[int], cycles: int, label: str) -> None:
        """One COLL task per participant lasting ``cycles``, all starting after every participant is ready.

        The barrier is a zero-cycle COLL task on the first participant that waits for every
        participant's last task; each participant's collective task waits for it (2P edges
        instead of P^2).
        """
        if len(devices) <= 1 and cycles == 0:
            return
        if len(devices) > 1:
            prev = [self.last[p] for p in devices]
            hub = self.task(TaskKind.COLL, devices[0], TaskWork(), f"{label} (barrier)", after=prev)
        else:
            hub = None
        for p in devices:
            self.task(TaskKind.COLL, p, TaskWork(fixed_cycles=int(cycles)), label, after=(hub,) if hub else ())

    def schedule(self, name: str, **info) -> Schedule:
        for p, keys in self.orders.items():
            if not keys:  # a device with nothing to do still needs an order: a zero-work marker
                self.task(TaskKind.U, p, TaskWork(), "idle")
        orders = {p: [Action(k, i, 0) for k, i in keys] for p, keys in self.orders.items()}
        return Schedule(name, self.g, orders, info=info)


# --------------------------------------------------------------------------- per-design step pieces


def _train_step(b: _Builder, net: NetworkSpec, devices: Sequence[int], batch: int, cfg: DesignConfig,
                link, label: str) -> None:
    """Forward and backward of the batch shares, then the ring all-reduce of the gradient."""
    n_bytes = network_work(net, 1, cfg.word_bytes).params * cfg.word_bytes
    for p, share in zip(devices, batch_shares(batch, len(devices))):
        if share:
            w = network_work(net, share, cfg.word_bytes)
            b.task(TaskKind.F, p, w.forward, f"{label}: forward {share} samples")
            b.task(TaskKind.B, p, w.backward, f"{label}: backward {share} samples")
    b.collective(devices, allreduce_cycles(n_bytes, len(devices), link), f"{label}: all-reduce gradient")


def _base_update(b: _Builder, devices: Sequence[int], n: int, base: str, label: str) -> None:
    for p in devices:
        b.task(TaskKind.U, p, TaskWork(elementwise=UPDATE_OPS[base] * n), f"{label}: {base} update")


def _kfac_pieces(net: NetworkSpec) -> tuple[tuple[KfacLayer, ...], TaskWork]:
    """The factors, and the preconditioning of every layer's gradient: G^-1 (g x a) A^-1."""
    layers = kfac_layers(net)
    precond = _sum(_gemm(f.g, f.a, f.g) + _gemm(f.g, f.a, f.a) for f in layers)
    return layers, precond


def _kfac_refresh(b: _Builder, net: NetworkSpec, devices: Sequence[int], cfg: DesignConfig, link) -> None:
    layers, _ = _kfac_pieces(net)
    dims = kfac_factor_dims(layers)
    for p, share in zip(devices, batch_shares(cfg.batch, len(devices))):
        if share:  # one row of statistics per sample and weight-sharing position
            stats = _sum(_gemm(d, d, share * f.positions) for f in layers for d in (f.a, f.g))
            b.task(TaskKind.CURV, p, stats, f"K-FAC statistics of {share} samples")
    words = sum(d * d for d in dims)
    b.collective(devices, allreduce_cycles(words * cfg.word_bytes, len(devices), link), "all-reduce K-FAC factors")
    # greedy: the largest inversion to the least loaded device (KAISA spreads factors this way)
    load = {p: 0 for p in devices}
    mine: dict[int, list[int]] = {p: [] for p in devices}
    for d in sorted(dims, reverse=True):
        p = min(devices, key=lambda q: (load[q], q))
        load[p] += d ** 3
        mine[p].append(d)
    for p in devices:
        if mine[p]:
            b.task(TaskKind.EIG, p, _sum(_gemm(d, d, d) for d in mine[p]), f"invert K-FAC factors {mine[p]}")
    b.collective(devices, allgather_cycles(words * cfg.word_bytes, len(devices), link), "all-gather inverses")


def _gram_schmidt_work(j: int, ns: int) -> TaskWork:
    """One Gram-Schmidt pass of Lanczos iteration ``j`` on ``ns`` values: ``Q_s w_s``, ``w_s -= c Q_s``."""
    return _gemm(1, j + 1, ns) + _gemm(1, ns, j + 1)


def _eigen_solve_work(m: int, rank: int, ns: int) -> TaskWork:
    """The m x m tridiagonal eigen-solve and ``rank`` Ritz vectors on ``ns`` values."""
    return TaskWork(macs=m ** 3) + _gemm(rank, ns, m)


def _lanczos_chain(b: _Builder, net: NetworkSpec, devices: Sequence[int], cfg: DesignConfig, link) -> None:
    """m Lanczos iterations on ``devices`` (basis sharded over them), eigen-solve and Ritz shards."""
    n = network_work(net, 1, cfg.word_bytes).params
    P = len(devices)
    bounds = shard_bounds(n, P)
    shares = batch_shares(cfg.curvature_batch, P)
    m = min(cfg.lanczos_iterations, n)
    for j in range(m):
        coll = iter(iteration_collectives(j, n, data_parallel_hvp=P > 1))
        c = next(coll)  # all-gather q_j
        b.collective(devices, collective_cycles(c.op, c.words * cfg.word_bytes, P, link), f"Lanczos {j}: {c.why}")
        for p, share in zip(devices, shares):
            if share:
                b.task(TaskKind.HVP, p, network_work(net, share, cfg.word_bytes).hvp, f"Lanczos {j}: HVP on {share} samples")
        if P > 1:
            c = next(coll)  # reduce-scatter H q_j
            b.collective(devices, collective_cycles(c.op, c.words * cfg.word_bytes, P, link), f"Lanczos {j}: {c.why}")
        rest = list(coll)
        for pass_ in range(2):
            for p, (lo, hi) in zip(devices, bounds):
                ns = hi - lo
                b.task(TaskKind.CURV, p, _gram_schmidt_work(j, ns), f"Lanczos {j}: Gram-Schmidt pass {pass_ + 1}")
            c = rest[pass_]
            b.collective(devices, collective_cycles(c.op, c.words * cfg.word_bytes, P, link), f"Lanczos {j}: {c.why}")
        for p, (lo, hi) in zip(devices, bounds):
            ns = hi - lo
            b.task(TaskKind.CURV, p, TaskWork(macs=ns, elementwise=ns), f"Lanczos {j}: norm and scale")
        c = rest[2]
        b.collective(devices, collective_cycles(c.op, c.words * cfg.word_bytes, P, link), f"Lanczos {j}: {c.why}")
    for p, (lo, hi) in zip(devices, bounds):
        b.task(TaskKind.EIG, p, _eigen_solve_work(m, cfg.rank, hi - lo), "eigen-solve and Ritz vectors")


def _lanczos_replicated(b: _Builder, net: NetworkSpec, devices: Sequence[int], cfg: DesignConfig, link) -> None:
    """m Lanczos iterations with data-parallel HVPs and the basis on every device (fosi-dp).

    Each iteration: the HVP of the device's share of the curvature batch, an all-reduce of the
    n-value product (the library averages the gradient inside the HVP over the devices), then on
    every device the two full Gram-Schmidt passes and the normalisation of the whole vector."""
    n = network_work(net, 1, cfg.word_bytes).params
    P = len(devices)
    shares = batch_shares(cfg.curvature_batch, P)
    m = min(cfg.lanczos_iterations, n)
    for j in range(m):
        for p, share in zip(devices, shares):
            if share:
                b.task(TaskKind.HVP, p, network_work(net, share, cfg.word_bytes).hvp, f"Lanczos {j}: HVP on {share} samples")
        if P > 1:
            b.collective(devices, allreduce_cycles(n * cfg.word_bytes, P, link), f"Lanczos {j}: all-reduce H q_{j}")
        for p in devices:
            for pass_ in range(2):
                b.task(TaskKind.CURV, p, _gram_schmidt_work(j, n), f"Lanczos {j}: Gram-Schmidt pass {pass_ + 1}")
            b.task(TaskKind.CURV, p, TaskWork(macs=n, elementwise=n), f"Lanczos {j}: norm and scale")
    for p in devices:
        b.task(TaskKind.EIG, p, _eigen_solve_work(m, cfg.rank, n), "eigen-solve and Ritz vectors")


# --------------------------------------------------------------------------- whole-step schedules


def _check(design: str, devices: int, platform) -> None:
    if design not in DESIGNS:
        raise ScheduleError(f"unknown design {design!r} (known: {', '.join(DESIGNS)})")
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise ScheduleError(f"number of devices must be a positive integer, got {devices!r}")
    if devices > platform.size:
        raise ScheduleError(f"{devices} devices asked for, but the platform has {platform.size}")


def step_schedule(design: str, net: NetworkSpec, devices: int, platform, cfg: DesignConfig,
                  refresh: bool = False) -> Schedule:
    """One training step of a blocking design (every design but dho2, or dho2 at P = 1).

    ``refresh=True`` includes the curvature refresh (K-FAC statistics and inversions, or
    FOSI's Lanczos on device 0 and the broadcast of V).
    """
    link = platform.link
    n = network_work(net, 1, cfg.word_bytes).params
    devs = list(range(devices))
    b = _Builder(devices, net.name)
    label = "step"
    _train_step(b, net, devs, cfg.batch, cfg, link, label)
    if design in ("dp-sgd", "dp-adam"):
        _base_update(b, devs, n, "heavyball" if design == "dp-sgd" else "adam", label)
    elif design == "dp-kfac":
        if refresh:
            _kfac_refresh(b, net, devs, cfg, link)
        _, precond = _kfac_pieces(net)
        for p in devs:
            b.task(TaskKind.U, p, precond + TaskWork(elementwise=UPDATE_OPS["heavyball"] * n), "K-FAC precondition + update")
    elif design == "dho2-release":
        if refresh:  # sharded over every device, blocking; then V everywhere and the period's jump
            _lanczos_chain(b, net, devs, cfg, link)
            if devices > 1:
                b.collective(devs, allgather_cycles(cfg.rank * n * cfg.word_bytes, devices, link), "all-gather V")
            for p in devs:
                b.task(TaskKind.U, p, TaskWork(elementwise=4 * n), "dual update and extrapolation")
        for p in devs:
            b.task(TaskKind.U, p, fosi_update_work(n, cfg.rank, "adam") + TaskWork(elementwise=n),
                   "FOSI update (dual added)")
    else:  # fosi, fosi-dp, or dho2 on one device
        if refresh and design == "fosi-dp":
            _lanczos_replicated(b, net, devs, cfg, link)
        elif refresh:
            _lanczos_chain(b, net, [0], cfg, link)
            b.collective(devs, broadcast_cycles(cfg.rank * n * cfg.word_bytes, devices, link), "broadcast V")
        for p in devs:
            b.task(TaskKind.U, p, fosi_update_work(n, cfg.rank, cfg.fosi_base), "FOSI update")
    return b.schedule(f"{design}-{'refresh' if refresh else 'step'}", design=design, devices=devices,
                      kinds=KIND_MEANING)


def _dho2_update_step(b: _Builder, net: NetworkSpec, group: Sequence[int], cfg: DesignConfig, link, label: str) -> None:
    """One DHO2 update step on the update group, FOSI's update sharded by parameter index (ZeRO-like).

    Reduce-scatter of the gradient; each device projects its shard (partial ``V_s g_s``, and the
    partial products of the old momentum and base velocity); one all-reduce of those 3r
    coefficients; the rest is local; all-gather of the new weights. With a heavy-ball (or SGD)
    base, ``V u2`` follows from the coefficients (``V g2 = 0``, so ``V u2 = -lr mu V v_old``):
    one all-reduce per step. Adam's element-wise scaling breaks that, so it needs a second one.
    """
    n = network_work(net, 1, cfg.word_bytes).params
    P = len(group)
    wb = cfg.word_bytes
    for p, share in zip(group, batch_shares(cfg.batch, P)):
        if share:
            w = network_work(net, share, wb)
            b.task(TaskKind.F, p, w.forward, f"{label}: forward {share} samples")
            b.task(TaskKind.B, p, w.backward, f"{label}: backward {share} samples")
    b.collective(group, allgather_cycles(n * wb, P, link), f"{label}: reduce-scatter gradient")
    r = cfg.rank
    bounds = shard_bounds(n, P)
    ops = UPDATE_OPS[cfg.fosi_base]
    if cfg.fosi_base == "adam":
        for p, (lo, hi) in zip(group, bounds):
            b.task(TaskKind.U, p, _repeat(_gemm(1, r, hi - lo), 2), f"{label}: partial V g, V m")
        b.collective(group, allreduce_cycles(2 * r * wb, P, link), f"{label}: all-reduce V g, V m")
        for p, (lo, hi) in zip(group, bounds):
            ns = hi - lo
            b.task(TaskKind.U, p, _gemm(1, ns, r) + _gemm(1, r, ns) + TaskWork(elementwise=(ops + 3) * ns),
                   f"{label}: g1, momentum, Adam step, partial V u2")
        b.collective(group, allreduce_cycles(r * wb, P, link), f"{label}: all-reduce V u2")
        for p, (lo, hi) in zip(group, bounds):
            ns = hi - lo
            b.task(TaskKind.U, p, _repeat(_gemm(1, ns, r), 2) + TaskWork(elementwise=2 * ns), f"{label}: Newton step, apply")
    else:
        for p, (lo, hi) in zip(group, bounds):
            b.task(TaskKind.U, p, _repeat(_gemm(1, r, hi - lo), 3), f"{label}: partial V g, V m, V v")
        b.collective(group, allreduce_cycles(3 * r * wb, P, link), f"{label}: all-reduce V g, V m, V v")
        for p, (lo, hi) in zip(group, bounds):
            ns = hi - lo
            b.task(TaskKind.U, p, _repeat(_gemm(1, ns, r), 3) + TaskWork(elementwise=(ops + 5) * ns),
                   f"{label}: g1, momentum, base step, Newton step, apply")
    b.collective(group, allgather_cycles(n * wb, P, link), f"{label}: all-gather weights")


def dho2_step_schedule(net: NetworkSpec, devices: int, curvature_devices: int, platform, cfg: DesignConfig) -> Schedule:
    """One update step on DHO2's update devices alone (for its plain cycles)."""
    P_u = devices - curvature_devices
    b = _Builder(P_u, net.name)
    _dho2_update_step(b, net, list(range(P_u)), cfg, platform.link, "step")
    return b.schedule("dho2-step", design="dho2", devices=P_u, kinds=KIND_MEANING)


def dho2_refresh_schedule(net: NetworkSpec, devices: int, curvature_devices: int, platform, cfg: DesignConfig) -> Schedule:
    """DHO2's curvature refresh alone: weights broadcast, sharded Lanczos, eigen-solve (on P_c + 1 devices)."""
    n = network_work(net, 1, cfg.word_bytes).params
    b = _Builder(curvature_devices + 1, net.name)
    curv = list(range(1, curvature_devices + 1))
    b.collective([0, *curv], broadcast_cycles(n * cfg.word_bytes, curvature_devices + 1, platform.link),
                 "broadcast weights to the curvature devices")
    _lanczos_chain(b, net, curv, cfg, platform.link)
    return b.schedule("dho2-refresh", design="dho2", devices=curvature_devices + 1, kinds=KIND_MEANING)


def dho2_period_schedule(net: NetworkSpec, devices: int, curvature_devices: int, platform, cfg: DesignConfig,
                         staleness: int, step_cycles: int) -> Schedule:
    """One refresh period of DHO2: ``max(T, s)`` update steps overlapped with one Lanczos refresh.

    Update devices 0..P_u-1, curvature devices P_u..P-1. The refresh starts from the weights
    broadcast after step 0 (update device 0 joins that broadcast); the update devices join the
    redistribution of V after step ``staleness`` (or at the end of the period). Each update
    step is one task per update device lasting ``step_cycles`` (the makespan of
    :func:`dho2_step_schedule`): a step ends with the all-gather of the weights, a barrier, so a
    step-long task per device times the period exactly as the detailed tasks would, and keeps
    the graph small enough to simulate T steps for every split.
    """
    P_c = curvature_devices
    P_u = devices - P_c
    if P_u < 1 or P_c < 1:
        raise ScheduleError(f"dho2 needs at least one update and one curvature device, got {P_u} and {P_c}")
    n = network_work(net, 1, cfg.word_bytes).params
    link = platform.link
    wb = cfg.word_bytes
    period = max(cfg.refresh, staleness)
    upd, curv = list(range(P_u)), list(range(P_u, devices))
    b = _Builder(devices, net.name)
    b.collective([0, *curv], broadcast_cycles(n * wb, P_c + 1, link), "broadcast weights to the curvature devices")
    _lanczos_chain(b, net, curv, cfg, link)
    join = min(max(staleness, 1), period)
    for step in range(1, period + 1):
        for p in upd:
            b.task(TaskKind.U, p, TaskWork(fixed_cycles=int(step_cycles)), f"update step {step} (as dho2-step)")
        if step == join:
            b.collective(curv + upd, redistribute_cycles(cfg.rank * n * wb, P_c, P_u, link),
                         "redistribute V to the update devices")
    return b.schedule("dho2-period", design="dho2", devices=devices, update_devices=P_u, curvature_devices=P_c,
                      period=period, staleness=staleness, kinds=KIND_MEANING)


# --------------------------------------------------------------------------- memory


def memory(design: str, n: int, devices: int, cfg: DesignConfig, curvature_devices: int = 0,
           kfac_words: int = 0) -> list[Memory]:
    """Values stored on each device (see the module docstring).

    >>> [m.total for m in memory("fosi", 100, 2, DesignConfig(k=2, m=8))]
    [1500, 600]
    """
    r, m = cfg.rank, cfg.lanczos_iterations
    if design == "dp-sgd":
        return [Memory(model=n, gradient=n, optimizer=n)] * devices
    if design == "dp-adam":
        return [Memory(model=n, gradient=n, optimizer=2 * n)] * devices
    if design == "dp-kfac":
        return [Memory(model=n, gradient=n, optimizer=n, curvature=2 * kfac_words)] * devices
    if design == "dho2-release":  # Adam + velocity + dual + the period's start; V whole, the basis sharded
        return [Memory(model=n, gradient=n, optimizer=(STATE_WORDS["adam"] + 3) * n, eigenvectors=r * n,
                       lanczos_basis=m * (hi - lo), workspace=2 * n) for lo, hi in shard_bounds(n, devices)]
    state = STATE_WORDS[cfg.fosi_base] + 1  # base state + FOSI's velocity
    if design == "fosi-dp":  # every device holds what FOSI's device 0 holds
        return [Memory(model=n, gradient=n, optimizer=state * n, eigenvectors=r * n, lanczos_basis=m * n,
                       workspace=n)] * devices
    if design == "fosi" or devices == 1 or curvature_devices == 0:
        common = Memory(model=n, gradient=n, optimizer=state * n, eigenvectors=r * n)
        first = Memory(model=n, gradient=n, optimizer=state * n, eigenvectors=r * n, lanczos_basis=m * n, workspace=n)
        return [first] + [common] * (devices - 1)
    P_u = devices - curvature_devices
    out = []
    for lo, hi in shard_bounds(n, P_u):
        ns = hi - lo
        out.append(Memory(model=n, gradient=n, optimizer=state * ns, eigenvectors=r * ns))
    for lo, hi in shard_bounds(n, curvature_devices):
        ns = hi - lo
        out.append(Memory(model=n, lanczos_basis=m * ns, eigenvectors=r * ns, workspace=2 * n))
    return out


# --------------------------------------------------------------------------- costs


def _makespan(schedule: Schedule, platform) -> int:
    from simulator.engine import simulate  # the engine is only needed to cost, not to build

    return int(simulate(schedule, platform).makespan)


def default_curvature_devices(devices: int) -> int:
    """DHO2's split without training knowledge: half the devices compute curvature (at least one).

    >>> [default_curvature_devices(p) for p in (1, 2, 3, 8)]
    [0, 1, 1, 4]
    """
    return 0 if devices < 2 else max(1, devices // 2)


def design_cost(design: str, net: NetworkSpec, devices: int, platform, cfg: DesignConfig = DesignConfig(),
                keep_schedules: bool = False, cache: dict | None = None) -> DesignCost:
    """Cycles per step and memory of ``design`` on the first ``devices`` processors of ``platform``.

    ``cache`` (a dict) keeps the makespans of DHO2's step and refresh schedules, which depend
    only on the size of the update or curvature group, across calls with the same network,
    platform and config.
    """
    _check(design, devices, platform)
    cache = {} if cache is None else cache
    n = network_work(net, 1, cfg.word_bytes).params
    schedules: dict[str, Schedule] = {}
    P_c = 0
    if design == "dho2" and devices >= 2:
        P_c = cfg.curvature_devices if cfg.curvature_devices is not None else default_curvature_devices(devices)
        if not 1 <= P_c <= devices - 1:
            raise ScheduleError(f"dho2 on {devices} devices needs 1..{devices - 1} curvature devices, got {P_c}")
        c_step, c_ref, staleness = _dho2_staleness(net, devices, P_c, platform, cfg, cache)
        period_sched = dho2_period_schedule(net, devices, P_c, platform, cfg, staleness, c_step)
        period = max(cfg.refresh, staleness)
        c_period = _makespan(period_sched, platform)
        schedules = {"period": period_sched}
        if keep_schedules:
            schedules.update(step=dho2_step_schedule(net, devices, P_c, platform, cfg),
                             refresh=dho2_refresh_schedule(net, devices, P_c, platform, cfg))
        cost = DesignCost(design, devices, devices - P_c, P_c, c_step, c_ref, c_period / period, period, staleness,
                          memory(design, n, devices, cfg, P_c), info={"period_cycles": c_period})
    else:
        step = step_schedule(design, net, devices, platform, cfg)
        c_step = _makespan(step, platform)
        schedules = {"step": step}
        period, c_ref, extra = 1, 0, 0.0
        if design in ("dp-kfac", "fosi", "fosi-dp", "dho2", "dho2-release"):
            ref = step_schedule(design, net, devices, platform, cfg, refresh=True)
            c_ref = _makespan(ref, platform)
            schedules["refresh"] = ref
            period = cfg.kfac_refresh if design == "dp-kfac" else cfg.refresh
            extra = (c_ref - c_step) / period
        kfac_words = sum(d * d for d in kfac_factor_dims(kfac_layers(net))) if design == "dp-kfac" else 0
        curvature = {"fosi": 1, "dho2": 1, "fosi-dp": devices, "dho2-release": devices}.get(design, 0)
        cost = DesignCost(design, devices, devices, curvature, c_step, c_ref,
                          c_step + extra, period, 0, memory(design, n, devices, cfg, 0, kfac_words))
    if keep_schedules:
        cost.schedules = schedules
    return cost


def _dho2_staleness(net: NetworkSpec, devices: int, P_c: int, platform, cfg: DesignConfig,
                    cache: dict) -> tuple[int, int, int]:
    """A DHO2 split's update-step and refresh-chain makespans, and its staleness: the smallest for
    which the update devices never wait for V. Cached by group size (all they depend on)."""
    if ("step", devices - P_c) not in cache:
        cache[("step", devices - P_c)] = _makespan(dho2_step_schedule(net, devices, P_c, platform, cfg), platform)
    if ("refresh", P_c) not in cache:
        cache[("refresh", P_c)] = _makespan(dho2_refresh_schedule(net, devices, P_c, platform, cfg), platform)
    c_step, c_ref = cache[("step", devices - P_c)], cache[("refresh", P_c)]
    return c_step, c_ref, max(1, math.ceil(c_ref / c_step))


def dho2_candidates(net: NetworkSpec, devices: int, platform, cfg: DesignConfig,
                    max_staleness: int | None = None) -> list[DesignCost]:
    """DHO2 with every split P_c = 1 .. P-1 (one design at P = 1).

    ``max_staleness`` keeps only the splits at most that stale (the least stale one if none is),
    without simulating the refresh periods of the others: a caller that cannot price a staler
    split (no steps measured at that staleness) need not pay for it.
    """
    if devices < 2:
        return [design_cost("dho2", net, devices, platform, cfg)]
    from dataclasses import replace

    cache: dict = {}
    splits = list(range(1, devices))
    if max_staleness is not None:
        stale = {c: _dho2_staleness(net, devices, c, platform, cfg, cache)[2] for c in splits}
        splits = [c for c in splits if stale[c] <= max_staleness] or [min(splits, key=lambda c: (stale[c], c))]
    return [design_cost("dho2", net, devices, platform, replace(cfg, curvature_devices=c), cache=cache)
            for c in splits]


__all__ = [
    "DESIGNS", "FIRST_ORDER", "SECOND_ORDER", "BASELINES", "METHOD_OF", "KIND_MEANING", "UPDATE_OPS", "STATE_WORDS", "DesignConfig", "Memory", "DesignCost",
    "allreduce_cycles", "allgather_cycles", "broadcast_cycles", "redistribute_cycles", "collective_cycles",
    "NetWork", "KfacLayer", "network_work", "kfac_layers", "batch_shares", "fosi_update_work", "kfac_factor_dims", "step_schedule",
    "dho2_step_schedule", "dho2_refresh_schedule", "dho2_period_schedule", "memory", "default_curvature_devices",
    "design_cost", "dho2_candidates",
]
