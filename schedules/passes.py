"""Passes that turn a compute-only :class:`Schedule` into an executable one.

* :func:`validate` checks that every task of every unit is placed exactly once and
  refers to a task of the graph (an update may run once per round instead, see below),
  then runs the orders symbolically (no times) and raises :class:`DeadlockError` naming
  the blocked task and what it waits for when the orders, dependencies and delays can
  never all be satisfied.
* :func:`insert_transfers` adds the communication implied by edges whose ends run on
  different processors. A tensor crosses to a given processor once per unit, however
  many tasks there read it (PipeDream's backward re-reads the activation its forward
  received). When a layer's weights are updated on one processor and read by a forward
  on another, the engine sends the new weights after each update (``weight_readers``).

**Updates once per round** (docs/design.md section 4). A processor that accumulates the
gradients of several units of one update round (a flush schedule's stage, which runs all m
micro-batches of a step) applies the update once: the orders may leave out the U instance of
a unit, provided every gradient task of that unit (U's predecessors) runs on one processor and
a U instance of the same round runs on that processor after them. The engine and the bounds
count the instances the orders have (:meth:`Placement.instances`).

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from schedules.schedule import Schedule, parse_orders
>>> g = uniform_pipeline_graph(2, f=1, b=1, w=1, act_bytes=8)
>>> s = Schedule("hand", g, parse_orders("P0: F1.0 B1.0 W1.0; P1: F2.0 B2.0 W2.0"))
>>> ex = insert_transfers(validate(s))
>>> [(t.tensor, t.src, t.dst, t.bytes) for t in ex.transfers_after(("F", 1), 0)]
[(('a', 1), 0, 1, 8)]
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from fractions import Fraction
from operator import itemgetter

from models.errors import DeadlockError, ScheduleError
from models.graph.tasks import (
    Task,
    TaskKind,
    edge_bytes,
    edge_tensor,
    layer_infos,
    param_bytes,
    task_layers,
    update_tasks,
    weight_readers,
)
from schedules.schedule import Action, Schedule


@dataclass(frozen=True)
class Transfer:
    """One tensor sent from ``src`` to ``dst`` after ``producer`` ends, read by ``consumers``."""

    producer: Task
    tensor: Hashable
    src: int
    dst: int
    bytes: int
    consumers: tuple[Task, ...]


class Placement:
    """Processor of ``(kind, layer)`` for unit ``i``: ``procs[i % len(procs)]``.

    Built from the orders, so hand-written and generated schedules agree; periodic
    placements (one processor, or round-robin over replicas) stay compact whatever the
    number of units, and anything else falls back to one entry per unit.
    """

    def __init__(self, schedule: Schedule, units: int | None = None):
        by_task: dict[tuple, dict[int, int]] = defaultdict(dict)
        for p, actions in schedule.orders.items():
            for kind, layer, unit in actions:  # (kind, layer) keys: equal to, and cheaper than, Task(kind, layer)
                by_task[(kind, layer)][unit] = p
        self.units = units = schedule.units if units is None else units
        self._cycle: dict[Task, tuple[int, ...]] = {}
        self._present: dict[Task, int] = {}
        for key, per_unit in by_task.items():
            task = Task(*key)
            procs = set(per_unit.values())
            if len(procs) == 1 and len(per_unit) == units:  # the common case: every unit on one processor
                self._cycle[task] = (procs.pop(),)
            else:
                self._cycle[task] = _shortest_period([per_unit.get(i, -1) for i in range(units)])
            self._present[task] = len(per_unit)
        self.period = math.lcm(*(len(c) for c in self._cycle.values())) if self._cycle else 1

    def __call__(self, task: Task, unit: int) -> int:
        """The processor of ``task`` in ``unit``; -1 when the orders leave that instance out."""
        cycle = self._cycle[task]
        return cycle[unit % len(cycle)]

    def processors_of(self, task: Task) -> tuple[int, ...]:
        return tuple(sorted({p for p in self._cycle[task] if p >= 0}))

    def instances(self, task: Task) -> int:
        """Units of the run (of :attr:`units`) whose orders run ``task``."""
        return self._present.get(task, 0)


def instances_per_step(schedule: Schedule, placement: Placement | None = None) -> dict[Task, Fraction]:
    """Instances of every template task per optimizer step: m for a task every unit runs, fewer
    for an update applied once per round (see the module docstring)."""
    placement = placement if placement is not None else Placement(schedule)
    m = schedule.microbatches_per_step
    return {t: Fraction(m * placement.instances(t), max(1, placement.units)) for t in schedule.graph}


def _shortest_period(seq: list[int]) -> tuple[int, ...]:
    for r in range(1, len(seq) + 1):
        if all(seq[i] == seq[i - r] for i in range(r, len(seq))):
            return tuple(seq[:r])
    return tuple(seq)


def validate(schedule: Schedule) -> Schedule:
    """Check placement completeness and freedom from deadlock; return the schedule.

    Raises :class:`ScheduleError` for an unknown, duplicated or missing task and
    :class:`DeadlockError` when the orders can never finish.
    """
    graph = schedule.graph
    units = schedule.units
    # the fast path builds the map at C speed; a duplicate or unknown task is then found and named in order
    seen: dict[Action, int] = {a: p for p, actions in schedule.orders.items() for a in actions}
    if len(seen) != sum(len(acts) for acts in schedule.orders.values()) or not set(
            map(itemgetter(0, 1), seen)) <= set(graph.nodes):
        seen = {}
        for p, actions in schedule.orders.items():
            for a in actions:
                if a.task not in graph:
                    raise ScheduleError(f"P{p} runs {a}, but the task graph has no task {a.kind}{a.layer}")
                if a in seen:
                    raise ScheduleError(f"{a} is scheduled twice (on P{seen[a]} and P{p})")
                seen[a] = p
    if len(seen) != units * graph.number_of_nodes():
        for i in range(units):
            for task in sorted(graph.nodes):
                if Action(task[0], task[1], i) not in seen and not TaskKind(task[0]).is_update:
                    raise ScheduleError(f"{Action(task[0], task[1], i)} is never scheduled (every task of units "
                                        f"0..{units - 1} must run once)")
        _check_round_updates(schedule, seen)
    unknown = set(schedule.delays) - set(layer_infos(graph) or schedule.delays)
    if unknown:
        raise ScheduleError(f"delays name layers the network does not have: {sorted(unknown)}")
    _check_deadlock(schedule, units)
    return schedule


def _check_round_updates(schedule: Schedule, where: dict[Action, int]) -> None:
    """An update left out of a unit must be applied later in its round on the processor that
    computed that unit's gradients (see the module docstring)."""
    graph, rule, units = schedule.graph, schedule.rule, schedule.units
    position = {a: (p, i) for p, acts in schedule.orders.items() for i, a in enumerate(acts)}
    for task in sorted(n for n in graph if TaskKind(n[0]).is_update):
        kind, index = task[0], task[1]
        layer = (task_layers(graph, task) or (index,))[0]
        for u in range(units):
            if Action(kind, index, u) in where:
                continue
            preds = [Action(q[0], q[1], u) for q in graph.predecessors(task)]
            procs = {where[a] for a in preds if a in where}
            last = max((position[a][1] for a in preds if a in position), default=-1)
            r = rule.round_of(layer, u)
            later = [v for v in rule.round_units(layer, r, units)
                     if Action(kind, index, v) in position and position[Action(kind, index, v)][0] in procs
                     and position[Action(kind, index, v)][1] > last]
            if len(procs) != 1 or not later:
                raise ScheduleError(f"{Action(kind, index, u)} is never scheduled, and no update of its "
                                    f"round runs after its gradients on their processor (an update runs once per "
                                    f"unit, or once per round after every gradient of the round)")


def _check_deadlock(schedule: Schedule, units: int) -> None:
    """Run the orders without time; every action needs its predecessors and weights.

    Tasks are numbered, and a task instance is the integer ``code + tasks x unit``, so the run
    touches no tuples; a blocked run is then explained from the same state in readable terms."""
    graph = schedule.graph
    rule = schedule.rule
    nodes = sorted(graph.nodes)
    code = {n: i for i, n in enumerate(nodes)}
    T = len(nodes)
    preds = [tuple(code[q] for q in graph.predecessors(n)) for n in nodes]
    fwd = weight_readers(graph)
    upd = update_tasks(graph)
    # per task: (layer, g_l, S(l)) of each layer whose updates its forward awaits (the delay rule's
    # awaited round, unit // g_l - 1 - S(l), inlined), and (layer, g_l) of each layer it updates
    reads = [tuple((l, rule.group(l), rule.staleness(l)) for l in fwd.get(n, ()) if l in upd) for n in nodes]
    updates_of: list[list[tuple[int, int]]] = [[] for _ in nodes]
    for l, tasks in upd.items():
        for t in tasks:
            updates_of[code[t]].append((l, rule.group(l)))
    placement = Placement(schedule, units)

    pending_updates: dict[tuple[int, int], int] = {}
    every_unit = {t for ts in upd.values() for t in ts if placement.instances(t) == units}

    def pending(l: int, round_: int) -> int:
        """Update-task instances of layer ``l`` in ``round_`` still to run (all of them release its weights)."""
        key = (l, round_)
        if key not in pending_updates:
            span = rule.round_units(l, round_, units)
            pending_updates[key] = sum(len(span) if t in every_unit else sum(1 for v in span if placement(t, v) >= 0)
                                       for t in upd[l])
        return pending_updates[key]

    done: set[int] = set()
    orders = {p: [(code[(a[0], a[1])], a[2]) for a in acts] for p, acts in schedule.orders.items()}
    head = {p: 0 for p in orders}
    waiting_task: dict[int, list[int]] = defaultdict(list)
    waiting_update: dict[tuple[int, int], list[int]] = defaultdict(list)
    ready = deque(sorted(orders))

    while ready:
        p = ready.popleft()
        actions = orders[p]
        i, n = head[p], len(actions)
        while i < n:
            c, unit = actions[i]
            base = T * unit
            blocked = False
            for q in preds[c]:
                if q + base not in done:
                    waiting_task[q + base].append(p)
                    blocked = True
                    break
            if not blocked:
                for l, g, s in reads[c]:
                    step = unit // g - 1 - s
                    if step >= 0 and pending(l, step) > 0:
                        waiting_update[(l, step)].append(p)
                        blocked = True
                        break
            if blocked:
                break
            i += 1
            done.add(c + base)
            woken = waiting_task.pop(c + base, None)
            for l, g in updates_of[c]:
                key = (l, unit // g)
                left = pending(*key) - 1
                pending_updates[key] = left
                if left == 0:
                    woken = (woken or []) + waiting_update.pop(key, [])
            if woken:
                ready.extend(woken)
        head[p] = i

    blocked_procs = [p for p in sorted(orders) if head[p] < len(orders[p])]
    if blocked_procs:
        def missing(task: Task, unit: int) -> Hashable | None:
            for q in graph.predecessors(task):
                if code[q] + T * unit not in done:
                    return ("task", q, unit)
            for l in fwd.get(task, ()):
                step = rule.awaited_round(l, unit)
                if step >= 0 and l in upd and pending(l, step) > 0:
                    return ("update", l, step)
            return None

        where = {a: p for p, acts in schedule.orders.items() for a in acts}
        p = blocked_procs[0]
        a = schedule.orders[p][head[p]]
        need = missing(a.task, a.unit)
        if need[0] == "task":
            dep = Action(need[1].kind, need[1].layer, need[2])
            q = where[dep]
            holder = schedule.orders[q][head[q]]
            why = f"waits for {dep} on P{q}, which is stuck behind {holder}" if holder != dep else f"waits for {dep} on P{q}"
        else:
            _, l, step = need
            why = f"waits for the round-{step} weight update of layer {l} (delay {schedule.delays.get(l, 0)} slots)"
        raise DeadlockError(f"deadlock: {a} on P{p} can never start: it {why}", task=a, waits_for=need)


@dataclass
class ExecutableSchedule:
    """A validated schedule with its placement and the transfers it implies."""

    schedule: Schedule
    placement: Placement
    _plans: dict[tuple[Task, int], tuple[Transfer, ...]]
    #: layer -> (parameter bytes, processors running a forward that reads the layer's weights)
    weight_readers: dict[int, tuple[int, tuple[int, ...]]]

    def transfers_after(self, task: Task, unit: int) -> tuple[Transfer, ...]:
        """Transfers that start when ``task`` of ``unit`` ends (same-unit data)."""
        return self._plans.get((task, unit % self.placement.period), ())

    def incoming(self, task: Task, unit: int) -> list[tuple[Task, Transfer]]:
        """``(producer, transfer)`` pairs that ``task`` of ``unit`` must receive first."""
        result = []
        for q in self.schedule.graph.predecessors(task):
            for t in self.transfers_after(q, unit):
                if task in t.consumers:
                    result.append((q, t))
        return result


def insert_transfers(schedule: Schedule) -> ExecutableSchedule:
    """Derive the transfers of every cross-processor edge (see the module docstring)."""
    graph = schedule.graph
    placement = Placement(schedule)
    plans: dict[tuple[Task, int], tuple[Transfer, ...]] = {}
    for u in graph.nodes:
        for r in range(placement.period):
            src = placement(u, r)
            if src < 0:
                continue
            groups: dict[tuple[Hashable, int], list] = {}
            for v in graph.successors(u):
                dst = placement(v, r)
                if dst == src or dst < 0:  # same processor, or an instance the orders leave out
                    continue
                key = (edge_tensor(graph, u, v), dst)
                entry = groups.setdefault(key, [0, []])
                entry[0] = max(entry[0], edge_bytes(graph, u, v))
                entry[1].append(v)
            if groups:
                plans[(u, r)] = tuple(
                    Transfer(u, tensor, src, dst, nbytes, tuple(cons))
                    for (tensor, dst), (nbytes, cons) in sorted(groups.items(), key=lambda kv: (kv[0][1], repr(kv[0][0]))))
    readers: dict[int, tuple[int, tuple[int, ...]]] = {}
    for f, ls in weight_readers(graph).items():
        for l in ls:
            nbytes = param_bytes(graph, l)
            procs = set(readers.get(l, (0, ()))[1]) | set(placement.processors_of(f))
            readers[l] = (nbytes, tuple(sorted(procs)))
    return ExecutableSchedule(schedule, placement, plans, readers)


__all__ = ["Transfer", "Placement", "ExecutableSchedule", "validate", "insert_transfers", "instances_per_step"]
