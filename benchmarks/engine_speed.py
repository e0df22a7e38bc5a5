"""How fast is the engine? Prints one table; run ``python benchmarks/engine_speed.py``.

Rows (F = 2, B = 3, W = 1 cycles per stage, 1F1B with the backward split into B and W,
``one_f_one_b_orders(p, m)`` on ``uniform_pipeline_graph``, one step of m micro-batches):

* ``engine`` - ``simulate()`` of an already executable schedule (validate and
  insert_transfers done beforehand), trace off: simulated task executions per second.
* floors that run the same schedule with the same dependencies (each processor its orders,
  each task waiting for its predecessors in the task graph) and must reach the engine's
  makespan: ``heapq`` - an integer-keyed event loop over task completions (target: the
  engine within 2x, ratio >= 50 %); ``SimPy events`` - one process per processor and one
  event per task; ``SimPy timeouts`` - each processor a process doing ``yield
  env.timeout(c)`` per task and nothing else (no dependencies: for information).
  The engine's figure includes its exact steady state (the event log of a slice of
  periods and the cycle-ratio analysis).
* ``validate + insert_transfers / engine`` - CPU time of the two passes over the engine's
  on the 64 x 512 schedule (target: at most half).
* ``64 x 512`` - wall time of ``simulate(schedule)`` including validate and
  insert_transfers (target < 2 s).
* ``8 x 512 -> 8 x 5120`` - the same with ten times more micro-batches: time ratio of the
  engine (target <= 11x; also shown with validate + insert_transfers, whose deadlock check
  keeps a set of every finished task, for information) and the tracemalloc peak of the
  engine run (the executable schedule is built before tracing starts, as the schedule
  itself grows with N; target: no growth).
* ``with links`` - for information, 8 stages x 512 on a 2-cycle-latency link with
  activation transfers, where every transfer is a SimPy process holding link channels.

Rates and ratios use the CPU time of this process (``time.process_time``), so other load
on a shared machine does not skew them; the "< 2 s" row is wall-clock time. Every figure
is the best of ``--repeat`` runs, the two sides of a ratio measured alternately.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.graph.synthetic import uniform_pipeline_graph  # noqa: E402
from schedules.passes import insert_transfers, validate  # noqa: E402
from schedules.planning.orders import one_f_one_b_orders  # noqa: E402
from schedules.schedule import Schedule  # noqa: E402
from simulator.costs import LinkModel, MacArray  # noqa: E402
from simulator.engine import simulate  # noqa: E402
from simulator.output import format_table  # noqa: E402
from simulator.platform import Platform  # noqa: E402

F, B, W = 2, 3, 1


def build(stages: int, microbatches: int, act_bytes: int = 0) -> Schedule:
    graph = uniform_pipeline_graph(stages, F, B, W, act_bytes=act_bytes)
    return Schedule("1f1b", graph, one_f_one_b_orders(stages, microbatches), microbatches_per_step=microbatches)


def _timed(fn) -> tuple[float, float, object]:
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - w0, time.process_time() - c0, result


def best(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall-clock and best CPU time of ``repeat`` runs, and the last result."""
    runs = [_timed(fn) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]


def best_of_pair(fa, fb, repeat: int) -> tuple[tuple[float, float, object], tuple[float, float, object]]:
    """``best`` of two measurements taken alternately, so both see the same machine load."""
    ra, rb = [], []
    for _ in range(repeat):
        ra.append(_timed(fa))
        rb.append(_timed(fb))
    pick = lambda rs: (min(r[0] for r in rs), min(r[1] for r in rs), rs[-1][2])  # noqa: E731
    return pick(ra), pick(rb)


def bare_simpy(schedule: Schedule, platform: Platform) -> int:
    """Every processor a SimPy process doing one timeout per task: the floor of any SimPy engine."""
    costs = {p: [platform.processors[p].task_cycles(schedule.graph.nodes[a.task]["work"]) for a in acts]
             for p, acts in schedule.orders.items()}
    env = simpy.Environment()

    def proc(cs):
        for c in cs:
            yield env.timeout(c)

    for cs in costs.values():
        env.process(proc(cs))
    env.run()
    return sum(len(c) for c in costs.values())


def dependencies(schedule: Schedule, platform: Platform) -> list[list[tuple[int, tuple[int, ...]]]]:
    """Per processor, per action: (cycles, ids of the actions it waits for); an id is the
    action's position in the concatenation of the processors' orders."""
    rule = schedule.rule
    where, gid = {}, 0
    for p in sorted(schedule.orders):
        for a in schedule.orders[p]:
            where[a] = gid
            gid += 1
    graph = schedule.graph
    out = []
    for p in sorted(schedule.orders):
        acts = []
        for a in schedule.orders[p]:
            assert all(rule.awaited_round(l, a.unit) < 0 for l in rule.stale), "the floors model no weight waits"
            preds = tuple(where[type(a)(q.kind, q.layer, a.unit)] for q in graph.predecessors(a.task))
            acts.append((platform.processors[p].task_cycles(graph.nodes[a.task]["work"]), preds))
        out.append(acts)
    return out


def heapq_floor(deps) -> int:
    """The same dependencies in a plain event loop over task completions; returns the makespan."""
    import heapq

    ends: dict[int, int] = {}
    offsets, total = [], 0
    for acts in deps:
        offsets.append(total)
        total += len(acts)
    idx = [0] * len(deps)
    waiting: dict[int, list[int]] = {}
    heap: list[tuple[int, int, int]] = []

    def advance(p: int, now: int) -> None:
        if idx[p] >= len(deps[p]):
            return
        cost, preds = deps[p][idx[p]]
        for q in preds:
            if q not in ends:
                waiting.setdefault(q, []).append(p)
                return
        heapq.heappush(heap, (now + cost, p, offsets[p] + idx[p]))

    for p in range(len(deps)):
        advance(p, 0)
    now = 0
    while heap:
        now, p, g = heapq.heappop(heap)
        ends[g] = now
        idx[p] += 1
        advance(p, now)
        for r in waiting.pop(g, ()):
            advance(r, now)
    return now


def simpy_events_floor(deps) -> int:
    """The same dependencies with one SimPy process per processor and one event per task."""
    env = simpy.Environment()
    offsets, total = [], 0
    for acts in deps:
        offsets.append(total)
        total += len(acts)
    done = [env.event() for _ in range(total)]

    def proc(p: int):
        for i, (cost, preds) in enumerate(deps[p]):
            for q in preds:
                if not done[q].triggered:
                    yield done[q]
            yield env.timeout(cost)
            done[offsets[p] + i].succeed()

    for p in range(len(deps)):
        env.process(proc(p))
    env.run()
    return int(env.now)


def engine_peak(schedule: Schedule, platform: Platform) -> int:
    ex = insert_transfers(validate(schedule))
    gc.collect()
    tracemalloc.start()
    simulate(ex, platform)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing, best kept (default 3)")
    ap.add_argument("--stages", type=int, default=64)
    ap.add_argument("--microbatches", type=int, default=512)
    ap.add_argument("--scale-stages", type=int, default=8, help="stages of the 10x scaling rows (default 8)")
    args = ap.parse_args(argv)
    rows = []

    p, m = args.stages, args.microbatches
    sched = build(p, m)
    plat = Platform.homogeneous(p, MacArray(1))
    ex = insert_transfers(validate(sched))
    (_, c_engine, res), (_, c_bare, n_bare) = best_of_pair(lambda: simulate(ex, plat), lambda: bare_simpy(sched, plat),
                                                         args.repeat)
    tasks = res.stats.tasks_run
    assert n_bare == tasks
    deps = dependencies(sched, plat)
    (_, c_heap, mk_heap), (_, c_events, mk_events) = best_of_pair(lambda: heapq_floor(deps),
                                                                  lambda: simpy_events_floor(deps), args.repeat)
    assert mk_heap == mk_events == res.makespan, (mk_heap, mk_events, res.makespan)  # the same dependencies
    w_total, c_total, res_total = best(lambda: simulate(sched, plat), args.repeat)
    rows.append({"measure": f"engine, {p} x {m} (trace off)", "value": f"{tasks / c_engine:,.0f} tasks/s",
                 "detail": f"{tasks:,} tasks in {c_engine:.3f} s CPU; exact: {res.stats.exact}", "target": "",
                 "ok": ""})
    for label, c, target in (("heapq loop, same dependencies", c_heap, 0.5),
                             ("SimPy events, same dependencies", c_events, None),
                             ("SimPy timeouts only (no dependencies)", c_bare, None)):
        rows.append({"measure": label, "value": f"{tasks / c:,.0f} tasks/s",
                     "detail": f"{c:.3f} s CPU; the engine runs {c / c_engine:.0%} of this rate",
                     "target": f">= {target:.0%}" if target else "(info)",
                     "ok": ("yes" if c / c_engine >= target else "NO") if target else ""})
    (_, c_passes, _), (_, c_engine2, _) = best_of_pair(lambda: insert_transfers(validate(sched)),
                                                       lambda: simulate(ex, plat), args.repeat)
    rows.append({"measure": "validate + insert_transfers / engine", "value": f"{c_passes / c_engine2:.2f}",
                 "detail": f"{c_passes:.3f} s against {c_engine2:.3f} s CPU", "target": "<= 0.5",
                 "ok": "yes" if c_passes <= 0.5 * c_engine2 else "NO"})
    rows.append({"measure": f"simulate {p} x {m} incl. passes", "value": f"{w_total:.3f} s",
                 "detail": f"{c_total:.3f} s CPU; makespan {res_total.makespan:,} cycles", "target": "< 2 s",
                 "ok": "yes" if w_total < 2 else "NO"})

    q = args.scale_stages
    small, big = build(q, m), build(q, 10 * m)
    plat_q = Platform.homogeneous(q, MacArray(1))
    ex_small, ex_big = insert_transfers(validate(small)), insert_transfers(validate(big))
    reps = max(args.repeat, 5)  # the small case takes ~20 ms: more runs to get its best
    (_, c_small, _), (_, c_big, _) = best_of_pair(lambda: simulate(ex_small, plat_q), lambda: simulate(ex_big, plat_q), reps)
    (_, cc_small, _), (_, cc_big, _) = best_of_pair(lambda: simulate(small, plat_q), lambda: simulate(big, plat_q),
                                                    args.repeat)
    rows.append({"measure": f"engine {q} x {m} -> {q} x {10 * m}", "value": f"{c_big / c_small:.1f}x",
                 "detail": f"{c_small:.3f} s -> {c_big:.3f} s CPU", "target": "<= 11x",
                 "ok": "yes" if c_big / c_small <= 11 else "NO"})
    rows.append({"measure": "  same, incl. validate + transfers", "value": f"{cc_big / cc_small:.1f}x",
                 "detail": f"{cc_small:.3f} s -> {cc_big:.3f} s CPU", "target": "(info)", "ok": ""})
    peak_small, peak_big = engine_peak(small, plat_q), engine_peak(big, plat_q)
    rows.append({"measure": f"engine tracemalloc peak {q} x {m} -> {10 * m}",
                 "value": f"{peak_small / 1024:,.0f} -> {peak_big / 1024:,.0f} KiB",
                 "detail": f"x{peak_big / peak_small:.2f}", "target": "no growth",
                 "ok": "yes" if peak_big <= 1.1 * peak_small else "NO"})

    linked = build(q, m, act_bytes=64)
    plat_l = Platform.homogeneous(q, MacArray(1), LinkModel(2, 64.0))
    ex_l = insert_transfers(validate(linked))
    _, c_l, res_l = best(lambda: simulate(ex_l, plat_l), args.repeat)
    rows.append({"measure": f"engine {q} x {m}, link 2 + 64 B/cycle", "value": f"{res_l.stats.tasks_run / c_l:,.0f} tasks/s",
                 "detail": f"{c_l:.3f} s CPU, transfers are processes", "target": "(info)", "ok": ""})

    print(f"python {sys.version.split()[0]}, simpy {simpy.__version__}; 1F1B with B/W split, F={F} B={B} W={W}; "
          f"best of {args.repeat}")
    print(format_table(rows, ["measure", "value", "detail", "target", "ok"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
