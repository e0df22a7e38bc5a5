"""The best modulo schedule of a task graph: placement, order and initiation interval, by CP-SAT.

A *modulo schedule* with interval ``λ`` and unroll ``K`` runs every unit ``u = kK + j`` of a task
graph alike: task ``t`` of residue ``j`` starts at ``s[t, j] + kλ`` on the processor ``place[t]``
(one processor per task for every unit: no stage replication). Its steady state costs ``λ / K``
cycles per unit exactly. This is the class software pipelining searches (Rau's iterative
modulo scheduling) and the one every built-in method's fixed-placement schedule belongs to
once its orders repeat with a period dividing ``K``.

For a given ``λ`` the schedule exists iff this CP-SAT model is feasible (integer cycles):

* every task on exactly one processor (a layer's update tasks on one processor, so that its
  new weights leave from one place, as the engine sends them);
* a task starts after its predecessors end and, when they ran elsewhere, after the transfer
  that brings their tensor (``latency + bytes / bandwidth`` cycles on each hop of the route,
  store and forward; one transfer per tensor, unit and receiving processor, as
  :mod:`schedules.passes` inserts them);
* a forward of unit ``u`` starts after the update of its layer for unit ``u - 1 - S(l)`` (the
  delay rule, :class:`schedules.delays.DelayRule`) and, elsewhere, after the new weights
  arrived;
* on every processor and every directed link channel, the occupations taken modulo ``λ`` do
  not overlap on the circle of length ``λ`` (each is laid on ``[0, 2λ)`` twice, ``λ`` apart).

Links serve their transfers first come, first served, as the engine's do: of two transfers
on one channel, the one requested first (its producer ended first) is served first, the
engine's ``simpy.Resource`` order (transfers requested in the same cycle may go either way).
Without that rule a schedule could hold a transfer back to let a more urgent one pass, which
no engine run does; with it, the engine runs the solver's orders at the solver's interval or
faster (it starts everything as soon as it can).

Each processor and link channel is busy at most ``λ`` cycles per period, stated once more as a
linear constraint (the no-overlap implies it, but CP-SAT's relaxation only sees it stated), and
what a placement holds on a processor whatever the timing (one version of each weight its
forwards read, gradient buffers, optimizer state) fits the platform's memory capacity: a
relaxation of the run's peak, so a proven bound stays a bound for every schedule that fits.

Feasibility only grows with ``λ`` (stretching the circle by one cycle keeps every schedule
valid), so :func:`best_modulo_schedule` bisects ``λ`` between a lower bound and a feasible
interval: ``lower_bound`` is then proven (every smaller interval was shown infeasible, or is
below the work and largest-task bounds) and the gap to the best interval found is what the
time limit left open. The limit is CP-SAT's deterministic time, so a result does not depend
on the machine's load. Where the first-come rule over every placement is too large to state, the
bound is proven without it (a relaxation) and the schedule is a placement timed with it. OR-Tools
is an optional extra (``pip install -e ".[optimal]"``).

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from simulator.costs import MacArray
>>> from simulator.hardware import Hardware
>>> from simulator.platform import Platform
>>> g = uniform_pipeline_graph(2, f=1, b=1, w=1)  # 6 one-cycle tasks
>>> sol = best_modulo_schedule(g, Hardware.of(Platform.homogeneous(2, MacArray(1))), DelayRule(stale={1: 1}))
>>> sol.interval, sol.lower_bound, sol.status  # 3 tasks per processor, and stage 1's loop allows 5/2
(3, 3, 'optimal')
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import networkx as nx

from models.errors import ScheduleError
from models.graph.tasks import edge_bytes, edge_tensor, param_bytes, state_holders, update_tasks, weight_readers
from schedules.delays import DelayRule
from schedules.schedule import Action

#: the largest model (:meth:`_Instance.size`) the solver is asked to prove
MAX_MODEL_SIZE = 120_000  # about 1 GB of CP-SAT model at most
#: CP-SAT's deterministic time (about seconds) for one whole search, by default
DEFAULT_TIME_LIMIT = 20.0
#: a solve is stopped after this many wall seconds per second of its deterministic budget
WALL_GUARD = 10.0


@dataclass(frozen=True)
class ModuloSolution:
    """A modulo schedule and what the search proved about the best one.

    ``interval`` cycles per ``unroll`` units; ``placement`` task -> processor; ``starts``
    ``(task, residue) -> start`` of residue ``j``'s instance in the base period (unit ``kK + j``
    starts ``kλ`` later). ``lower_bound``: no modulo schedule of the same unroll (that fits the
    memory capacity) has a smaller interval. ``status``: ``"optimal"`` (the bound is met), ``"gap"``
    (the time limit ran out between bound and interval), ``"too large"`` (the model was not built:
    see ``message``).
    ``tried``: each interval the search asked about and CP-SAT's answer.
    """

    interval: int
    unroll: int
    placement: dict[Hashable, int]
    starts: dict[tuple[Hashable, int], int]
    ends: dict[tuple[Hashable, int], int]
    lower_bound: int
    status: str
    tried: tuple[tuple[int, str], ...] = ()
    solver_seconds: float = 0.0
    message: str = ""
    #: where the schedule came from: "solver", "hint" (found at the warm start's interval, nothing
    #: better found) or "sequential" (one task at a time: every task on one processor, or, where one
    #: processor's memory cannot hold them all, a fitting placement with its transfers in turn)
    source: str = "solver"
    bounds: dict[str, int] = field(default_factory=dict)
    processors: int = 0  # the platform's (some may stay idle); 0: those the placement uses

    @property
    def lower_bound_per_unit(self) -> Fraction:
        return Fraction(self.lower_bound, self.unroll)

    def orders(self, units: int, graph: nx.DiGraph) -> dict[int, list[Action]]:
        """Per-processor orders of ``units`` units: every instance in the order of its start time
        (ties: the shorter first, then the graph's topological order, then the unit)."""
        if units < 1:
            raise ScheduleError(f"number of units must be positive, got {units}")
        topo = {n: i for i, n in enumerate(nx.lexicographical_topological_sort(graph))}
        P = max(self.processors, 1 + max(self.placement.values()))
        keyed: dict[int, list] = {p: [] for p in range(P)}
        K, lam = self.unroll, self.interval
        for u in range(units):
            k, j = divmod(u, K)
            for t in graph:
                s = self.starts[(t, j)] + k * lam
                keyed[self.placement[t]].append((s, self.ends[(t, j)] + k * lam, topo[t], u, t))
        return {p: [Action(t[0], t[1], u) for *_, u, t in sorted(items, key=lambda x: x[:4])]
                for p, items in keyed.items()}


def _cp_model():
    try:
        from ortools.sat.python import cp_model
    except ImportError:  # an optional extra: say how to get it
        raise ScheduleError("the optimal schedule needs OR-Tools' CP-SAT: pip install -e \".[optimal]\"") from None
    return cp_model


class _Instance:
    """What the model needs of the graph and the platform, computed once for every interval tried."""

    def __init__(self, graph: nx.DiGraph, hw, rule: DelayRule, unroll: int):
        if not isinstance(unroll, int) or isinstance(unroll, bool) or unroll < 1:
            raise ScheduleError(f"unroll must be a positive integer, got {unroll!r}")
        for l in rule.groups:  # every other layer has the default group, checked next
            if rule.group(l) != 1:
                raise ScheduleError(f"layer {l} is updated once per {rule.group(l)} units: the optimal schedule "
                                    "models one update per unit (no stage replication, no micro-batch flush)")
        if rule.default_group != 1:
            raise ScheduleError(f"a step of {rule.default_group} micro-batches: the optimal schedule models one "
                                "update per unit (asynchronous pipelines: PipeDream, LayerPipe, LayerPipe2, SpikePipe)")
        if not getattr(hw, "overlap_comm", True):
            raise ScheduleError("the optimal schedule models processors that send while they compute "
                                "(the platform says no-overlap)")
        self.graph, self.hw, self.rule, self.K = graph, hw, rule, unroll
        self.P = P = hw.size
        self.tasks = sorted(graph.nodes)
        self.cost = {t: [int(hw.cycles(graph, t, p)) for p in range(P)] for t in self.tasks}
        self.topo = list(nx.lexicographical_topological_sort(graph))
        # data: per producer, one transfer per tensor (and receiving processor), read by its consumers
        groups: dict[Hashable, dict[Hashable, list]] = defaultdict(dict)
        for u, v in graph.edges:
            entry = groups[u].setdefault(edge_tensor(graph, u, v), [0, []])
            entry[0] = max(entry[0], edge_bytes(graph, u, v))
            entry[1].append(v)
        self.sends = [(u, tensor, hw.transfer(nbytes), tuple(cons))
                      for u in self.tasks for tensor, (nbytes, cons) in sorted(groups[u].items(), key=repr)]
        # weights: each layer's update tasks, the forwards that read it and what its weights cost to send
        upd, reads = update_tasks(graph), weight_readers(graph)
        self.layers = sorted({l for ls in reads.values() for l in ls if l in upd})
        self.updates = {l: upd[l] for l in self.layers}
        self.readers = {l: tuple(sorted(f for f, ls in reads.items() if l in ls)) for l in self.layers}
        self.weight_cycles = {l: hw.transfer(param_bytes(graph, l)) for l in self.layers}
        links_cost = any(c for *_, c, _ in self.sends) or any(self.weight_cycles.values())
        self.direct = all(len(hw.hops(a, b)) == 1 for a in range(P) for b in range(P) if a != b)
        self.links_cost = links_cost
        # interchangeable processors (and a topology where every pair looks alike): the first task goes to P0
        self.identical = P > 1 and all(hw.processors[p] == hw.processors[0] for p in range(P)) and (
            self.direct or not links_cost)
        self.stale_max = max((rule.staleness(l) for l in self.layers), default=0)
        # the first task is an ancestor of every other (a training step's input): normalise on it
        self.rooted = len(nx.descendants(graph, self.topo[0])) == len(self.tasks) - 1
        self.latest = self.latest_periods() if self.rooted else dict.fromkeys(self.tasks)
        # memory: what a placement holds whatever its timing (the timing adds stashed versions and
        # activations, which the engine's run measures)
        self.capacity = getattr(hw, "memory_capacity", None)
        self.held = [(h.param_bytes, group) for h in state_holders(graph).values()
                     for group in (h.readers, h.gradients, h.updates) if group] if self.capacity else []
        self.earliest: dict[Hashable, int] = {}  # longest path of fastest costs from the first tasks
        for t in self.topo:
            self.earliest[t] = max((self.earliest[u] + min(self.cost[u]) for u in graph.predecessors(t)), default=0)

    def moved(self) -> list[tuple[Hashable, int, tuple]]:
        """What crosses links when producer and reader run apart: ``(producer, cycles, readers)`` for each
        tensor with a cost and each layer's new weights (sent from its last update task)."""
        return [(u, c, cons) for u, _, c, cons in self.sends if c] + [
            (self.updates[l][-1], c, self.readers[l]) for l, c in self.weight_cycles.items() if c]

    def size(self, lam: int, fifo: bool = True, fixed: Mapping | None = None) -> int:
        """Placement literals (tasks and transfers x channels) plus, with ``fifo``, the first-come
        constraints of :func:`_first_come` at interval ``lam`` (counted as it would state them, from
        the same windows; with a ``fixed`` placement only the pairs that share a channel): what the
        model's memory grows with."""
        moved = self.moved()
        pairs = [(a, b) for a in range(self.P) for b in range(self.P) if a != b]
        hops = 1 if self.direct else max(len(self.hw.hops(a, b)) for a, b in pairs)
        placement = self.K * self.P * (len(self.tasks) + len(moved) * (self.P - 1) * hops)
        if not fifo or not self.links_cost or self.P == 1:
            return placement
        top = self.horizon(lam) + (1 + self.stale_max) * lam
        span = top // lam + 2

        def count(win: list, cycles: list) -> int:
            return sum(1 for a, (lo_a, hi_a) in enumerate(win) for b, (lo_b, hi_b) in enumerate(win) if a != b
                       for d in range(-span, span + 1) if lo_a < hi_b + d * lam and top + cycles[a] > lo_b + d * lam)

        if fixed is not None:  # the channels are known: only transfers on one channel are ordered
            chans: dict[tuple, list] = defaultdict(list)
            for u, c, cons in moved:
                lo, hi = self.ready_window(u, lam)
                for q in sorted({fixed[v] for v in cons} - {fixed[u]}):
                    for h, hop in enumerate(self.hw.hops(fixed[u], q)):
                        chans[hop].append(((lo + h * c, hi if h == 0 else top), c))
            terms = sum(count([w for w, _ in items], [c for _, c in items]) for items in chans.values())
            booked = sum(len(items) for items in chans.values())
            return self.K * (self.P * len(self.tasks) + booked) + self.K * self.K * terms
        win = [self.ready_window(u, lam) for u, _, _ in moved]
        terms = count(win, [c for _, c, _ in moved])
        return placement + self.K * self.K * terms * self.P * hops * (1 if self.direct else self.P - 1)

    def static_memory(self, place: Mapping) -> list[int]:
        """Bytes each processor holds under ``place`` whatever the timing: one version of every weight
        layer its forwards read, the gradient buffers and optimizer state of its layers."""
        mem = [0] * self.P
        for nbytes, group in self.held:
            for p in {place[t] for t in group}:
                mem[p] += nbytes
        return mem

    def fits(self, place: Mapping) -> bool:
        return self.capacity is None or max(self.static_memory(place)) <= self.capacity

    def serial(self, place: Mapping) -> tuple[int, dict, dict]:
        """Every task and every transfer of ``place`` one after another, units back to back: a valid
        schedule of any placement (nothing overlaps, and each unit ends before the next begins)."""
        hops = (lambda a, b: 1) if self.direct else (lambda a, b: len(self.hw.hops(a, b)))
        sends = defaultdict(list)
        for u, _, c, cons in self.sends:
            sends[u].append((c, cons))
        order = {t: i for i, t in enumerate(self.topo)}
        for l, c in self.weight_cycles.items():  # the new weights leave after the layer's last update task
            sends[max(self.updates[l], key=order.__getitem__)].append((c, self.readers[l]))
        span, offset = 0, {}
        for t in self.topo:
            offset[t] = span
            span += self.cost[t][place[t]]
            for c, cons in sends[t]:
                span += sum(c * hops(place[t], q) for q in {place[v] for v in cons} - {place[t]})
        starts = {(t, j): j * span + offset[t] for t in self.tasks for j in range(self.K)}
        ends = {(t, j): v + self.cost[t][place[t]] for (t, j), v in starts.items()}
        return max(1, self.K * span), starts, ends

    def ready_window(self, u: Hashable, lam: int) -> tuple[int, int]:
        """Earliest and latest end of ``u``: its longest path of fastest costs, and (one unit per
        period) :meth:`latest_periods`, else the horizon."""
        lo = self.earliest[u] + min(self.cost[u])
        hi = self.latest[u] * lam + max(self.cost[u]) if self.K == 1 and self.latest[u] is not None else \
            self.horizon(lam)
        return lo, hi

    def bounds(self) -> dict[str, int]:
        """Intervals no modulo schedule of ``K`` units can beat: the work over P, the largest task."""
        K, P = self.K, self.P
        fastest = {t: min(c) for t, c in self.cost.items()}
        return {"work": -(-K * sum(fastest.values()) // P), "largest task": max(fastest.values(), default=0)}

    def sequential(self) -> tuple[int, dict, dict, dict]:
        """Every task on the processor that runs them fastest, units back to back: always valid."""
        p = min(range(self.P), key=lambda q: sum(self.cost[t][q] for t in self.tasks))
        span = sum(self.cost[t][p] for t in self.tasks)
        starts, ends = {}, {}
        for j in range(self.K):
            clock = j * span
            for t in self.topo:
                starts[(t, j)] = clock
                clock += self.cost[t][p]
                ends[(t, j)] = clock
        return max(1, self.K * span), {t: p for t in self.tasks}, starts, ends

    def horizon(self, lam: int) -> int:
        """Latest start of anything in the model (see :meth:`latest_periods`)."""
        finite = [b for b in self.latest.values() if b is not None]
        if self.K == 1 and len(finite) == len(self.tasks):
            return max(finite) * lam
        longest = sum(max(c) for c in self.cost.values()) + sum(c for *_, c, _ in self.sends) + sum(
            self.weight_cycles.values())
        return (self.K + 2 + self.stale_max) * lam + longest

    def latest_periods(self) -> dict[Hashable, int | None]:
        """For one unit per period: an integer B_t with s_t <= B_t x lam in every schedule whose first
        task starts in the first period (a shift by whole periods changes nothing), None if unknown.
        A task starts before its successors; an update of layer l ends before each forward that reads
        l starts 1 + S(l) periods later; the first task starts before lam. Tight windows matter: CP-SAT
        tightens bounds around the delay loops one step at a time, and a loose horizon makes that slow."""
        inf = float("inf")
        late: dict[Hashable, float] = dict.fromkeys(self.tasks, inf)
        late[self.topo[0]] = 1
        changed = True
        while changed:
            changed = False
            for t in reversed(self.topo):
                best = late[t]
                for v in self.graph.successors(t):
                    best = min(best, late[v])
                for l in self.layers:
                    if t in self.updates[l]:
                        back = 1 + self.rule.staleness(l)
                        best = min([best, *(late[f] + back for f in self.readers[l])])
                if best < late[t]:
                    late[t], changed = best, True
        return {t: (int(b) if b < inf else None) for t, b in late.items()}

    def delay_pairs(self):
        """(forward, its residue, layer, update residue, periods back) for every awaited update."""
        K = self.K
        for l in self.layers:
            back = 1 + self.rule.staleness(l)
            for f in self.readers[l]:
                for jf in range(K):
                    ju = (jf - back) % K
                    yield f, jf, l, ju, (back - jf + ju) // K


def _placement(m, inst: _Instance, fixed: Mapping | None = None) -> dict:
    """Literals ``x[(task, p)]``: every task on exactly one processor (``fixed``'s, if given), a
    layer's update tasks on one processor (its new weights leave from one place, as the engine sends
    them)."""
    x = {(t, p): m.NewBoolVar(f"x{t}{p}") for t in inst.tasks for p in range(inst.P)}
    for t in inst.tasks:
        m.AddExactlyOne(x[(t, p)] for p in range(inst.P))
        if fixed is not None:
            m.Add(x[(t, fixed[t])] == 1)
    for ups in inst.updates.values():
        for a in ups[1:]:
            for p in range(inst.P):
                m.Add(x[(a, p)] == x[(ups[0], p)])
    return x


def _memory_fits(m, inst: _Instance, x: Mapping) -> None:
    """What the placement holds on each processor whatever the timing fits the capacity (if any)."""
    if inst.capacity is None:
        return
    for p in range(inst.P):
        held = []
        for nbytes, group in inst.held:
            if len(group) == 1:
                held.append(nbytes * x[(group[0], p)])
            else:
                z = m.NewBoolVar("")
                m.AddMaxEquality(z, [x[(t, p)] for t in group])
                held.append(nbytes * z)
        m.Add(sum(held) <= inst.capacity)


def _build(inst: _Instance, lam: int, cp_model, hint_place: Mapping | None, fifo: bool = False,
           hint_starts: Mapping | None = None, fixed: Mapping | None = None):
    """The CP-SAT model of 'a modulo schedule with interval ``lam`` exists'; with ``fifo``, one whose
    links serve their transfers first come, first served, as the engine's do; with ``fixed`` (task ->
    processor), one with that placement (only the transfers it makes are booked and ordered)."""
    m = cp_model.CpModel()
    P, K, H = inst.P, inst.K, inst.horizon(lam)
    x = _placement(m, inst, fixed)
    if inst.identical and fixed is None:  # processors are interchangeable: the first task goes to P0
        m.Add(x[(inst.topo[0], 0)] == 1)
    direct = inst.direct
    s, e = {}, {}
    on_proc: dict[int, list] = defaultdict(list)
    on_link: dict[tuple[int, int], list] = defaultdict(list)
    #: per channel (on direct links: per receiving processor), each transfer that may use it, as
    #: :func:`_first_come` reads it
    queue: dict[tuple[int, int], list] = defaultdict(list)

    #: per resource (keyed by its occupation list), what it is busy with in one period: (cycles, literal)
    load: dict[int, list] = defaultdict(list)

    def circle(start, size: int, present, where: list, name: str, top: int = H) -> None:
        """An occupation of ``size`` cycles from ``start`` (at most ``top``), laid twice on [0, 2 lam)."""
        r = m.NewIntVar(0, lam - 1, f"r{name}")
        q = m.NewIntVar(0, top // lam + 1, f"q{name}")  # start = q lam + r: linear, as lam is fixed
        m.Add(start == lam * q + r)
        where.append(m.NewOptionalFixedSizeIntervalVar(r, size, present, f"a{name}"))
        where.append(m.NewOptionalFixedSizeIntervalVar(r + lam, size, present, f"b{name}"))
        load[id(where)].append((size, present))

    for t in inst.tasks:
        c = inst.cost[t]
        for j in range(K):
            top = inst.latest[t] * lam if K == 1 and inst.latest[t] is not None else H
            s[(t, j)] = m.NewIntVar(0, top, f"s{t}{j}")
            e[(t, j)] = s[(t, j)] + sum(c[p] * x[(t, p)] for p in range(P)) if len(set(c)) > 1 else s[(t, j)] + c[0]
            for p in range(P):
                if c[p]:
                    circle(s[(t, j)], c[p], x[(t, p)], on_proc[p], f"{t}{j}{p}")
    if inst.rooted:  # a whole period's shift is the same schedule, and everything follows the first task
        m.Add(s[(inst.topo[0], 0)] < lam)
    for u, v in inst.graph.edges:
        for j in range(K):
            m.Add(s[(v, j)] >= e[(u, j)])

    def sent(src: Hashable, dsts: tuple, cycles: int, ready, name: str, window: tuple[int, int],
             who: tuple, top: int = H) -> dict[int, list]:
        """How what ``src`` produces (ready at ``ready``) reaches each processor q where one of
        ``dsts`` runs and ``src`` does not: ``q -> [(arrival, literals)]``, the arrival holding when
        the literals (besides the reader being on q) are true. On a direct link one start per q
        serves every source; a route of several hops books each hop in turn (store and forward)."""
        arrive: dict[int, list] = {}
        for q in range(P):
            if fixed is not None and (fixed[src] == q or all(fixed[d] != q for d in dsts)):
                arrive[q] = []  # nothing crosses into q
                continue
            need = m.NewBoolVar(f"n{name}{q}")
            m.AddMaxEquality(need, [x[(d, q)] for d in dsts])
            go = m.NewIntVar(0, top, f"g{name}{q}") if direct else None
            if direct:
                m.Add(go >= ready)
                arrive[q] = [(go + cycles, [x[(src, q)].Not()])]
                # on the channel (p, q) when src runs on p != q: first-come order against the others to q
                queue[("to", q)].append((go, ready, cycles, [need, x[(src, q)].Not()], window, who, src))
            else:
                arrive[q] = []
            for p in range(P):
                if p == q or (fixed is not None and p != fixed[src]):
                    continue
                y = m.NewBoolVar(f"y{name}{p}{q}")
                m.AddBoolAnd([x[(src, p)], need]).OnlyEnforceIf(y)
                m.AddBoolOr([x[(src, p)].Not(), need.Not()]).OnlyEnforceIf(y.Not())
                if direct:
                    circle(go, cycles, y, on_link[(p, q)], f"{name}{p}{q}", top)
                    continue
                at = ready
                for h, hop in enumerate(inst.hw.hops(p, q)):
                    g = m.NewIntVar(0, top, f"g{name}{p}{q}{h}")
                    m.Add(g >= at)
                    circle(g, cycles, y, on_link[hop], f"{name}{p}{q}{h}", top)
                    queue[hop].append((g, at, cycles, [y], (window[0] + h * cycles, window[1] if h == 0 else top),
                                       who if h == 0 else None, None))
                    at = g + cycles
                arrive[q].append((at, [x[(src, p)]]))
        return arrive

    for n, (u, tensor, cycles, cons) in enumerate(inst.sends):
        if not cycles:
            continue
        for j in range(K):
            arrive = sent(u, cons, cycles, e[(u, j)], f"d{n}_{j}_", inst.ready_window(u, lam),
                          ((u, j), 0, repr(tensor)))
            for v in cons:
                for q in range(P):
                    for at, lits in arrive[q]:
                        m.Add(s[(v, j)] >= at).OnlyEnforceIf([x[(v, q)], *lits])
    arrivals = {}
    for l in inst.layers:
        cycles, last = inst.weight_cycles[l], inst.updates[l]
        for ju in range(K):
            ready = m.NewIntVar(0, H, f"u{l}{ju}")
            m.AddMaxEquality(ready, [e[(a, ju)] for a in last])
            windows = [inst.ready_window(a, lam) for a in last]
            win = (max(lo for lo, _ in windows), max(hi for _, hi in windows))
            # new weights may be read up to 1 + S(l) periods after a reader's latest start
            top = H + (1 + inst.rule.staleness(l)) * lam
            arrivals[(l, ju)] = (ready, sent(last[0], inst.readers[l], cycles, ready, f"w{l}_{ju}_", win,
                                             ((last[-1], ju), 1, l), top) if cycles else None)
    for f, jf, l, ju, back in inst.delay_pairs():
        ready, arrive = arrivals[(l, ju)]
        m.Add(s[(f, jf)] + back * lam >= ready)
        if arrive is not None:
            for q in range(P):
                for at, lits in arrive[q]:
                    m.Add(s[(f, jf)] + back * lam >= at).OnlyEnforceIf([x[(f, q)], *lits])
    _memory_fits(m, inst, x)
    for group in (*on_proc.values(), *on_link.values()):
        m.AddNoOverlap(group)
        # implied by the no-overlap on the circle, but CP-SAT's linear relaxation only sees it stated:
        # a resource is busy at most lam cycles per period (the bin-packing side of the problem)
        m.Add(sum(size * lit for size, lit in load[id(group)]) <= lam)
    if fifo:
        _first_come(m, queue, x, P, H + (1 + inst.stale_max) * lam, lam, fixed)  # the latest any transfer starts
    if hint_place:
        for t in inst.tasks:
            if t in hint_place:
                for p in range(P):
                    m.AddHint(x[(t, p)], int(hint_place[t] == p))
    if hint_starts and inst.K == 1:
        for t in inst.tasks:
            if t in hint_starts:
                m.AddHint(s[(t, 0)], int(hint_starts[t]))
    return m, x, s


def _first_come(m, queue: Mapping, x: Mapping, P: int, H: int, lam: int, fixed: Mapping | None = None) -> None:
    """Instance k of transfer A and k + d of B on one channel: requested first, served first.

    ``queue`` maps a channel (or, on direct links, ``("to", q)``: every channel into q, the two
    sharing one when their producers share a processor) to ``(start, request, cycles, literals,
    window, who, source)``; the windows of the request times leave only a few shifts d undecided.
    With a ``fixed`` placement only transfers whose producers share a processor are paired."""
    span = H // lam + 2
    same: dict[tuple, object] = {}

    def together(u: Hashable, v: Hashable) -> list | None:
        """Literals true when u and v run on one processor (none when they are the same task or the
        placement is fixed and puts them together; None when it puts them apart)."""
        if u is None or u == v:
            return []
        if fixed is not None:
            return [] if fixed[u] == fixed[v] else None
        key = tuple(sorted((u, v), key=repr))
        if key not in same:
            both = []
            for p in range(P):
                z = m.NewBoolVar("")
                m.AddBoolAnd([x[(u, p)], x[(v, p)]]).OnlyEnforceIf(z)
                m.AddBoolOr([x[(u, p)].Not(), x[(v, p)].Not()]).OnlyEnforceIf(z.Not())
                both.append(z)
            same[key] = m.NewBoolVar("")
            m.Add(same[key] == sum(both))
        return [same[key]]

    for chan, items in sorted(queue.items(), key=repr):
        for a, (ga, ra, ca, la, (lo_a, hi_a), who_a, src_a) in enumerate(items):
            for b, (gb, rb, cb, lb, (lo_b, hi_b), who_b, src_b) in enumerate(items):
                if a == b:
                    continue
                both = together(src_a, src_b)
                if both is None:
                    continue
                lits = [*la, *lb, *both]
                if who_a is not None and who_b is not None and who_a[0] == who_b[0]:
                    # one task's sends, requested together: the engine queues its data in the order of
                    # (destination, tensor) and the new weights after them; later minibatches come later
                    for d in range(0 if who_a[1:] < who_b[1:] else 1, span + 1):
                        if H + ca > lo_b + d * lam:
                            m.Add(ga + ca <= gb + d * lam).OnlyEnforceIf(lits)
                    continue
                for d in range(-span, span + 1):
                    if lo_a >= hi_b + d * lam:  # A is never requested first
                        continue
                    if H + ca <= lo_b + d * lam:  # A always ends before B can start
                        continue
                    if hi_a < lo_b + d * lam:  # always requested first
                        m.Add(ga + ca <= gb + d * lam).OnlyEnforceIf(lits)
                        continue
                    first = m.NewBoolVar("")
                    m.Add(ra < rb + d * lam).OnlyEnforceIf(first)
                    m.Add(ra >= rb + d * lam).OnlyEnforceIf(first.Not())
                    m.Add(ga + ca <= gb + d * lam).OnlyEnforceIf([first, *lits])


def _solver(cp_model, budget: float):
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # one worker and a deterministic limit: the same answer on any machine
    solver.parameters.random_seed = 0
    solver.parameters.max_deterministic_time = max(0.01, budget)
    # a guard, not the limit: deterministic time undercounts some propagation, and a solve must end
    solver.parameters.max_time_in_seconds = WALL_GUARD * max(1.0, budget)
    return solver


def _fitting_placement(inst: _Instance, time_limit: float, hint: Mapping | None) -> tuple[dict[Hashable, int], float]:
    """A placement whose static memory fits on every processor, with as few cycles of transfers as
    CP-SAT finds within a tenth of the limit (what its serial schedule adds to the work), and the
    deterministic seconds spent; ``hint`` when it fits; a one-line error when none is found."""
    if hint and all(t in hint for t in inst.tasks) and inst.fits(hint):
        return dict(hint), 0.0
    cp_model = _cp_model()
    m = cp_model.CpModel()
    P = inst.P
    x = _placement(m, inst)
    _memory_fits(m, inst, x)
    crossing = []
    for u, c, cons in inst.moved():  # apart: some reader on a processor that u is not on
        apart = m.NewBoolVar("")
        for v in cons:
            for p in range(P):
                m.Add(apart >= x[(v, p)] - x[(u, p)])
        crossing.append(c * apart)
    m.Minimize(sum(crossing))
    solver = _solver(cp_model, time_limit / 10)
    status = solver.Solve(m)
    spent = solver.ResponseProto().deterministic_time
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return {t: next(p for p in range(P) if solver.Value(x[(t, p)])) for t in inst.tasks}, spent
    need = max((nbytes for nbytes, _ in inst.held), default=0)
    what = "no placement" if status == cp_model.INFEASIBLE else "no placement found within the time limit"
    raise ScheduleError(f"{what} fits {inst.capacity:,} bytes per processor: every weight layer keeps a version, "
                        f"its gradient buffer and optimizer state where its tasks run (the largest is {need:,} bytes "
                        f"each), before any stashed activation")


def best_modulo_schedule(graph: nx.DiGraph, hw, rule: DelayRule, *, unroll: int = 1, lower: int | None = None,
                         upper: int | None = None, hint_placement: Mapping | None = None,
                         hint_starts: Mapping | None = None,
                         time_limit: float = DEFAULT_TIME_LIMIT, max_size: int = MAX_MODEL_SIZE) -> ModuloSolution:
    """The modulo schedule of ``graph`` on ``hw`` (:class:`simulator.hardware.Hardware`) with the
    smallest interval the search finds within ``time_limit``, and the bound it proves.

    ``lower``: an interval known to be a lower bound (for instance the iteration bound x unroll);
    ``upper``: an interval to try first (a heuristic's rate x unroll, rounded up), with
    ``hint_placement`` (task -> processor) and ``hint_starts`` (task -> start of one minibatch's
    instance, relative to its first task's) as CP-SAT's warm start. ``max_size``: the largest model
    (:meth:`_Instance.size`) built; above it with the first-come rule, the bound comes from the model
    without it and the schedule from a placement timed with it (``message`` says so). ``hw``'s memory
    capacity bounds what each placement holds. ``graph`` is not changed.
    """
    if not (isinstance(time_limit, (int, float)) and math.isfinite(time_limit) and time_limit > 0):
        raise ScheduleError(f"the solver's time limit must be a positive number of seconds, got {time_limit!r}")
    inst = _Instance(graph, hw, rule, unroll)
    bounds = inst.bounds()
    if lower is not None:
        bounds["given"] = int(lower)
    lo = max(1, *bounds.values())
    seq_lam, seq_place, seq_starts, seq_ends = inst.sequential()
    placing = 0.0  # deterministic seconds spent finding a placement that fits
    if not inst.fits(seq_place):  # one processor cannot hold it all: a placement that fits, run serially
        seq_place, placing = _fitting_placement(inst, time_limit, hint_placement)
        seq_lam, seq_starts, seq_ends = inst.serial(seq_place)
    best = (seq_lam, seq_place, seq_starts, seq_ends, "sequential")
    if inst.P == 1 or seq_lam <= lo:
        return ModuloSolution(seq_lam, unroll, seq_place, seq_starts, seq_ends, seq_lam, "optimal", (), placing,
                              source="sequential", bounds=bounds, processors=inst.P)
    size = inst.size(lo)
    fifo, relaxed = inst.links_cost, ""
    if size > max_size:
        small = inst.size(lo, fifo=False)
        if small > max_size:
            return ModuloSolution(seq_lam, unroll, seq_place, seq_starts, seq_ends, lo, "too large", (), placing,
                                  message=f"{len(inst.tasks)} tasks x {unroll} units x {inst.P} processors (model "
                                          f"size {size:,} > {max_size:,}): too large to prove; interval and bound "
                                          "are the sequential schedule's and the analytic bounds",
                                  source="sequential", bounds=bounds, processors=inst.P)
        # the model without the first-come rule is a relaxation (first come is one order among those it
        # allows), so what it proves infeasible stays proven; its placement is then timed by the full
        # model with the placement fixed, which has only the transfers that placement makes to order
        fifo, relaxed = False, (f"the first-come link rule over every placement is too large (model size {size:,} > "
                                f"{max_size:,}): the bound is the relaxation's without it, the schedule is its "
                                "placement timed with first-come links")
    cp_model = _cp_model()
    tried: list[tuple[int, str]] = []
    spent = placing

    def attempt(lam: int, budget: float, hint: Mapping | None = None, starts: Mapping | None = None,
                fixed: Mapping | None = None, what: str = ""):
        nonlocal spent
        # a hint only where it is likely right (the warm start at its own interval): CP-SAT's search
        # around a hint that cannot be completed costs far more than a search without one
        model, x, s = _build(inst, lam, cp_model, hint, fifo or fixed is not None, starts, fixed)
        solver = _solver(cp_model, budget)
        status = solver.Solve(model)
        spent += solver.ResponseProto().deterministic_time
        if status == cp_model.UNKNOWN and solver.WallTime() >= WALL_GUARD * max(1.0, budget):
            tried.append((lam, f"unknown{what} (wall-clock guard)"))
            return False
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            place = {t: next(p for p in range(inst.P) if solver.Value(x[(t, p)])) for t in inst.tasks}
            starts = {k: solver.Value(v) for k, v in s.items()}
            ends = {(t, j): starts[(t, j)] + inst.cost[t][place[t]] for (t, j) in starts}
            tried.append((lam, f"feasible{what}"))
            return place, starts, ends
        tried.append((lam, ("infeasible" if status == cp_model.INFEASIBLE else "unknown") + what))
        return status == cp_model.INFEASIBLE

    def search(best: tuple, a: int, until: float, first: tuple | None = None, **model) -> tuple[tuple, int]:
        """Bisect [a, best's interval) until ``until`` deterministic seconds are spent: a feasible
        answer lowers the interval; an infeasible one proves every interval up to it infeasible
        (feasibility only grows with the interval); an unknown one proves nothing, so the search goes
        on above it. ``first``: (interval, hint placement, hint starts) to try before anything else.
        Returns the best (interval, placement, starts, ends, source) and the proven bound."""
        hi, proven = best[0], a
        if first is not None and a <= first[0] < hi:  # the warm start's interval first
            got = attempt(first[0], (until - spent) / 3, first[1], first[2], **model)
            if isinstance(got, tuple):
                best, hi = (first[0], *got, "hint"), first[0]
            elif got is True:
                proven = a = first[0] + 1
        if a < hi and spent < until:  # the bound itself: often met, and then proven at once
            got = attempt(a, min(until - spent, time_limit / 4), **model)
            if isinstance(got, tuple):
                best, hi = (a, *got, "solver"), a
            elif got is True:
                proven = a = a + 1
        while a < hi and spent < until:
            mid = (a + hi) // 2
            got = attempt(mid, min(until - spent, time_limit / 4), **model)
            if isinstance(got, tuple):
                best, hi = (mid, *got, "solver"), mid
            else:
                a = mid + 1
                if got is True:
                    proven = mid + 1
        return best, min(proven, hi)

    warm = (int(upper), hint_placement, hint_starts) if upper is not None else None
    best, bound = search(best, lo, time_limit / 2 if relaxed else time_limit, warm,
                         **({"what": " (no first-come rule)"} if relaxed else {}))
    if relaxed:  # time the warm start's placement, then the relaxation's, with first-come links
        found, place = best, best[1]
        best = (seq_lam, seq_place, seq_starts, seq_ends, "sequential")
        fixed = " (placement fixed, first come)"
        hint = hint_placement if hint_placement and all(t in hint_placement for t in inst.tasks) else None
        if upper is not None and lo <= upper < seq_lam and hint and inst.fits(hint) and \
                inst.size(int(upper), fixed=hint) <= max_size:
            got = attempt(int(upper), (time_limit - spent) / 4, hint, hint_starts, fixed=hint, what=fixed)
            if isinstance(got, tuple):
                best = (int(upper), *got, "hint")
        if found[4] != "sequential" and found[0] < best[0] and inst.size(found[0], fixed=place) <= max_size:
            starts = {t: v for (t, j), v in found[2].items() if j == 0}
            best, _ = search(best, found[0], time_limit, (found[0], place, starts), fixed=place, what=fixed)
    status = "optimal" if bound >= best[0] else "gap"
    lam, place, starts, ends, source = best
    return ModuloSolution(lam, unroll, place, starts, ends, bound, status, tuple(tried), spent, message=relaxed,
                          source=source, bounds=bounds, processors=inst.P)


__all__ = ["ModuloSolution", "best_modulo_schedule", "MAX_MODEL_SIZE", "DEFAULT_TIME_LIMIT"]
