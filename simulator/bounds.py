"""Lower bounds on the cycles of one optimizer step (docs/design.md section 6), computed exactly.

For a schedule's task template on a platform, with P = the processors the schedule uses,
m = ``microbatches_per_step`` (units per step) and c(t) = the cycles of task t on the
fastest of those P processors:

* **work bound** = sum_t n(t) c(t) / P, where n(t) is the number of instances of t per step
  (m, or fewer for an update applied once per round; ``passes.instances_per_step``): P processors can do
  at most P cycles of work per cycle.
* **largest-task bound** = max_t n(t) c(t) / r(t), where r(t) is the number of distinct
  processors the schedule runs task t on (1 unless a method replicates a stage): the n(t)
  copies of t in a step share those r(t) processors, so on average a step needs at least
  n(t) c(t) / r(t) cycles. With m = 1 and no replication this is simply the largest task.
* **iteration bound** of the training data-flow graph with its delays: the maximum over
  cycles of (sum of node cycles on the cycle) / (sum of delays on the cycle). Nodes are
  the template's tasks weighted by c(t); edges inside a unit have delay 0; the
  loop-carried edges go from each update task of layer l (``models.graph.tasks.update_tasks``)
  to every forward task reading layer l (``weight_readers``) with delay 1 + S(l) update
  rounds of g_l units each (the schedule's :class:`~schedules.delays.DelayRule`), i.e.
  g_l (1 + S(l)) units, and the bound per step is m times the bound per unit.
  A cycle through layers l1 -> l2 -> ... -> lk -> l1 has a computation equal to the sum,
  over its segments, of the longest path from a forward reading l_i to an update of
  l_{i+1}, so the problem reduces to a small graph over layers: edge l -> k weighted by
  the longest DAG path from a forward task reading l to an update task of k, with the
  delay 1 + S(k) of the loop edge that closes it. Its maximum cycle ratio is found by
  Howard's policy iteration in floats and then certified exactly with integers and
  :class:`fractions.Fraction`: the critical cycle's ratio a/b is exact, and a
  Bellman-Ford pass on weights b*w - a*d finds no positive cycle (if it did, the cycle it
  finds has a larger ratio and replaces the candidate, so the result is exact anyway).

**Several units per step (m > 1).** The m micro-batches of a step are independent in the
data-flow graph: no edge joins two units, and the delay rule only makes the forwards of
step k wait for *all* the updates of step k - 1 - S(l). With unlimited processors the m
chains of a step therefore run side by side, so the loop-carried bound per step is the
iteration bound of the unit graph itself, not m times it. The delay rule never forces two
micro-batches of a step to run one after the other; only the processors do, and that is
what the work bound (n * work / P) and the largest-task bound (n * c / r) count. Scaling
the iteration bound by m would not be a bound: GPipe with p uniform stages runs a step in
(m + p - 1)(F + B) cycles, less than m * p * (F + B). With this definition GPipe's
efficiency max(m, p) / (m + p - 1) is exactly its bubble fraction. Communication is not
counted in any bound (compute only), so every bound holds on any link.

A fourth figure, ``placement``, is the load of the busiest processor per step under the
schedule's own placement; it is a valid bound too, but it is reported for information
and left out of :attr:`Bounds.best` and the efficiency, because it charges the
schedule's own imbalance to the hardware.

The bounds hold for the steady state (a long run's mean step interval); the measured
window of a short run can be a little shorter than the iteration bound.

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from schedules.schedule import Schedule, parse_orders
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> g = uniform_pipeline_graph(2, f=1, b=2, w=0, split_backward=False)
>>> s = Schedule("hand", g, parse_orders("P0: F1.0 B1.0 ; P1: F2.0 B2.0"))
>>> b = lower_bounds(s, Platform.homogeneous(2, MacArray(1)))
>>> b.work, b.largest_task, b.iteration, b.critical_loop, b.binding
(Fraction(3, 1), Fraction(2, 1), Fraction(6, 1), (1,), 'delays: loop through layer 1')
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import networkx as nx

from models.errors import LayerPipeError, ScheduleError
from models.graph.tasks import Task, update_tasks, weight_readers
from schedules.delays import DelayRule
from schedules.passes import Placement, instances_per_step
from simulator.hardware import task_cycles

Edge = tuple[Hashable, Hashable, int, int]  # (u, v, weight, delay)


@dataclass(frozen=True)
class Bounds:
    """Lower bounds on cycles per optimizer step (see the module docstring)."""

    work: Fraction
    largest_task: Fraction
    iteration: Fraction
    critical_loop: tuple[int, ...]  # layers on the critical cycle, in order (empty: no cycle)
    largest: tuple[str, int] | None  # the task that sets the largest-task bound
    placement: Fraction  # busiest processor under the schedule's placement (information)
    processors: int
    microbatches_per_step: int

    @property
    def best(self) -> Fraction:
        """The largest of the work, largest-task and iteration bounds."""
        return max(self.work, self.largest_task, self.iteration)

    @property
    def binding(self) -> str:
        """Which bound is the largest, in words: why two schedules of one network can have
        different bounds (the processors they use, their task split, their delays).

        ``"work / P"``, ``"largest task X"`` or ``"delays: loop through layers a,b"``
        (the iteration bound of the schedule's delay rule); ties name the first of these."""
        if self.best == self.work:
            return f"work / {self.processors}"
        if self.best == self.largest_task:
            return f"largest task {self.largest[0]}{self.largest[1]}" if self.largest else "largest task"
        return "delays: loop through layer" + ("s " if len(self.critical_loop) > 1 else " ") + ",".join(
            map(str, self.critical_loop))

    def efficiency(self, achieved: float) -> float:
        """best / achieved cycles per step (1.0 = the schedule reaches the bound)."""
        return float(self.best) / achieved if achieved > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"work": float(self.work), "largest_task": float(self.largest_task),
                "iteration": float(self.iteration), "best": float(self.best), "binding": self.binding,
                "iteration_exact": str(self.iteration), "critical_loop": list(self.critical_loop),
                "largest": f"{self.largest[0]}{self.largest[1]}" if self.largest else None,
                "placement": float(self.placement), "processors": self.processors,
                "microbatches_per_step": self.microbatches_per_step}


# --------------------------------------------------------------------------- cycles


def fastest_cycles(graph: nx.DiGraph, platform, processors: Iterable[int]) -> dict[Task, int]:
    """Cycles of every task of ``graph`` on the fastest of ``processors``."""
    procs = [platform.processors[p] for p in processors]
    return {node: min(task_cycles(cm, graph, node) for cm in procs) for node in graph}


# --------------------------------------------------------------------------- max cycle ratio


def _sccs_with_cycles(nodes: list, edges: list[Edge]) -> list[set]:
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((u, v) for u, v, _, _ in edges)
    result = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) > 1 or any(g.has_edge(v, v) for v in comp):
            result.append(comp)
    return result


def _howard(nodes: list, out: dict[Hashable, list[Edge]], eps: float = 1e-9, max_iter: int = 10_000) -> list[Edge]:
    """Howard's policy iteration for the maximum cycle ratio of a strongly connected graph.

    Returns the edges of the best cycle of the final policy (floats only guide the search).
    """
    policy = {u: max(out[u], key=lambda e: e[2] / max(e[3], 1e-12)) for u in nodes}
    best_cycle: list[Edge] = []
    for _ in range(max_iter):
        # value determination on the functional graph of the policy
        eta: dict[Hashable, float] = {}
        x: dict[Hashable, float] = {}
        best_ratio = -math.inf
        for start in nodes:
            if start in eta:
                continue
            path, on_path = [], {}
            v = start
            while v not in eta and v not in on_path:
                on_path[v] = len(path)
                path.append(v)
                v = policy[v][1]
            if v in on_path:  # a new cycle of the policy graph
                cyc = path[on_path[v]:]
                w = sum(policy[u][2] for u in cyc)
                d = sum(policy[u][3] for u in cyc)
                lam = w / d if d else math.inf
                if lam > best_ratio:
                    best_ratio, best_cycle = lam, [policy[u] for u in cyc]
                # potentials around the cycle, x(v) = 0 at the handle v
                eta[v], x[v] = lam, 0.0
                for u in reversed(cyc[1:]):
                    e = policy[u]
                    eta[u], x[u] = lam, e[2] - lam * e[3] + x[e[1]]
                path = path[:on_path[v]]
            for u in reversed(path):
                e = policy[u]
                eta[u] = eta[e[1]]
                x[u] = e[2] - eta[u] * e[3] + x[e[1]]
        # policy improvement: first the cycle ratio reached, then the potentials
        changed = False
        for u in nodes:
            best_e, best_eta = policy[u], eta[u]
            for e in out[u]:
                if eta[e[1]] > best_eta + eps:
                    best_e, best_eta = e, eta[e[1]]
            if best_e is not policy[u]:
                policy[u], changed = best_e, True
        if not changed:
            for u in nodes:
                cur = x[u]
                best_e = policy[u]
                for e in out[u]:
                    if abs(eta[e[1]] - eta[u]) <= eps:
                        val = e[2] - eta[u] * e[3] + x[e[1]]
                        if val > cur + eps * max(1.0, abs(cur)):
                            best_e, cur = e, val
                if best_e is not policy[u]:
                    policy[u], changed = best_e, True
        if not changed:
            return best_cycle
    return best_cycle


def _positive_cycle(nodes: list, edges: list[Edge], a: int, b: int) -> list[Edge] | None:
    """A cycle with sum(b*w - a*d) > 0 (integers, Bellman-Ford for longest paths), or None."""
    dist = {v: 0 for v in nodes}
    parent: dict[Hashable, Edge] = {}
    weighted = [(e, b * e[2] - a * e[3]) for e in edges]
    last = None
    for _ in range(len(nodes)):
        last = None
        for e, w in weighted:
            u, v = e[0], e[1]
            if dist[u] + w > dist[v]:
                dist[v] = dist[u] + w
                parent[v] = e
                last = v
        if last is None:
            return None
    v = last
    for _ in range(len(nodes)):  # walk back into the cycle of the predecessor graph
        v = parent[v][0]
    cycle, u = [], v
    while True:
        e = parent[u]
        cycle.append(e)
        u = e[0]
        if u == v:
            break
    cycle.reverse()
    return cycle


def max_cycle_ratio(nodes: Iterable[Hashable], edges: Iterable[Edge]) -> tuple[Fraction, list[Edge]]:
    """Exact maximum over cycles of sum(weight) / sum(delay), and a cycle that attains it.

    ``edges`` are ``(u, v, weight, delay)`` with integer weights and delays >= 0 (parallel
    edges allowed). Returns ``(Fraction(0), [])`` when the graph has no cycle; raises
    :class:`LayerPipeError` when a cycle has no delay at all (its ratio is unbounded).

    >>> max_cycle_ratio("ab", [("a", "b", 3, 1), ("b", "a", 4, 1), ("a", "a", 3, 1)])[0]
    Fraction(7, 2)
    """
    nodes = list(dict.fromkeys(nodes))
    edges = [(u, v, int(w), int(d)) for u, v, w, d in edges]
    for u, v, _, d in edges:
        if d < 0:
            raise LayerPipeError(f"edge {u} -> {v} has a negative delay {d}")
    zero = nx.DiGraph((u, v) for u, v, _, d in edges if d == 0)
    if zero.number_of_edges() and not nx.is_directed_acyclic_graph(zero):
        cyc = " -> ".join(str(u) for u, _ in nx.find_cycle(zero))
        raise LayerPipeError(f"the cycle {cyc} has no delay: its iteration bound is unbounded (a deadlock)")
    best, best_cycle = Fraction(0), []
    for comp in _sccs_with_cycles(nodes, edges):
        sub = [e for e in edges if e[0] in comp and e[1] in comp]
        out: dict[Hashable, list[Edge]] = defaultdict(list)
        for e in sub:
            out[e[0]].append(e)
        members = [v for v in nodes if v in comp]
        cycle = _howard(members, out)
        ratio = Fraction(sum(e[2] for e in cycle), sum(e[3] for e in cycle))
        while True:  # certify: no cycle beats the candidate (or take the one that does)
            better = _positive_cycle(members, sub, ratio.numerator, ratio.denominator)
            if better is None:
                break
            new = Fraction(sum(e[2] for e in better), sum(e[3] for e in better))
            if new <= ratio:  # cannot happen: a positive cycle has a larger ratio
                raise AssertionError(f"cycle certification failed: {better} has ratio {new} <= {ratio}")
            ratio, cycle = new, better
        if not best_cycle or ratio > best:
            best, best_cycle = ratio, cycle
    return best, best_cycle


# --------------------------------------------------------------------------- the training graph


def loop_graph(graph: nx.DiGraph, cycles: Mapping[Task, int], rule: DelayRule) -> list[Edge]:
    """The reduced graph over layers (see the module docstring): ``(l, k, path cycles, delay)``,
    the delay counted in units: ``rule.loop_units(k)`` = g_k (1 + S(k))."""
    fwd = weight_readers(graph)
    upd = update_tasks(graph)
    readers: dict[int, list[Task]] = defaultdict(list)
    for f, ls in fwd.items():
        for l in ls:
            readers[l].append(f)
    order = list(nx.topological_sort(graph))
    edges: list[Edge] = []
    for l in sorted(readers):
        if l not in upd:
            continue
        sources = set(readers[l])
        dist: dict[Task, int] = {}
        for v in order:
            best = 0 if v in sources else None
            for q in graph.predecessors(v):
                if q in dist and (best is None or dist[q] > best):
                    best = dist[q]
            if best is not None:
                dist[v] = best + int(cycles[v])
        for k in sorted(upd):
            if k not in readers:
                continue  # nobody waits for layer k's weights: no loop closes there
            reach = [dist[u] for u in upd[k] if u in dist]
            if reach:
                edges.append((l, k, max(reach), rule.loop_units(k)))
    return edges


def iteration_bound(graph: nx.DiGraph, cycles: Mapping[Task, int], rule: DelayRule) -> tuple[Fraction, tuple[int, ...]]:
    """Exact iteration bound per unit and the layers of a critical loop."""
    edges = loop_graph(graph, cycles, rule)
    ratio, cycle = max_cycle_ratio(sorted({e[0] for e in edges} | {e[1] for e in edges}), edges)
    return ratio, tuple(e[0] for e in cycle)


def _placed(placement: Placement, task: Task) -> bool:
    try:
        placement(task, 0)
    except KeyError:
        return False
    return True


def lower_bounds(schedule, platform) -> Bounds:
    """Work, largest-task and iteration bounds (and the placement figure) of ``schedule``."""
    if schedule.processors > platform.size:
        raise ScheduleError(f"the schedule uses {schedule.processors} processors but the platform has {platform.size}")
    graph = schedule.graph
    P = schedule.processors
    m = schedule.microbatches_per_step
    c = fastest_cycles(graph, platform, range(P))
    placement = Placement(schedule)
    spread = {t: [placement(t, r) for r in range(placement.period)] for t in graph.nodes if _placed(placement, t)}
    per_step = instances_per_step(schedule, placement)
    work = sum((per_step[t] * c[t] for t in graph), Fraction(0)) / P
    largest, largest_task = Fraction(0), None
    for t in sorted(graph.nodes):
        r = len({p for p in spread.get(t, ()) if p >= 0})
        value = per_step[t] * c[t] / max(1, r)
        if value > largest or largest_task is None:
            largest, largest_task = value, t
    # loops counted in units: layer l's loop spans g_l (1 + S(l)) units (g_l units per update
    # round; a replicated stage updates once per round of its replicas), so a step of m
    # units is bounded by m times the per-unit ratio
    per_unit, loop = iteration_bound(graph, c, schedule.rule)
    iteration = per_unit * m
    load = [Fraction(0)] * P
    for t, procs in spread.items():
        for p in set(procs):
            if 0 <= p < P:
                share = Fraction(procs.count(p), len(procs))
                load[p] += m * share * task_cycles(platform.processors[p], graph, t)
    return Bounds(work=work, largest_task=largest, iteration=iteration, critical_loop=loop, largest=largest_task,
                  placement=max(load, default=Fraction(0)), processors=P, microbatches_per_step=m)


__all__ = ["Bounds", "lower_bounds", "iteration_bound", "loop_graph", "max_cycle_ratio", "fastest_cycles"]
