"""Running one method: long enough for a steady state, and the sequential reference.

>>> from models.network.zoo import get_network
>>> from simulator.platform import PlatformSpec
>>> sched, result = run_until_converged("pipedream", get_network("mlp"), PlatformSpec(2).build(), minibatches=32,
...                                     batch=32)
>>> result.stats.converged
True
"""

from __future__ import annotations

from collections.abc import Callable

from models.network.spec import NetworkSpec, weight_layers
from schedules.passes import Placement
from schedules.registry import build_schedule, method, schedule_builder
from schedules.schedule import Schedule
from simulator.engine import SimResult, simulate
from simulator.engine.window import exact_steps, orders_period, schedule_period
from simulator.trace import TraceSink

#: how far :func:`run_until_converged` lengthens a run, as a multiple of the minibatches asked for (or
#: of what the exact steady state needs): only schedules whose orders never repeat (some list-scheduled
#: LayerPipe orders drift for hundreds of steps) go that far
MAX_LENGTHENING = 32
#: minibatches of the sequential reference (its steady state is reached at once: one processor)
REFERENCE_MINIBATCHES = 4


def auto_minibatches(network: NetworkSpec) -> int:
    """Enough optimizer steps for a steady state: the measured window starts once a schedule's
    pipeline is full (up to L steps in flight for L weight layers) and must span several steps.

    >>> from models.network.zoo import get_network
    >>> auto_minibatches(get_network("mlp")), auto_minibatches(get_network("vgg16"))
    (32, 68)
    """
    return max(32, 4 * (len(weight_layers(network)) + 1))


def _placement_period(placement: Placement, units: int) -> int:
    """The placement's period where the run shows it (two whole periods), else 1: a round robin
    over more replicas than half the run does not repeat within it (its update rounds, part of
    the schedule's period, still say how long it is)."""
    return placement.period if 2 * placement.period <= units else 1


def shortest_exact_steps(sched: Schedule) -> int:
    """The fewest steps of ``sched``'s method whose run holds one period of its orders for the exact
    steady state (:func:`simulator.engine.window.exact_steps`), the period read from ``sched``'s
    own orders where they repeat (else the schedule's own period, its replicas' round robin included)."""
    base = schedule_period(sched, _placement_period(Placement(sched), sched.units))[1] * sched.microbatches_per_step
    orders = [sched.orders[p] for p in range(sched.processors)]
    period = orders_period(orders, sched.units, sched.rule.depth_units(), base)
    return exact_steps(sched, fold=1, period_units=period or base)


def converge(build: Callable[[int], Schedule], platform, minibatches: int,
             trace: Callable[[], TraceSink] | None = None, record_versions: bool = False, *,
             shortest: bool = False) -> tuple[Schedule, SimResult]:
    """Simulate ``build(n)`` for n = ``minibatches``, lengthening the run until its exact steady
    state is known (:attr:`simulator.engine.SimStats.exact`: its orders repeat over the slice it
    logged, and so do its events).

    The first run is at least as long as one period of its orders needs
    (:func:`shortest_exact_steps`); with ``shortest`` (the default run length) it is exactly that
    long, even when shorter than ``minibatches``. Each further try at least doubles the run and
    is at least as long as one period of the orders it found needs, up to
    :data:`MAX_LENGTHENING` x ``minibatches`` or what four periods need.
    When no length gives it, the longest run is kept: :func:`simulator.metrics.summarize` reports
    its window if that converged, else "not measured". ``trace`` makes a fresh sink for each
    try; ``record_versions`` records the weight versions every task used (``SimResult.versions``)."""
    n, cap = minibatches, MAX_LENGTHENING * minibatches
    sched = build(n)
    # a run shorter than one period of its orders needs is never exact: do not simulate it
    short = shortest_exact_steps(sched)
    cap = max(cap, short)
    if short != n and (shortest or short > n):
        n = short
        sched = build(n)
    while True:
        result = simulate(sched, platform, trace=trace() if trace is not None else None,
                          record_versions=record_versions)
        if result.stats.exact or result.stats.steps <= 1:
            return sched, result
        placement_period = _placement_period(result.executable.placement, sched.units)
        period = result.stats.orders_period
        cap = max(cap, exact_steps(sched, placement_period, 4, period))
        if n >= cap:
            return sched, result
        n = min(max(exact_steps(sched, placement_period, 1, period), 2 * n), cap)
        sched = build(n)


def run_until_converged(name: str, network: NetworkSpec, platform, *, minibatches: int | None, batch: int,
                        trace: Callable[[], TraceSink] | None = None, record_versions: bool = False,
                        **options) -> tuple[Schedule, SimResult]:
    """Build method ``name`` (``options`` as :func:`schedules.registry.build_schedule` takes them)
    and simulate it until its steady state has converged (:func:`converge`; ``minibatches`` None:
    from the shortest run that can give it, :func:`shortest_exact_steps`); the method plans once and
    only orders again for each length tried (:func:`schedules.registry.schedule_builder`)."""
    n = auto_minibatches(network) if minibatches is None else minibatches
    return converge(schedule_builder(name, network, platform, batch=batch, **options), platform, n, trace,
                    record_versions, shortest=minibatches is None)


def sequential_reference(network: NetworkSpec, platform, *, batch: int, minibatches: int = REFERENCE_MINIBATCHES,
                         **options) -> tuple[Schedule, SimResult]:
    """The sequential reference: every task of the step in order on processor 0 (its cycles per
    minibatch are the sum of the step's task cycles however many minibatches run)."""
    opts = {k: v for k, v in options.items() if method("sequential").accepts(k)}
    sched = build_schedule("sequential", network, platform, minibatches=minibatches, batch=batch, **opts)
    return sched, simulate(sched, platform)


__all__ = ["MAX_LENGTHENING", "REFERENCE_MINIBATCHES", "auto_minibatches", "converge", "run_until_converged",
           "sequential_reference", "shortest_exact_steps"]
