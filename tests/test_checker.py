"""The independent trace checker: silent on every correct run, loud on every corruption."""

import pytest
from netcases import runnable

from models.errors import ScheduleError
from models.graph.synthetic import uniform_pipeline_graph
from models.network.zoo import get_network
from schedules.planning.orders import gpipe_orders, one_f_one_b_orders
from schedules.schedule import Schedule, parse_orders
from simulator.checker import check_trace, find_violations
from simulator.costs import FREE_LINK, LinkModel, MacArray, SystolicArray
from simulator.engine import simulate
from simulator.platform import Platform
from simulator.trace import MemoryTrace

GOLDEN = [(4, 8, 1, 2, 1), (4, 8, 2, 3, 1), (3, 6, 3, 3, 2), (5, 10, 1, 1, 1), (2, 2, 1, 1, 1),
          (4, 4, 2, 2, 1), (1, 3, 1, 1, 1), (4, 2, 1, 1, 1), (8, 16, 3, 5, 2)]


def traced(schedule, platform):
    trace = MemoryTrace()
    simulate(schedule, platform, trace=trace)
    return trace


def copy(trace):
    t = MemoryTrace()
    t.tasks, t.transfers = list(trace.tasks), list(trace.transfers)
    return t


def index(trace, label):
    return next(i for i, t in enumerate(trace.tasks) if t.label == label)


def shift(trace, label, start):
    """Move a task to start at ``start`` keeping its duration."""
    i = index(trace, label)
    t = trace.tasks[i]
    trace.tasks[i] = t._replace(start=start, end=start + t.end - t.start)


# --------------------------------------------------------------------------- correct runs


@pytest.mark.parametrize("p,m,F,B,W", GOLDEN)
def test_golden_traces_are_clean(p, m, F, B, W):
    for act, link in ((0, FREE_LINK), (8, LinkModel(2, 4.0))):
        plat = Platform.homogeneous(p, MacArray(1), link)
        split = uniform_pipeline_graph(p, F, B, W, act_bytes=act, param_bytes=act)
        fused = uniform_pipeline_graph(p, F, B, W, act_bytes=act, split_backward=False)
        for graph, orders in ((fused, one_f_one_b_orders(p, m, split_w=False)), (fused, gpipe_orders(p, m, split_w=False)),
                              (split, one_f_one_b_orders(p, m, defer_w=True, steps=2))):
            s = Schedule("golden", graph, orders, microbatches_per_step=m)
            assert find_violations(traced(s, plat), s, plat) == []


def training_cases():
    from schedules.registry import SCHEDULES
    for name in SCHEDULES:
        for link, topo, overlap in ((FREE_LINK, "full", True), (LinkModel(20, 8.0), "ring", True),
                                    (LinkModel(5, 64.0), "mesh", False)):
            yield name, link, topo, overlap


@pytest.mark.parametrize("name,link,topo,overlap", list(training_cases()))
def test_training_graph_traces_are_clean(name, link, topo, overlap):
    from schedules.registry import build_schedule
    plat = Platform.homogeneous(4, SystolicArray(8, 8), link, topology=topo, overlap_comm=overlap)
    net, batch = runnable(name, get_network("lenet5"), 4, 2)
    if name == "optimal" and not overlap:  # the solver's model has processors that send while they compute
        with pytest.raises(ScheduleError, match="no-overlap"):
            build_schedule(name, net, plat, minibatches=6, batch=batch, time_limit=1)
        return
    s = build_schedule(name, net, plat, minibatches=6, batch=batch, time_limit=0.2)  # the solver's limit: optimal's
    trace = traced(s, plat)
    assert find_violations(trace, s, plat) == []
    check_trace(trace, s, plat)


# --------------------------------------------------------------------------- corruptions


@pytest.fixture
def pipe():
    """2 stages, 1F1B, 2 micro-batches; transfers of 8 bytes take 3 + 2 = 5 cycles."""
    g = uniform_pipeline_graph(2, f=2, b=3, w=0, act_bytes=8, split_backward=False)
    s = Schedule("1f1b", g, one_f_one_b_orders(2, 2, split_w=False), microbatches_per_step=2)
    plat = Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0))
    trace = traced(s, plat)
    assert find_violations(trace, s, plat) == []
    return s, plat, trace


def test_catches_overlap(pipe):
    s, plat, trace = pipe
    bad = copy(trace)
    shift(bad, "F1.1", 1)  # F1.0 runs [0, 2]
    found = find_violations(bad, s, plat)
    assert any("F1.1 on P0 starts at 1 while F1.0 runs until 2" in v for v in found)


def test_catches_reordering(pipe):
    s, plat, trace = pipe
    bad = copy(trace)
    i, j = index(bad, "B1.0"), index(bad, "B1.1")  # swap their times: P0 runs B1.1 first
    a, b = bad.tasks[i], bad.tasks[j]
    bad.tasks[i], bad.tasks[j] = a._replace(start=b.start, end=b.end), b._replace(start=a.start, end=a.end)
    found = find_violations(bad, s, plat)
    assert any("P0 ran B1.1 as its 3rd task, but its orders put B1.0 there" in v for v in found)


def test_catches_missing_and_duplicated_tasks(pipe):
    s, plat, trace = pipe
    bad = copy(trace)
    del bad.tasks[index(bad, "B2.1")]
    assert any("B2.1 never ran" in v for v in find_violations(bad, s, plat))
    bad = copy(trace)
    bad.tasks.append(bad.tasks[index(bad, "F2.0")])
    assert any("F2.0 ran 2 times" in v for v in find_violations(bad, s, plat))
    bad = copy(trace)
    bad.tasks.append(bad.tasks[0]._replace(kind="W"))
    assert any("W1.0 ran on P0, but the schedule has no such task" in v for v in find_violations(bad, s, plat))


def test_catches_early_start(pipe):
    s, plat, trace = pipe
    bad = copy(trace)
    shift(bad, "F2.0", 1)  # F1.0 ends at 2 and its output arrives on P1 at 7
    found = find_violations(bad, s, plat)
    assert any("F2.0 starts at 1, before its input F1.0 ends at 2" in v for v in found)
    bad = copy(trace)
    shift(bad, "F2.0", 5)  # after F1.0, but before the transfer arrives at 7
    found = find_violations(bad, s, plat)
    assert found and all("F1.0" in v for v in found)
    assert any("F2.0 starts at 5, before a1 from F1.0 arrives on P1 at 7" in v for v in found)


def test_catches_wrong_processor_and_duration(pipe):
    s, plat, trace = pipe
    bad = copy(trace)
    i = index(bad, "B2.0")
    bad.tasks[i] = bad.tasks[i]._replace(proc=0)
    assert any("B2.0 ran on P0, but the orders place it on P1" in v for v in find_violations(bad, s, plat))
    bad = copy(trace)
    i = index(bad, "B1.1")
    bad.tasks[i] = bad.tasks[i]._replace(end=bad.tasks[i].end + 1)
    assert any("B1.1 on P0 took 4 cycles, but the cost model gives 3" in v for v in find_violations(bad, s, plat))


def test_catches_transfer_faults(pipe):
    s, plat, trace = pipe
    link01 = [i for i, x in enumerate(trace.transfers) if (x.src, x.dst) == (0, 1)]
    bad = copy(trace)
    x = bad.transfers[link01[1]]
    bad.transfers[link01[1]] = x._replace(start=x.start - 2, end=x.end - 2)  # overlaps the first on 0->1
    found = find_violations(bad, s, plat)
    assert any("link P0->P1 carries" in v for v in found)
    bad = copy(trace)
    del bad.transfers[link01[0]]
    found = find_violations(bad, s, plat)
    assert any("F2.0 on P1 reads a1 (8 bytes) from F1.0 on P0, but no chain of transfers" in v for v in found)
    bad = copy(trace)
    x = bad.transfers[link01[0]]
    bad.transfers[link01[0]] = x._replace(end=x.end - 1)
    assert any("the link model gives 5 for 8 bytes" in v for v in find_violations(bad, s, plat))


def test_catches_delay_violation():
    """Layer 1 is updated on P1 (B, W) and read on P0: F1.1 needs the step-0 update."""
    g = uniform_pipeline_graph(1, f=2, b=3, w=1)
    s = Schedule("split", g, parse_orders("P0: F1.0 F1.1 ; P1: B1.0 W1.0 B1.1 W1.1"))
    plat = Platform.homogeneous(2, MacArray(1))
    trace = traced(s, plat)
    assert find_violations(trace, s, plat) == []
    bad = copy(trace)
    shift(bad, "F1.1", 2)  # W1.0 ends at 6
    found = find_violations(bad, s, plat)
    assert any(v.startswith("F1.1 starts at 2, before the round-0 update of layer 1 ends (W1.0 at 6)") for v in found)
    s2 = Schedule("stale", g, s.orders, delays={1: 2})  # with one step of staleness the same start is legal
    assert not any("update" in v for v in find_violations(bad, s2, plat))


def test_catches_weights_that_never_arrive():
    g = uniform_pipeline_graph(1, f=2, b=3, w=1, param_bytes=8)
    s = Schedule("split", g, parse_orders("P0: F1.0 F1.1 ; P1: B1.0 W1.0 B1.1 W1.1"))
    plat = Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0))
    trace = traced(s, plat)
    assert find_violations(trace, s, plat) == []
    bad = copy(trace)
    shift(bad, "F1.1", 8)  # the weights leave P1 at 6 and arrive at 11
    assert any("before layer 1's step-0 weights arrive on P0 at 11" in v for v in find_violations(bad, s, plat))


def test_catches_sender_running_while_sending_without_overlap():
    g = uniform_pipeline_graph(2, f=2, b=3, w=0, act_bytes=8, split_backward=False)
    s = Schedule("1f1b", g, one_f_one_b_orders(2, 2, split_w=False), microbatches_per_step=2)
    plat = Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0), overlap_comm=False)
    trace = traced(s, plat)
    assert find_violations(trace, s, plat) == []
    overlapped = traced(s, Platform.homogeneous(2, MacArray(1), LinkModel(3, 4.0)))
    found = find_violations(overlapped, s, plat)  # the overlapped run breaks the no-overlap rule
    assert any("before the transfers F1.0 sent have left at 7 (overlap_comm is off)" in v for v in found)


def test_check_trace_raises_with_the_first_violations(pipe):
    s, plat, trace = pipe
    check_trace(trace, s, plat)
    bad = copy(trace)
    del bad.tasks[0]
    with pytest.raises(ScheduleError, match="F1.0 never ran"):
        check_trace(bad, s, plat)
    assert len(find_violations(bad, s, plat, limit=1)) == 1
