"""An independent checker of a finished trace against the schedule it claims to run.

It recomputes every rule from the task graph, the schedule's orders and delays and the
platform's cost models, without any of the engine's code (no passes, no placement
object, no cached plans), and lists what the trace breaks:

* every task of every unit ran exactly once, on the processor the orders give it, and
  each processor ran its tasks in the order of its list;
* no processor runs two tasks at once, no link direction carries two transfers at once;
* every graph edge is respected: the consumer starts after the producer ends and, when
  the two run on different processors and moving the tensor costs link cycles, after a
  chain of transfer records carries it along the platform's route (store and forward:
  each hop starts after the previous one ends);
* the delay rule: the forward of weight layer ``l`` in unit ``i`` starts after every
  update task of layer ``l`` of step ``i // m - 1 - S(l)`` ended (and after the new
  weights arrived when the last update ran on another processor);
* each task's duration equals the platform's ``task_cycles``; each hop's duration equals
  ``link.transfer_cycles`` of its bytes; each hop starts after its producer ended;
* with ``platform.overlap_comm`` False, a processor starts its next task only after the
  transfers its previous task sent have left.

What a task is comes from the task model (:mod:`models.graph.tasks`: which tasks read a
layer's weights, which finish its update); the delay rule's round arithmetic is stated
here again, on purpose, so that a mistake in :class:`schedules.delays.DelayRule` or in the
engine shows up as a violation. Violations are plain strings naming the task::

    F2.3 starts at 40, before its input F1.3 ends at 42

:func:`find_violations` returns them; :func:`check_trace` raises
:class:`models.errors.ScheduleError` with the first few.

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from schedules.schedule import Schedule, parse_orders
>>> from simulator.trace import MemoryTrace
>>> s = Schedule("hand", uniform_pipeline_graph(1, 1, 1, 1), parse_orders("P0: F1.0 B1.0 W1.0"))
>>> t = MemoryTrace()
>>> for kind, start in (("F", 0), ("B", 0), ("W", 2)):
...     t.task(kind, 1, 0, 0, start, start + 1)
>>> find_violations(t, s)[:2]
['B1.0 on P0 starts at 0 while F1.0 runs until 1', 'B1.0 starts at 0, before its input F1.0 ends at 1']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from models.errors import ScheduleError
from models.graph.tasks import TaskKind, edge_bytes, edge_tensor, param_bytes, task_layers, update_tasks, weight_readers
from simulator.hardware import task_cycles
from simulator.trace import tensor_name


def _label(kind: str, layer: int, unit: int) -> str:
    sep = "_" if kind[-1].isdigit() else ""
    return f"{kind}{sep}{layer}.{unit}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Violations(list):
    def __init__(self, limit: int | None):
        super().__init__()
        self.limit = limit

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self) >= self.limit

    def add(self, text: str) -> None:
        if not self.full:
            self.append(text)


def find_violations(trace, schedule, platform=None, *, limit: int | None = None) -> list[str]:
    """Every rule of the module docstring that ``trace`` breaks (empty list: the trace is valid).

    ``trace`` is a :class:`simulator.trace.MemoryTrace` (anything with ``tasks`` and
    ``transfers`` lists of records); ``platform`` enables the duration, route and
    link checks (without it, only orders, overlaps, edges and delays are checked);
    ``limit`` stops after that many violations.
    """
    out = _Violations(limit)
    graph = schedule.graph
    m = schedule.microbatches_per_step
    delays = dict(schedule.delays)
    rounds = dict(schedule.update_rounds)  # units per update of a layer, where it is not m

    # -- where the orders put every task ------------------------------------------------
    expected: dict[tuple[str, int, int], int] = {}
    for p in sorted(schedule.orders):
        for a in schedule.orders[p]:
            key = (a.kind, a.layer, a.unit)
            if key in expected:
                out.add(f"{_label(*key)} is listed twice in the orders (P{expected[key]} and P{p})")
            expected[key] = p
    units = 1 + max((k[2] for k in expected), default=-1)
    for node in graph.nodes:
        for i in range(units):
            if (node[0], node[1], i) not in expected and not TaskKind(node[0]).is_update:
                out.add(f"{_label(node[0], node[1], i)} is in the task graph but no processor's orders run it")

    # -- what ran ---------------------------------------------------------------------
    ran: dict[tuple[str, int, int], object] = {}
    by_label: dict[str, object] = {}
    runs: dict[tuple[str, int, int], int] = defaultdict(int)
    for rec in trace.tasks:
        key = (rec.kind, rec.layer, rec.unit)
        runs[key] += 1
        if key not in ran:
            ran[key] = rec
            by_label[_label(*key)] = rec
        if key not in expected:
            out.add(f"{_label(*key)} ran on P{rec.proc}, but the schedule has no such task")
        elif expected[key] != rec.proc:
            out.add(f"{_label(*key)} ran on P{rec.proc}, but the orders place it on P{expected[key]}")
        if rec.end < rec.start:
            out.add(f"{_label(*key)} on P{rec.proc} ends at {rec.end}, before it starts at {rec.start}")
    for key, n in runs.items():
        if n > 1:
            out.add(f"{_label(*key)} ran {n} times (every task must run exactly once)")
    for key, p in expected.items():
        if key not in ran:
            out.add(f"{_label(*key)} never ran (the orders place it on P{p})")

    # -- per processor: order, overlap, durations --------------------------------------
    per_proc: dict[int, list] = defaultdict(list)
    for seq, rec in enumerate(trace.tasks):
        per_proc[rec.proc].append((rec.start, rec.end, seq, rec))
    cost_cache: dict[tuple, int] = {}
    for p in sorted(per_proc):
        recs = [r for *_, r in sorted(per_proc[p], key=lambda x: x[:3])]
        want = [_label(a.kind, a.layer, a.unit) for a in schedule.orders.get(p, [])]
        got = [_label(r.kind, r.layer, r.unit) for r in recs]
        if got != want:
            for n, (g, w) in enumerate(zip(got, want), start=1):
                if g != w:
                    out.add(f"P{p} ran {g} as its {_ordinal(n)} task, but its orders put {w} there")
                    break
            else:
                if len(got) != len(want):
                    out.add(f"P{p} ran {len(got)} tasks, but its orders list {len(want)}")
        for prev, cur in zip(recs, recs[1:]):
            if cur.start < prev.end:
                out.add(f"{_label(cur.kind, cur.layer, cur.unit)} on P{p} starts at {cur.start} while "
                        f"{_label(prev.kind, prev.layer, prev.unit)} runs until {prev.end}")
        if platform is not None:
            for r in recs:
                task = (r.kind, r.layer)
                if task not in graph or p >= len(platform.processors):
                    continue
                ck = (task, p)
                if ck not in cost_cache:
                    cost_cache[ck] = task_cycles(platform.processors[p], graph, task)
                if r.end - r.start != cost_cache[ck]:
                    out.add(f"{_label(r.kind, r.layer, r.unit)} on P{p} took {r.end - r.start} cycles, "
                            f"but the cost model gives {cost_cache[ck]}")

    # -- transfers: link exclusivity, durations, causality -------------------------------
    hops: dict[tuple[str, str], list] = defaultdict(list)
    sent_by: dict[str, list] = defaultdict(list)
    per_link: dict[tuple[int, int], list] = defaultdict(list)
    for seq, x in enumerate(trace.transfers):
        hops[(x.producer, x.tensor)].append(x)
        sent_by[x.producer].append(x)
        per_link[(x.src, x.dst)].append((x.start, x.end, seq, x))
        if platform is not None:
            want_cycles = platform.link.transfer_cycles(x.bytes)
            if x.end - x.start != want_cycles:
                out.add(f"transfer of {x.tensor} from {x.producer} on link P{x.src}->P{x.dst} took "
                        f"{x.end - x.start} cycles, but the link model gives {want_cycles} for {x.bytes} bytes")
        producer = by_label.get(x.producer)
        if producer is not None and x.start < producer.end:
            out.add(f"transfer of {x.tensor} from {x.producer} starts on link P{x.src}->P{x.dst} at {x.start}, "
                    f"before {x.producer} ends at {producer.end}")
    for (a, b), items in sorted(per_link.items()):
        items.sort(key=lambda t: t[:3])
        for (_, _, _, prev), (_, _, _, cur) in zip(items, items[1:]):
            if cur.start < prev.end:
                out.add(f"link P{a}->P{b} carries {cur.tensor} from {cur.producer} from {cur.start} while it "
                        f"still carries {prev.tensor} from {prev.producer} until {prev.end}")

    def arrival(producer: str, tensor: str, src: int, dst: int, ready: float, nbytes: int | None) -> float | None:
        """When a chain of hop records along the route brings the data to ``dst`` (None: never)."""
        t = ready
        for a, b in platform.route(src, dst):
            cands = [x for x in hops.get((producer, tensor), ()) if x.src == a and x.dst == b and x.start >= t
                     and (nbytes is None or x.bytes == nbytes)]
            if not cands:
                return None
            t = min(x.end for x in cands)
        return t

    def transfer_needed(nbytes: int) -> bool:
        return platform is not None and nbytes > 0 and platform.link.transfer_cycles(nbytes) > 0

    # -- graph edges --------------------------------------------------------------------
    succ = {u: list(graph.successors(u)) for u in graph.nodes}
    for i in range(units):
        if out.full:
            break
        for u in graph.nodes:
            ru = ran.get((u[0], u[1], i))
            if ru is None:
                continue
            groups: dict[tuple[str, int], list] = {}
            for v in succ[u]:
                rv = ran.get((v[0], v[1], i))
                if rv is None:
                    continue
                if rv.start < ru.end:
                    out.add(f"{_label(v[0], v[1], i)} starts at {rv.start}, before its input "
                            f"{_label(u[0], u[1], i)} ends at {ru.end}")
                if rv.proc != ru.proc:
                    tensor = tensor_name(edge_tensor(graph, u, v))
                    g = groups.setdefault((tensor, rv.proc), [0, []])
                    g[0] = max(g[0], edge_bytes(graph, u, v))
                    g[1].append(rv)
            for (tensor, dst), (nbytes, consumers) in groups.items():
                if not transfer_needed(nbytes):
                    continue
                src_label = _label(u[0], u[1], i)
                arr = arrival(src_label, tensor, ru.proc, dst, ru.end, nbytes)
                for rv in consumers:
                    v_label = _label(rv.kind, rv.layer, rv.unit)
                    if arr is None:
                        out.add(f"{v_label} on P{dst} reads {tensor} ({nbytes} bytes) from {src_label} on P{ru.proc}, "
                                f"but no chain of transfers along the route brings it to P{dst}")
                    elif rv.start < arr:
                        out.add(f"{v_label} starts at {rv.start}, before {tensor} from {src_label} arrives on "
                                f"P{dst} at {arr}")

    # -- the delay rule -----------------------------------------------------------------
    upd = update_tasks(graph)
    step_cache: dict[tuple[int, int], tuple] = {}

    def step_updates(l: int, s: int) -> tuple:
        key = (l, s)
        if key not in step_cache:
            g = rounds.get(l, m)
            recs = [ran.get((t[0], t[1], u)) for u in range(s * g, min((s + 1) * g, units)) for t in upd[l]]
            recs = [r for r in recs if r is not None]
            last = max((r.end for r in recs), default=None)
            step_cache[key] = (last, [r for r in recs if r.end == last])
        return step_cache[key]

    forwards = list(weight_readers(graph).items())
    for i in range(units):
        if out.full:
            break
        for f, ls in forwards:
            rf = ran.get((f[0], f[1], i))
            if rf is None:
                continue
            for l in ls:
                S = delays.get(l, 0) // 2
                s = i // rounds.get(l, m) - 1 - S
                if s < 0 or l not in upd:
                    continue
                last, lasts = step_updates(l, s)
                if last is None:
                    continue
                if rf.start < last:
                    who = _label(lasts[0].kind, lasts[0].layer, lasts[0].unit)
                    out.add(f"{_label(f[0], f[1], i)} starts at {rf.start}, before the round-{s} update of layer {l} "
                            f"ends ({who} at {last}); with delay {delays.get(l, 0)} slots unit {i} must use the "
                            f"weights of step {s}")
                    continue
                nbytes = param_bytes(graph, l)
                if not transfer_needed(nbytes) or any(r.proc == rf.proc for r in lasts):
                    continue
                arrivals = [arrival(f"U{l}.step{s}", f"w{l}@step{s}", r.proc, rf.proc, last, nbytes) for r in lasts]
                arrivals = [a for a in arrivals if a is not None]
                if not arrivals:
                    out.add(f"{_label(f[0], f[1], i)} on P{rf.proc} reads layer {l}'s step-{s} weights, updated on "
                            f"P{lasts[0].proc}, but no chain of transfers brings them to P{rf.proc}")
                elif rf.start < min(arrivals):
                    out.add(f"{_label(f[0], f[1], i)} starts at {rf.start}, before layer {l}'s step-{s} weights "
                            f"arrive on P{rf.proc} at {min(arrivals)}")

    # -- an update left out of a unit runs later in its round, where the unit's gradients ran --
    for node in graph.nodes:
        if not TaskKind(node[0]).is_update:
            continue
        layer = (task_layers(graph, node) or (node[1],))[0]
        g = rounds.get(layer, m)  # the update round of the task's layers (a stage's layers share it)
        for i in range(units):
            if (node[0], node[1], i) in expected:
                continue
            grads = [ran.get((q[0], q[1], i)) for q in graph.predecessors(node)]
            grads = [r for r in grads if r is not None]
            later = [ran.get((node[0], node[1], j)) for j in range(i // g * g, min(i // g * g + g, units))]
            later = [r for r in later if r is not None and grads and all(r.proc == q.proc and r.start >= q.end
                                                                          for q in grads)]
            if not later:
                out.add(f"{_label(node[0], node[1], i)} never ran and no update of its round ran after its gradients "
                        f"on their processor")

    # -- a sender without DMA waits for what it sends ------------------------------------
    if platform is not None and not platform.overlap_comm:
        for p, items in sorted(per_proc.items()):
            recs = [r for *_, r in sorted(items, key=lambda x: x[:3])]
            for prev, cur in zip(recs, recs[1:]):
                label = _label(prev.kind, prev.layer, prev.unit)
                sent = [x for x in sent_by.get(label, ()) if x.src == p]
                done = max((x.end for x in sent), default=None)
                if done is not None and cur.start < done:
                    out.add(f"{_label(cur.kind, cur.layer, cur.unit)} on P{p} starts at {cur.start}, before the "
                            f"transfers {label} sent have left at {done} (overlap_comm is off)")
    return list(out)


def check_trace(trace, schedule, platform=None, *, show: int = 5) -> None:
    """Raise :class:`ScheduleError` listing the first ``show`` violations, if any."""
    found = find_violations(trace, schedule, platform, limit=show + 1)
    if found:
        more = " (and more)" if len(found) > show else ""
        raise ScheduleError(f"trace of schedule {schedule.name!r} breaks {len(found[:show])} rule(s){more}: "
                            + "; ".join(found[:show]))


def summarize_violations(violations: Iterable[str]) -> str:
    """One line per violation, numbered, for reports."""
    return "\n".join(f"{n}. {v}" for n, v in enumerate(violations, start=1))


__all__ = ["find_violations", "check_trace", "summarize_violations"]
