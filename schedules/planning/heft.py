"""HEFT list scheduling (Topcuoglu, Hariri and Wu, IEEE TPDS 2002).

Tasks are ranked by their *upward rank*: mean cost over processors plus the longest
path (mean costs and communication) to an exit task. In decreasing rank order each task
goes to the processor that finishes it earliest, inserting it into an idle gap when one
is long enough. LayerPipe uses the upward rank as its list-scheduling priority.

>>> import networkx as nx
>>> g = nx.DiGraph(); g.add_edge("a", "b", comm=2)
>>> costs = {"a": [1, 1], "b": [1, 1]}
>>> heft(g, costs).makespan
2
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from models.errors import ScheduleError


@dataclass(frozen=True)
class HeftResult:
    processor: dict[Hashable, int]
    start: dict[Hashable, float]
    finish: dict[Hashable, float]
    rank: dict[Hashable, float]

    @property
    def makespan(self) -> float:
        return max(self.finish.values(), default=0)


def upward_rank(graph: nx.DiGraph, mean_cost: Mapping[Hashable, float],
                comm: str | Mapping[tuple[Hashable, Hashable], float] = "comm") -> dict[Hashable, float]:
    """rank(n) = mean_cost(n) + max over successors s of (comm(n, s) + rank(s)).

    ``comm``: the edge attribute holding an edge's communication cost (missing: 0), or a mapping
    from ``(n, s)`` to it (missing: 0), so a caller need not write costs into the graph.

    >>> g = nx.DiGraph([("a", "b"), ("a", "c")])
    >>> upward_rank(g, {"a": 1, "b": 2, "c": 1}, {("a", "c"): 5}) == {"c": 1, "b": 2, "a": 7}
    True
    """
    if isinstance(comm, str):
        attr = comm
        edge_cost = lambda n, s: graph.edges[n, s].get(attr, 0)  # noqa: E731
    else:
        edge_cost = lambda n, s: comm.get((n, s), 0)  # noqa: E731
    rank: dict[Hashable, float] = {}
    for n in reversed(list(nx.topological_sort(graph))):
        rank[n] = mean_cost[n] + max((edge_cost(n, s) + rank[s] for s in graph.successors(n)), default=0)
    return rank


def heft(graph: nx.DiGraph, costs: Mapping[Hashable, Sequence[float]], comm: str = "comm") -> HeftResult:
    """Map every task of the DAG onto processors; ``costs[n][p]`` is task n's time on p.

    Communication ``graph.edges[u, v][comm]`` is paid only when u and v run on different
    processors. Ties in rank keep the graph's node order, so results are deterministic.
    """
    if not nx.is_directed_acyclic_graph(graph):
        raise ScheduleError("HEFT needs an acyclic task graph")
    procs = {len(costs[n]) for n in graph}
    if len(procs) != 1 or 0 in procs:
        raise ScheduleError("every task needs one cost per processor, and at least one processor")
    P = procs.pop()
    rank = upward_rank(graph, {n: sum(costs[n]) / P for n in graph}, comm)
    position = {n: i for i, n in enumerate(graph.nodes)}
    order = sorted(graph.nodes, key=lambda n: (-rank[n], position[n]))
    busy: list[list[tuple[float, float]]] = [[] for _ in range(P)]
    where: dict[Hashable, int] = {}
    start: dict[Hashable, float] = {}
    finish: dict[Hashable, float] = {}
    for n in order:
        best = None
        for p in range(P):
            ready = max((finish[u] + (0 if where[u] == p else graph.edges[u, n].get(comm, 0))
                         for u in graph.predecessors(n)), default=0)
            dur = costs[n][p]
            t = _earliest_gap(busy[p], ready, dur)
            if best is None or t + dur < best[0] + best[2]:
                best = (t, p, dur)
        t, p, dur = best
        where[n], start[n], finish[n] = p, t, t + dur
        busy[p].append((t, t + dur))
        busy[p].sort()
    return HeftResult(where, start, finish, rank)


def _earliest_gap(intervals: list[tuple[float, float]], ready: float, dur: float) -> float:
    """Insertion policy: the earliest start >= ready that fits between booked intervals."""
    t = ready
    for a, b in intervals:
        if t + dur <= a:
            return t
        t = max(t, b)
    return t


__all__ = ["HeftResult", "heft", "upward_rank"]
