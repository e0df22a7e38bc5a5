"""The SimPy engine: assigns times to a validated schedule on a platform.

Each processor walks its ordered actions. Before an action starts it waits for (1) each
predecessor in the task graph, locally or through the transfer that brings its output,
and (2) for a forward, the weights the delay rule allows (``schedules.schedule``). A task
then holds its processor for the cost model's cycles. Transfers hold one directed link
channel per hop (store and forward).

Two drivers run the same bookkeeping on one SimPy environment:

* when some transfer costs link cycles, every processor and every transfer is a SimPy
  process and links are ``simpy.Resource`` channels;
* when no transfer can cost a cycle (a free link, or nothing but zero-byte tensors),
  nothing ever competes for a link, so the processors are driven by callbacks on their
  task ``Timeout`` events and a zero-cycle transfer is delivered at once. Times are the
  same as with processes (no decision depends on the order of events at one instant),
  at a fraction of the cost.

The engine streams what the metrics need (busy cycles, bytes, link-busy cycles, waits on
transfers, stashed-activation memory, step completion times), so with ``trace=None`` its
memory does not grow with the number of units: every piece of bookkeeping is dropped as
soon as its last reader has used it. A trace sink, when given, receives every task and
transfer as it ends.

Definitions of the streamed figures:

* ``transfer_wait[p]``: cycles processor ``p`` sat idle while the data its next task
  needs was in flight on a link (the transfer had left its producer and had not arrived
  yet). Waiting for another processor's computation is not a transfer wait, so on a
  free link both ``transfer_wait`` and ``any_transfer_wait`` are 0.
* ``peak_stash_bytes[p]``: the largest activation stash on ``p`` over time, where
  everything that happens at one instant happens together (a stash freed at cycle t and
  one taken at cycle t do not add up): the maximum over instants of the level after them.

>>> from models.graph.build import uniform_pipeline_graph
>>> from schedules.schedule import Schedule, parse_orders
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> g = uniform_pipeline_graph(2, f=1, b=1, w=1)
>>> s = Schedule("hand", g, parse_orders("P0: F1.0 B1.0 W1.0; P1: F2.0 B2.0 W2.0"))
>>> simulate(s, Platform.homogeneous(2, MacArray(1))).makespan
5
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field

import simpy
from simpy.events import NORMAL

from models.errors import DeadlockError, LayerPipeError
from schedules.passes import ExecutableSchedule, forward_layers, insert_transfers, update_tasks, validate
from schedules.schedule import Action, Schedule

from simulator.platform import Platform
from simulator.trace import TraceSink

Task = tuple[str, int]
_STASH_FREERS = ("WG", "AG2", "B", "W")

# kinds of the things a task waits for
_LOCAL, _XFER, _UPD = 0, 1, 2


@dataclass
class SimStats:
    """Everything the engine measured, streamed (no per-task storage)."""

    processors: int
    units: int
    steps: int
    makespan: int = 0
    busy: list[int] = field(default_factory=list)  # compute cycles per processor, whole run
    window_busy: list[float] = field(default_factory=list)  # compute cycles inside the measured window
    window: tuple[float, float] = (0.0, 0.0)  # [start, end] of the steady-state window
    window_steps: int = 0  # optimizer steps completed inside the window
    window_mid: tuple[float, int] | None = None  # (time, steps after the window start) of its midpoint
    depth: int = 1  # steps a schedule keeps in flight (schedule_period)
    first_step_end: float = 0.0
    tasks_run: int = 0
    bytes_moved: int = 0  # bytes that crossed between processors (counted once per transfer)
    bytes_by_kind: dict[str, int] = field(default_factory=dict)  # "activation", "weights", ...
    link_busy: dict[tuple[int, int], int] = field(default_factory=dict)
    transfer_wait: list[float] = field(default_factory=list)  # cycles each processor idled on in-flight data
    any_transfer_wait: float = 0.0  # cycles in which some processor waited on in-flight data
    peak_stash_bytes: list[int] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """Whether the run reached its steady state: one step, or a window at least as long as
        the pipeline's depth whose two halves (each a whole number of periods) give the same
        cycles per step within 0.5%."""
        if self.steps <= 1:
            return True
        if self.window_steps <= 0 or self.window_mid is None or self.window_steps < self.depth:
            return False
        t_mid, k = self.window_mid
        first = (t_mid - self.window[0]) / k
        second = (self.window[1] - t_mid) / (self.window_steps - k)
        return abs(first - second) <= 0.005 * max(first, second)

    @property
    def cycles_per_step(self) -> float:
        """Mean interval between step completions inside the window (the makespan for one step)."""
        if self.window_steps <= 0:
            return float(self.makespan) / max(1, self.steps)
        return (self.window[1] - self.window[0]) / self.window_steps


@dataclass
class SimResult:
    schedule: Schedule
    platform: Platform
    stats: SimStats
    executable: ExecutableSchedule

    @property
    def makespan(self) -> int:
        return self.stats.makespan


def steady_window(steps: int, depth: int = 1, period: int = 1) -> tuple[int, int]:
    """Indices of the step completions that bound the steady-state window.

    Warm-up is the first quarter of the steps and at least ``depth`` steps, the number a
    schedule keeps in flight (max over layers of g_l (S(l) + 1) units, in steps): until
    then the busiest processor may run forwards of later minibatches ahead and completions
    come faster than the steady rate. The last quarter is drain. A schedule that repeats
    every ``period`` steps (round-robin replicas, update rounds) completes steps in bursts,
    so the window spans a whole number of periods. When not even one period fits, returns
    ``(-1, 0)``: the whole run is the window and cycles per step = makespan / steps, which
    can only overstate the steady-state figure.

    >>> steady_window(16), steady_window(16, depth=8), steady_window(8, depth=8), steady_window(64, 1, 16)
    ((4, 11), (8, 11), (-1, 0), (16, 32))
    """
    if steps <= 1:
        return (-1, 0)
    first = max(steps // 4, depth)
    last = steps - 1 - steps // 4
    whole = (last - first) // period * period
    if whole < 1:
        return (-1, 0)
    return first, first + whole


def schedule_period(sched: Schedule, placement_period: int = 1) -> tuple[int, int]:
    """``(depth, period)`` of ``sched`` in steps.

    Depth: max over layers of g_l (S(l) + 1) units in flight. Period: the least common
    multiple of the placement period (round-robin replicas), the update rounds g_l and m.
    """
    m = sched.microbatches_per_step
    layers = set(sched.delays) | set(sched.update_rounds)
    groups = {l: sched.update_group(l) for l in layers}
    depth_units = max((g * (sched.stale_updates(l) + 1) for l, g in groups.items()), default=m)
    period_units = math.lcm(placement_period, m, *groups.values())
    return max(1, -(-depth_units // m)), max(1, period_units // m)


def schedule_window(sched: Schedule, steps: int, placement_period: int = 1) -> tuple[int, int]:
    """:func:`steady_window` with ``sched``'s depth and period (:func:`schedule_period`)."""
    return steady_window(steps, *schedule_period(sched, placement_period))


def window_midpoint(first: int, last: int, period: int) -> int:
    """A step completion splitting the window into two halves of whole periods (-1: no room).

    The two halves must give the same rate when the run has reached its steady state
    (:attr:`SimStats.converged`).

    >>> window_midpoint(16, 32, 4), window_midpoint(16, 20, 4)
    (24, -1)
    """
    if first < 0:
        return -1
    k = (last - first) // period
    return first + (k // 2) * period if k >= 2 else -1


class _Plan:
    """Everything about one template task for units ``u`` with ``u % period == r``."""

    __slots__ = ("kind", "layer", "cost", "code", "needs", "refs", "sends", "stash", "upd_layers", "free_layers",
                 "send_kind", "send_bytes")


class _Wakeup:
    """The end of a processor's task: a minimal event for ``Environment.schedule``.

    ``Environment.step`` needs only ``callbacks`` and ``_ok`` of what it pops; a
    processor has at most one task running, so it reuses one of these for all of them.
    """

    __slots__ = ("env", "callbacks", "_ok", "_value")

    def __init__(self, env: simpy.Environment):
        self.env, self.callbacks, self._ok, self._value = env, None, True, None


class _Send:
    """A transfer of one unit, ready to go."""

    __slots__ = ("src", "dst", "key", "nbytes", "readers", "cycles", "unit")

    def __init__(self, src, dst, key, nbytes, readers, cycles, unit):
        self.src, self.dst, self.key, self.nbytes = src, dst, key, nbytes
        self.readers, self.cycles, self.unit = readers, cycles, unit


class _Run:
    def __init__(self, ex: ExecutableSchedule, platform: Platform, sink: TraceSink | None, *,
                 processes: bool = False):
        """``processes=True`` forces the process driver even when transfers are free (tests)."""
        sched = ex.schedule
        self.ex, self.sched, self.platform, self.sink = ex, sched, platform, sink
        self.graph = graph = sched.graph
        self.m = sched.microbatches_per_step
        self.env = simpy.Environment()
        P = sched.processors
        self.P = P
        self.units = sched.units  # Schedule.units scans every action: compute it once
        self.steps = -(-self.units // self.m)
        self.stats = SimStats(P, self.units, self.steps, busy=[0] * P, window_busy=[0.0] * P,
                              transfer_wait=[0.0] * P, peak_stash_bytes=[0] * P)
        self.place = ex.placement
        self.period = self.place.period
        self.preds = {n: tuple(graph.predecessors(n)) for n in graph}
        self.succs = {n: tuple(graph.successors(n)) for n in graph}
        self.fwd = forward_layers(graph)
        self.upd = update_tasks(graph)
        self.upd_of: dict[Task, tuple[int, ...]] = defaultdict(tuple)
        for l, tasks in self.upd.items():
            for t in tasks:
                self.upd_of[t] += (l,)
        weight_layers = set(self.upd) | {l for ls in self.fwd.values() for l in ls}
        self.stale = {l: sched.stale_updates(l) for l in weight_layers}
        self.group = {l: sched.update_group(l) for l in weight_layers}  # units per update (the delay rule)
        layers = graph.graph.get("layers", {})
        self.stash = {l: info.stash_bytes for l, info in layers.items()}
        self.nfreers: dict[int, int] = {
            l: sum(1 for n, d in graph.nodes(data=True) if n[0] in _STASH_FREERS and l in d.get("layers", (n[1],)))
            for l in self.stash}
        # signal codes: one small integer per (what, where); keys are (code, unit or step)
        self.tid = {t: i for i, t in enumerate(graph.nodes)}
        self.code_info: list[tuple] = [("t", t) for t in graph.nodes]
        self._codes: dict[tuple, int] = {}
        self.plans: dict[tuple[str, int, int], _Plan] = {}
        self.cost_cache: dict[tuple[Task, int], int] = {}
        self.cycles_cache: dict[int, int] = {}
        self.readers_cache: dict[tuple, int] = {}
        self.links: dict[tuple[int, int], simpy.Resource] = {}
        self.avail: dict[tuple[int, int], int] = {}
        self.waiters: dict[tuple[int, int], object] = {}
        self.unit_left: dict[int, int] = {}
        self.step_left: dict[int, int] = {}
        self.update_left: dict[tuple[int, int], int] = {}
        self.stash_left: dict[tuple[int, int], list] = {}
        self.stash_now = [0] * P
        self.stash_time = [0.0] * P
        self.head: list[Action | None] = [None] * P
        self.waiting_on: list[tuple | None] = [None] * P
        self.in_flight: set[tuple[int, int]] = set()
        self.transit_since: list[float | None] = [None] * P
        self.n_waiting = 0
        self.wait_since = 0.0
        self.stats.depth, period_steps = schedule_period(sched, ex.placement.period)
        self.win_first, self.win_last = schedule_window(sched, self.steps, ex.placement.period)
        self.win_mid = window_midpoint(self.win_first, self.win_last, period_steps)
        # only these steps' completion times are ever used: track no other unit
        self.tracked = {k for k in (0, self.win_first, self.win_mid, self.win_last) if 0 <= k < self.steps}
        self.win_start: float | None = None
        self.win_end: float | None = None
        self.tasks_per_unit = graph.number_of_nodes()
        self.fast = not processes and self._all_transfers_free()

    # -- set-up ---------------------------------------------------------------------
    def _all_transfers_free(self) -> bool:
        link = self.platform.link
        if link.is_free:
            return True
        sizes = {int(d.get("bytes", 0)) for _, _, d in self.graph.edges(data=True)}
        sizes |= {nbytes for nbytes, _ in self.ex.weight_readers.values()}
        return all(self.hop_cycles(n) == 0 for n in sizes)

    def hop_cycles(self, nbytes: int) -> int:
        c = self.cycles_cache.get(nbytes)
        if c is None:
            c = self.cycles_cache[nbytes] = self.platform.link.transfer_cycles(nbytes)
        return c

    def code(self, info: tuple) -> int:
        c = self._codes.get(info)
        if c is None:
            c = self._codes[info] = len(self.code_info)
            self.code_info.append(info)
        return c

    def cost(self, task: Task, p: int) -> int:
        key = (task, p)
        c = self.cost_cache.get(key)
        if c is None:
            c = int(self.platform.processors[p].task_cycles(self.graph.nodes[task]["work"]))
            if c < 0:
                raise LayerPipeError(f"cost model returned negative cycles ({c}) for {task}")
            self.cost_cache[key] = c
        return c

    def plan(self, kind: str, layer: int, r: int) -> _Plan:
        """Build (once) the plan of ``(kind, layer)`` for units ``u % period == r``."""
        task = (kind, layer)
        place, ex = self.place, self.ex
        p = place(task, r)
        pl = _Plan()
        pl.kind, pl.layer = kind, layer
        pl.cost = self.cost(task, p)
        pl.code = self.tid[task]
        needs = []
        for q in self.preds[task]:
            if place(q, r) == p:
                needs.append((_LOCAL, self.tid[q], 0))
            else:
                for tr in ex.transfers_after(q, r):
                    if tr.dst == p and task in tr.consumers:
                        needs.append((_XFER, self.code(("x", q, tr.tensor, p)), 0))
                        break
        for l in self.fwd.get(task, ()):
            needs.append((_UPD, self.code(("u", l, p)), (self.stale[l], self.group[l])))
        pl.needs = tuple(needs)
        pl.refs = sum(1 for v in self.succs[task] if place(v, r) == p)
        pl.sends = tuple((self.code(("x", task, tr.tensor, tr.dst)), tr, len(tr.consumers),
                          self.hop_cycles(tr.bytes))
                         for tr in ex.transfers_after(task, r))
        pl.send_kind = "activation" if kind == "F" else "gradient"
        pl.send_bytes = sum(tr.bytes for _, tr, _, _ in pl.sends)
        pl.stash = tuple((l, self.stash[l], self.nfreers[l]) for l in self.fwd.get(task, ())
                         if self.stash.get(l, 0)) if kind == "F" else ()
        pl.upd_layers = self.upd_of.get(task, ())
        pl.free_layers = task_layers(self.graph, task) if kind in _STASH_FREERS else ()
        self.plans[(kind, layer, r)] = pl
        return pl

    # -- small helpers --------------------------------------------------------------
    def units_in_step(self, step: int) -> range:
        return range(step * self.m, min((step + 1) * self.m, self.units))

    def units_in_round(self, l: int, round_: int) -> range:
        return self.sched.round_units(l, round_, self.units)

    def weight_readers_count(self, l: int, step: int, d: int) -> int:
        """Forward instances on ``d`` that wait for layer ``l``'s update of ``step``."""
        target = step + 1 + self.stale[l]
        units = self.units_in_round(l, target)
        if not units:
            return 0
        key = (l, d, units.start % self.period, len(units))
        n = self.readers_cache.get(key)
        if n is None:
            readers = [f for f, ls in self.fwd.items() if l in ls]
            n = sum(1 for u in units for f in readers if self.place(f, u) == d)
            self.readers_cache[key] = n
        return n

    def _wait_change(self, delta: int) -> None:
        now = self.env.now
        if self.n_waiting > 0:
            self.stats.any_transfer_wait += now - self.wait_since
        self.wait_since = now
        self.n_waiting += delta

    def _transit_start(self, p: int) -> None:
        self.transit_since[p] = self.env.now
        self._wait_change(+1)

    def _transit_end(self, p: int) -> None:
        self.stats.transfer_wait[p] += self.env.now - self.transit_since[p]
        self.transit_since[p] = None
        self._wait_change(-1)

    def _stash_add(self, p: int, delta: int, now: float) -> None:
        if now != self.stash_time[p]:
            if self.stash_now[p] > self.stats.peak_stash_bytes[p]:
                self.stats.peak_stash_bytes[p] = self.stash_now[p]
            self.stash_time[p] = now
        self.stash_now[p] += delta

    def _sink_key(self, send: _Send) -> tuple:
        info = self.code_info[send.key[0]]
        if info[0] == "x":
            return ("x", info[1], info[2], info[3], send.unit)
        return ("u", info[1], send.key[1], info[2])

    # -- bookkeeping shared by both drivers -------------------------------------------
    def _start(self, pl: _Plan, unit: int, p: int, now: float) -> None:
        for l, nbytes, nfree in pl.stash:
            self.stash_left[(l, unit)] = [p, nbytes, nfree]
            self._stash_add(p, nbytes, now)

    def _finish(self, pl: _Plan, unit: int, p: int, start: float, end: float) -> list | None:
        """Account for a task that ran on ``p`` from ``start`` to ``end``; return the transfers it
        launches (the callback driver delivers them at once and returns None)."""
        st = self.stats
        st.busy[p] += end - start
        if self.win_start is not None:
            self._window_busy(p, start, end)
        if self.sink is not None:
            self.sink.task(pl.kind, pl.layer, unit, p, start, end)
        signal = self.signal
        if pl.refs:
            signal((pl.code, unit), pl.refs)
        sends = None if self.fast else []
        if pl.sends:
            st.bytes_moved += pl.send_bytes
            st.bytes_by_kind[pl.send_kind] = st.bytes_by_kind.get(pl.send_kind, 0) + pl.send_bytes
            for code, tr, readers, cycles in pl.sends:
                if sends is None:
                    signal((code, unit), readers)
                else:
                    sends.append(_Send(tr.src, tr.dst, (code, unit), tr.bytes, readers, cycles, unit))
        if pl.upd_layers:
            self._updated(pl, p, unit, sends)
        if pl.free_layers:
            stash_left = self.stash_left
            for l in pl.free_layers:
                entry = stash_left.get((l, unit))
                if entry is not None:
                    entry[2] -= 1
                    if entry[2] == 0:
                        self._stash_add(entry[0], -entry[1], end)
                        del stash_left[(l, unit)]
        if unit // self.m in self.tracked:
            self._track(unit, end)
        return sends

    def _window_busy(self, p: int, start: float, end: float) -> None:
        hi = end if self.win_end is None else min(end, self.win_end)
        lo = start if start > self.win_start else self.win_start
        if hi > lo:
            self.stats.window_busy[p] += hi - lo

    def _track(self, unit: int, end: float) -> None:
        """A task of ``unit`` (of a step whose completion time matters) ended at ``end``."""
        left = self.unit_left.get(unit, self.tasks_per_unit) - 1
        if left:
            self.unit_left[unit] = left
            return
        self.unit_left.pop(unit, None)
        step = unit // self.m
        sl = self.step_left.get(step)
        if sl is None:
            sl = len(self.units_in_step(step))
        sl -= 1
        if sl:
            self.step_left[step] = sl
        else:
            self.step_left.pop(step, None)
            self._step_done(step, end)

    def _updated(self, pl: _Plan, p: int, unit: int, sends: list | None) -> None:
        """An update task of ``pl``'s layers ended; after a layer's last one of the round, release it."""
        for l in pl.upd_layers:
            step = unit // self.group[l]
            k = (l, step)
            left = self.update_left.get(k)
            if left is None:
                left = len(self.upd[l]) * len(self.units_in_round(l, step))
            left -= 1
            if left:
                self.update_left[k] = left
            else:
                self.update_left.pop(k, None)
                self._release(l, step, p, unit, sends)

    def _release(self, l: int, step: int, p: int, unit: int, sends: list | None) -> None:
        """Layer ``l``'s update of ``step`` finished on ``p``: its readers may use the new weights."""
        st = self.stats
        nbytes, readers = self.ex.weight_readers.get(l, (0, ()))
        for d in readers:
            key = (self.code(("u", l, d)), step)
            count = self.weight_readers_count(l, step, d)
            if d == p or nbytes == 0:
                self.signal(key, count)
                continue
            st.bytes_moved += nbytes
            st.bytes_by_kind["weights"] = st.bytes_by_kind.get("weights", 0) + nbytes
            if sends is None:
                self.signal(key, count)
            else:
                sends.append(_Send(p, d, key, nbytes, count, self.hop_cycles(nbytes), unit))

    def _step_done(self, step: int, now: float) -> None:
        if step == 0:
            self.stats.first_step_end = now
        if step == self.win_first:
            self.win_start = now
        if step == self.win_mid:
            self.stats.window_mid = (now, self.win_mid - self.win_first)
        if step == self.win_last:
            self.win_end = now
            self.stats.window = (self.win_start if self.win_start is not None else 0.0, now)
            self.stats.window_steps = self.win_last - self.win_first if self.win_first >= 0 else 1

    # -- driver 1: SimPy processes (some transfer costs link cycles) -------------------
    def _signal_event(self, key: tuple, readers: int) -> None:
        if readers <= 0:
            return
        self.avail[key] = readers
        ev = self.waiters.pop(key, None)
        if ev is not None:
            ev.succeed()

    def processor(self, p: int):
        env, avail, waiters, plans = self.env, self.avail, self.waiters, self.plans
        period, m = self.period, self.m
        overlap = self.platform.overlap_comm
        for action in self.sched.orders[p]:
            self.head[p] = action
            kind, layer, unit = action
            pl = plans.get((kind, layer, unit % period)) or self.plan(kind, layer, unit % period)
            for mode, code, stale in pl.needs:
                if mode == _UPD:
                    step = unit // stale[1] - 1 - stale[0]
                    if step < 0:
                        continue
                    key = (code, step)
                else:
                    key = (code, unit)
                left = avail.get(key)
                if left is None:
                    ev = waiters.get(key)
                    if ev is None:
                        ev = waiters[key] = env.event()
                    self.waiting_on[p] = key
                    if mode != _LOCAL and key in self.in_flight:
                        self._transit_start(p)
                    yield ev
                    if self.transit_since[p] is not None:
                        self._transit_end(p)
                    self.waiting_on[p] = None
                    left = avail[key]
                if left == 1:
                    del avail[key]
                else:
                    avail[key] = left - 1
            start = env.now
            if pl.stash:
                self._start(pl, unit, p, start)
            if pl.cost:
                yield env.timeout(pl.cost)
            sends = self._finish(pl, unit, p, start, env.now)
            if sends and not overlap:
                for s in sends:
                    yield from self._transfer(s)
            elif sends:
                for s in sends:
                    env.process(self._transfer(s))
        self.head[p] = None

    def _transfer(self, s: _Send):
        env = self.env
        key = s.key
        self.in_flight.add(key)
        if self.waiting_on[s.dst] == key and self.transit_since[s.dst] is None:
            self._transit_start(s.dst)
        if s.cycles:
            for hop in self.platform.route(s.src, s.dst):
                res = self.links.get(hop)
                if res is None:
                    res = self.links[hop] = simpy.Resource(env, capacity=1)
                with res.request() as req:
                    yield req
                    t0 = env.now
                    yield env.timeout(s.cycles)
                    self.stats.link_busy[hop] = self.stats.link_busy.get(hop, 0) + s.cycles
                    if self.sink is not None:
                        self.sink.transfer(self._sink_key(s), hop, s.nbytes, t0, env.now, s.unit)
        self.in_flight.discard(key)
        self.signal(key, s.readers)

    # -- driver 2: callbacks (no transfer ever costs a cycle) ---------------------------
    def _run_callbacks(self) -> None:
        """Drive the processors by callbacks on their task timeouts (see the module docstring).

        The same bookkeeping as the process driver, written with closures over local
        variables because this loop runs once per task.
        """
        env, P, m, period, group = self.env, self.P, self.m, self.period, self.group
        orders = self.orders = [self.sched.orders[p] for p in range(P)]
        idx = self.idx = [0] * P
        needpos = [0] * P
        current: list = [None] * P
        ready: deque[int] = deque()
        avail, waiters, plans, make_plan = self.avail, self.waiters, self.plans, self.plan
        waiting_on, stash_left, tracked, sink = self.waiting_on, self.stash_left, self.tracked, self.sink
        st = self.stats
        busy, by_kind, update_left = st.busy, st.bytes_by_kind, self.update_left

        def signal(key: tuple, readers: int) -> None:
            if readers > 0:
                avail[key] = readers
                q = waiters.pop(key, None)
                if q is not None:
                    ready.append(q)

        self.signal = signal

        def finish(pl: _Plan, unit: int, p: int, start: float, end: float) -> None:
            busy[p] += end - start
            if self.win_start is not None:
                self._window_busy(p, start, end)
            if sink is not None:
                sink.task(pl.kind, pl.layer, unit, p, start, end)
            if pl.refs:
                signal((pl.code, unit), pl.refs)
            if pl.sends:
                st.bytes_moved += pl.send_bytes
                by_kind[pl.send_kind] = by_kind.get(pl.send_kind, 0) + pl.send_bytes
                for code, _tr, readers, _cycles in pl.sends:
                    signal((code, unit), readers)
            if pl.upd_layers:
                for l in pl.upd_layers:
                    step = unit // group[l]
                    k = (l, step)
                    left = update_left.get(k)
                    if left is None:
                        left = len(self.upd[l]) * len(self.units_in_round(l, step))
                    left -= 1
                    if left:
                        update_left[k] = left
                    else:
                        update_left.pop(k, None)
                        self._release(l, step, p, unit, None)
            if pl.free_layers:
                for l in pl.free_layers:
                    entry = stash_left.get((l, unit))
                    if entry is not None:
                        entry[2] -= 1
                        if entry[2] == 0:
                            self._stash_add(entry[0], -entry[1], end)
                            del stash_left[(l, unit)]
            if unit // m in tracked:
                self._track(unit, end)

        def advance(p: int) -> None:
            acts = orders[p]
            n = len(acts)
            i = idx[p]
            while i < n:
                kind, layer, unit = acts[i]
                r = unit % period
                pl = plans.get((kind, layer, r)) or make_plan(kind, layer, r)
                needs = pl.needs
                if needs:
                    j = needpos[p]
                    while j < len(needs):
                        mode, code, stale = needs[j]
                        if mode == _UPD:
                            step = unit // stale[1] - 1 - stale[0]
                            if step < 0:
                                j += 1
                                continue
                            key = (code, step)
                        else:
                            key = (code, unit)
                        left = avail.get(key)
                        if left is None:
                            idx[p] = i
                            needpos[p] = j
                            waiting_on[p] = key
                            waiters[key] = p
                            return
                        if left == 1:
                            del avail[key]
                        else:
                            avail[key] = left - 1
                        j += 1
                    needpos[p] = 0
                now = env._now
                if pl.stash:
                    self._start(pl, unit, p, now)
                if pl.cost:
                    idx[p] = i
                    current[p] = (pl, unit, now)
                    ev = wakeups[p]
                    ev.callbacks = done[p]
                    schedule(ev, NORMAL, pl.cost)
                    return
                finish(pl, unit, p, now, now)
                i += 1
            idx[p] = n

        def on_done(p: int):
            def done(_event) -> None:
                pl, unit, start = current[p]
                finish(pl, unit, p, start, env._now)
                idx[p] += 1
                advance(p)
                while ready:
                    advance(ready.popleft())
            return [done]

        # one reusable wake-up event per processor (it has at most one task running)
        schedule = env.schedule
        wakeups = [_Wakeup(env) for _ in range(P)]
        done = [on_done(p) for p in range(P)]
        for p in range(P):
            advance(p)
        while ready:
            advance(ready.popleft())

    # -- run ------------------------------------------------------------------------
    def run(self) -> SimStats:
        if self.fast:
            self._run_callbacks()
        else:
            self.signal = self._signal_event
            for p in range(self.P):
                self.env.process(self.processor(p))
        self.env.run()
        if self.fast:
            self.head = [self.orders[p][self.idx[p]] if self.idx[p] < len(self.orders[p]) else None
                         for p in range(self.P)]
        stuck = [p for p, a in enumerate(self.head) if a is not None]
        if stuck:
            p = stuck[0]
            waits = self._describe_waiting(self.waiting_on[p])
            raise DeadlockError(f"simulation deadlocked: {self.head[p]} on P{p} waits for {_describe_key(waits)}",
                                task=self.head[p], waits_for=waits)
        for p in range(self.P):
            self._stash_add(p, 0, float("inf"))
        self.stats.makespan = self.env.now
        self.stats.tasks_run = sum(len(acts) for acts in self.sched.orders.values())
        if self.win_first < 0:  # a single step: the window is the whole run
            self.stats.window = (0.0, float(self.env.now))
            self.stats.window_busy = [float(b) for b in self.stats.busy]
            self.stats.window_steps = 0
        return self.stats

    def _describe_waiting(self, key: tuple | None) -> tuple | None:
        """The waited-for key in readable form: ("t", task, unit), ("x", ...) or ("u", layer, step, proc)."""
        if key is None:
            return None
        info = self.code_info[key[0]]
        if info[0] == "t":
            return ("t", info[1], key[1])
        if info[0] == "x":
            return ("x", info[1], info[2], info[3], key[1])
        return ("u", info[1], key[1], info[2])


def task_layers(graph, task: Task) -> tuple[int, ...]:
    return tuple(graph.nodes[task].get("layers", (task[1],)))


def _describe_key(key: Hashable) -> str:
    if key is None:
        return "nothing (it was never reached)"
    if key[0] == "t":
        return f"{Action(*key[1], key[2])}"
    if key[0] == "x":
        return f"the transfer of {key[2]} from {Action(*key[1], key[4])} to P{key[3]}"
    return f"the step-{key[2]} weights of layer {key[1]}"


def simulate(schedule: Schedule | ExecutableSchedule, platform: Platform, *, trace: TraceSink | None = None,
             check: bool = True) -> SimResult:
    """Run ``schedule`` on ``platform`` and return streamed statistics.

    ``schedule`` is validated and its transfers inserted unless it is already an
    :class:`ExecutableSchedule`. ``trace`` receives every task and transfer (see
    :mod:`simulator.trace`). Raises :class:`DeadlockError` naming the blocked task.
    """
    if isinstance(schedule, ExecutableSchedule):
        ex = schedule
    else:
        ex = insert_transfers(validate(schedule) if check else schedule)
    if ex.schedule.processors > platform.size:
        raise LayerPipeError(f"the schedule uses {ex.schedule.processors} processors but the platform has {platform.size}")
    stats = _Run(ex, platform, trace).run()
    if trace is not None:
        trace.close()
    return SimResult(ex.schedule, platform, stats, ex)


__all__ = ["SimStats", "SimResult", "simulate"]
