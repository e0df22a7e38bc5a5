"""The SimPy engine: assigns times to a validated schedule on a platform.

One SimPy process per processor walks its ordered actions. Before an action starts it
waits for (1) each predecessor in the task graph, locally or through the transfer that
brings its output, and (2) for a forward, the weights the delay rule allows
(``schedules.schedule``). A task then holds its processor for the cost model's cycles.
Transfers are SimPy processes that hold one directed link channel per hop.

The engine streams what the metrics need (busy cycles, bytes, link-busy cycles, waits on
transfers, stashed-activation memory, step completion times), so with ``trace=None`` its
memory does not grow with the number of units: every piece of bookkeeping is dropped as
soon as its last reader has used it. A trace sink, when given, receives every task and
transfer as it ends.

>>> from models.taskgraph import uniform_pipeline_graph
>>> from schedules.schedule import Schedule, parse_orders
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> g = uniform_pipeline_graph(2, f=1, b=1, w=1)
>>> s = Schedule("hand", g, parse_orders("P0: F1.0 B1.0 W1.0; P1: F2.0 B2.0 W2.0"))
>>> simulate(s, Platform.homogeneous(2, MacArray(1))).makespan
5
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field

import simpy

from models.errors import DeadlockError, LayerPipeError
from schedules.passes import ExecutableSchedule, Transfer, forward_layers, insert_transfers, update_tasks, validate
from schedules.schedule import Action, Schedule

from .platform import Platform
from .trace import TraceSink

Task = tuple[str, int]
_STASH_FREERS = ("WG", "AG2", "B", "W")


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
    first_step_end: float = 0.0
    tasks_run: int = 0
    bytes_moved: int = 0  # bytes that crossed between processors (counted once per transfer)
    bytes_by_kind: dict[str, int] = field(default_factory=dict)  # "activation", "weights", ...
    link_busy: dict[tuple[int, int], int] = field(default_factory=dict)
    transfer_wait: list[float] = field(default_factory=list)  # cycles each processor idled on transfers
    any_transfer_wait: float = 0.0  # cycles in which some processor waited on a transfer
    peak_stash_bytes: list[int] = field(default_factory=list)

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


def _window_indices(steps: int) -> tuple[int, int]:
    """Steps whose completions bound the steady-state window: drop a quarter at each end."""
    if steps <= 1:
        return (-1, 0)
    first = steps // 4
    last = steps - 1 - steps // 4
    if last <= first:
        first, last = 0, steps - 1
    return first, last


class _Run:
    def __init__(self, ex: ExecutableSchedule, platform: Platform, sink: TraceSink | None):
        sched = ex.schedule
        self.ex, self.sched, self.platform, self.sink = ex, sched, platform, sink
        self.graph = sched.graph
        self.m = sched.microbatches_per_step
        self.env = simpy.Environment()
        P = sched.processors
        self.stats = SimStats(P, sched.units, sched.steps, busy=[0] * P, window_busy=[0.0] * P,
                              transfer_wait=[0.0] * P, peak_stash_bytes=[0] * P)
        self.place = ex.placement
        self.preds = {n: tuple(self.graph.predecessors(n)) for n in self.graph}
        self.succs = {n: tuple(self.graph.successors(n)) for n in self.graph}
        self.fwd = forward_layers(self.graph)
        self.upd = update_tasks(self.graph)
        self.upd_of: dict[Task, tuple[int, ...]] = defaultdict(tuple)
        for l, tasks in self.upd.items():
            for t in tasks:
                self.upd_of[t] += (l,)
        layers = self.graph.graph.get("layers", {})
        self.stash = {l: info.stash_bytes for l, info in layers.items()}
        self.freers: dict[int, tuple[Task, ...]] = {
            l: tuple(n for n, d in self.graph.nodes(data=True) if n[0] in _STASH_FREERS and l in d.get("layers", (n[1],)))
            for l in self.stash}
        self.cost_cache: dict[tuple[Task, int], int] = {}
        self.links: dict[tuple[int, int], simpy.Resource] = {}
        # signalling: key -> readers left; waiters: key -> event
        self.avail: dict[Hashable, int] = {}
        self.waiters: dict[Hashable, simpy.Event] = {}
        self.refs_cache: dict[tuple[Task, int], int] = {}
        self.needs_cache: dict[tuple[Task, int], tuple] = {}
        self.unit_left: dict[int, int] = {}
        self.step_left: dict[int, int] = {}
        self.update_left: dict[tuple[int, int], int] = {}
        self.stash_left: dict[tuple[int, int], list] = {}
        self.stash_now = [0] * P
        self.head: list[Action | None] = [None] * P
        self.waiting_on: list[Hashable | None] = [None] * P
        self.n_waiting = 0
        self.wait_since = 0.0
        self.win_first, self.win_last = _window_indices(sched.steps)
        self.win_start: float | None = None
        self.win_end: float | None = None
        self.tasks_per_unit = self.graph.number_of_nodes()
        self.units = sched.units  # Schedule.units scans every action: compute it once

    # -- small helpers --------------------------------------------------------------
    def cost(self, task: Task, p: int) -> int:
        key = (task, p)
        c = self.cost_cache.get(key)
        if c is None:
            c = int(self.platform.processors[p].task_cycles(self.graph.nodes[task]["work"]))
            if c < 0:
                raise LayerPipeError(f"cost model returned negative cycles ({c}) for {task}")
            self.cost_cache[key] = c
        return c

    def units_in_step(self, step: int) -> range:
        return range(step * self.m, min((step + 1) * self.m, self.units))

    def local_refs(self, task: Task, unit: int) -> int:
        key = (task, unit % self.place.period)
        r = self.refs_cache.get(key)
        if r is None:
            p = self.place(task, unit)
            r = sum(1 for v in self.succs[task] if self.place(v, unit) == p)
            self.refs_cache[key] = r
        return r

    def needs(self, task: Task, unit: int, p: int) -> tuple:
        """Signal keys (with ``unit`` placeholders resolved) that ``task`` waits for."""
        ck = (task, unit % self.place.period)
        template = self.needs_cache.get(ck)
        if template is None:
            items = []
            for q in self.preds[task]:
                if self.place(q, unit) == p:
                    items.append(("t", q))
                else:
                    for tr in self.ex.transfers_after(q, unit):
                        if tr.dst == p and task in tr.consumers:
                            items.append(("x", q, tr.tensor))
                            break
            template = tuple(items)
            self.needs_cache[ck] = template
        keys = [(*k, p, unit) if k[0] == "x" else (*k, unit) for k in template]
        for l in self.fwd.get(task, ()):
            step = unit // self.m - 1 - self.sched.stale_updates(l)
            if step >= 0:
                keys.append(("u", l, step, p))
        return tuple(keys)

    def signal(self, key: Hashable, readers: int) -> None:
        if readers <= 0:
            return
        self.avail[key] = readers
        ev = self.waiters.pop(key, None)
        if ev is not None:
            ev.succeed()

    def consume(self, key: Hashable) -> None:
        left = self.avail[key] - 1
        if left:
            self.avail[key] = left
        else:
            del self.avail[key]

    def weight_readers_count(self, l: int, step: int, d: int) -> int:
        """Forward instances on ``d`` that wait for layer ``l``'s update of ``step``."""
        target = step + 1 + self.sched.stale_updates(l)
        readers = [f for f, ls in self.fwd.items() if l in ls]
        return sum(1 for u in self.units_in_step(target) for f in readers if self.place(f, u) == d)

    # -- processes ------------------------------------------------------------------
    def processor(self, p: int):
        env = self.env
        for action in self.sched.orders[p]:
            self.head[p] = action
            task, unit = action.task, action.minibatch
            for key in self.needs(task, unit, p):
                if key not in self.avail:
                    ev = self.waiters.get(key)
                    if ev is None:
                        ev = self.waiters[key] = env.event()
                    self.waiting_on[p] = key
                    is_transfer = key[0] == "x" or key[0] == "u"
                    if is_transfer:
                        t0 = env.now
                        self._wait_change(+1)
                    yield ev
                    if is_transfer:
                        self._wait_change(-1)
                        self.stats.transfer_wait[p] += env.now - t0
                    self.waiting_on[p] = None
                self.consume(key)
            start = env.now
            self._start(task, unit, p, start)
            c = self.cost(task, p)
            if c:
                yield env.timeout(c)
            sends = self._finish(task, unit, p, start, env.now)
            if sends and not self.platform.overlap_comm:
                for tr, key, nbytes in sends:
                    yield from self._transfer(tr.src, tr.dst, key, nbytes, tr, unit)
            elif sends:
                for tr, key, nbytes in sends:
                    env.process(self._transfer(tr.src, tr.dst, key, nbytes, tr, unit))
        self.head[p] = None

    def _wait_change(self, delta: int) -> None:
        now = self.env.now
        if self.n_waiting > 0:
            self.stats.any_transfer_wait += now - self.wait_since
        self.wait_since = now
        self.n_waiting += delta

    def _transfer(self, src: int, dst: int, key: Hashable, nbytes: int, tr: Transfer | None, unit: int):
        env, link = self.env, self.platform.link
        for hop in self.platform.route(src, dst):
            cycles = link.transfer_cycles(nbytes)
            if cycles == 0:
                continue
            res = self.links.get(hop)
            if res is None:
                res = self.links[hop] = simpy.Resource(env, capacity=1)
            with res.request() as req:
                yield req
                t0 = env.now
                yield env.timeout(cycles)
                self.stats.link_busy[hop] = self.stats.link_busy.get(hop, 0) + cycles
                if self.sink is not None:
                    self.sink.transfer(key, hop, nbytes, t0, env.now, unit)
        self.signal(key, self._readers_of(key, tr))

    def _readers_of(self, key: Hashable, tr: Transfer | None) -> int:
        if key[0] == "x":
            return len(tr.consumers)
        _, l, step, d = key
        return self.weight_readers_count(l, step, d)

    def _start(self, task: Task, unit: int, p: int, now: float) -> None:
        if task[0] != "F":
            return
        for l in self.fwd.get(task, ()):
            nbytes = self.stash.get(l, 0)
            if nbytes:
                self.stash_left[(l, unit)] = [p, nbytes, len(self.freers[l])]
                self.stash_now[p] += nbytes
                if self.stash_now[p] > self.stats.peak_stash_bytes[p]:
                    self.stats.peak_stash_bytes[p] = self.stash_now[p]

    def _finish(self, task: Task, unit: int, p: int, start: float, end: float) -> list:
        st = self.stats
        st.tasks_run += 1
        st.busy[p] += end - start
        if self.win_start is not None:
            hi = end if self.win_end is None else min(end, self.win_end)
            lo = max(start, self.win_start)
            if hi > lo:
                st.window_busy[p] += hi - lo
        if self.sink is not None:
            self.sink.task(task[0], task[1], unit, p, start, end)
        self.signal(("t", task, unit), self.local_refs(task, unit))
        sends = []
        for tr in self.ex.transfers_after(task, unit):
            key = ("x", task, tr.tensor, tr.dst, unit)
            st.bytes_moved += tr.bytes
            kind = "activation" if task[0] == "F" else "gradient"
            st.bytes_by_kind[kind] = st.bytes_by_kind.get(kind, 0) + tr.bytes
            sends.append((tr, key, tr.bytes))
        step = unit // self.m
        for l in self.upd_of.get(task, ()):
            k = (l, step)
            left = self.update_left.get(k, len(self.upd[l]) * len(self.units_in_step(step))) - 1
            if left:
                self.update_left[k] = left
                continue
            self.update_left.pop(k, None)
            nbytes, readers = self.ex.weight_readers.get(l, (0, ()))
            for d in readers:
                key = ("u", l, step, d)
                if d == p or nbytes == 0:
                    self.signal(key, self.weight_readers_count(l, step, d))
                else:
                    st.bytes_moved += nbytes
                    st.bytes_by_kind["weights"] = st.bytes_by_kind.get("weights", 0) + nbytes
                    sends.append((Transfer(task, ("w", l), p, d, nbytes, ()), key, nbytes))
        for l in task_layers(self.graph, task):
            entry = self.stash_left.get((l, unit))
            if entry is not None and task[0] in _STASH_FREERS:
                entry[2] -= 1
                if entry[2] == 0:
                    self.stash_now[entry[0]] -= entry[1]
                    del self.stash_left[(l, unit)]
        left = self.unit_left.get(unit, self.tasks_per_unit) - 1
        if left:
            self.unit_left[unit] = left
        else:
            self.unit_left.pop(unit, None)
            sl = self.step_left.get(step, len(self.units_in_step(step))) - 1
            if sl:
                self.step_left[step] = sl
            else:
                self.step_left.pop(step, None)
                self._step_done(step, end)
        return sends

    def _step_done(self, step: int, now: float) -> None:
        if step == 0:
            self.stats.first_step_end = now
        if step == self.win_first:
            self.win_start = now
        if step == self.win_last:
            self.win_end = now
            self.stats.window = (self.win_start if self.win_start is not None else 0.0, now)
            self.stats.window_steps = self.win_last - self.win_first if self.win_first >= 0 else 1

    def run(self) -> SimStats:
        for p in range(self.sched.processors):
            self.env.process(self.processor(p))
        self.env.run()
        stuck = [p for p, a in enumerate(self.head) if a is not None]
        if stuck:
            p = stuck[0]
            raise DeadlockError(f"simulation deadlocked: {self.head[p]} on P{p} waits for {_describe_key(self.waiting_on[p])}",
                                task=self.head[p], waits_for=self.waiting_on[p])
        self.stats.makespan = self.env.now
        if self.win_first < 0:  # a single step: the window is the whole run
            self.stats.window = (0.0, float(self.env.now))
            self.stats.window_busy = [float(b) for b in self.stats.busy]
            self.stats.window_steps = 0
        return self.stats


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
