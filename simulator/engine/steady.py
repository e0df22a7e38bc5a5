"""The exact steady state of a run: the cycle time of its periodic event graph.

With its orders fixed (each processor's, and each link channel's as the simulation granted
it), a schedule is a max-plus system: every event starts at the latest end among the events it
waits for (:mod:`simulator.engine.events`). Once the pipeline is full, every built-in schedule
repeats with a period of T units (a multiple of the schedule's own period: round-robin
replicas, update rounds, micro-batches per step): the events of units ``[kT, (k+1)T)`` wait
for the same events of the same offsets as those of ``[(k+1)T, (k+2)T)``, shifted by T. Such a
system settles into a rate of exactly one period per lambda cycles, where lambda is the
maximum cycle ratio of the *periodic event graph*: one node per event of a period, an edge
from each event to each event that waits for it, weighted by the first's duration and
carrying as many tokens as periods separate the two (Baccelli, Cohen, Olsder & Quadrat,
*Synchronization and Linearity*, 1992, ch. 3).

:func:`exact_steady_state` reads a period of the logged slice of a run, checks that the next
period repeats it (the same events, durations and waits, shifted), checks that every logged
event started exactly at the latest end of what it waited for (so no wait of the engine went
unlogged), and returns lambda / (T / m) cycles per step with the critical cycle that sets it.
When no period from T to 4T repeats inside the slice it says so (``exact=False`` and why),
and the caller falls back to the simulated window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import networkx as nx

from simulator.bounds import max_cycle_ratio
from simulator.engine.events import Event, EventId, EventLog, first_unit


@dataclass(frozen=True)
class SteadyState:
    """The exact steady state of a run, or why there is none.

    ``cycles_per_step``: lambda x m / T; ``period_units``: T; ``period_cycles``: lambda;
    ``busy``: compute cycles of each processor in one period (utilization = busy / lambda);
    ``critical``: the events of a cycle that attains lambda, in order (readable);
    ``settled``: whether the simulated slice itself had reached the periodic regime (every
    event of the second period started exactly lambda after its twin in the first), so the
    simulation's own step intervals equal the exact rate from there on; ``start_unit``: the
    first unit of the first period read.
    """

    exact: bool
    cycles_per_step: Fraction | None = None
    period_units: int = 0
    period_cycles: Fraction | None = None
    busy: tuple[Fraction, ...] = ()
    critical: tuple[str, ...] = ()
    settled: bool = False
    reason: str = ""
    start_unit: int = 0

    def utilization(self, p: int) -> float:
        return float(self.busy[p] / self.period_cycles) if self.exact and self.period_cycles else float("nan")


@dataclass
class _Period:
    nodes: dict[EventId, Event] = field(default_factory=dict)  # representative id -> event
    edges: set = field(default_factory=set)  # (pred rep, rep, tokens, pred duration)


def _fold(eid: EventId, T: int, group: Callable[[int], int]) -> tuple[EventId, int]:
    """(representative id, period index) of ``eid`` for a period of ``T`` units."""
    k = first_unit(eid, group) // T
    tag, a, b, index, hop = eid
    per = T // group(a) if tag in ("r", "w") else T
    return (tag, a, b, index - k * per, hop), k


def _period(log: EventLog, k: int, T: int, name: Callable[[EventId], str] | None = None) -> _Period | str:
    """The events of period ``k`` with their folded waits, or why they cannot be read."""
    out = _Period()
    events = log.events
    for eid, ev in events.items():
        rep, kk = _fold(eid, T, log.group)
        if kk != k:
            continue
        out.nodes[rep] = ev
        for q in ev.preds:
            pq = events.get(q)
            if pq is None:
                return f"{_describe_id(q, name)} (waited for by {_describe_id(eid, name)}) is outside the logged slice"
            qrep, kq = _fold(q, T, log.group)
            out.edges.add((qrep, rep, k - kq, pq.end - pq.start))
    return out


def _orders_repeat(log: EventLog, period: _Period, k: int, T: int) -> bool:
    """Whether, on every processor and link channel, the events of ``period`` follow one another
    as one cycle through all of that resource's events of a period, closing one period later:
    the resource's order repeats with period ``T`` (a drain or fill changing the order breaks it)."""
    by_resource: dict[str, dict[EventId, tuple[EventId, int]]] = defaultdict(dict)
    for rep, ev in period.nodes.items():
        if rep[0] == "r":
            continue  # releases are not on a resource's order
        if ev.after is None:
            return False
        before, kb = _fold(ev.after, T, log.group)
        by_resource[ev.resource][rep] = (before, k - kb)
    for chain in by_resource.values():
        start = next(iter(chain))
        node, tokens = start, 0
        for _ in range(len(chain)):
            if node not in chain:
                return False
            node, d = chain[node]
            tokens += d
        if node != start or tokens != 1:
            return False
    return True


def _same(a: _Period, b: _Period) -> bool:
    if a.nodes.keys() != b.nodes.keys() or a.edges != b.edges:
        return False
    return all(a.nodes[r].resource == b.nodes[r].resource and a.nodes[r].duration == b.nodes[r].duration
               for r in a.nodes)


def _check_starts(log: EventLog, period: _Period, name: Callable[[EventId], str] | None = None) -> str:
    """'' when every event of ``period`` started at the latest end of what it waited for."""
    for ev in period.nodes.values():
        ready = max((log.events[q].end for q in ev.preds), default=0.0)
        if ev.start != ready:
            return (f"{_describe_id(ev.id, name)} started at {ev.start} but what it waited for ended at {ready}: "
                    "a wait of the engine is not in the event log")
    return ""


def _retimed(edges: list[tuple]) -> list[tuple]:
    """The same cycles with every edge's tokens >= 0: tokens + r(u) - r(v) with r the shortest
    token distances from a virtual source (every cycle's tokens are > 0 in a live schedule)."""
    g = nx.DiGraph()
    for u, v, d, _ in edges:
        if not g.has_edge(u, v) or g[u][v]["weight"] > d:
            g.add_edge(u, v, weight=d)
    src = ("source",)
    g.add_edges_from(((src, n) for n in list(g.nodes)), weight=0)
    dist = nx.single_source_bellman_ford_path_length(g, src)
    return [(u, v, w, d + dist[u] - dist[v]) for u, v, d, w in edges]


def _describe_id(eid: EventId, name: Callable[[EventId], str] | None = None) -> str:
    if name is not None:
        return name(eid)
    return str(eid)


def exact_steady_state(log: EventLog, core: tuple[int, int], period_units: int, m: int, processors: int,
                       name: Callable[[EventId], str] | None = None, max_fold: int = 4) -> SteadyState:
    """The exact steady state from ``log`` (see the module docstring).

    ``core``: the units the periods are read from; ``period_units``: the schedule's own period
    in units (tried x1 .. x ``max_fold``); ``m``: units per step; ``name``: readable event names.

    >>> from simulator.engine.events import EventLog
    >>> log = EventLog(0, 8, lambda layer: 1)      # one processor running a 3-cycle task per unit
    >>> for u in range(8):
    ...     before = ("t", 0, 0, u - 1, 0) if u else None
    ...     log.add(("t", 0, 0, u, 0), "P0", 3 * u, 3 * u + 3, [before], before)
    >>> exact_steady_state(log, (2, 8), 1, 1, 1).cycles_per_step
    Fraction(3, 1)
    """
    lo, hi = core
    why = f"the run is too short: no two periods of {period_units} units fit in its steady-state window"
    for fold in range(1, max_fold + 1):
        T = fold * period_units
        k_last = hi // T - 2  # periods k and k + 1 must lie inside [lo, hi)
        if k_last < 0 or k_last * T < lo:
            continue
        a, b = _period(log, k_last, T, name), _period(log, k_last + 1, T, name)
        if isinstance(a, str) or isinstance(b, str):
            why = a if isinstance(a, str) else b
            continue
        if not a.nodes:
            continue
        if not _same(a, b) or not _orders_repeat(log, a, k_last, T):
            why = f"the orders do not repeat with a period of {period_units} to {max_fold * period_units} units"
            continue
        problem = _check_starts(log, a, name) or _check_starts(log, b, name)
        if problem:
            return SteadyState(False, reason=problem)
        edges = _retimed(sorted(a.edges, key=repr))
        lam, cycle = max_cycle_ratio(sorted(a.nodes, key=repr), edges)
        busy = [Fraction(0)] * processors
        for rep, ev in a.nodes.items():
            if rep[0] == "t":
                busy[int(ev.resource[1:])] += Fraction(ev.duration)
        settled = all(b.nodes[r].start - ev.start == lam for r, ev in a.nodes.items())
        return SteadyState(True, cycles_per_step=lam * m / T, period_units=T, period_cycles=lam, busy=tuple(busy),
                           critical=tuple(_describe_id(e[0], name) for e in cycle), settled=settled,
                           start_unit=k_last * T)
    return SteadyState(False, reason=why)


__all__ = ["SteadyState", "exact_steady_state"]
