"""The engine's bookkeeping: one state object that the drivers (``simulator.engine.drivers``) move.

:class:`EngineState` knows, for every task instance, what it waits for and what it releases
when it ends; the drivers only decide *when* things happen (SimPy processes when transfers
take link time, callbacks on task timeouts when they cannot). Everything here is streamed:
a piece of bookkeeping is dropped as soon as its last reader has used it, so with no trace
sink the memory does not grow with the number of units.

Signals. Whatever a task can wait for is a *key* ``(code, index)``: the output of a task on
the same processor (index = unit), a transfer arriving on this processor (index = unit), or
the weights of a layer's update round arriving on this processor (index = round). A producer
*signals* a key with the number of readers that will consume it; a reader that finds its key
missing registers as the key's waiter and the driver wakes it when the signal comes.

Definitions of the streamed figures (:class:`SimStats`):

* ``transfer_wait[p]``: cycles processor ``p`` sat idle while the data its next task
  needs was in flight on a link (the transfer had left its producer and had not arrived
  yet). Waiting for another processor's computation is not a transfer wait, so on a
  free link both ``transfer_wait`` and ``any_transfer_wait`` are 0.
* ``peak_stash_bytes[p]``: the largest activation stash on ``p`` over time, where
  everything that happens at one instant happens together (a stash freed at cycle t and
  one taken at cycle t do not add up): the maximum over instants of the level after them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from models.errors import LayerPipeError
from models.graph.tasks import (
    Task,
    TaskKind,
    backward_weight_readers,
    layer_infos,
    stash_freers,
    task_layers,
    update_tasks,
    weight_readers,
)
from schedules.passes import ExecutableSchedule
from simulator.engine.events import EventLog
from simulator.engine.steady import SteadyState, exact_steady_state
from simulator.engine.versions import RealisedVersions, VersionLog
from simulator.engine.window import exact_core, orders_period, schedule_period, schedule_window, window_midpoint
from simulator.hardware import task_cycles
from simulator.trace import TraceSink, tensor_name

# what a task waits for
LOCAL, XFER, UPDATE = 0, 1, 2
#: the longest period, as a multiple of the one its orders repeat with, that the exact steady state tries
EXACT_MAX_FOLD = 4


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
    steady: SteadyState | None = None  # the exact steady state, when the run logged its events
    orders_period: int | None = None  # units with which the processors' orders repeat (None: none found)

    @property
    def exact(self) -> bool:
        """Whether :attr:`cycles_per_step` is the exact steady-state rate (:mod:`simulator.engine.steady`)."""
        return self.steady is not None and self.steady.exact

    @property
    def converged(self) -> bool:
        """Whether the run measured its steady state: the exact rate is known, or one step ran,
        or the window is at least as long as the pipeline's depth and its two halves (each a
        whole number of periods) give the same cycles per step within 0.5%."""
        if self.steps <= 1 or self.exact:
            return True
        if self.window_steps <= 0 or self.window_mid is None or self.window_steps < self.depth:
            return False
        t_mid, k = self.window_mid
        first = (t_mid - self.window[0]) / k
        second = (self.window[1] - t_mid) / (self.window_steps - k)
        return abs(first - second) <= 0.005 * max(first, second)

    @property
    def window_cycles_per_step(self) -> float:
        """Mean interval between step completions inside the simulated window (the makespan for one step)."""
        if self.window_steps <= 0:
            return float(self.makespan) / max(1, self.steps)
        return (self.window[1] - self.window[0]) / self.window_steps

    @property
    def cycles_per_step(self) -> float:
        """The steady-state cycles per step: exact when known (:attr:`exact`), else the mean
        interval between step completions inside the window (the makespan for one step)."""
        if self.exact:
            return float(self.steady.cycles_per_step)
        return self.window_cycles_per_step


class Plan:
    """Everything about one template task for the units ``u`` with ``u % period == r``."""

    __slots__ = ("kind", "layer", "cost", "code", "needs", "refs", "sends", "stash", "upd_layers", "free_layers",
                 "send_kind", "send_bytes", "reads", "starts", "uses")


class Send:
    """A transfer of one unit (or the new weights of one update round), ready to go."""

    __slots__ = ("src", "dst", "key", "nbytes", "readers", "cycles", "unit", "weights", "eid", "last_ev")

    def __init__(self, src, dst, key, nbytes, readers, cycles, unit, weights=None, eid=None, last_ev=None):
        self.src, self.dst, self.key, self.nbytes = src, dst, key, nbytes
        self.readers, self.cycles, self.unit = readers, cycles, unit
        self.weights = weights  # (layer, round) when it carries an update round's new weights
        # event ids (simulator.engine.events): the hops' prefix, and the event the next hop waits for
        self.eid, self.last_ev = eid, last_ev


class EngineState:
    """The bookkeeping of one run of ``ex`` on ``platform`` (see the module docstring).

    ``free_links``: no transfer can cost a cycle, so every transfer is delivered the moment
    its producer ends (the callback driver); otherwise :meth:`finish` returns the transfers
    for the driver to move over the links. ``record_versions``: note the weight version every
    task used (:mod:`simulator.engine.versions`). ``record_events``: log what each event of a
    slice of the run waited for (:mod:`simulator.engine.events`), for the exact steady state.
    """

    def __init__(self, ex: ExecutableSchedule, platform, sink: TraceSink | None, *, free_links: bool,
                 record_versions: bool = False, record_events: bool = False):
        sched = ex.schedule
        self.ex, self.sched, self.platform, self.sink = ex, sched, platform, sink
        self.graph = graph = sched.graph
        self.rule = sched.rule
        self.m = sched.microbatches_per_step
        P = self.P = sched.processors
        self.orders = [sched.orders[p] for p in range(P)]
        self.units = 1 + max((a.unit for acts in self.orders for a in acts), default=-1)
        self.steps = -(-self.units // self.m)
        self.stats = SimStats(P, self.units, self.steps, busy=[0] * P, window_busy=[0.0] * P,
                              transfer_wait=[0.0] * P, peak_stash_bytes=[0] * P)
        self.free_links = free_links
        self.place = ex.placement
        self.period = self.place.period
        self.preds = {n: tuple(graph.predecessors(n)) for n in graph}
        self.succs = {n: tuple(graph.successors(n)) for n in graph}
        self.fwd = weight_readers(graph)
        self.upd = update_tasks(graph)
        self.upd_of: dict[Task, tuple[int, ...]] = defaultdict(tuple)
        for l, tasks in self.upd.items():
            for t in tasks:
                self.upd_of[t] += (l,)
        self.stash = {l: info.stash_bytes for l, info in layer_infos(graph).items()}
        freers = stash_freers(graph)
        self.nfreers = {l: len(freers.get(l, ())) for l in self.stash}
        # signal codes: one small integer per (what, where); keys are (code, unit or round)
        self.tid = {t: i for i, t in enumerate(graph.nodes)}
        self.code_info: list[tuple] = [("t", t) for t in graph.nodes]
        self._codes: dict[tuple, int] = {}
        self.plans: dict[tuple[str, int, int], Plan] = {}
        self._cost_cache: dict[tuple[Task, int], int] = {}
        self._cycles_cache: dict[int, int] = {}
        self._readers_cache: dict[tuple, int] = {}
        self.avail: dict[tuple[int, int], int] = {}
        self.waiters: dict[tuple[int, int], object] = {}
        self.wake: Callable[[object], None] = lambda waiter: None  # set by the driver
        self.unit_left: dict[int, int] = {}
        self.step_left: dict[int, int] = {}
        self.update_left: dict[tuple[int, int], int] = {}
        self.stash_left: dict[tuple[int, int], list] = {}
        self.stash_now = [0] * P
        self.stash_time = [0.0] * P
        self.waiting_on: list[tuple | None] = [None] * P
        self.stats.depth, period_steps = schedule_period(sched, self.period)
        self.win_first, self.win_last = schedule_window(sched, self.steps, self.period)
        self.win_mid = window_midpoint(self.win_first, self.win_last, period_steps)
        # only these steps' completion times are ever used: track no other unit
        self.tracked = {k for k in (0, self.win_first, self.win_mid, self.win_last) if 0 <= k < self.steps}
        self.win_start: float | None = None
        self.win_end: float | None = None
        self._round_cache: dict[tuple, int] = {}
        self._unit_cache: dict[int, int] = {}
        # waits on in-flight transfers (only a driver with link time has any)
        self.in_flight: set[tuple[int, int]] = set()
        self.transit_since: list[float | None] = [None] * P
        self.n_waiting = 0
        self.wait_since = 0.0
        self.vlog: VersionLog | None = None
        self.bwd: dict = {}
        self.uses: dict = {}
        if record_versions:
            layers = sorted(layer_infos(graph)) or sorted(self.upd)
            self.bwd = backward_weight_readers(graph)
            # the tasks after a unit's forward that use a layer's weights (AG1) or its stash
            for node in graph:
                used = set(self.bwd.get(node, ())) | (set(task_layers(graph, node)) if TaskKind(node[0]).frees_stash
                                                      else set())
                if used:
                    self.uses[node] = tuple(sorted(used))
            counts: dict[int, int] = defaultdict(int)
            for ls in self.uses.values():
                for l in ls:
                    counts[l] += 1
            self.vlog = VersionLog(layers, self.units, ex.weight_readers, dict(counts))
        # the event log (None: not logging); ``core`` is the slice the steady state is read from
        self.elog: EventLog | None = None
        self.period_units = period_steps * self.m
        self.core: tuple[int, int] = (0, 0)
        core = None
        if record_events:
            # the period to read: the schedule's own, or the multiple of it its orders repeat with
            depth = self.rule.depth_units()
            found = orders_period(self.orders, self.units, depth, self.period_units)
            self.stats.orders_period = found
            if found is not None:
                self.period_units = found
            core = exact_core(self.units, depth, self.period_units, EXACT_MAX_FOLD)
        if core is not None:
            log_lo, core_lo, core_hi, log_hi = core
            self.core = (core_lo, core_hi)
            self.elog = EventLog(log_lo, log_hi, self.rule.group)
            self.key_src: dict[tuple[int, int], tuple] = {}
            self.cur_preds: list[list] = [[] for _ in range(P)]
            self.prev_ev: list[tuple | None] = [None] * P  # what the processor's next task waits for
            self.prev_task: list[tuple | None] = [None] * P  # the processor's last task
            self.round_evs: dict[tuple[int, int], list] = defaultdict(list)
            self.chan_last: dict[tuple[int, int], tuple] = {}

    # -- costs and codes ------------------------------------------------------------
    def hop_cycles(self, nbytes: int) -> int:
        c = self._cycles_cache.get(nbytes)
        if c is None:
            c = self._cycles_cache[nbytes] = self.platform.link.transfer_cycles(nbytes)
        return c

    def code(self, info: tuple) -> int:
        c = self._codes.get(info)
        if c is None:
            c = self._codes[info] = len(self.code_info)
            self.code_info.append(info)
        return c

    def cost(self, task: Task, p: int) -> int:
        key = (task, p)
        c = self._cost_cache.get(key)
        if c is None:
            c = task_cycles(self.platform.processors[p], self.graph, task)
            if c < 0:
                raise LayerPipeError(f"cost model returned negative cycles ({c}) for {task}")
            self._cost_cache[key] = c
        return c

    def plan(self, kind: str, layer: int, r: int) -> Plan:
        """Build (once) the plan of ``(kind, layer)`` for units ``u % period == r``."""
        task = Task(kind, layer)
        place, ex = self.place, self.ex
        p = place(task, r)
        pl = Plan()
        pl.kind, pl.layer = kind, layer
        pl.cost = self.cost(task, p)
        pl.code = self.tid[task]
        needs = []
        for q in self.preds[task]:
            if place(q, r) == p:
                needs.append((LOCAL, self.tid[q], 0))
            else:
                for tr in ex.transfers_after(q, r):
                    if tr.dst == p and task in tr.consumers:
                        needs.append((XFER, self.code(("x", q, tr.tensor, p)), 0))
                        break
        for l in self.fwd.get(task, ()):
            needs.append((UPDATE, self.code(("u", l, p)), l))
        pl.needs = tuple(needs)
        pl.refs = sum(1 for v in self.succs[task] if place(v, r) == p)
        pl.sends = tuple((self.code(("x", task, tr.tensor, tr.dst)), tr, len(tr.consumers),
                          self.hop_cycles(tr.bytes))
                         for tr in ex.transfers_after(task, r))
        pl.send_kind = TaskKind(kind).output_kind
        pl.send_bytes = sum(tr.bytes for _, tr, _, _ in pl.sends)
        pl.stash = tuple((l, self.stash[l], self.nfreers[l]) for l in self.fwd.get(task, ())
                         if self.stash.get(l, 0)) if kind == TaskKind.F else ()
        pl.upd_layers = self.upd_of.get(task, ())
        pl.free_layers = task_layers(self.graph, task) if TaskKind(kind).frees_stash else ()
        pl.reads = ()
        if self.vlog is not None:
            pl.reads = tuple((l, False) for l in self.fwd.get(task, ())) + tuple((l, True) for l in self.bwd.get(task, ()))
        pl.uses = self.uses.get(task, ())
        pl.starts = bool(pl.stash or pl.reads)
        self.plans[(kind, layer, r)] = pl
        return pl

    # -- what a task waits for ---------------------------------------------------------
    def acquire(self, p: int, pl: Plan, unit: int, j: int) -> int:
        """Take the inputs of ``pl`` for ``unit`` from need ``j`` on; return the index of the first
        one missing (its key becomes ``waiting_on[p]`` and ``p`` its waiter), or -1 when all are in."""
        avail, needs = self.avail, pl.needs
        while j < len(needs):
            mode, code, layer = needs[j]
            if mode == UPDATE:
                step = self.rule.awaited_round(layer, unit)
                if step < 0:
                    j += 1
                    continue
                key = (code, step)
            else:
                key = (code, unit)
            left = avail.get(key)
            if left is None:
                self.waiting_on[p] = key
                return j
            if self.elog is not None:
                self.cur_preds[p].append(self.key_src[key] if left > 1 else self.key_src.pop(key))
            if left == 1:
                del avail[key]
            else:
                avail[key] = left - 1
            j += 1
        self.waiting_on[p] = None
        return -1

    def signal(self, key: tuple, readers: int, src: tuple | None = None) -> None:
        """``key`` is available to ``readers`` consumers (``src``: the event that made it, when
        logging events); wake its waiter, if any."""
        if readers > 0:
            self.avail[key] = readers
            if self.elog is not None:
                self.key_src[key] = src
            waiter = self.waiters.pop(key, None)
            if waiter is not None:
                self.wake(waiter)

    # -- what a task does when it runs ----------------------------------------------------
    def start(self, pl: Plan, unit: int, p: int, now: float) -> None:
        """A task that stashes activations or whose weight versions are recorded starts."""
        for l, nbytes, nfree in pl.stash:
            self.stash_left[(l, unit)] = [p, nbytes, nfree]
            self._stash_add(p, nbytes, now)
        if pl.reads:
            self.vlog.started(pl.reads, unit, p)

    def deliver(self, send: Send) -> None:
        """A transfer moved by the driver arrived at its destination."""
        self.signal(send.key, send.readers, send.last_ev)
        if send.weights is not None and self.vlog is not None:
            self.vlog.arrived(*send.weights, send.dst)

    def finish(self, pl: Plan, unit: int, p: int, start: float, end: float) -> list[Send] | None:
        """Account for a task that ran on ``p`` from ``start`` to ``end``: signal its local readers,
        its transfers (at once on free links) and the updates it completes; free the stash it was
        the last reader of. Returns the transfers the driver must move (None on free links)."""
        st = self.stats
        st.busy[p] += end - start
        if self.win_start is not None:
            self._window_busy(p, start, end)
        if self.sink is not None:
            self.sink.task(pl.kind, pl.layer, unit, p, start, end)
        ev = None
        if self.elog is not None:
            ev = ("t", pl.code, 0, unit, 0)
            self.elog.add(ev, f"P{p}", start, end, [self.prev_ev[p], *self.cur_preds[p]], self.prev_task[p])
            self.cur_preds[p] = []
            self.prev_ev[p] = self.prev_task[p] = ev
        if pl.refs:
            self.signal((pl.code, unit), pl.refs, ev)
        sends = None if self.free_links else []
        if pl.sends:
            st.bytes_moved += pl.send_bytes
            st.bytes_by_kind[pl.send_kind] = st.bytes_by_kind.get(pl.send_kind, 0) + pl.send_bytes
            for code, tr, readers, cycles in pl.sends:
                if sends is None:
                    self.signal((code, unit), readers, ev)
                else:
                    sends.append(Send(tr.src, tr.dst, (code, unit), tr.bytes, readers, cycles, unit,
                                      eid=("x", code, 0, unit), last_ev=ev))
        if pl.upd_layers:
            self._updated(pl, p, unit, sends, ev, end)
        if pl.uses:
            self.vlog.used(pl.uses, unit)
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

    def _updated(self, pl: Plan, p: int, unit: int, sends: list | None, ev: tuple | None, end: float) -> None:
        """An update task of ``pl``'s layers ended; after a layer's last one of the round, release it."""
        rule = self.rule
        for l in pl.upd_layers:
            round_ = rule.round_of(l, unit)
            k = (l, round_)
            if ev is not None:
                self.round_evs[k].append(ev)
            left = self.update_left.get(k)
            if left is None:
                left = self._updates_in_round(l, round_)
            left -= 1
            if left:
                self.update_left[k] = left
            else:
                self.update_left.pop(k, None)
                rel = None
                if ev is not None:
                    rel = ("r", l, 0, round_, 0)
                    self.elog.add(rel, f"P{p}", end, end, self.round_evs.pop(k))
                self._release(l, round_, p, unit, sends, rel)

    def _updates_in_round(self, l: int, round_: int) -> int:
        """Update-task instances of layer ``l`` in ``round_`` (an update may run once per round)."""
        units = self.rule.round_units(l, round_, self.units)
        key = (l, units.start % self.period, len(units))
        n = self._round_cache.get(key)
        if n is None:
            n = self._round_cache[key] = sum(1 for t in self.upd[l] for u in units if self.place(t, u) >= 0)
        return n

    def _tasks_in_unit(self, unit: int) -> int:
        """Task instances of ``unit`` the orders run (every template task, less left-out updates)."""
        r = unit % self.period
        n = self._unit_cache.get(r)
        if n is None:
            n = self._unit_cache[r] = sum(1 for t in self.graph if self.place(t, unit) >= 0)
        return n

    def _release(self, l: int, round_: int, p: int, unit: int, sends: list | None, rel: tuple | None) -> None:
        """Layer ``l``'s update of ``round_`` finished on ``p``: its readers may use the new weights
        (``rel``: the release's event id, when logging events)."""
        st, vlog = self.stats, self.vlog
        nbytes, readers = self.ex.weight_readers.get(l, (0, ()))
        if vlog is not None:
            vlog.finished(l, round_)
        for d in readers:
            key = (self.code(("u", l, d)), round_)
            count = self._weight_readers_count(l, round_, d)
            if d == p or nbytes == 0:
                self.signal(key, count, rel)
                if vlog is not None:
                    vlog.arrived(l, round_, d)
                continue
            st.bytes_moved += nbytes
            st.bytes_by_kind["weights"] = st.bytes_by_kind.get("weights", 0) + nbytes
            if sends is None:
                self.signal(key, count, rel)
                if vlog is not None:
                    vlog.arrived(l, round_, d)
            else:
                sends.append(Send(p, d, key, nbytes, count, self.hop_cycles(nbytes), unit, (l, round_),
                                  eid=("w", l, d, round_), last_ev=rel))

    def _weight_readers_count(self, l: int, round_: int, d: int) -> int:
        """Forward instances on ``d`` that wait for layer ``l``'s update of ``round_``."""
        rule = self.rule
        units = rule.round_units(l, round_ + 1 + rule.staleness(l), self.units)
        if not units:
            return 0
        key = (l, d, units.start % self.period, len(units))
        n = self._readers_cache.get(key)
        if n is None:
            readers = [f for f, ls in self.fwd.items() if l in ls]
            n = sum(1 for u in units for f in readers if self.place(f, u) == d)
            self._readers_cache[key] = n
        return n

    def hop_done(self, send: Send, hop: tuple[int, int], h: int, start: float, end: float) -> None:
        """Hop ``h`` of ``send`` held link channel ``hop`` from ``start`` to ``end`` (event logging)."""
        if self.elog is None:
            return
        eid = (*send.eid, h)
        before = self.chan_last.get(hop)
        self.elog.add(eid, f"{hop[0]}->{hop[1]}", start, end, (send.last_ev, before), before)
        self.chan_last[hop] = eid
        send.last_ev = eid

    # -- the steady-state window ------------------------------------------------------------
    def _window_busy(self, p: int, start: float, end: float) -> None:
        hi = end if self.win_end is None else min(end, self.win_end)
        lo = start if start > self.win_start else self.win_start
        if hi > lo:
            self.stats.window_busy[p] += hi - lo

    def _track(self, unit: int, end: float) -> None:
        """A task of ``unit`` (of a step whose completion time matters) ended at ``end``."""
        left = self.unit_left.get(unit)
        left = (self._tasks_in_unit(unit) if left is None else left) - 1
        if left:
            self.unit_left[unit] = left
            return
        self.unit_left.pop(unit, None)
        step = unit // self.m
        sl = self.step_left.get(step)
        if sl is None:
            sl = min((step + 1) * self.m, self.units) - step * self.m
        sl -= 1
        if sl:
            self.step_left[step] = sl
        else:
            self.step_left.pop(step, None)
            self._step_done(step, end)

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

    # -- memory and waits on transfers ----------------------------------------------------
    def _stash_add(self, p: int, delta: int, now: float) -> None:
        if now != self.stash_time[p]:
            if self.stash_now[p] > self.stats.peak_stash_bytes[p]:
                self.stats.peak_stash_bytes[p] = self.stash_now[p]
            self.stash_time[p] = now
        self.stash_now[p] += delta

    def transit_start(self, p: int, now: float) -> None:
        """``p`` starts idling on data in flight."""
        self.transit_since[p] = now
        self._wait_change(+1, now)

    def transit_end(self, p: int, now: float) -> None:
        self.stats.transfer_wait[p] += now - self.transit_since[p]
        self.transit_since[p] = None
        self._wait_change(-1, now)

    def _wait_change(self, delta: int, now: float) -> None:
        if self.n_waiting > 0:
            self.stats.any_transfer_wait += now - self.wait_since
        self.wait_since = now
        self.n_waiting += delta

    # -- the end of the run -------------------------------------------------------------
    def close(self, makespan: int) -> SimStats:
        """Final figures once every processor is done."""
        for p in range(self.P):
            self._stash_add(p, 0, float("inf"))
        st = self.stats
        st.makespan = makespan
        st.tasks_run = sum(len(acts) for acts in self.orders)
        if self.win_first < 0:  # a single step: the window is the whole run
            st.window = (0.0, float(makespan))
            st.window_busy = [float(b) for b in st.busy]
            st.window_steps = 0
        return st

    def versions(self) -> RealisedVersions | None:
        """The weight versions every task used (None unless the run recorded them)."""
        if self.vlog is None:
            return None
        return self.vlog.close(self.rule, self.m, (self.win_first, self.win_last))

    def describe_wait(self, key: tuple | None) -> tuple | None:
        """The waited-for key in readable form: ("t", task, unit), ("x", ...) or ("u", layer, round, proc)."""
        if key is None:
            return None
        info = self.code_info[key[0]]
        if info[0] == "t":
            return ("t", info[1], key[1])
        if info[0] == "x":
            return ("x", info[1], info[2], info[3], key[1])
        return ("u", info[1], key[1], info[2])

    def describe_event(self, eid: tuple) -> str:
        """An event id of the log (:mod:`simulator.engine.events`) in readable form."""
        from schedules.schedule import Action

        tag, a, b, index, hop = eid
        if tag == "t":
            kind, layer = self.code_info[a][1]
            return str(Action(kind, layer, index))
        if tag == "x":
            _, (kind, layer), tensor, dst = self.code_info[a]
            return f"{tensor} of {Action(kind, layer, index)} to P{dst} (hop {hop + 1})"
        if tag == "r":
            return f"update round {index} of layer {a}"
        return f"layer {a}'s round-{index} weights to P{b} (hop {hop + 1})"

    def steady_state(self):
        """The exact steady state of the run (:func:`simulator.engine.steady.exact_steady_state`),
        or None when it logged no events."""
        if self.elog is None:
            return None
        return exact_steady_state(self.elog, self.core, self.period_units, self.m, self.P, self.describe_event,
                                  EXACT_MAX_FOLD)

    def sink_key(self, send: Send) -> tuple:
        info = self.code_info[send.key[0]]
        if info[0] == "x":
            return ("x", info[1], info[2], info[3], send.unit)
        return ("u", info[1], send.key[1], info[2])


def describe_key(key: Hashable) -> str:
    from schedules.schedule import Action

    if key is None:
        return "nothing (it was never reached)"
    if key[0] == "t":
        return f"{Action(key[1].kind, key[1].layer, key[2])}"
    if key[0] == "x":
        return f"the transfer of {tensor_name(key[2])} from {Action(key[1].kind, key[1].layer, key[4])} to P{key[3]}"
    return f"the step-{key[2]} weights of layer {key[1]}"


__all__ = ["SimStats", "EngineState", "Plan", "Send", "describe_key", "LOCAL", "XFER", "UPDATE"]
