"""The engine against hand-worked timings (docs/design.md section 9) and its own invariants.

Every simulation here runs with a trace that the independent checker verifies.
"""

import dataclasses
import math

import networkx as nx
import pytest
from netcases import runnable

from models.errors import DeadlockError
from models.graph.build import training_graph
from models.graph.synthetic import uniform_pipeline_graph
from models.graph.tasks import LayerInfo
from models.graph.work import TaskWork
from models.network.zoo import get_network
from schedules.methods.sequential import sequential
from schedules.passes import insert_transfers, validate
from schedules.planning.orders import one_f_one_b_orders
from schedules.schedule import Schedule, parse_orders
from simulator.checker import check_trace
from simulator.costs import FREE_LINK, LinkModel, MacArray
from simulator.engine import simulate
from simulator.platform import Platform
from simulator.trace import JsonlTrace, MemoryTrace, read_jsonl


def run(schedule, platform):
    trace = MemoryTrace()
    result = simulate(schedule, platform, trace=trace)
    check_trace(trace, schedule, platform)
    return result, trace


def stage_graph(F, B, act_bytes=0, param_bytes=0):
    """Stage-level template with unequal stages: F_s -> F_{s+1}, B_{s+1} -> B_s, F_s -> B_s."""
    p = len(F)
    g = nx.DiGraph(network="stages", batch=1, word_bytes=1, view="pipedream", num_layers=p)
    g.graph["layers"] = {s: LayerInfo(s, f"stage{s}", "synthetic", 0, param_bytes, act_bytes, act_bytes,
                                      2 * act_bytes, (s - 1,) if s > 1 else ()) for s in range(1, p + 1)}
    for s in range(1, p + 1):
        g.add_node(("F", s), kind="F", layer=s, layers=(s,), work=TaskWork(fixed_cycles=F[s - 1]))
        g.add_node(("B", s), kind="B", layer=s, layers=(s,), work=TaskWork(fixed_cycles=B[s - 1]))
        g.add_edge(("F", s), ("B", s), bytes=act_bytes, tensor=("in", s))
        if s > 1:
            g.add_edge(("F", s - 1), ("F", s), bytes=act_bytes, tensor=("a", s - 1))
            g.add_edge(("B", s), ("B", s - 1), bytes=act_bytes, tensor=("g", s, s - 1))
    return g


def pipedream(graph, p, units):
    """Asynchronous 1F1B, one unit per step, stage s (0-based) delayed 2(p-1-s) slots."""
    return Schedule("pipedream", graph, one_f_one_b_orders(p, units, split_w=False),
                    delays={s + 1: 2 * (p - 1 - s) for s in range(p)}, microbatches_per_step=1)


def in_flight_peak(trace, proc):
    """Most units whose forward started and whose backward has not ended on ``proc``."""
    events = []
    for t in trace.tasks:
        if t.proc == proc and t.kind == "F":
            events.append((t.start, 1))
        if t.proc == proc and t.kind == "B":
            events.append((t.end, -1))
    level = peak = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):
        level += d
        peak = max(peak, level)
    return peak


# --------------------------------------------------------------------------- PipeDream


@pytest.mark.parametrize("F,B", [([2, 3, 1, 2], [4, 5, 2, 3]), ([1, 1, 1], [2, 2, 2]), ([5, 1], [1, 1]),
                                 ([1, 2, 1, 1, 3], [1, 1, 6, 1, 1])])
def test_pipedream_steady_state_is_slowest_stage(F, B):
    p = len(F)
    s = pipedream(stage_graph(F, B), p, units=40)
    r, trace = run(s, Platform.homogeneous(p, MacArray(1)))
    assert r.stats.cycles_per_step == max(f + b for f, b in zip(F, B))
    assert s.versions() == {st + 1: p - st for st in range(p)}
    for st in range(p):  # stage s keeps p - s minibatches (hence weight versions) in flight
        assert in_flight_peak(trace, st) == p - st


def test_pipedream_uniform_stages_and_stash():
    p, F, B, act = 4, 3, 5, 10
    s = pipedream(stage_graph([F] * p, [B] * p, act_bytes=act), p, units=24)
    r, _ = run(s, Platform.homogeneous(p, MacArray(1)))
    assert r.stats.cycles_per_step == F + B
    # stage s stashes 2*act bytes for each of its p - s minibatches in flight
    assert r.stats.peak_stash_bytes == [(p - st) * 2 * act for st in range(p)]


def test_heterogeneous_speeds():
    F, B = [4, 3], [6, 5]
    s = pipedream(stage_graph(F, B), 2, units=30)
    plat = Platform.homogeneous(2, MacArray(1), speeds=[1.0, 0.5])  # P1 runs at half speed
    r, _ = run(s, plat)
    assert r.stats.cycles_per_step == max(F[0] + B[0], 2 * (F[1] + B[1]))
    plat = Platform.homogeneous(2, MacArray(1), speeds=[2.0, 1.0])  # P0 twice as fast
    r, _ = run(s, plat)
    assert r.stats.cycles_per_step == max(math.ceil(F[0] / 2) + math.ceil(B[0] / 2), F[1] + B[1])


# --------------------------------------------------------------------------- one processor


@pytest.mark.parametrize("net", ["mlp", "lenet5"])
def test_one_processor_is_sum_of_task_cycles(net):
    template = training_graph(get_network(net), batch=4)
    plat = Platform.homogeneous(1, MacArray(64))
    r, _ = run(sequential(template, units=5), plat)
    total = sum(plat.processors[0].task_cycles(d["work"]) for _, d in template.nodes(data=True))
    assert r.stats.cycles_per_step == total and r.makespan == 5 * total
    assert r.stats.window_busy == [r.stats.window[1] - r.stats.window[0]]  # never idle


# --------------------------------------------------------------------------- links


def two_stage_1f1b():
    g = uniform_pipeline_graph(2, f=2, b=3, w=0, act_bytes=8, split_backward=False)
    return Schedule("1f1b", g, one_f_one_b_orders(2, 2, split_w=False), microbatches_per_step=2)


def test_link_latency_and_bandwidth_by_hand():
    """Each transfer takes 3 + 8/4 = 5 cycles; one transfer at a time per link direction.

    P0: F1.0 [0,2] F1.1 [2,4]; a1.0 on 0->1 [2,7], a1.1 queues behind it [7,12]
    P1: F2.0 [7,9] B2.0 [9,12] F2.1 [12,14] B2.1 [14,17]; g2.0 on 1->0 [12,17], g2.1 [17,22]
    P0: B1.0 [17,20] B1.1 [22,25]
    """
    r, trace = run(two_stage_1f1b(), Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0)))
    got = {t.label: (t.start, t.end) for t in trace.tasks}
    assert got == {"F1.0": (0, 2), "F1.1": (2, 4), "F2.0": (7, 9), "B2.0": (9, 12), "F2.1": (12, 14),
                   "B2.1": (14, 17), "B1.0": (17, 20), "B1.1": (22, 25)}
    assert sorted((x.src, x.dst, x.start, x.end) for x in trace.transfers) == [
        (0, 1, 2, 7), (0, 1, 7, 12), (1, 0, 12, 17), (1, 0, 17, 22)]
    st = r.stats
    assert r.makespan == 25 and st.link_busy == {(0, 1): 10, (1, 0): 10} and st.bytes_moved == 32
    assert st.bytes_by_kind == {"activation": 16, "gradient": 16}
    # idle while data is in flight: P1 on a1.0 [2,7]; P0 on g2.0 [12,17] and on g2.1 [20,22]
    assert st.transfer_wait == [7, 5] and st.any_transfer_wait == 12


def test_no_overlap_blocks_the_sender():
    """overlap_comm=False: a processor is busy until what it sends has arrived.

    P0: F1.0 [0,2] send [2,7] F1.1 [7,9] send [9,14]; P1: F2.0 [7,9] B2.0 [9,12] send [12,17]
    F2.1 [17,19] B2.1 [19,22] send [22,27]; P0: B1.0 [17,20] B1.1 [27,30].
    """
    plat = Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0), overlap_comm=False)
    r, trace = run(two_stage_1f1b(), plat)
    got = {t.label: (t.start, t.end) for t in trace.tasks}
    assert got == {"F1.0": (0, 2), "F1.1": (7, 9), "F2.0": (7, 9), "B2.0": (9, 12), "F2.1": (17, 19),
                   "B2.1": (19, 22), "B1.0": (17, 20), "B1.1": (27, 30)}
    assert r.makespan == 30
    overlapped, _ = run(two_stage_1f1b(), Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0)))
    assert overlapped.makespan == 25 < r.makespan


def one_unit_on(p, a, b):
    """Stage 1 on processor a, stage 2 on processor b, every other processor idle."""
    g = uniform_pipeline_graph(2, f=2, b=3, w=0, act_bytes=8, split_backward=False)
    orders = {q: [] for q in range(p)}
    orders[a] = parse_orders("P0: F1.0 B1.0")[0]
    orders[b] = parse_orders("P0: F2.0 B2.0")[0]
    return Schedule("hops", g, orders)


@pytest.mark.parametrize("topology,p,a,b,hops", [("ring", 4, 0, 2, 2), ("mesh", 6, 0, 5, 3), ("full", 4, 0, 2, 1),
                                                  ("ring", 5, 1, 3, 2)])
def test_multi_hop_routes_store_and_forward(topology, p, a, b, hops):
    """Each hop costs 3 + 8/4 = 5 cycles: F1 [0,2], forward hops, F2, B2, backward hops, B1."""
    plat = Platform.homogeneous(p, MacArray(1), LinkModel(3, 4.0), topology=topology)
    assert len(plat.route(a, b)) == hops
    r, trace = run(one_unit_on(p, a, b), plat)
    got = {t.label: (t.start, t.end) for t in trace.tasks}
    h = 5 * hops
    assert got == {"F1.0": (0, 2), "F2.0": (2 + h, 4 + h), "B2.0": (4 + h, 7 + h), "B1.0": (7 + 2 * h, 10 + 2 * h)}
    assert len(trace.transfers) == 2 * hops and r.stats.bytes_moved == 16
    assert sum(r.stats.link_busy.values()) == 2 * h


def test_weights_cross_when_update_and_forward_are_apart():
    """The update of a layer on another processor sends the new weights to its forward."""
    g = uniform_pipeline_graph(1, f=2, b=3, w=1, param_bytes=8)
    s = Schedule("split", g, parse_orders("P0: F1.0 F1.1 ; P1: B1.0 W1.0 B1.1 W1.1"))
    plat = Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0))
    r, trace = run(s, plat)
    got = {t.label: (t.start, t.end) for t in trace.tasks}
    # F1.0 [0,2]; "in" (0 bytes) is free; B1.0 [2,5] W1.0 [5,6]; weights 1->0 [6,11]; F1.1 [11,13]
    assert got["F1.1"] == (11, 13) and r.stats.bytes_by_kind["weights"] == 16  # after each step's update
    assert [(x.what, x.src, x.dst, x.start, x.end) for x in trace.transfers][0] == ("weights", 1, 0, 6, 11)


# --------------------------------------------------------------------------- invariants


def registry_cases():
    from schedules.registry import SCHEDULES, build_schedule
    for name in SCHEDULES:
        net, batch = runnable(name, get_network("mlp"), 3, 4)
        for link in (FREE_LINK, LinkModel(20, 16.0)):
            plat = Platform.homogeneous(3, MacArray(64), link, topology="ring")
            # time_limit: the optimal schedule's solver (the other methods take no such option)
            yield name, build_schedule(name, net, plat, minibatches=6, batch=batch, time_limit=0.2), plat


@pytest.mark.parametrize("name,schedule,platform", list(registry_cases()),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_trace_off_equals_trace_on_and_runs_are_deterministic(name, schedule, platform):
    off = simulate(schedule, platform).stats
    on, trace = run(schedule, platform)
    assert dataclasses.asdict(off) == dataclasses.asdict(on.stats)
    _, again = run(schedule, platform)
    assert again.tasks == trace.tasks and again.transfers == trace.transfers
    if platform.link.is_free:
        assert on.stats.transfer_wait == [0.0] * schedule.processors and on.stats.any_transfer_wait == 0


@pytest.mark.parametrize("name", ["pipedream", "1f1b", "layerpipe"])
def test_callback_and_process_drivers_agree(name):
    """With free transfers the engine drives processors by callbacks; forcing processes changes nothing."""
    from schedules.registry import build_schedule
    plat = Platform.homogeneous(3, MacArray(64))
    ex = insert_transfers(validate(build_schedule(name, get_network("lenet5"), plat, minibatches=8,
                                                  batch=2)))
    fast_trace, slow_trace = MemoryTrace(), MemoryTrace()
    fast = simulate(ex, plat, trace=fast_trace, driver="callbacks")
    slow = simulate(ex, plat, trace=slow_trace, driver="processes")
    assert dataclasses.asdict(fast.stats) == dataclasses.asdict(slow.stats)
    assert sorted(fast_trace.tasks) == sorted(slow_trace.tasks)
    check_trace(fast_trace, ex.schedule, plat)


def test_jsonl_trace_round_trip(tmp_path):
    s = two_stage_1f1b()
    plat = Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0))
    path = tmp_path / "trace.jsonl"
    simulate(s, plat, trace=JsonlTrace(path))
    _, mem = run(s, plat)
    back = read_jsonl(path)
    assert back.tasks == mem.tasks and back.transfers == mem.transfers
    check_trace(back, s, plat)


def test_deadlock_names_blocked_task_and_what_it_waits_for():
    g = uniform_pipeline_graph(1, f=1, b=1, w=0, split_backward=False)
    s = Schedule("bad", g, parse_orders("P0: B1.0 F1.0"))
    with pytest.raises(DeadlockError) as exc:
        validate(s)
    assert "B1.0" in str(exc.value) and "F1.0" in str(exc.value)
    assert exc.value.task == ("B", 1, 0)
    for link in (FREE_LINK, LinkModel(1, 1.0)):  # both engine drivers detect it too
        with pytest.raises(DeadlockError, match=r"B1\.0 on P0 waits for F1\.0"):
            simulate(s, Platform.homogeneous(1, MacArray(1), link), check=False)


def test_deadlock_across_processors_and_delays():
    g = uniform_pipeline_graph(2, f=1, b=1, w=0, split_backward=False)
    s = Schedule("cross", g, parse_orders("P0: F1.0 B1.0 ; P1: B2.0 F2.0"))
    with pytest.raises(DeadlockError, match=r"B1\.0 on P0 can never start: it waits for B2\.0 on P1"):
        validate(s)
    # delay 0: unit 1's forward needs unit 0's update, which P0 only runs after it
    s = Schedule("sync", uniform_pipeline_graph(1, 1, 1, 0, split_backward=False), parse_orders("P0: F1.0 F1.1 B1.0 B1.1"))
    with pytest.raises(DeadlockError, match="weight update of layer 1"):
        validate(s)
    s2 = Schedule("async", s.graph, s.orders, delays={1: 2})  # one update of staleness allowed: fine
    r, _ = run(s2, Platform.homogeneous(1, MacArray(1)))
    assert r.makespan == 4


# --------------------------------------------------------------------------- metrics


def test_summarize_hand_example():
    from simulator.metrics import summarize
    r, _ = run(two_stage_1f1b(), Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0)))
    m = summarize(r, baseline_cycles=50)
    assert m.cycles_per_minibatch == 25 and m.total_cycles == 25 and m.steps == 1
    assert m.utilization == [10 / 25, 10 / 25] and m.mean_utilization == 0.4
    assert m.bytes_per_minibatch == 32 and m.link_busy_cycles == 20 and m.link_busy == {"0->1": 10, "1->0": 10}
    assert m.transfer_wait_fraction == 12 / 25
    assert m.sequential_cycles == 2 * (2 + 3 + 2 + 3) and m.speedup_vs_sequential == 20 / 25
    assert m.speedup_vs_baseline == 2.0
    assert m.lower_bound == max(20 / 2, 2 * 3, 10) and m.efficiency == m.lower_bound / 25


def test_memory_per_processor_pipedream():
    from simulator.metrics import summarize
    p, act, pb = 3, 10, 100
    s = pipedream(stage_graph([1] * p, [2] * p, act_bytes=act, param_bytes=pb), p, units=12)
    m = summarize(run(s, Platform.homogeneous(p, MacArray(1)))[0])
    for st, mem in enumerate(m.memory):
        assert mem.weights == (p - st) * pb  # stage s keeps p - s versions
        assert mem.optimizer == pb and mem.gradients == pb
        assert mem.stash_peak == (p - st) * 2 * act
        assert mem.total == (p - st) * (pb + 2 * act) + 2 * pb
    assert m.peak_memory_bytes == m.memory[0].total


def test_communication_overhead_and_json():
    from schedules.registry import build_schedule
    from simulator.metrics import communication_overhead, step_bytes, summarize
    from simulator.output import to_json
    plat = Platform.homogeneous(3, MacArray(64), LinkModel(20, 16.0))
    net = get_network("mlp")
    base = summarize(simulate(build_schedule("pipedream", net, plat, minibatches=32, batch=4), plat))
    lp = build_schedule("layerpipe", net, plat, minibatches=32, batch=4)
    m = summarize(simulate(lp, plat), baseline_cycles=base.cycles_per_minibatch, baseline_bytes=base.bytes_per_minibatch)
    assert m.step_bytes == step_bytes(lp) > 0
    assert m.communication_overhead == communication_overhead(m.bytes_per_minibatch, base.bytes_per_minibatch, m.step_bytes)
    assert base.steady_state == m.steady_state == "exact"
    assert m.speedup_vs_baseline == base.cycles_per_minibatch / m.cycles_per_minibatch
    short = summarize(simulate(build_schedule("layerpipe", net, plat, minibatches=8, batch=4), plat))
    assert short.steady_state == "not measured" and math.isnan(short.cycles_per_minibatch)  # never a guess
    assert '"bounds"' in to_json(m.to_dict()) and m.row()["schedule"] == "layerpipe"


def trace_cases():
    from schedules.registry import SCHEDULES
    for name in SCHEDULES:
        for link, topo in ((FREE_LINK, "full"), (LinkModel(10, 32.0), "ring"), (LinkModel(5, 8.0), "mesh")):
            yield name, link, topo


@pytest.mark.parametrize("name,link,topo", list(trace_cases()))
def test_metrics_from_trace_equal_streamed_figures(name, link, topo):
    from schedules.registry import build_schedule
    from simulator.metrics import memory_timeline, metrics_from_trace
    plat = Platform.homogeneous(4, MacArray(64), link, topology=topo)
    net, batch = runnable(name, get_network("lenet5"), 4, 2)
    s = build_schedule(name, net, plat, minibatches=8, batch=batch, time_limit=0.2)  # optimal's solver limit
    r, trace = run(s, plat)
    st, tm = r.stats, metrics_from_trace(trace, s)
    assert tm.makespan == st.makespan and tm.busy == st.busy
    assert tm.window == tuple(st.window) and tm.window_steps == st.window_steps
    assert tm.window_busy == st.window_busy and tm.cycles_per_step == st.cycles_per_step
    assert tm.bytes_moved == st.bytes_moved
    assert {k: v for k, v in tm.bytes_by_kind.items() if v} == {k: v for k, v in st.bytes_by_kind.items() if v}
    assert tm.link_busy == st.link_busy and tm.peak_stash_bytes == st.peak_stash_bytes
    timeline = memory_timeline(trace, s, static=False)
    assert all(points[0][0] == 0 and all(b >= 0 for _, b in points) for points in timeline.values())
    assert [max(b for _, b in timeline[p]) for p in range(s.processors)] == st.peak_stash_bytes
