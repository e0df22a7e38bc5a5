"""Run schedules against their references and report the figures every result carries.

:func:`compare` builds and simulates each schedule on the same network, processor count
and platform, plus the two references of DESIGN section 6: ``sequential`` (one processor,
every task of the step in order) and ``pipedream``. Each row has the fields of the
``simulate``/``compare`` JSON: schedule, network, processors (asked for; ``processors_used``
is how many the schedule occupies), cycles_per_minibatch,
speedup_vs_sequential, speedup_vs_pipedream, utilization_mean, utilization (per
processor), comm_bytes_per_minibatch, comm_overhead (extra bytes over PipeDream as a
fraction of the bytes a step reads and writes), peak_memory_bytes (per processor),
weight_versions and delays (per layer; delays in slots), lower_bound_cycles, efficiency.

>>> from models.network.zoo import get_network
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> rows = compare(get_network("mlp"), ["pipedream"], 1, Platform.homogeneous(1, MacArray(256)), minibatches=2, batch=4)
>>> rows[0]["speedup_vs_sequential"], rows[0]["speedup_vs_pipedream"]
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

from models.network.spec import NetworkSpec
from schedules.registry import build_schedule

from simulator.engine import simulate
from simulator.limits import check_compare
from simulator.metrics import Metrics, summarize


def _row(net: NetworkSpec, m: Metrics, schedule, processors: int) -> dict:
    return {
        "schedule": m.schedule,
        "network": net.name,
        "processors": processors,
        "processors_used": m.processors,
        "platform": m.platform,
        "cycles_per_minibatch": m.cycles_per_minibatch,
        "total_cycles": m.total_cycles,
        "minibatches": m.steps,
        "converged": m.extra.get("converged", True),
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
        "info": {k: v for k, v in schedule.info.items()},
    }


def compare(net: NetworkSpec, schedules: Sequence[str], processors: int, platform, *, minibatches: int = 16,
            batch: int = 32, no_limits: bool = False, **options) -> list[dict]:
    """One row per schedule (see the module docstring); ``options`` go to the builders that take them.

    Runs that would exhaust memory or take hours are refused first (:mod:`simulator.limits`,
    :class:`~simulator.limits.LimitError`) unless ``no_limits`` is true.
    """
    if not no_limits:
        check_compare(net, schedules, processors, minibatches=minibatches, batch=batch, platform=platform,
                      microbatches=options.get("microbatches"), offload=options.get("offload") is not False,
                      replicate=options.get("replicate"))

    def run(name: str):
        opts = {k: v for k, v in options.items() if v is not None and _accepts(name, k)}
        n = minibatches
        while True:
            sched = build_schedule(name, net, processors, platform=platform, minibatches=n, batch=batch, **opts)
            result = simulate(sched, platform)
            # a run must reach its steady state before its rate means anything: lengthen it
            # (up to 16x) until the two halves of the measured window agree (SimStats.converged)
            if result.stats.converged or n >= 16 * minibatches:
                return sched, result
            n *= 2

    _, seq = run_on_one(net, platform, minibatches, batch, **options)
    seq_cycles = seq.stats.cycles_per_step
    pd_sched, pd = run("pipedream")
    pd_metrics = summarize(pd, seq_cycles, pd.stats.cycles_per_step, baseline_bytes=pd.stats.bytes_moved / pd_sched.steps)
    pd_metrics.extra["converged"] = pd.stats.converged
    rows = []
    for name in schedules:
        if name == "pipedream":
            sched, m = pd_sched, pd_metrics
        else:
            sched, result = run(name)
            m = summarize(result, seq_cycles, pd.stats.cycles_per_step, baseline_bytes=pd_metrics.bytes_per_minibatch)
            m.extra["converged"] = result.stats.converged
        rows.append(_row(net, m, sched, processors))
    return rows


def run_on_one(net: NetworkSpec, platform, minibatches: int, batch: int, **options):
    """The sequential reference: every task of the step in order on processor 0."""
    sched = build_schedule("sequential", net, 1, platform=platform, minibatches=min(minibatches, 4), batch=batch,
                           **{k: v for k, v in options.items() if k in _EVERY_SCHEDULE})
    return sched, simulate(sched, platform)


_OPTIONS = {"microbatches": ("gpipe", "1f1b", "zb-h1"),
            "replicate": ("pipedream", "layerpipe", "layerpipe2", "spikepipe"),
            "offload": ("layerpipe", "layerpipe2", "spikepipe"), "groups": ("layerpipe2",), "memory": ("layerpipe2",),
            "ag_split": ("layerpipe", "layerpipe2", "spikepipe")}
_EVERY_SCHEDULE = ("spike_bits",)


def _accepts(schedule: str, option: str) -> bool:
    return option in _EVERY_SCHEDULE or schedule in _OPTIONS.get(option, ())


__all__ = ["compare", "run_on_one"]
