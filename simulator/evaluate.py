"""Run schedules against their references and report the figures every result carries.

:func:`compare` builds and simulates each schedule on the same network and platform, plus
the two references of the metrics (docs/design.md, "Metrics"): ``sequential`` (one
processor, every task of the step in order) and ``pipedream``. Each row has the fields of
the ``simulate``/``compare`` JSON: schedule, network, processors (the platform's;
``processors_used`` is how many the schedule occupies), cycles_per_minibatch,
speedup_vs_sequential, speedup_vs_pipedream, utilization_mean, utilization (per
processor), bubble_rate (the idle share of a step on the busiest processor, the zero-bubble
paper's figure; :mod:`simulator.metrics`), comm_bytes_per_minibatch, comm_overhead (extra bytes over PipeDream as a
fraction of the bytes a step reads and writes), peak_memory_bytes (per processor),
weight_versions and delays (per layer; delays in slots), staleness (per layer: the nominal
S(l) and the realised lags of the steady state, :mod:`simulator.staleness`), lower_bound_cycles,
lower_bound_kind (which bound binds, :attr:`simulator.bounds.Bounds.binding`: the bound is the
schedule's own, as it depends on the processors it uses, its task split and its delays), efficiency.

Every method's plan is chosen the same way (:func:`simulator.selection.choose`: the
fastest simulated candidate that fits the platform's memory), and every run is lengthened
until its steady state has converged (:func:`simulator.runs.run_until_converged`), so the
figures of ``compare``, ``simulate``, sweeps and plots are the same. A row also says which
plan the method runs (``plan``: stages and replicas, the grouping its costs came from, what
the planner predicted) and what every candidate simulated to (``candidates``); when no plan
fits in memory, ``feasible`` is false, ``memory_needed_bytes`` says what the leanest plan
needs, and the row's figures are null.

>>> from models.network.zoo import get_network
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> rows = compare(get_network("mlp"), ["pipedream"], Platform.homogeneous(1, MacArray(256)), minibatches=2, batch=4)
>>> rows[0]["speedup_vs_sequential"], rows[0]["speedup_vs_pipedream"]
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

from models.errors import LayerPipeError
from models.network.spec import NetworkSpec
from schedules.registry import method
from simulator.limits import check_compare
from simulator.metrics import Metrics, summarize
from simulator.runs import REFERENCE_MINIBATCHES, auto_minibatches, sequential_reference
from simulator.selection import Choice, choose
from simulator.staleness import realised_staleness


class NothingFitsError(LayerPipeError):
    """No schedule of a comparison fits the platform's memory (the CLI's one line, exit 2)."""


def check_something_fits(rows: list[dict]) -> None:
    """Raise :class:`NothingFitsError` when no row of a comparison fits in memory, naming what each needs."""
    if rows and not any(r["feasible"] for r in rows):
        from simulator.limits import human_bytes

        needs = ", ".join(f"{r['schedule']} needs {human_bytes(r['memory_needed_bytes'])}" for r in rows)
        raise NothingFitsError(f"nothing fits in {human_bytes(rows[0]['memory_capacity_bytes'])} per processor "
                               f"({needs}): give the processors more memory (--memory-capacity) or add processors")


#: the fields of a row (the simulate/compare JSON), in order
ROW_FIELDS = ("schedule", "network", "processors", "processors_used", "platform", "feasible", "cycles_per_minibatch",
              "total_cycles", "minibatches", "converged", "steady_state", "critical_cycle", "steady_period_minibatches", "speedup_vs_sequential", "speedup_vs_pipedream",
              "utilization_mean", "utilization", "bubble_rate", "comm_bytes_per_minibatch", "comm_overhead",
              "link_busy_cycles_per_minibatch", "transfer_wait_fraction", "peak_memory_bytes", "memory_capacity_bytes",
              "memory_needed_bytes", "weight_versions", "delays", "staleness", "lower_bound_cycles", "lower_bound_kind",
              "efficiency", "plan",
              "candidates", "info")


def _plan(choice: Choice) -> dict | None:
    trial = choice.chosen
    if trial is None or trial.candidate is None:
        return None
    plan = trial.candidate.plan
    m = trial.schedule.microbatches_per_step
    predicted = plan.bottleneck if m == 1 else (m + len(plan.stages) - 1) * plan.bottleneck
    return {**trial.candidate.describe(), "predicted_cycles_per_minibatch": float(predicted)}


def _versions(trial) -> dict[int, int]:
    """Weight versions per layer the memory counted: the most any processor held at once when the
    run recorded them (weight stashing), else the schedule's (EMA: 2)."""
    sched, rec = trial.schedule, trial.result.versions
    if rec is None or sched.weight_versions is not None:
        return sched.versions()
    return {l: rec.versions_kept(l) for l in sched.versions()}


def _row(net: NetworkSpec, choice: Choice, m: Metrics | None, processors: int, platform) -> dict:
    trial = choice.chosen
    row = dict.fromkeys(ROW_FIELDS)
    row.update(schedule=choice.name, network=net.name, processors=processors, platform=platform.describe(),
               feasible=trial is not None, memory_capacity_bytes=choice.capacity,
               memory_needed_bytes=choice.memory_needed, plan=_plan(choice),
               candidates=[t.describe(choice.capacity) for t in choice.trials if t.candidate is not None])
    if trial is None:
        return row
    sched = trial.schedule
    row.update(
        processors_used=m.processors, cycles_per_minibatch=m.cycles_per_minibatch, total_cycles=m.total_cycles,
        minibatches=m.steps, converged=trial.result.stats.converged, steady_state=m.steady_state,
        critical_cycle=m.critical_cycle, steady_period_minibatches=m.steady_period_minibatches,
        speedup_vs_sequential=m.speedup_vs_sequential,
        speedup_vs_pipedream=m.speedup_vs_baseline, utilization_mean=m.mean_utilization, utilization=m.utilization,
        bubble_rate=m.bubble_rate, comm_bytes_per_minibatch=m.bytes_per_minibatch, comm_overhead=m.communication_overhead,
        link_busy_cycles_per_minibatch=m.link_busy_per_minibatch, transfer_wait_fraction=m.transfer_wait_fraction,
        peak_memory_bytes=[x.total for x in m.memory], weight_versions=_versions(trial), delays=sched.layer_delays(),
        staleness=[s.to_dict() for s in realised_staleness(trial.result.versions)],
        lower_bound_cycles=m.lower_bound, lower_bound_kind=m.bounds.binding if m.bounds is not None else None,
        efficiency=m.efficiency, info=dict(sched.info))
    return row


def compare(net: NetworkSpec, schedules: Sequence[str], platform, *, minibatches: int | None = None, batch: int = 32,
            no_limits: bool = False, **options) -> list[dict]:
    """One row per schedule on every processor of ``platform`` (see the module docstring);
    ``options`` go to the methods that accept them (``schedules.registry.OPTIONS``).
    ``minibatches``: at least this many optimizer steps per run; None: each run as short as its
    exact steady state allows (:func:`simulator.runs.run_until_converged`).

    Runs that would exhaust memory or take hours are refused first (:mod:`simulator.limits`,
    :class:`~simulator.limits.LimitError`) unless ``no_limits`` is true. A schedule none of whose
    plans fits the platform's memory gets a row with ``feasible`` false
    (:func:`check_something_fits` refuses a comparison where nothing fits).
    """
    for name in schedules:
        method(name)
    longest = auto_minibatches(net) if minibatches is None else minibatches
    if not no_limits:
        check_compare(net, schedules, platform, minibatches=longest, batch=batch, options=options)
    _, seq = sequential_reference(net, platform, batch=batch, minibatches=min(longest, REFERENCE_MINIBATCHES),
                                  **options)
    seq_cycles = seq.stats.cycles_per_step
    choices = {name: choose(name, net, platform, minibatches=minibatches, batch=batch, **options)
               for name in dict.fromkeys(["pipedream", *schedules])}
    base = choices["pipedream"].chosen
    base_cycles = base.cycles_per_minibatch if base is not None else None
    base_bytes = base.result.stats.bytes_moved / base.schedule.steps if base is not None else None
    rows = []
    for name in schedules:
        trial = choices[name].chosen
        m = summarize(trial.result, seq_cycles, base_cycles, baseline_bytes=base_bytes) if trial is not None else None
        rows.append(_row(net, choices[name], m, platform.size, platform))
    return rows


__all__ = ["compare", "check_something_fits", "NothingFitsError", "ROW_FIELDS"]
