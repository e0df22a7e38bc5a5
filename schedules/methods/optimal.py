"""The optimal schedule of a method's task graph and delays: a reference, not a method to deploy.

For a method M, the *optimal* schedule keeps what M decided about the training (its task
granularity and its delay rule: which weight version every forward may use, the staleness
the accuracy pays for) and frees what M's planner decided about the machine: where every
task runs, in which order, at which interval. It is the best modulo schedule of that graph
and rule on the platform (:mod:`schedules.planning.modulo`), found by CP-SAT within a time
limit, warm-started from M's own placement, with the bound the search proved.

Granularity: LayerPipe, LayerPipe2 and SpikePipe schedule the fine graph (F, WG, AG1, AG2, U
per layer); PipeDream's backward is one task per layer (B_l = AG1_l + AG2_{l-1} + WG_l), so its
optimum is taken over the per-layer ``pipedream`` view, not over its stage template (which would
fix its partition). Methods that flush micro-batches or replicate stages update once per round
of several units; the model has one update per unit, so they are refused with a message.

>>> from models.network.zoo import get_network
>>> from simulator.platform import PlatformSpec
>>> from simulator.hardware import Hardware
>>> from schedules.methods.pipedream import pipedream
>>> hw = Hardware.of(PlatformSpec(2, link="none").build())
>>> ref = pipedream(get_network("mlp"), hw, minibatches=4, batch=8, parallelism="pipeline")
>>> opt = plan_optimal(ref, get_network("mlp"), hw, batch=8, view="pipedream")
>>> opt.solution.status, opt.schedule(6).processors, opt.schedule(6).delays == ref.delays
('optimal', 2, True)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import networkx as nx

from models.errors import ScheduleError
from models.graph.build import training_graph
from models.graph.tasks import task_parts
from models.network.spec import NetworkSpec
from schedules.delays import DelayRule
from schedules.planning.modulo import DEFAULT_TIME_LIMIT, MAX_MODEL_SIZE, ModuloSolution, best_modulo_schedule
from schedules.schedule import Schedule
from simulator.hardware import Hardware

#: the task graphs a reference can be taken over (``training_graph`` views)
VIEWS = ("layerpipe", "pipedream", "zerobubble")


@dataclass(frozen=True)
class OptimalPlan:
    """The solved reference: its task graph, the delays it keeps, and the modulo solution."""

    of: str
    graph: nx.DiGraph
    delays: dict[int, int]
    weight_versions: dict[int, int] | None
    solution: ModuloSolution
    #: the warm start's own schedule of n minibatches: what a model too large to build leaves
    fallback: Callable[[int], Schedule] | None = None
    #: the schedule is the fallback's: the solver found nothing faster than it (see :func:`plan_optimal`)
    keep_reference: bool = False

    @property
    def lower_bound(self) -> Fraction:
        return self.solution.lower_bound_per_unit

    def schedule(self, minibatches: int) -> Schedule:
        """The reference's schedule of ``minibatches`` minibatches: an ordinary :class:`Schedule`."""
        sol = self.solution
        info = {"optimal_of": self.of, "interval": sol.interval, "unroll": sol.unroll,
                "proven_lower_bound": str(self.lower_bound), "solver_status": sol.status,
                "solver_source": sol.source, "solver_tried": [f"{lam}:{what}" for lam, what in sol.tried],
                "solver_deterministic_seconds": round(sol.solver_seconds, 3)}
        if sol.message:
            info["solver_message"] = sol.message
        if self.keep_reference:
            ref = self.fallback(minibatches)
            info["solver_message"] = "; ".join(filter(None, [sol.message, f"the schedule is {self.of}'s own"]))
            return Schedule("optimal", ref.graph, ref.orders, dict(ref.delays), ref.microbatches_per_step,
                            ref.weight_versions, {**ref.info, **info}, dict(ref.update_rounds))
        return Schedule("optimal", self.graph, sol.orders(minibatches, self.graph), dict(self.delays),
                        weight_versions=None if self.weight_versions is None else dict(self.weight_versions),
                        info=info)


def view_for(tasks_per_stage: int | None) -> str | None:
    """The per-layer view a method's optimum is taken over: None (its own graph) for a method on the
    fine graph, else the view its stage templates merge (PipeDream's F, B, U; zero-bubble's F, B, W, U).

    >>> view_for(None), view_for(3), view_for(4)
    (None, 'pipedream', 'zerobubble')
    """
    return {3: "pipedream", 4: "zerobubble"}.get(tasks_per_stage)


def reference_view(reference: Schedule, net: NetworkSpec, *, batch: int, word_bytes: int = 2,
                   spike_bits: bool = False, view: str | None = None) -> nx.DiGraph:
    """The per-layer task graph a reference for ``reference`` is taken over: its own graph when it
    schedules per-layer tasks, else (stage templates) the ``view`` of the network it merges."""
    if view is None:
        return reference.graph
    if view not in VIEWS:
        raise ScheduleError(f"unknown task view {view!r} (known: {', '.join(VIEWS)})")
    return training_graph(net, batch, view=view, word_bytes=word_bytes, spike_bits=spike_bits)


def reference_placement(reference: Schedule, graph: nx.DiGraph) -> dict[Hashable, int]:
    """Where ``reference`` runs each task of ``graph`` (unit 0), matched through the fine tasks
    both are made of: the warm start."""
    where: dict[Hashable, int] = {}
    for p, acts in reference.orders.items():
        for a in acts:
            if a.unit == 0:
                for part, _ in task_parts(reference.graph, a.task):
                    where[part] = p
    out = {}
    for t in graph:
        procs = [where[part] for part, _ in task_parts(graph, t) if part in where]
        if procs:
            out[t] = procs[0]
    return out


def plan_optimal(reference: Schedule, net: NetworkSpec, hw: Hardware, *, batch: int, word_bytes: int = 2,
                 spike_bits: bool = False, view: str | None = None, unroll: int = 1,
                 time_limit: float = DEFAULT_TIME_LIMIT, upper: int | None = None,
                 lower: int | None = None, fallback: Callable[[int], Schedule] | None = None,
                 max_size: int = MAX_MODEL_SIZE, hint_starts: Mapping | None = None) -> OptimalPlan:
    """The optimal reference of ``reference`` (a schedule of ``net`` on ``hw``): the same delays,
    over the task graph of ``view`` (None: the reference's own), warm-started from its placement.

    ``upper``/``lower``: intervals (cycles per ``unroll`` units) known to be feasible-ish and a
    lower bound, from the reference's measured rate and the schedule's bounds. ``fallback(n)``:
    the reference's schedule of n minibatches, kept when the model is too large to build or the search
    found nothing faster than it.
    ``hint_starts``: when each task of one steady-state minibatch of the reference starts, relative
    to its first task (from a trace), for the warm start.
    """
    if reference.update_rounds or reference.microbatches_per_step != 1:
        raise ScheduleError(f"{reference.name} updates once per round of several units (replicated stages or a "
                            "micro-batch flush): the optimal schedule models one update per minibatch; use an "
                            "asynchronous method in the pipeline mode (--parallelism pipeline)")
    graph = reference_view(reference, net, batch=batch, word_bytes=word_bytes, spike_bits=spike_bits, view=view)
    rule = DelayRule.from_delays(reference.delays)
    sol = best_modulo_schedule(graph, hw, rule, unroll=unroll, lower=lower, upper=upper,
                               hint_placement=reference_placement(reference, graph), time_limit=time_limit,
                               max_size=max_size, hint_starts=hint_starts)
    # the reference's own schedule stands in where nothing was solved (unless it is known to be slower),
    # or where the search found no schedule below one known to be slower than the reference; never under
    # a memory capacity, which the fallback (one task at a time, a placement that fits) respects and the
    # reference may not
    slower = upper is not None and upper < sol.interval
    keep = fallback is not None and hw.memory_capacity is None and (
        (sol.status == "too large" and (upper is None or slower))
        or (sol.status == "gap" and sol.source == "sequential" and slower))
    return OptimalPlan(reference.name, graph, dict(reference.delays), reference.weight_versions, sol, fallback, keep)


__all__ = ["OptimalPlan", "plan_optimal", "reference_view", "reference_placement", "view_for", "VIEWS"]
