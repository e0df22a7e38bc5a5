"""Ordering a fixed placement by list scheduling over many units.

Given where every task runs, :func:`list_orders` plays the schedule forward in time
with the platform's cost estimates (transfers cost latency + bytes/bandwidth per hop,
booking every hop of the route as the engine does: one transfer at a time per link
direction, a tensor sent to a processor once per unit) and, whenever a processor is idle,
starts its ready task of highest priority: the oldest unit first, then the largest HEFT upward rank (the critical path
to the end of the step). The order in which tasks start becomes the schedule's orders,
so the result is deadlock-free by construction: it is a feasible execution order of the
same dependencies and delays the engine enforces.

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> g = uniform_pipeline_graph(2, 1, 1, 1)
>>> place = {n: n[1] - 1 for n in g}
>>> o = list_orders(g, place, 2, cost=lambda t, p: 1, comm=lambda b: 0, rule=DelayRule())
>>> [str(a) for a in o[1]]  # no staleness: F2.1 waits for W2.0's update
['F2.0', 'B2.0', 'W2.0', 'F2.1', 'B2.1', 'W2.1']
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Mapping

import networkx as nx

from models.errors import ScheduleError
from models.graph.tasks import Task, edge_bytes, edge_tensor, param_bytes, task_layers, update_tasks, weight_readers
from schedules.delays import DelayRule
from schedules.planning.heft import upward_rank
from schedules.schedule import Action

#: where tasks run: task -> processor, or (task, unit) -> processor
Placement = Mapping[Task, int] | Callable[[Task, int], int]


def list_orders(graph: nx.DiGraph, placement: Placement, units: int, *,
                cost: Callable[[Task, int], float], comm: Callable[[int], float], rule: DelayRule,
                hops: Callable[[int, int], tuple] | None = None) -> dict[int, list[Action]]:
    """Orders for ``units`` units of ``graph`` with task t of unit u on ``placement``.

    ``placement`` maps a task to its processor, or is a function ``(task, unit) -> processor``
    (replicated stages take units round robin). A forward waits for the updates ``rule``
    (:class:`schedules.delays.DelayRule`) says it must.
    """
    return _list_schedule(graph, placement, units, cost, comm, rule, hops)[0]


def estimated_period(graph: nx.DiGraph, placement: Placement, units: int, *,
                     cost: Callable[[Task, int], float], comm: Callable[[int], float], rule: DelayRule,
                     hops: Callable[[int, int], tuple] | None = None) -> float:
    """Steady-state cycles per unit of the list schedule, from its own simulated times:
    the mean interval between unit completions over the middle half of ``units`` units
    (transfers booked on the links as in :func:`list_orders`)."""
    done = _list_schedule(graph, placement, units, cost, comm, rule, hops)[1]
    first, last = units // 4, units - 1 - units // 4
    if last <= first:
        return max(done) / units
    return (done[last] - done[first]) / (last - first)


def _list_schedule(graph, placement, units, cost, comm, rule: DelayRule, hops=None):
    if units < 1:
        raise ScheduleError(f"number of units must be positive, got {units}")
    if callable(placement):
        where = placement
        P = 1 + max(where(n, u) for n in graph for u in range(units))
    else:  # one processor per task whatever the unit: look it up once per task, not per instance
        fixed = {n: placement[n] for n in graph}
        where = lambda t, u: fixed[t]  # noqa: E731
        P = 1 + max(fixed.values())
    # costs are pure functions of their arguments: each is asked once, not once per task instance
    raw_cost, raw_comm = cost, comm
    cost_memo: dict[tuple[Task, int], float] = {}
    comm_memo: dict[int, float] = {}

    def cost(n: Task, p: int) -> float:
        key = (n, p)
        if key not in cost_memo:
            cost_memo[key] = raw_cost(n, p)
        return cost_memo[key]

    def comm(nbytes: int) -> float:
        if nbytes not in comm_memo:
            comm_memo[nbytes] = raw_comm(nbytes)
        return comm_memo[nbytes]

    # priorities come from unit 0's placement (replicas of a stage are alike)
    mean = {n: cost(n, where(n, 0)) for n in graph}
    comm_cost = {(u, v): (0 if where(u, 0) == where(v, 0) else comm(edge_bytes(graph, u, v)))
                 for u, v in graph.edges}
    rank = upward_rank(graph, mean, comm_cost)
    position = {n: i for i, n in enumerate(sorted(graph.nodes))}
    preds = {n: tuple(graph.predecessors(n)) for n in graph}
    fwd = weight_readers(graph)
    upd = update_tasks(graph)
    npreds = {n: len(preds[n]) for n in graph}
    # each instance waits for its predecessors plus, for forwards, the needed update tasks
    need: dict[tuple[Task, int], int] = {}
    ready_at: dict[tuple[Task, int], float] = defaultdict(float)
    waiters: dict[tuple[Task, int], list[tuple[Task, int]]] = defaultdict(list)

    def weight_deps(task: Task, unit: int) -> list[tuple[Task, int]]:
        deps = []
        for l in fwd.get(task, ()):
            step = rule.awaited_round(l, unit)
            if step >= 0:
                deps += [(t, u) for t in upd.get(l, ()) for u in rule.round_units(l, step, units)]
        return deps

    queues: list[list] = [[] for _ in range(P)]
    nodes = list(graph)
    for unit in range(units):
        for n in nodes:
            count = npreds[n]
            if n in fwd:
                deps = weight_deps(n, unit)
                count += len(deps)
                for d in deps:
                    waiters[d].append((n, unit))
            need[(n, unit)] = count
            if count == 0:
                heapq.heappush(queues[where(n, unit)], (unit, -rank[n], position[n], n))

    orders: dict[int, list[Action]] = {p: [] for p in range(P)}
    free = [0.0] * P
    completion = [0.0] * units  # the last end of each unit's tasks
    events: list[tuple[float, int]] = [(0.0, p) for p in range(P)]
    heapq.heapify(events)
    running = [False] * P
    done = 0
    total = units * graph.number_of_nodes()

    weight_bytes = {n: sum(param_bytes(graph, l) for l in task_layers(graph, n)) for n in graph}

    link_free: dict[tuple[int, int], float] = defaultdict(float)
    routes: dict[tuple[int, int], tuple] = {}

    def route(a: int, b: int) -> tuple:
        if (a, b) not in routes:
            routes[(a, b)] = hops(a, b) if hops is not None else ((a, b),)
        return routes[(a, b)]

    # what each edge sends, once per edge rather than once per unit
    out_edges = {n: [(s, edge_tensor(graph, n, s), edge_bytes(graph, n, s)) for s in graph.successors(n)]
                 for n in graph}

    def send(src: int, dst: int, nbytes: int, t: float) -> float:
        """Book the hops from src to dst in turn; return the arrival time."""
        c = comm(nbytes)
        if c == 0:
            return t
        for hop in route(src, dst):
            t = max(t, link_free[hop]) + c
            link_free[hop] = t
        return t

    def release(inst: tuple[Task, int], t_done: float) -> None:
        n, unit = inst
        src = where(n, unit)
        sent: dict[tuple, float] = {}
        arrivals = []
        for s, tensor, nbytes in out_edges[n]:
            dst = where(s, unit)
            if dst == src:
                arrivals.append(((s, unit), t_done))
                continue
            key = (tensor, dst)
            if key not in sent:
                sent[key] = send(src, dst, nbytes, t_done)
            arrivals.append(((s, unit), sent[key]))
        # a forward elsewhere needs the freshly updated weights sent over (once per processor)
        for w in waiters.pop(inst, []):
            dst = where(*w)
            if dst == src:
                arrivals.append((w, t_done))
            else:
                if ("w", dst) not in sent:
                    sent[("w", dst)] = send(src, dst, weight_bytes[n], t_done)
                arrivals.append((w, sent[("w", dst)]))
        for s_inst, at in arrivals:
            s = s_inst[0]
            ready_at[s_inst] = max(ready_at[s_inst], at)
            need[s_inst] -= 1
            if need[s_inst] == 0:
                q = where(s, s_inst[1])
                heapq.heappush(queues[q], (s_inst[1], -rank[s], position[s], s))
                heapq.heappush(events, (ready_at[s_inst], q))

    while done < total:
        if not events:
            raise ScheduleError("list scheduling stalled: the placement and delays cannot be ordered")
        t, p = heapq.heappop(events)
        if running[p] and free[p] > t:
            continue
        running[p] = False
        now = max(t, free[p])
        # choose the best task that is ready by now; if none, wake at the earliest arrival
        chosen, later = None, []
        while queues[p]:
            item = heapq.heappop(queues[p])
            inst = (item[3], item[0])
            if ready_at[inst] <= now:
                chosen = item
                break
            later.append(item)
        for item in later:
            heapq.heappush(queues[p], item)
        if chosen is None:
            if later:
                heapq.heappush(events, (min(ready_at[(i[3], i[0])] for i in later), p))
            continue
        n, unit = chosen[3], chosen[0]
        end = now + cost(n, p)
        orders[p].append(Action(n.kind, n.layer, unit))
        free[p] = end
        running[p] = True
        if end > completion[unit]:
            completion[unit] = end
        done += 1
        inst = (n, unit)
        del need[inst]  # nothing reads an instance's count or arrival once it has started: drop them
        ready_at.pop(inst, None)
        release(inst, end)
        heapq.heappush(events, (end, p))
    for i in range(1, units):  # a unit is complete when it and every earlier unit are done
        completion[i] = max(completion[i], completion[i - 1])
    return orders, completion


__all__ = ["list_orders", "estimated_period"]
