"""LayerPipe (Unnikrishnan & Parhi, arXiv 2108.06629): intra- and inter-layer pipelining.

Task model (docs/design.md section 3): the backward of layer l is three independent pieces,
WG_l, AG1_l (on layer l) and AG2_{l-1} (moved to layer l-1, which holds z_{l-1}), so only
g_{l-1} crosses a stage boundary and WG_l is off the critical path.

The multiprocessor scheduler, in three steps (chosen because each is exact or a
well-understood heuristic, and together they are fast enough for sweeps):

1. **Partition** (dynamic programming, ``schedules.planning.partition``): contiguous layer ranges
   onto P processors minimising the slowest stage, with the link model pricing each cut;
   the planner runs over LayerPipe's per-layer cycles and over PipeDream's grouping of the
   same tasks, with stage replication when P exceeds the layers, and the list-scheduling
   simulation of step 3 picks the fastest candidate. Contiguity keeps activations and
   weights where they are produced and used.
2. **Balance** (intra-layer offloading, steepest descent): weight-gradient tasks are
   independent of everything but delta_l and the stored input, so a WG may move to any
   other processor, and AG2_{l-1} may stay with layer l (PipeDream's placement) when the
   inter-layer split would load an already busy stage; a move is a candidate when it lowers
   the estimated period
   max(processor loads, link-direction loads, recurrence bound), and the few best moves are
   then checked by simulating the list schedule (step 3) over a few dozen minibatches: a
   move is kept only if the simulated period falls. The recurrence bound is the delay
   rule's loop for each layer, longest path F_l ~> U_l (transfers included) / (1 + S(l));
   moving a WG away puts two transfers on that loop, and on busy processors every hop also
   queues, which only the simulation sees. This is where LayerPipe beats a contiguous
   partition: a dominant layer's WG (a third of its work) can run on an idle neighbour.
3. **Order** (list scheduling, ``schedules.planning.listsched``): oldest minibatch first, then
   HEFT's upward rank (critical path), simulated with the cost model's cycles.

Delays follow LayerPipe's retiming: every layer is its own pipeline stage, so layer l's
gradients are S(l) = L - l updates stale (Delay = 2 S(l) slots) and stashing keeps
S(l) + 1 versions; on one processor there is no pipeline and no delay. LayerPipe2 (``schedules.methods.layerpipe2``) groups layers to cut the delays.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from models.graph.build import training_graph
from models.graph.tasks import Task, TaskKind, edge_bytes, num_layers, update_tasks
from models.network.spec import NetworkSpec
from schedules.delays import DelayRule
from schedules.planning.candidates import candidate_plans
from schedules.planning.listsched import estimated_period, list_orders
from schedules.planning.partition import StagePlan
from schedules.planning.stages import processor_ranges, stage_staleness
from schedules.schedule import Schedule
from simulator.hardware import Hardware

#: tasks that may leave their layer's processor (they read no weights and write none):
#: WG anywhere; AG2_p only to the processor of p's first consumer, where PipeDream runs it
MOVABLE = (TaskKind.WG, TaskKind.AG2)


def _targets(template: nx.DiGraph, placement: dict[Task, int], task: Task, processors: int) -> list[int]:
    if task[0] == TaskKind.WG:
        return [q for q in range(processors) if q != placement[task]]
    forward = Task(TaskKind.F, task[1])
    consumers = sorted(c for c in template.successors(forward) if c[0] == TaskKind.F)
    home = {placement[forward], *(placement[c] for c in consumers[:1])}
    return sorted(home - {placement[task]})


def initial_placement(template: nx.DiGraph, plan: StagePlan) -> dict[Task, int]:
    stage_proc = {}
    for s, (a, b, _) in enumerate(plan.stages):
        for l in range(a, b + 1):
            stage_proc[l] = s
    return {n: stage_proc[n[1]] for n in template}


class _Costs:
    """The template's costs, computed once per planning call (not once per trial move): task
    cycles per (task, processor), transfer cycles per edge, successors and topological order."""

    def __init__(self, template: nx.DiGraph, hw: Hardware):
        self.template, self.hw = template, hw
        self.order = list(nx.topological_sort(template))
        self.index = {n: i for i, n in enumerate(self.order)}
        self.edge = {(u, v): hw.transfer(edge_bytes(template, u, v)) for u, v in template.edges}
        self.succ = {n: [(v, self.edge[(n, v)]) for v in template.successors(n)] for n in template}
        self.pred = {n: [(u, self.edge[(u, n)]) for u in template.predecessors(n)] for n in template}
        self.updates = update_tasks(template)
        self._cycles: dict[tuple[Task, int], int] = {}

    def cycles(self, task: Task, p: int) -> int:
        key = (task, p)
        if key not in self._cycles:
            self._cycles[key] = self.hw.cycles(self.template, task, p)
        return self._cycles[key]


def estimated_loads(template: nx.DiGraph, placement: dict[Task, int], hw: Hardware, processors: int,
                    costs: _Costs | None = None):
    """Per-unit busy cycles of each processor and of each directed processor pair."""
    c = costs or _Costs(template, hw)
    proc = [0] * processors
    for n, p in placement.items():
        proc[p] += c.cycles(n, p)
    link: dict[tuple[int, int], int] = defaultdict(int)
    for (u, v), cyc in c.edge.items():
        a, b = placement[u], placement[v]
        if a != b:
            link[(a, b)] += cyc
    return proc, link


def recurrence_bound(template: nx.DiGraph, placement: dict[Task, int], hw: Hardware, rule: DelayRule,
                     costs: _Costs | None = None) -> float:
    """max over layers of (longest path from F_l to l's update, with transfers) / (1 + S(l))."""
    c = costs or _Costs(template, hw)
    order = c.order
    cost = {n: c.cycles(n, placement[n]) for n in order}
    bound = 0.0
    for l, ups in c.updates.items():
        start = Task(TaskKind.F, l)
        if start not in c.index:
            continue
        finish = {start: cost[start]}
        for n in order[c.index[start]:]:  # nothing before F_l in topological order is reachable from it
            if n not in finish:
                continue
            here, fn = placement[n], finish[n]
            for v, hop in c.succ[n]:
                arrive = fn + (hop if here != placement[v] else 0)
                if arrive + cost[v] > finish.get(v, -1):
                    finish[v] = arrive + cost[v]
        path = max((finish[u] for u in ups if u in finish), default=0)
        bound = max(bound, path / (1 + rule.staleness(l)))
    return bound


def balance(template: nx.DiGraph, placement: dict[Task, int], hw: Hardware, processors: int,
            rule: DelayRule, tries: int = 4) -> dict[Task, int]:
    """Move weight-gradient tasks while the simulated period decreases (module docstring).

    Candidate moves are ranked by the analytic period estimate; the ``tries`` best are
    checked by list-scheduling simulation and the first that shortens the simulated
    steady-state period by more than 0.5% is kept. A move's processor and link loads are
    updated from the loads before it (only the moved task's processors and edges change), and
    its recurrence bound is computed only when those loads leave it a chance to beat the
    estimate: the candidates are exactly those of pricing every move in full.
    """
    placement = dict(placement)
    units = planning_units(processors)
    costs = _Costs(template, hw)

    def simulated(pl) -> float:
        return estimated_period(template, pl, units, cost=costs.cycles, comm=hw.transfer, rule=rule, hops=hw.hops)

    current = simulated(placement)
    while True:
        for _, n, q in candidate_moves(template, placement, hw, processors, rule, costs)[:tries]:
            trial = {**placement, n: q}
            period = simulated(trial)
            if period < 0.995 * current:
                placement, current = trial, period
                break
        else:
            return placement


def candidate_moves(template: nx.DiGraph, placement: dict[Task, int], hw: Hardware, processors: int,
                    rule: DelayRule, costs: _Costs | None = None) -> list[tuple[float, Task, int]]:
    """Every single move (a WG or AG2 to another processor, :data:`MOVABLE`) whose analytic period
    estimate, max(processor loads, link loads, recurrence bound), is below the placement's own, as
    sorted ``(estimate, task, processor)``. Loads are updated from the placement's (only the moved
    task's processors and edges change) and the recurrence bound is computed only for a move whose
    loads are below the estimate: the same list as pricing every move in full."""
    costs = costs or _Costs(template, hw)
    proc, link = estimated_loads(template, placement, hw, processors, costs)
    estimate = max([*proc, *link.values(), recurrence_bound(template, placement, hw, rule, costs)])
    candidates = []
    for n in sorted(t for t in placement if t[0] in MOVABLE):
        here = placement[n]
        for q in _targets(template, placement, n, processors):
            loads = list(proc)
            loads[here] -= costs.cycles(n, here)
            loads[q] += costs.cycles(n, q)
            if max(loads) >= estimate:  # the move's estimate is at least this: not a candidate
                continue
            links = dict(link)
            for v, hop in costs.succ[n]:
                _move_link(links, (here, placement[v]), (q, placement[v]), hop)
            for u, hop in costs.pred[n]:
                _move_link(links, (placement[u], here), (placement[u], q), hop)
            if max(links.values(), default=0) >= estimate:
                continue
            trial = {**placement, n: q}
            t = max([*loads, *links.values(), recurrence_bound(template, trial, hw, rule, costs)])
            if t < estimate:
                candidates.append((t, n, q))
    return sorted(candidates)


def _move_link(links: dict[tuple[int, int], int], old: tuple[int, int], new: tuple[int, int], cycles: int) -> None:
    """Move an edge's transfer cycles from link ``old`` to link ``new`` (a pair on one processor is no link)."""
    if old[0] != old[1]:
        links[old] -= cycles
        if links[old] == 0:
            del links[old]
    if new[0] != new[1]:
        links[new] = links.get(new, 0) + cycles


def _replicated_placement(plan: StagePlan):
    procs = processor_ranges(plan)
    stage = {l: s for s, (a, b, _) in enumerate(plan.stages) for l in range(a, b + 1)}

    def where(task: Task, unit: int) -> int:
        group = procs[stage[task[1]]]
        return group[unit % len(group)]

    return where


def layerpipe_placement(template: nx.DiGraph, hw: Hardware, stale_of, offload: bool = True,
                        parallelism: str = "hybrid", replicate: bool | None = None, plan: StagePlan | None = None):
    """Partition, then (optionally) offload; ``stale_of(plan)`` gives S(l) for the plan's stages.

    The partition is ``plan``, or LayerPipe's own choice among the shared candidates
    (``schedules.planning.candidates``: the DP over LayerPipe's and PipeDream's grouping of the
    tasks, straight and, in the ``hybrid`` mode, replicated): the one its list-scheduling
    simulation says is fastest. Replicas take units round robin, so a replicated plan's
    placement is a function of (task, unit), and offloading is skipped for it (a replicated
    stage is balanced by construction).
    """
    if plan is None:
        plans = [c.plan for c in candidate_plans(template, hw, parallelism=parallelism, replicate=replicate)]

        def estimate(candidate: StagePlan) -> float:
            rule = plan_rule(candidate, stale_of(candidate))
            placement = _replicated_placement(candidate) if rule.groups else initial_placement(template, candidate)
            units = max(planning_units(hw.size), 4 * rule.depth_units())
            return estimated_period(template, placement, units, cost=lambda t, p: hw.cycles(template, t, p),
                                    comm=hw.transfer, rule=rule, hops=hw.hops)

        plan = plans[0] if len(plans) == 1 else min(plans, key=lambda pl: (estimate(pl), plans.index(pl)))
    rule = plan_rule(plan, stale_of(plan))
    if rule.groups:
        return plan, _replicated_placement(plan), rule
    placement = initial_placement(template, plan)
    if offload:
        placement = balance(template, placement, hw, hw.size, rule)
    return plan, placement, rule


def planning_units(processors: int) -> int:
    """Units the planner's list-scheduling estimates simulate: enough for a steady state of a
    pipeline over ``processors`` stages (the limits guard prices this too)."""
    return 4 * processors + 8


def plan_rule(plan: StagePlan, stale: dict[int, int]) -> DelayRule:
    """The delay rule of a plan: S(l) from ``stale``, and replicated stages updating once per
    round of their replicas."""
    return DelayRule(stale, {l: r for a, b, r in plan.stages if r > 1 for l in range(a, b + 1)})


@dataclass(frozen=True)
class Planned:
    """A LayerPipe-family plan with everything but the run length decided: the task template, the
    stage plan, where every task runs (offloading included) and the delay rule. None of that
    depends on how many minibatches are simulated, so a run lengthened until its steady state
    converges plans once and only orders again (:meth:`schedule`)."""

    name: str
    template: nx.DiGraph
    plan: StagePlan
    placement: object  # task -> processor, or (task, unit) -> processor for replicated stages
    hw: Hardware
    rule: DelayRule
    info: dict = field(default_factory=dict)
    weight_versions: dict[int, int] | None = None  # LayerPipe2's EMA: 2 versions where stale

    def schedule(self, minibatches: int) -> Schedule:
        """The schedule of ``minibatches`` optimizer steps (list-scheduled orders on the placement)."""
        sched = build(self.name, self.template, self.plan, self.placement, self.hw, minibatches, self.rule,
                      **self.info)
        if self.weight_versions is not None:
            sched.weight_versions = dict(self.weight_versions)
        return sched


def build(name: str, template: nx.DiGraph, plan: StagePlan, placement, hw: Hardware, units: int,
          rule: DelayRule, **info) -> Schedule:
    orders = list_orders(template, placement, units, cost=lambda t, p: hw.cycles(template, t, p), comm=hw.transfer,
                         rule=rule, hops=hw.hops)
    moved = [] if callable(placement) else sorted(
        f"{k}{l}->P{p}" for (k, l), p in placement.items() if k in MOVABLE and p != placement[Task(TaskKind.F, l)])
    return Schedule(name, template, orders, delays={l: 2 * s for l, s in rule.stale.items()},
                    update_rounds=dict(rule.groups),
                    info={"stages": [(a, b, r) for a, b, r in plan.stages], "offloaded": moved, **info})


def layer_staleness(layers: int):
    """LayerPipe's retiming: every layer its own stage, S(l) = L - l (none on a single stage)."""
    def stale_of(plan: StagePlan) -> dict[int, int]:
        # one stage (one processor, or pure data parallelism) has nothing to pipeline, so nothing needs to be stale
        return {l: (layers - l if len(plan.stages) > 1 else 0) for l in range(1, layers + 1)}
    return stale_of


def plan_fine_tasks(plan: StagePlan, net: NetworkSpec, hw: Hardware, *, batch: int, word_bytes: int = 2,
                    spike_bits: bool = False, ag_split: str | float = "design", stale_of=stage_staleness,
                    offload: bool = True, placement=None, name: str = "fine") -> Planned:
    """The fine tasks (WG, AG1, AG2 apart) of ``plan`` under ``stale_of``'s delays, for any run
    length: with ``placement`` given (a task -> processor map), on it; otherwise on the plan's
    stages, with weight-gradient offloading when ``offload``. The rungs of ``simulator.explain``
    are these."""
    template = training_graph(net, batch, view="layerpipe", word_bytes=word_bytes, spike_bits=spike_bits,
                             ag_split=ag_split)
    if placement is None:
        plan, placement, rule = layerpipe_placement(template, hw, stale_of, offload, plan=plan)
    else:
        rule = plan_rule(plan, stale_of(plan))
    return Planned(name, template, plan, placement, hw, rule)


def fine_tasks_on(plan: StagePlan, net: NetworkSpec, hw: Hardware, *, minibatches: int, **options) -> Schedule:
    """:func:`plan_fine_tasks` list-scheduled for ``minibatches`` steps."""
    return plan_fine_tasks(plan, net, hw, **options).schedule(minibatches)


def plan_layerpipe(net: NetworkSpec, hw: Hardware, *, batch: int, word_bytes: int = 2, spike_bits: bool = False,
                   offload: bool = True, parallelism: str = "hybrid", replicate: bool | None = None,
                   ag_split: str | float = "design", plan: StagePlan | None = None) -> Planned:
    """LayerPipe's plan on ``hw``'s processors, for any run length (:class:`Planned`)."""
    template = training_graph(net, batch, view="layerpipe", word_bytes=word_bytes, spike_bits=spike_bits,
                             ag_split=ag_split)
    stale_of = layer_staleness(num_layers(template))
    plan, placement, rule = layerpipe_placement(template, hw, stale_of, offload, parallelism, replicate, plan)
    return Planned("layerpipe", template, plan, placement, hw, rule)


def layerpipe(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, **options) -> Schedule:
    """LayerPipe on ``hw``'s processors; ``ag_split`` chooses the reading of the inter-layer split
    (``models.graph.build.training_graph``: "design", "balanced" or a fraction); the options are
    :func:`plan_layerpipe`'s."""
    return plan_layerpipe(net, hw, batch=batch, **options).schedule(minibatches)


__all__ = ["layerpipe", "plan_layerpipe", "Planned", "layerpipe_placement", "balance", "candidate_moves", "estimated_loads", "recurrence_bound", "build", "MOVABLE",
           "planning_units", "plan_rule", "layer_staleness", "fine_tasks_on", "plan_fine_tasks"]
