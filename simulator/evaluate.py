"""Run schedules against their references and report the figures every result carries.

:func:`compare` builds and simulates each schedule on the same network and platform, plus
the two references of the metrics (docs/design.md, "Metrics"): ``sequential`` (one
processor, every task of the step in order) and ``pipedream``. Each row has the fields of
the ``simulate``/``compare`` JSON: schedule, network, processors (the platform's;
``processors_used`` is how many the schedule occupies), cycles_per_minibatch,
speedup_vs_sequential, speedup_vs_pipedream, utilization_mean, utilization (per
processor), comm_bytes_per_minibatch, comm_overhead (extra bytes over PipeDream as a
fraction of the bytes a step reads and writes), peak_memory_bytes (per processor),
weight_versions and delays (per layer; delays in slots), lower_bound_cycles, efficiency.

Every run is lengthened until its steady state has converged (:func:`run_until_converged`),
so the figures of ``compare``, ``simulate``, sweeps and plots are the same.

>>> from models.network.zoo import get_network
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> rows = compare(get_network("mlp"), ["pipedream"], Platform.homogeneous(1, MacArray(256)), minibatches=2, batch=4)
>>> rows[0]["speedup_vs_sequential"], rows[0]["speedup_vs_pipedream"]
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.network.spec import NetworkSpec, weight_layers
from schedules.registry import build_schedule, method
from schedules.schedule import Schedule
from simulator.engine import SimResult, simulate
from simulator.limits import check_compare
from simulator.metrics import Metrics, summarize
from simulator.trace import TraceSink

#: how far :func:`run_until_converged` lengthens a run, as a multiple of the minibatches asked for
MAX_LENGTHENING = 16
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


def run_until_converged(name: str, network: NetworkSpec, platform, *, minibatches: int, batch: int,
                        trace: Callable[[], TraceSink] | None = None, **options) -> tuple[Schedule, SimResult]:
    """Build and simulate ``name``, doubling the minibatches (up to :data:`MAX_LENGTHENING` times
    the ``minibatches`` asked for) until the two halves of the measured window agree
    (:attr:`simulator.engine.SimStats.converged`). ``trace`` makes a fresh sink for each try."""
    n = minibatches
    while True:
        sched = build_schedule(name, network, platform, minibatches=n, batch=batch, **options)
        result = simulate(sched, platform, trace=trace() if trace is not None else None)
        if result.stats.converged or n >= MAX_LENGTHENING * minibatches:
            return sched, result
        n *= 2


def sequential_reference(network: NetworkSpec, platform, *, batch: int, minibatches: int = REFERENCE_MINIBATCHES,
                         **options) -> tuple[Schedule, SimResult]:
    """The sequential reference: every task of the step in order on processor 0 (its cycles per
    minibatch are the sum of the step's task cycles however many minibatches run)."""
    opts = {k: v for k, v in options.items() if method("sequential").accepts(k)}
    sched = build_schedule("sequential", network, platform, minibatches=minibatches, batch=batch, **opts)
    return sched, simulate(sched, platform)


def _row(net: NetworkSpec, m: Metrics, schedule: Schedule, processors: int, converged: bool) -> dict:
    return {
        "schedule": m.schedule,
        "network": net.name,
        "processors": processors,
        "processors_used": m.processors,
        "platform": m.platform,
        "cycles_per_minibatch": m.cycles_per_minibatch,
        "total_cycles": m.total_cycles,
        "minibatches": m.steps,
        "converged": converged,
        "speedup_vs_sequential": m.speedup_vs_sequential,
        "speedup_vs_pipedream": m.speedup_vs_baseline,
        "utilization_mean": m.mean_utilization,
        "utilization": m.utilization,
        "comm_bytes_per_minibatch": m.bytes_per_minibatch,
        "comm_overhead": m.communication_overhead,
        "link_busy_cycles_per_minibatch": m.link_busy_per_minibatch,
        "transfer_wait_fraction": m.transfer_wait_fraction,
        "peak_memory_bytes": [x.total for x in m.memory],
        "weight_versions": schedule.versions(),
        "delays": schedule.layer_delays(),
        "lower_bound_cycles": m.lower_bound,
        "efficiency": m.efficiency,
        "info": dict(schedule.info),
    }


def compare(net: NetworkSpec, schedules: Sequence[str], platform, *, minibatches: int = 16, batch: int = 32,
            no_limits: bool = False, **options) -> list[dict]:
    """One row per schedule on every processor of ``platform`` (see the module docstring);
    ``options`` go to the methods that accept them (``schedules.registry.OPTIONS``).

    Runs that would exhaust memory or take hours are refused first (:mod:`simulator.limits`,
    :class:`~simulator.limits.LimitError`) unless ``no_limits`` is true.
    """
    for name in schedules:
        method(name)
    if not no_limits:
        check_compare(net, schedules, platform, minibatches=minibatches, batch=batch, options=options)
    _, seq = sequential_reference(net, platform, batch=batch, minibatches=min(minibatches, REFERENCE_MINIBATCHES),
                                  **options)
    seq_cycles = seq.stats.cycles_per_step

    def run(name: str) -> tuple[Schedule, SimResult]:
        return run_until_converged(name, net, platform, minibatches=minibatches, batch=batch, **options)

    pd_sched, pd = run("pipedream")
    pd_cycles = pd.stats.cycles_per_step
    pd_metrics = summarize(pd, seq_cycles, pd_cycles, baseline_bytes=pd.stats.bytes_moved / pd_sched.steps)
    rows = []
    for name in schedules:
        if name == "pipedream":
            sched, result, m = pd_sched, pd, pd_metrics
        else:
            sched, result = run(name)
            m = summarize(result, seq_cycles, pd_cycles, baseline_bytes=pd_metrics.bytes_per_minibatch)
        rows.append(_row(net, m, sched, platform.size, result.stats.converged))
    return rows


__all__ = ["compare", "run_until_converged", "sequential_reference", "auto_minibatches", "MAX_LENGTHENING"]
