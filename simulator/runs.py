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
from schedules.registry import build_schedule, method, schedule_builder
from schedules.schedule import Schedule
from simulator.engine import SimResult, simulate
from simulator.engine.window import exact_steps
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


def converge(build: Callable[[int], Schedule], platform, minibatches: int,
             trace: Callable[[], TraceSink] | None = None, record_versions: bool = False) -> tuple[Schedule, SimResult]:
    """Simulate ``build(n)`` for n = ``minibatches``, doubling n (up to :data:`MAX_LENGTHENING`
    times) until the run's exact steady state is known (:attr:`simulator.engine.SimStats.exact`:
    two periods of its steady-state window repeat). When no length gives it, the longest run
    is kept: :func:`simulator.metrics.summarize` reports its window if that converged, else
    "not measured". ``trace`` makes a fresh sink for each try;
    ``record_versions`` records the weight versions every task used (``SimResult.versions``)."""
    n, cap = minibatches, MAX_LENGTHENING * minibatches
    while True:
        sched = build(n)
        result = simulate(sched, platform, trace=trace() if trace is not None else None,
                          record_versions=record_versions)
        if result.stats.exact or result.stats.steps <= 1 or n >= cap:
            return sched, result
        # as long as the exact steady state needs (the plan fixes the period), at least twice as long
        needed = exact_steps(sched, result.executable.placement.period)
        cap = max(cap, needed)
        n = min(max(2 * n, needed), cap)


def run_until_converged(name: str, network: NetworkSpec, platform, *, minibatches: int, batch: int,
                        trace: Callable[[], TraceSink] | None = None, record_versions: bool = False,
                        **options) -> tuple[Schedule, SimResult]:
    """Build method ``name`` (``options`` as :func:`schedules.registry.build_schedule` takes them)
    and simulate it until its steady state has converged (:func:`converge`); the method plans once
    and only orders again for each length tried (:func:`schedules.registry.schedule_builder`)."""
    return converge(schedule_builder(name, network, platform, batch=batch, **options), platform, minibatches, trace,
                    record_versions)


def sequential_reference(network: NetworkSpec, platform, *, batch: int, minibatches: int = REFERENCE_MINIBATCHES,
                         **options) -> tuple[Schedule, SimResult]:
    """The sequential reference: every task of the step in order on processor 0 (its cycles per
    minibatch are the sum of the step's task cycles however many minibatches run)."""
    opts = {k: v for k, v in options.items() if method("sequential").accepts(k)}
    sched = build_schedule("sequential", network, platform, minibatches=minibatches, batch=batch, **opts)
    return sched, simulate(sched, platform)


__all__ = ["MAX_LENGTHENING", "REFERENCE_MINIBATCHES", "auto_minibatches", "converge", "run_until_converged",
           "sequential_reference"]
