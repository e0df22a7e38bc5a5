"""Every metric of docs/design.md section 6, from a simulation result (and again from a trace).

Definitions (a "minibatch" is one optimizer step: ``microbatches_per_step`` units):

* ``cycles_per_minibatch`` - ``stats.cycles_per_step``: the exact steady-state rate, the
  cycle time of the run's periodic event graph (:mod:`simulator.engine.steady`;
  ``steady_state`` is ``"exact"``), else the mean interval between step completions in the
  converged steady-state window (``"simulated"``; the makespan when there is one step), else
  NaN with ``steady_state`` ``"not measured"``: a window that has not converged, or any figure
  below the schedule's own lower bound, is never reported as a result.
  ``steady_period_minibatches`` - the period of the exact figure (the orders repeat every so
  many minibatches; None for any other). ``total_cycles`` - the makespan of the whole run.
* ``utilization[p]`` - busy compute cycles of ``p`` in one period / the period's cycles when
  the steady state is exact, else inside the window / window length;
  ``mean_utilization`` - their mean over the schedule's processors.
* ``bubble_rate`` - 1 - max utilization: the idle share of a step on the busiest processor,
  (C - W) / C with C the cycles per minibatch and W the most compute any processor does per
  step. It is the zero-bubble paper's bubble rate, (cost - m(T_F + T_B + T_W)) / cost with
  cost the longest stage's span (Qi et al., ICLR 2024, section 5.3): a flush step repeats
  with that span, and every stage's work is m(T_F + T_B + T_W) there.
* ``bytes_per_minibatch`` - bytes that crossed between processors (each transfer once,
  however many hops) / steps run, where steps = units / m; ``link_busy_cycles`` - cycles
  links were busy, summed over directed links (``link_busy`` per link), also per minibatch.
* ``transfer_wait_fraction`` - cycles in which some processor sat idle while the data it
  needed was in flight on a link / total cycles (0 on a free link).
* ``step_bytes`` - the bytes a training step reads and writes: m x the sum of
  ``bytes_read + bytes_written`` over the template's tasks; ``communication_fraction`` -
  bytes_per_minibatch / step_bytes. :func:`communication_overhead` is SpikePipe's figure:
  the extra bytes a method moves per step compared with a baseline, as a fraction of
  step_bytes.
* memory per processor (:class:`ProcessorMemory`): ``weights`` - for every layer whose
  forward runs there, versions x its parameter bytes: the versions the run really held at
  once when the engine recorded them (``SimResult.versions.kept``: weight stashing keeps a
  forward's version until the unit's last task using the layer is done), else the
  schedule's (``schedule.versions()``: S(l) + 1 stashed, 2 under EMA);
  ``stash_peak`` - the engine's peak of stashed activations (``stats.peak_stash_bytes``);
  ``gradients`` - one weight-gradient buffer (1 x parameter bytes) on every processor that
  computes the layer's weight gradient (its WG or W tasks, or the B task of the layer in
  views that fold WG into B); ``optimizer`` - one momentum buffer (1 x parameter bytes,
  SGD with momentum) on every processor that runs the layer's U task (where the gradient
  is computed when the template has no U tasks). ``total`` is their sum (the stash at its peak).
* ``bounds`` / ``efficiency`` - :func:`simulator.bounds.lower_bounds` and
  max(bounds) / cycles_per_minibatch.
* ``speedup_vs_sequential`` - the cycles per minibatch of one processor (processor 0 of
  the platform) running every task of the step in order, i.e. m x the sum of the
  template's task cycles there (docs/design.md section 9), / cycles_per_minibatch;
  ``speedup_vs_baseline`` - baseline_cycles / cycles_per_minibatch when a baseline's
  cycles per minibatch is given.

:func:`metrics_from_trace` recomputes busy cycles, the window, utilization, bytes (from
the graph and where each task actually ran), link-busy cycles and the memory over time
from a :class:`simulator.trace.MemoryTrace` alone, so tests can check the engine's
streamed figures against an independent path; :func:`memory_timeline` is the memory of
each processor as a step function of time.

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from schedules.schedule import Schedule, parse_orders
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> from simulator.engine import simulate
>>> g = uniform_pipeline_graph(2, f=1, b=2, w=0, act_bytes=4, split_backward=False)
>>> r = simulate(Schedule("hand", g, parse_orders("P0: F1.0 B1.0 ; P1: F2.0 B2.0")), Platform.homogeneous(2, MacArray(1)))
>>> m = summarize(r)
>>> m.cycles_per_minibatch, m.utilization, m.bytes_per_minibatch, m.speedup_vs_sequential
(6.0, [0.5, 0.5], 8.0, 1.0)
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from fractions import Fraction

from models.errors import LayerPipeError
from models.graph.tasks import (
    TaskKind,
    edge_bytes,
    edge_tensor,
    layer_infos,
    param_bytes,
    stash_freers,
    state_holders,
    task_work,
    update_tasks,
    weight_readers,
)
from schedules.passes import Placement, instances_per_step
from simulator.bounds import Bounds, lower_bounds
from simulator.engine import schedule_window
from simulator.hardware import task_cycles

# --------------------------------------------------------------------------- memory


@dataclass
class ProcessorMemory:
    """Bytes one processor needs (see the module docstring)."""

    weights: int = 0
    stash_peak: int = 0
    optimizer: int = 0
    gradients: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.stash_peak + self.optimizer + self.gradients

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def _procs_by_task(schedule) -> dict[tuple[str, int], set[int]]:
    where: dict[tuple[str, int], set[int]] = defaultdict(set)
    for p, acts in schedule.orders.items():
        for a in acts:
            where[(a.kind, a.layer)].add(p)
    return where


def static_memory(schedule, kept: dict[tuple[int, int], int] | None = None) -> list[ProcessorMemory]:
    """Weights x versions, optimizer state and gradient buffers per processor (no stash).

    Versions are the schedule's (:meth:`schedules.schedule.Schedule.versions`: S(l) + 1 under
    weight stashing, 2 under EMA reconstruction) unless ``kept`` gives, per (layer, processor),
    the versions a stashing run really held at once (:mod:`simulator.engine.versions`); a
    schedule that declares its own versions (EMA) keeps them."""
    versions = schedule.versions()
    if schedule.weight_versions is not None:
        kept = None
    where = _procs_by_task(schedule)
    mem = [ProcessorMemory() for _ in range(schedule.processors)]

    def procs(tasks) -> set[int]:
        return {p for t in tasks for p in where.get(t, ())}

    for l, held in state_holders(schedule.graph).items():
        pb = held.param_bytes
        for p in procs(held.readers):
            mem[p].weights += (kept.get((l, p), 1) if kept is not None else versions.get(l, 1)) * pb
        for p in procs(held.gradients):
            mem[p].gradients += pb
        for p in procs(held.updates):
            mem[p].optimizer += pb
    return mem


def processor_memory(result) -> list[ProcessorMemory]:
    """Every processor's memory in a run: :func:`static_memory` (with the versions the run kept,
    when it recorded them) and the engine's stash peak."""
    versions = getattr(result, "versions", None)
    mem = static_memory(result.schedule, versions.kept if versions is not None else None)
    peaks = result.stats.peak_stash_bytes
    for p, m in enumerate(mem):
        m.stash_peak = peaks[p] if p < len(peaks) else 0
    return mem


# --------------------------------------------------------------------------- metrics


@dataclass
class Metrics:
    """All figures of docs/design.md section 6 for one simulated schedule (see the module docstring)."""

    schedule: str
    platform: str
    processors: int
    units: int
    steps: float
    microbatches_per_step: int
    cycles_per_minibatch: float
    total_cycles: int
    window: tuple[float, float]
    window_steps: int
    busy: list[int]
    utilization: list[float]
    mean_utilization: float
    bubble_rate: float
    bytes_moved: int
    bytes_per_minibatch: float
    bytes_by_kind: dict[str, int]
    link_busy: dict[str, int]
    link_busy_cycles: int
    link_busy_per_minibatch: float
    transfer_wait: list[float]
    transfer_wait_fraction: float
    step_bytes: int
    communication_fraction: float
    memory: list[ProcessorMemory]
    peak_memory_bytes: int
    bounds: Bounds | None
    lower_bound: float
    efficiency: float
    sequential_cycles: float
    speedup_vs_sequential: float
    baseline_cycles: float | None = None
    speedup_vs_baseline: float | None = None
    communication_overhead: float | None = None
    steady_state: str = "simulated"  # "exact", "simulated" or "not measured" (see the module docstring)
    critical_cycle: list[str] | None = None  # the events of a critical cycle of the exact steady state
    steady_period_minibatches: int | None = None  # the period the exact steady state was read at
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("memory", "bounds")}
        d["window"] = list(self.window)
        d["memory"] = [m.to_dict() for m in self.memory]
        d["bounds"] = self.bounds.to_dict() if self.bounds is not None else None
        return d

    def row(self) -> dict:
        """The headline figures as one flat table row."""
        return {"schedule": self.schedule, "P": self.processors, "cycles/minibatch": self.cycles_per_minibatch,
                "total cycles": self.total_cycles, "utilization": self.mean_utilization,
                "bytes/minibatch": self.bytes_per_minibatch, "wait on transfers": self.transfer_wait_fraction,
                "peak memory": self.peak_memory_bytes, "bound": self.lower_bound, "efficiency": self.efficiency,
                "speedup vs seq": self.speedup_vs_sequential}


def _exact(x: Fraction) -> int | float:
    return int(x) if x.denominator == 1 else float(x)


def step_bytes(schedule) -> int | float:
    """Bytes a training step reads and writes: bytes_read + bytes_written of every task instance of a step."""
    graph, n = schedule.graph, instances_per_step(schedule)
    return _exact(sum((n[t] * (task_work(graph, t).bytes_read + task_work(graph, t).bytes_written) for t in graph),
                      Fraction(0)))


def sequential_cycles(schedule, platform, processor: int = 0) -> int | float:
    """Cycles per step of one processor running every task instance of the step in order."""
    cm, graph, n = platform.processors[processor], schedule.graph, instances_per_step(schedule)
    return _exact(sum((n[t] * task_cycles(cm, graph, t) for t in graph), Fraction(0)))


_sequential_cycles = sequential_cycles  # summarize() has a parameter of the same name


def communication_overhead(bytes_per_minibatch: float, baseline_bytes_per_minibatch: float, step_total_bytes: float) -> float:
    """Extra bytes per step over a baseline, as a fraction of the bytes a step reads and writes.

    >>> communication_overhead(1100, 1000, 40_000)
    0.0025
    """
    if step_total_bytes <= 0:
        return float("nan")
    return (bytes_per_minibatch - baseline_bytes_per_minibatch) / step_total_bytes


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def summarize(result, sequential_cycles: float | None = None, baseline_cycles: float | None = None, *,
              baseline_bytes: float | None = None, with_bounds: bool = True) -> Metrics:
    """All metrics of ``result`` (a :class:`simulator.engine.SimResult`).

    ``sequential_cycles``: cycles per minibatch of the sequential reference (default: the
    platform's processor 0 running every task, :func:`sequential_cycles`);
    ``baseline_cycles`` / ``baseline_bytes``: a baseline's cycles and bytes per minibatch,
    for ``speedup_vs_baseline`` and ``communication_overhead``.
    """
    sched, plat, st = result.schedule, result.platform, result.stats
    P = sched.processors
    m = sched.microbatches_per_step
    steps = st.units / m if m else float(st.steps)
    bounds = lower_bounds(sched, plat) if with_bounds else None
    lb = float(bounds.best) if bounds is not None else float("nan")
    measured = steady_state(st, bounds)
    cpm = float(st.cycles_per_step) if measured != "not measured" else float("nan")
    if measured == "exact":
        util = [st.steady.utilization(p) for p in range(len(st.busy))]
    else:
        span = st.window[1] - st.window[0]
        util = [_ratio(b, span) for b in st.window_busy]
    link_total = sum(st.link_busy.values())
    mem = processor_memory(result)
    sb = step_bytes(sched)
    bpm = _ratio(st.bytes_moved, steps)
    seq = float(sequential_cycles) if sequential_cycles is not None else float(_sequential_cycles(sched, plat))
    return Metrics(
        schedule=sched.name, platform=plat.describe(), processors=P, units=st.units, steps=steps,
        microbatches_per_step=m, cycles_per_minibatch=cpm, total_cycles=st.makespan, window=tuple(st.window),
        window_steps=st.window_steps, busy=list(st.busy), utilization=util,
        mean_utilization=sum(util) / len(util) if util else float("nan"),
        bubble_rate=1 - max(util) if util and not math.isnan(cpm) else float("nan"),
        bytes_moved=st.bytes_moved, bytes_per_minibatch=bpm, bytes_by_kind=dict(st.bytes_by_kind),
        link_busy={f"{a}->{b}": c for (a, b), c in sorted(st.link_busy.items())}, link_busy_cycles=link_total,
        link_busy_per_minibatch=_ratio(link_total, steps), transfer_wait=list(st.transfer_wait),
        transfer_wait_fraction=_ratio(st.any_transfer_wait, st.makespan), step_bytes=sb,
        communication_fraction=_ratio(bpm, sb), memory=mem, peak_memory_bytes=max((x.total for x in mem), default=0),
        bounds=bounds, lower_bound=lb, efficiency=_ratio(lb, cpm), sequential_cycles=seq,
        speedup_vs_sequential=_ratio(seq, cpm), baseline_cycles=baseline_cycles,
        speedup_vs_baseline=_ratio(baseline_cycles, cpm) if baseline_cycles is not None else None,
        communication_overhead=(communication_overhead(bpm, baseline_bytes, sb) if baseline_bytes is not None else None),
        steady_state=measured, critical_cycle=list(st.steady.critical) if measured == "exact" else None,
        steady_period_minibatches=st.steady.period_units // m if measured == "exact" else None,
    )


def steady_state(stats, bounds: Bounds | None = None) -> str:
    """How ``stats`` (:class:`simulator.engine.SimStats`) measured its steady state: ``"exact"``,
    ``"simulated"`` (a converged window) or ``"not measured"`` (an unconverged window, or a
    figure below ``bounds``, the schedule's own lower bound, which no schedule can beat)."""
    if stats.exact:
        figure = stats.steady.cycles_per_step
    elif stats.converged:
        figure = Fraction(stats.cycles_per_step)
    else:
        return "not measured"
    if bounds is not None and figure < bounds.best:
        if stats.exact:  # the exact rate of a valid schedule cannot be below a valid bound
            raise LayerPipeError(f"internal inconsistency: the exact steady state is "
                                 f"{float(figure):,.1f} cycles per minibatch, below the schedule's lower bound "
                                 f"{float(bounds.best):,.1f}; please report this")
        return "not measured"
    return "exact" if stats.exact else "simulated"


# --------------------------------------------------------------------------- from a trace


@dataclass
class TraceMetrics:
    """Figures recomputed from a trace (compare with the engine's :class:`SimStats`)."""

    makespan: float
    busy: list[float]
    window: tuple[float, float]
    window_steps: int
    window_busy: list[float]
    utilization: list[float]
    cycles_per_step: float
    step_ends: list[float]
    bytes_moved: int
    bytes_by_kind: dict[str, int]
    link_busy: dict[tuple[int, int], float]
    peak_stash_bytes: list[int]
    memory: dict[int, list[tuple[float, int]]]


def _window_of(step_ends: list[float], makespan: float, schedule) -> tuple[tuple[float, float], int]:
    """The window of :func:`simulator.engine.schedule_window` (the definition), measured on the trace."""
    first, last = schedule_window(schedule, len(step_ends), Placement(schedule).period)
    if first < 0:
        return (0.0, float(makespan)), 0
    return (float(step_ends[first]), float(step_ends[last])), last - first


def _stash_events(trace, schedule) -> dict[int, dict[float, int]]:
    """Per processor: time -> net change of stashed activations at that instant."""
    graph = schedule.graph
    info = layer_infos(graph)
    freers = stash_freers(graph)
    rec = {(t.kind, t.layer, t.unit): t for t in trace.tasks}
    forwards = weight_readers(graph)
    events: dict[int, dict[float, int]] = defaultdict(lambda: defaultdict(int))
    for (kind, layer, unit), t in rec.items():
        for l in forwards.get((kind, layer), ()):
            nbytes = info[l].stash_bytes if l in info else 0
            if not nbytes:
                continue
            events[t.proc][t.start] += nbytes
            ends = [rec[(q[0], q[1], unit)].end for q in freers.get(l, ()) if (q[0], q[1], unit) in rec]
            if freers.get(l) and len(ends) == len(freers[l]):
                events[t.proc][max(ends)] -= nbytes
    return events


def memory_timeline(trace, schedule, *, static: bool = True,
                    kept: dict[tuple[int, int], int] | None = None) -> dict[int, list[tuple[float, int]]]:
    """Memory of every processor as a step function: ``[(time, bytes from then on), ...]``.

    Stashed activations of layer ``l`` for unit ``i`` are held on the processor of its
    forward from the forward's start until the last backward task that reads them (kinds
    WG, AG2, B, W containing ``l``) ends; everything at one instant happens together.
    With ``static`` the weights, optimizer state and gradient buffers are added as a
    constant (see :func:`static_memory`; ``kept``: the versions a recorded run held).
    """
    base = static_memory(schedule, kept) if static else [ProcessorMemory() for _ in range(schedule.processors)]
    events = _stash_events(trace, schedule)
    result = {}
    for p in range(schedule.processors):
        level = base[p].weights + base[p].optimizer + base[p].gradients
        points = [(0.0, level)]
        for t in sorted(events.get(p, {})):
            delta = events[p][t]
            if not delta:
                continue
            level += delta
            if points[-1][0] == t:
                points[-1] = (t, level)
            else:
                points.append((t, level))
        result[p] = points
    return result


def metrics_from_trace(trace, schedule) -> TraceMetrics:
    """Busy, window, utilization, bytes, link busy and memory recomputed from ``trace`` alone.

    Bytes are rebuilt from the task graph and where each task ran: per unit, every
    tensor a task sends to another processor counts once per destination processor (the
    largest edge of it), and after the last update task of a layer in an update round, the new
    weights count once for every other processor that runs a forward reading the layer.
    """
    graph = schedule.graph
    P = schedule.processors
    m = schedule.microbatches_per_step
    busy = [0.0] * P
    unit_end: dict[int, float] = {}
    rec = {}
    for t in trace.tasks:
        busy[t.proc] += t.end - t.start
        unit_end[t.unit] = max(unit_end.get(t.unit, t.end), t.end)
        rec[(t.kind, t.layer, t.unit)] = t
    makespan = max([t.end for t in trace.tasks] + [x.end for x in trace.transfers], default=0)
    units = 1 + max(unit_end, default=-1)
    steps = -(-units // m)
    step_ends = [max(unit_end.get(u, 0.0) for u in range(k * m, min((k + 1) * m, units))) for k in range(steps)]
    window, wsteps = _window_of(step_ends, makespan, schedule)
    if wsteps == 0:
        wbusy = list(busy)
    else:
        wbusy = [0.0] * P
        for t in trace.tasks:
            lo, hi = max(t.start, window[0]), min(t.end, window[1])
            if hi > lo:
                wbusy[t.proc] += hi - lo
    span = window[1] - window[0]
    util = [_ratio(b, span) for b in wbusy]
    cps = span / wsteps if wsteps > 0 else float(makespan) / max(1, steps)

    # bytes between processors
    moved, by_kind = 0, defaultdict(int)
    for u in graph.nodes:
        for i in range(units):
            ru = rec.get((u[0], u[1], i))
            if ru is None:
                continue
            groups: dict[tuple, int] = {}
            for v in graph.successors(u):
                rv = rec.get((v[0], v[1], i))
                if rv is None or rv.proc == ru.proc:
                    continue
                key = (repr(edge_tensor(graph, u, v)), rv.proc)
                groups[key] = max(groups.get(key, 0), edge_bytes(graph, u, v))
            for nbytes in groups.values():
                moved += nbytes
                by_kind[TaskKind(u[0]).output_kind] += nbytes
    order = {id(t): n for n, t in enumerate(trace.tasks)}
    upd = update_tasks(graph)
    forwards = weight_readers(graph)
    readers: dict[int, set[int]] = defaultdict(set)
    for (kind, layer, unit), t in rec.items():
        for l in forwards.get((kind, layer), ()):
            readers[l].add(t.proc)
    for l, tasks in upd.items():
        nbytes = param_bytes(graph, l)
        if not nbytes or l not in readers:
            continue
        rule = schedule.rule
        for k in range(-(-units // rule.group(l))):  # each update round of the layer
            recs = [rec.get((t[0], t[1], u)) for u in rule.round_units(l, k, units) for t in tasks]
            recs = [r for r in recs if r is not None]  # an update may run once per round
            if not recs:
                continue
            last = max(recs, key=lambda r: (r.end, order[id(r)]))  # the engine releases on the last to end
            n = sum(1 for d in readers[l] if d != last.proc)
            moved += n * nbytes
            by_kind["weights"] += n * nbytes
    link: dict[tuple[int, int], float] = defaultdict(float)
    for x in trace.transfers:
        link[(x.src, x.dst)] += x.end - x.start
    memory = memory_timeline(trace, schedule, static=False)
    peak = [max((b for _, b in memory.get(p, [(0, 0)])), default=0) for p in range(P)]
    return TraceMetrics(makespan=makespan, busy=busy, window=window, window_steps=wsteps, window_busy=wbusy,
                        utilization=util, cycles_per_step=cps, step_ends=step_ends, bytes_moved=moved,
                        bytes_by_kind=dict(by_kind), link_busy=dict(link), peak_stash_bytes=peak, memory=memory)


def metrics_table(metrics: list[Metrics]) -> list[dict]:
    """Flat rows (see :meth:`Metrics.row`) for :func:`simulator.output.format_table`."""
    return [m.row() for m in metrics]


__all__ = ["Metrics", "ProcessorMemory", "TraceMetrics", "summarize", "metrics_from_trace", "memory_timeline",
           "processor_memory",
           "static_memory", "step_bytes", "sequential_cycles", "communication_overhead", "metrics_table"]
