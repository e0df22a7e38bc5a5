"""Limits: refuse, before it starts, a run that would exhaust memory or take hours.

Every figure below is an *estimate* made from the configuration alone (network, schedule,
processors, minibatches, batch, topology), without building anything, so a refused run
costs nothing. A refused run raises :class:`LimitError` (a
:class:`models.errors.LayerPipeError`: one line, exit code 2 on the command line) that
names the quantity, its estimate and what to reduce, e.g. (``layerpipe trace lenet5 -s
layerpipe -p 4 -n 200000``)::

    layerpipe on lenet5 would simulate 4,600,000 tasks (~12.0 GiB with the trace kept in
    memory; limit 4.0 GiB): reduce --minibatches or --processors, or pass --no-limits

The override is ``--no-limits`` on the command line, ``no_limits=True`` for
:func:`simulator.evaluate.compare`, and ``limits=None`` (or your own :class:`Limits`)
for the functions here.

**What is estimated** (constants calibrated with CPython 3.11 on one core of a
2-core machine; they err on the large side):

* *tasks* = units x tasks per unit. Units = minibatches x micro-batches per step
  (:meth:`schedules.registry.Method.units_per_step`: ``m`` for the flush schedules,
  ``--microbatches`` or the builder's default, the smallest divisor of the batch that is
  at least P - a prime batch of 10^9 means 10^9 micro-batches); tasks per unit = the
  method's tasks per stage (``Method.tasks_per_stage``) times at most min(P, L) stages, or
  the fine task graph's tasks (F, WG, AG1, AG2, U per weight layer) for the methods that
  schedule it.
* *memory* = tasks x :data:`BYTES_PER_TASK` (the schedule's orders, the validator's set
  of finished tasks, the engine's bookkeeping and its event log) + tasks x :data:`BYTES_PER_TRACED_TASK`
  when a trace is kept in memory (records, the checker's indexes, the Chrome export) +
  the platform (checked on its own, before it is built): :data:`BYTES_PER_PAIR_GRAPH` per
  processor pair for a fully connected
  topology graph and, when transfers cost cycles, the all-pairs route table
  (:data:`BYTES_PER_ROUTE` per pair plus :data:`BYTES_PER_HOP` per hop: P(P - 1) hops
  on ``full``, about P^3 / 4 on a ``ring``, P^2 (rows + cols) / 3 on a ``mesh``).
* *time* = tasks x :data:`SECONDS_PER_TASK` (build, validate, simulate; twice that with a
  trace) + the planners (``Method.planner``): the stage DP with replication (P > L or
  ``--replicate``) ~ :data:`SECONDS_PER_DP_STEP` x L^2 P^2 (twice for LayerPipe's two
  groupings), LayerPipe's offloading search (1 < P <= L, offload on) ~
  :data:`SECONDS_PER_BALANCE_STEP` x L^3 P for L weight layers, and LayerPipe's
  list-scheduled estimate of its two replicated candidates (P > L) ~ 2 x planning units
  (:func:`schedules.methods.layerpipe.planning_units`) x (tasks per unit x
  :data:`SECONDS_PER_LIST_TASK` + L P x :data:`SECONDS_PER_BROADCAST`); replicated runs
  also broadcast the weights after each update, L P x :data:`SECONDS_PER_BROADCAST` per unit,
  and keep :data:`BYTES_PER_REPLICA_PAIR` per pair of processors.

**Thresholds** (:data:`DEFAULT_LIMITS`): 4 GiB of memory for the largest single run and
one hour for everything a command runs (``compare`` runs the sequential reference,
PipeDream and each schedule one after the other, so their times add up while their
memory does not). The estimates are for the minibatches asked for: ``compare`` may
lengthen a run whose steady state is not known yet (up to 32x), which happens for
short runs only.

>>> from models.network.zoo import get_network
>>> est = estimate_run(get_network("lenet5"), "layerpipe", 4, minibatches=32, batch=32)
>>> est.tasks, est.units
(736, 32)
>>> check([est])  # well within the limits: nothing happens
>>> check([estimate_run(get_network("lenet5"), "layerpipe", 4, minibatches=10**8, batch=32)])
Traceback (most recent call last):
...
simulator.limits.LimitError: layerpipe on lenet5 would simulate 2,300,000,000 tasks (~2.1 TiB of memory; limit 4.0 GiB): reduce --minibatches or --processors, or pass --no-limits
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from models.errors import LayerPipeError
from simulator.platform import check_processor_count, mesh_shape

#: bytes per simulated task instance without a trace (measured 350-470 for orders + validation + engine,
#: up to 750 with the exact steady state's event log, which holds a slice of a few periods of the run)
BYTES_PER_TASK = 1_000
#: extra bytes per task when the trace is kept in memory (measured 800-1,800: records, --check, the Chrome export)
BYTES_PER_TRACED_TASK = 2_200
#: seconds per task instance to build, validate and simulate (measured 20-80 us)
SECONDS_PER_TASK = 60e-6
#: per ordered processor pair: the fully connected topology graph (networkx adjacency)
BYTES_PER_PAIR_GRAPH = 70
SECONDS_PER_PAIR_GRAPH = 0.5e-6
#: per ordered processor pair and per hop of the all-pairs route table (built when transfers cost cycles)
BYTES_PER_ROUTE = 330
BYTES_PER_HOP = 80
SECONDS_PER_ROUTE = 3e-6
SECONDS_PER_HOP = 0.5e-6
#: one step of the stage planner's dynamic program with replication (L^2 P^2 steps)
SECONDS_PER_DP_STEP = 5e-7
#: one step of LayerPipe's offloading search (L^3 P steps)
SECONDS_PER_BALANCE_STEP = 2.5e-6
#: LayerPipe's replicated candidates are list-scheduled over 4P + 8 units: per task, and per
#: weight broadcast to a replica after each update (L x P per unit)
SECONDS_PER_LIST_TASK = 10e-6
SECONDS_PER_BROADCAST = 1.5e-6
#: replicated plans book weight broadcasts between every pair of replicas (measured ~800 B per pair)
BYTES_PER_REPLICA_PAIR = 800


class LimitError(LayerPipeError):
    """A run was refused before it started; ``estimate`` says why (see the module docstring)."""

    def __init__(self, message: str, estimate: "Estimate | None" = None, quantity: str = ""):
        self.estimate, self.quantity = estimate, quantity
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    """Largest memory (bytes) of one run and total time (seconds) of a command."""

    memory_bytes: int = 4 * 2**30
    seconds: float = 3600.0


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to cost, why, and what to reduce if it is too much.

    ``memory_reason`` / ``time_reason`` name what dominates each figure: ``"tasks"`` (the
    task instances), ``"replicas"`` (weight exchanges between replicas),
    ``"routes"`` (the platform's route table) or ``"planner"`` (the schedule builder).
    """

    what: str
    tasks: int = 0
    units: int = 0
    tasks_per_unit: int = 0
    memory_bytes: int = 0
    seconds: float = 0.0
    trace: bool = False
    memory_reason: str = "tasks"
    time_reason: str = "tasks"
    reduce_memory: str = "--minibatches or --processors"
    reduce_time: str = "--minibatches or --processors"


def human_bytes(n: float) -> str:
    """``4294967296`` -> ``'4.0 GiB'`` (powers of 1024, one decimal).

    >>> human_bytes(512), human_bytes(3 * 2**20), human_bytes(4 * 2**30)
    ('512 B', '3.0 MiB', '4.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_seconds(s: float) -> str:
    """``90`` -> ``'1.5 min'``, ``7200`` -> ``'2.0 h'``.

    >>> human_seconds(30), human_seconds(90), human_seconds(7200)
    ('30 s', '1.5 min', '2.0 h')
    """
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------- estimates


def route_hops(processors: int, topology: str = "full") -> int:
    """Sum over ordered processor pairs of the hops between them (the route table's size).

    >>> route_hops(4, "full"), route_hops(4, "ring"), route_hops(6, "ring"), route_hops(4, "mesh")
    (12, 16, 54, 16)
    """
    p = check_processor_count(processors)
    if topology == "ring" and p > 2:
        return p * (p * p // 4)  # from each node: distances 1..p-1 around the ring, min(k, p-k)
    if topology == "mesh":
        r, c = mesh_shape(p)
        return r * r * c * (c * c - 1) // 3 + c * c * r * (r * r - 1) // 3
    return p * (p - 1)  # full (and any ring of 1 or 2)


def estimate_platform(processors: int, topology: str = "full", *, link_free: bool = False,
                      flag: str = "--processors") -> Estimate:
    """Memory and time of building the platform's topology graph and (with a costly link) its routes;
    ``flag`` is the option that sets the processor count (``--devices`` for ``layerpipe dho2``)."""
    p = check_processor_count(processors)
    pairs = p * (p - 1)
    memory = BYTES_PER_PAIR_GRAPH * pairs if topology == "full" else 0
    seconds = SECONDS_PER_PAIR_GRAPH * pairs if topology == "full" else 0.0
    if not link_free:
        hops = route_hops(p, topology)
        memory += BYTES_PER_ROUTE * pairs + BYTES_PER_HOP * hops
        seconds += SECONDS_PER_ROUTE * pairs + SECONDS_PER_HOP * hops
    reduce = flag if topology == "full" else f"{flag} or use --topology full"
    reason = "graph" if link_free else "routes"
    return Estimate(f"a {topology} platform of {p:,} processors", memory_bytes=int(memory), seconds=seconds,
                    memory_reason=reason, time_reason=reason, reduce_memory=reduce, reduce_time=reduce)


def tasks_per_unit(network, schedule: str, processors: int) -> int:
    """Task instances of one unit (minibatch or micro-batch) of ``schedule`` (an upper bound for stages)."""
    from models.network.spec import weight_layers
    from schedules.registry import method

    m = method(schedule)
    if m.tasks_per_stage is not None:  # a chunked schedule has up to one stage per layer
        L = len(weight_layers(network))
        return m.tasks_per_stage * (L if m.chunked else min(processors, L))
    from models.graph.build import training_graph

    return training_graph(network, 1).number_of_nodes()


def estimate_run(network, schedule: str, processors: int, *, minibatches: int, batch: int,
                 microbatches: int | None = None, trace: bool = False, offload: bool = True,
                 replicate: bool | None = None) -> Estimate:
    """What simulating ``minibatches`` steps of ``schedule`` for ``network`` on P processors costs.

    ``trace``: the run keeps every task and transfer in memory (``layerpipe trace``/``gantt``).
    """
    from models.network.spec import weight_layers
    from schedules.methods.layerpipe import planning_units
    from schedules.registry import method

    P = check_processor_count(processors)
    spec = method(schedule)
    L = len(weight_layers(network))
    per_unit = tasks_per_unit(network, schedule, P)
    m = spec.units_per_step(int(batch), P, microbatches)
    reduce = "--minibatches or --processors"
    if spec.synchronous and microbatches is None and m > 4 * P:
        reduce = (f"--minibatches, or pass --microbatches M (a divisor of the batch): batch {batch} has no divisor "
                  f"from {P} to {m - 1:,}, so every step would be {m:,} micro-batches")
    units = int(minibatches) * m
    tasks = units * per_unit
    memory = tasks * (BYTES_PER_TASK + (BYTES_PER_TRACED_TASK if trace else 0))
    seconds = tasks * SECONDS_PER_TASK * (2 if trace else 1)
    planner = pairs = 0.0
    lp = spec.planner == "layerpipe"
    replicated = P > L if replicate is None else bool(replicate)
    replicated = replicated and P > 1 and spec.accepts("replicate")
    if replicated:
        planner += (2 if lp else 1) * SECONDS_PER_DP_STEP * L * L * P * P
        seconds += units * L * P * SECONDS_PER_BROADCAST
        pairs = BYTES_PER_REPLICA_PAIR * P * P
        if lp:
            planner += 2 * planning_units(P) * (per_unit * SECONDS_PER_LIST_TASK + L * P * SECONDS_PER_BROADCAST)
    if lp and offload and 1 < P <= L:
        planner += SECONDS_PER_BALANCE_STEP * L ** 3 * P
    memory_reason = time_reason = "tasks"
    reduce_memory = reduce_time = reduce
    if pairs > memory:
        memory_reason, reduce_memory = "replicas", "--processors"
    if planner > seconds:
        time_reason = "planner"
        reduce_time = ("--processors (or use a smaller network)" if replicated or not lp or not offload else
                       "--processors (or use a smaller network), or pass --no-offload")
    return Estimate(f"{schedule} on {network.name}", tasks=tasks, units=units, tasks_per_unit=per_unit,
                    memory_bytes=int(memory + pairs), seconds=seconds + planner, trace=trace,
                    memory_reason=memory_reason, time_reason=time_reason, reduce_memory=reduce_memory,
                    reduce_time=reduce_time)


# --------------------------------------------------------------------------- checks


def _message(e: Estimate, limits: Limits, quantity: str, override: str | None = "--no-limits") -> str:
    """The one-line refusal: what, how much, the limit, what to reduce."""
    reason = e.memory_reason if quantity == "memory" else e.time_reason
    reduce = e.reduce_memory if quantity == "memory" else e.reduce_time
    if quantity == "memory":
        cost, limit = f"~{human_bytes(e.memory_bytes)}", human_bytes(limits.memory_bytes)
        if reason == "tasks":
            cost += " with the trace kept in memory" if e.trace else " of memory"
    else:
        cost, limit = f"~{human_seconds(e.seconds)}", human_seconds(limits.seconds)
    if reason in ("routes", "graph"):
        built = "its topology graph" if reason == "graph" else "its topology graph and routes"
        head = f"{e.what} would need {cost} to build {built} (limit {limit})"
    elif reason == "replicas":
        head = f"{e.what} would need {cost} for the weight exchanges between its replicas (limit {limit})"
    elif reason == "planner":
        head = f"{e.what} would take {cost}, most of it planning (limit {limit})"
    else:
        head = f"{e.what} would simulate {e.tasks:,} tasks ({cost}; limit {limit})"
    return f"{head}: reduce {reduce}" + (f", or pass {override}" if override else "")


def check(estimates: Iterable[Estimate], limits: Limits | None = DEFAULT_LIMITS, *,
          override: str | None = "--no-limits") -> None:
    """Raise :class:`LimitError` if the largest memory or the total time of ``estimates`` is over ``limits``.

    ``limits=None`` checks nothing (the override); ``override`` is the option the message
    offers to skip the check (None: the command has none).
    """
    if limits is None:
        return
    estimates = list(estimates)
    if not estimates:
        return
    worst = max(estimates, key=lambda e: e.memory_bytes)
    if worst.memory_bytes > limits.memory_bytes:
        raise LimitError(_message(worst, limits, "memory", override), worst, "memory")
    total = sum(e.seconds for e in estimates)
    if total > limits.seconds:
        slow = max(estimates, key=lambda e: e.seconds)
        if slow.seconds < total:  # several runs add up: report the total, advise on the slowest
            slow = replace(slow, what=f"{slow.what} with the {len(estimates) - 1} other runs of this command",
                           seconds=total)
        raise LimitError(_message(slow, limits, "time", override), slow, "time")


def check_platform(processors: int, topology: str = "full", *, link_free: bool = False,
                   limits: Limits | None = DEFAULT_LIMITS, flag: str = "--processors",
                   override: str | None = "--no-limits") -> None:
    """Refuse a platform whose topology graph or route table alone would be too large."""
    if limits is None:
        return
    check([estimate_platform(processors, topology, link_free=link_free, flag=flag)], limits, override=override)


def guarded_platform(spec, *, limits: Limits | None = DEFAULT_LIMITS, override: str | None = "--no-limits"):
    """``spec.build()`` (a :class:`simulator.platform.PlatformSpec`), refused first when its topology
    graph or route table alone would be too large; ``override`` is the option the refusal offers."""
    from simulator.costs import parse_link

    check_platform(spec.processors, spec.topology, link_free=parse_link(spec.link).is_free, limits=limits,
                   override=override)
    return spec.build()


def check_compare(network, schedules: Sequence[str], platform, *, minibatches: int, batch: int,
                  options: dict | None = None, trace: bool = False,
                  limits: Limits | None = DEFAULT_LIMITS) -> list[Estimate]:
    """Check what :func:`simulator.evaluate.compare` runs on ``platform``: the sequential
    reference (at most 4 minibatches, one processor), PipeDream and every schedule, with the
    schedule ``options`` given; returns the estimates."""
    if limits is None:
        return []
    options = options or {}
    names = list(dict.fromkeys(["pipedream", *schedules]))
    estimates = [estimate_run(network, "sequential", 1, minibatches=min(minibatches, 4), batch=batch)]
    for name in names:
        estimates.append(estimate_run(network, name, platform.size, minibatches=minibatches, batch=batch,
                                      microbatches=options.get("microbatches"), trace=trace,
                                      offload=options.get("offload") is not False, replicate=options.get("replicate")))
    topology = platform.topology if isinstance(platform.topology, str) else "full"  # routes are built lazily
    estimates.append(estimate_platform(platform.size, topology, link_free=platform.link.is_free))
    check(estimates, limits)
    return estimates


__all__ = ["LimitError", "Limits", "DEFAULT_LIMITS", "Estimate", "estimate_run", "estimate_platform", "route_hops",
           "guarded_platform",
           "tasks_per_unit", "check", "check_platform", "check_compare", "human_bytes", "human_seconds",
           "BYTES_PER_TASK", "BYTES_PER_TRACED_TASK", "SECONDS_PER_TASK"]
