"""The stage planner against brute force: every contiguous partition, every replica count.

The brute force here states PipeDream's objective from its released code
(msr-fiddle/pipedream, optimizer/optimizer_graph_hierarchical.py) independently of the
dynamic program: a plan's time is the largest of

* every stage's (compute + 4 (r - 1) params / (bw r)) / r, r its replicas;
* every cut's cost divided by the replicas of the stage after it (its receiver), and, unless
  the stage before it is the first stage, by the replicas of that stage (its sender).
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from models.errors import ScheduleError
from schedules.planning.partition import plan_stages


def _compositions(L: int):
    """Every split of layers 1..L into contiguous stages, as lists of (first, last)."""
    for mask in range(1 << (L - 1)):
        cuts = [k for k in range(1, L) if mask >> (k - 1) & 1]
        edges = [0, *cuts, L]
        yield [(a + 1, b) for a, b in zip(edges[:-1], edges[1:])]


def pipedream_objective(stages, compute, boundary, params, bandwidth) -> float:
    """The plan's time as PipeDream's code computes it (module docstring); stages are (a, b, r)."""
    worst = 0.0
    for a, b, r in stages:
        work = sum(compute[a - 1:b])
        sync = 4 * (r - 1) * sum(params[a - 1:b]) / (bandwidth * r) if r > 1 else 0.0
        worst = max(worst, (work + sync) / r)
    for s in range(1, len(stages)):
        cut = boundary[stages[s - 1][1] - 1]
        worst = max(worst, cut / stages[s][2])  # the receiver
        if s - 1 > 0:
            worst = max(worst, cut / stages[s - 1][2])  # the sender, unless it is the first stage
    return worst


def stage_memory(stages, s, params, stash, P, versions=None) -> float:
    """PipeDream's memory constraint as partition.py states it: stage s keeps f = ceil(a / r) + 1
    minibatches in flight (a: processors after it, assuming all P are used), f weight versions
    and f stashes, and a momentum and a gradient buffer; with per-layer ``versions``, layer l
    keeps v_l versions and stashes whatever the plan."""
    a, b, r = stages[s]
    w = sum(params[a - 1:b])
    if versions is not None:
        return sum(versions[l - 1] * (params[l - 1] + stash[l - 1]) for l in range(a, b + 1)) + 2 * w
    used = sum(x[2] for x in stages[: s + 1])
    f = math.ceil((P - used) / r) + 1
    return f * (w + sum(stash[a - 1:b])) + 2 * w


def brute_force(compute, P, boundary, params=None, bandwidth=math.inf, replicate=False, stash=None,
                memory_limit=None, versions=None) -> float:
    L = len(compute)
    params = params or [0] * L
    stash = stash or [0] * L
    best = math.inf
    for parts in _compositions(L):
        if len(parts) > P:
            continue
        counts = itertools.product(range(1, P + 1), repeat=len(parts)) if replicate else [(1,) * len(parts)]
        for reps in counts:
            if sum(reps) > P:
                continue
            stages = [(a, b, r) for (a, b), r in zip(parts, reps)]
            if memory_limit is not None and any(stage_memory(stages, s, params, stash, P, versions) > memory_limit
                                                for s in range(len(stages))):
                continue
            best = min(best, pipedream_objective(stages, compute, boundary, params, bandwidth))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_straight_plans_match_brute_force(seed):
    rng = random.Random(seed)
    L, P = rng.randint(1, 9), rng.randint(1, 6)
    compute = [rng.randint(0, 100) for _ in range(L)]
    boundary = [rng.randint(0, 60) for _ in range(L - 1)]
    plan = plan_stages(compute, P, boundary=boundary)
    assert plan.bottleneck == brute_force(compute, P, boundary)
    # the plan is a real partition: contiguous, covering 1..L, at most P stages, and its time is its own
    flat = [l for a, b, _ in plan.stages for l in range(a, b + 1)]
    assert flat == list(range(1, L + 1)) and len(plan.stages) <= P
    assert plan.bottleneck == pipedream_objective(plan.stages, compute, boundary, [0] * L, math.inf)


@pytest.mark.parametrize("seed", range(60))
def test_replicated_plans_with_a_binding_link_match_brute_force(seed):
    """Small chains where replication pays and the cuts bind: the cut rule decides the plan."""
    rng = random.Random(1000 + seed)
    L, P = rng.randint(2, 5), rng.randint(2, 5)
    compute = [rng.randint(20, 200) for _ in range(L)]
    boundary = [rng.randint(30, 300) for _ in range(L - 1)]  # comparable to the stages: binding
    params = [rng.randint(0, 40) for _ in range(L)]
    bandwidth = rng.choice([1.0, 4.0, 16.0])
    plan = plan_stages(compute, P, boundary=boundary, param_bytes=params, bandwidth=bandwidth, replicate=True)
    expected = brute_force(compute, P, boundary, params, bandwidth, replicate=True)
    assert plan.bottleneck == pytest.approx(expected, rel=1e-12)
    assert plan.bottleneck == pytest.approx(pipedream_objective(plan.stages, compute, boundary, params, bandwidth),
                                            rel=1e-12)
    assert plan.processors_used <= P


@pytest.mark.parametrize("seed", range(40))
def test_memory_constrained_plans_match_brute_force(seed):
    rng = random.Random(5000 + seed)
    L, P = rng.randint(2, 5), rng.randint(2, 5)
    compute = [rng.randint(20, 200) for _ in range(L)]
    boundary = [rng.randint(0, 100) for _ in range(L - 1)]
    params = [rng.randint(0, 50) for _ in range(L)]
    stash = [rng.randint(0, 30) for _ in range(L)]
    limit = rng.randint(60, 300)
    replicate = rng.random() < 0.5
    expected = brute_force(compute, P, boundary, params, 4.0, replicate, stash, limit)
    if expected == math.inf:
        with pytest.raises(ScheduleError, match="fits"):
            plan_stages(compute, P, boundary=boundary, param_bytes=params, bandwidth=4.0, replicate=replicate,
                        stash_bytes=stash, memory_limit=limit)
        return
    plan = plan_stages(compute, P, boundary=boundary, param_bytes=params, bandwidth=4.0, replicate=replicate,
                       stash_bytes=stash, memory_limit=limit)
    assert plan.bottleneck == pytest.approx(expected, rel=1e-12)
    assert all(stage_memory(plan.stages, s, params, stash, P) <= limit for s in range(len(plan.stages)))


@pytest.mark.parametrize("seed", range(30))
def test_plans_under_per_layer_delays_match_brute_force(seed):
    """The memory constraint with LayerPipe's versions, S(l) + 1 = L - l + 1 per layer."""
    rng = random.Random(7000 + seed)
    L, P = rng.randint(2, 5), rng.randint(2, 5)
    compute = [rng.randint(20, 200) for _ in range(L)]
    boundary = [rng.randint(0, 100) for _ in range(L - 1)]
    params = [rng.randint(0, 50) for _ in range(L)]
    stash = [rng.randint(0, 30) for _ in range(L)]
    versions = [L - l + 1 for l in range(1, L + 1)]
    limit = rng.randint(60, 400)
    replicate = rng.random() < 0.5
    run = dict(boundary=boundary, param_bytes=params, bandwidth=4.0, replicate=replicate, stash_bytes=stash,
               memory_limit=limit, versions=versions)
    expected = brute_force(compute, P, boundary, params, 4.0, replicate, stash, limit, versions)
    if expected == math.inf:
        with pytest.raises(ScheduleError, match="fits"):
            plan_stages(compute, P, **run)
        return
    plan = plan_stages(compute, P, **run)
    assert plan.bottleneck == pytest.approx(expected, rel=1e-12)
    assert all(stage_memory(plan.stages, s, params, stash, P, versions) <= limit for s in range(len(plan.stages)))


def test_the_cut_after_the_first_stage_is_charged_to_its_receiver_only():
    # a 120-cycle cut after the first stage: its receiver's replicas divide it, its sender's do not
    compute, boundary, none = [10, 10], [120], [0, 0]
    assert pipedream_objective(((1, 1, 1), (2, 2, 2)), compute, boundary, none, math.inf) == 60
    assert pipedream_objective(((1, 1, 2), (2, 2, 1)), compute, boundary, none, math.inf) == 120
    # and the planner, on 3 processors, puts the extra replica behind the cut, not before it
    plan = plan_stages([10, 10], 3, boundary=boundary, param_bytes=[0, 10**6], bandwidth=1.0, replicate=True)
    assert plan.bottleneck == brute_force([10, 10], 3, boundary, [0, 10**6], 1.0, replicate=True)


def test_a_cut_between_two_replicated_stages_costs_its_larger_share():
    # three stages; the middle cut sits between a sender replicated once and a receiver replicated twice
    stages = ((1, 1, 1), (2, 2, 1), (3, 3, 2))
    assert pipedream_objective(stages, [10, 10, 10], [0, 90], [0, 0, 0], math.inf) == 90  # 90 / 1 (sender)
    stages = ((1, 1, 1), (2, 2, 2), (3, 3, 1))
    assert pipedream_objective(stages, [10, 10, 10], [0, 90], [0, 0, 0], math.inf) == 90  # 90 / 1 (receiver)
    stages = ((1, 1, 1), (2, 2, 2), (3, 3, 2))
    assert pipedream_objective(stages, [10, 10, 10], [0, 90], [0, 0, 0], math.inf) == 45


def test_replication_follows_pipedream_formula():
    # one layer of 100 cycles, 2 replicas, 8 bytes of weights on a 1 byte/cycle link:
    # (100 + 4 * (2 - 1) * 8 / (1 * 2)) / 2 = 58
    plan = plan_stages([100], 2, param_bytes=[8], bandwidth=1.0, replicate=True)
    assert plan.stages == ((1, 1, 2),) and plan.bottleneck == 58


# --------------------------------------------------------------------------- offloading moves


def _full_estimate(template, placement, hw, processors, rule):
    """A move priced in full and independently: loads from scratch, and each layer's loop as the
    longest path F_l ~> U_l over networkx's descendants of F_l (node cycles, transfers on cut edges)."""
    import networkx as nx

    from models.graph.tasks import Task, TaskKind, edge_bytes, update_tasks

    proc = [0] * processors
    for n, p in placement.items():
        proc[p] += hw.cycles(template, n, p)
    link = {}
    for u, v in template.edges:
        if placement[u] != placement[v]:
            key = (placement[u], placement[v])
            link[key] = link.get(key, 0) + hw.transfer(edge_bytes(template, u, v))
    bound = 0.0
    for l, ups in update_tasks(template).items():
        start = Task(TaskKind.F, l)
        reach = nx.descendants(template, start) | {start}
        longest = {}
        for n in nx.topological_sort(template.subgraph(reach)):
            here = hw.cycles(template, n, placement[n])
            ins = [longest[u] + (hw.transfer(edge_bytes(template, u, n)) if placement[u] != placement[n] else 0)
                   for u in template.predecessors(n) if u in longest]
            longest[n] = here + max(ins, default=0)
        path = max((longest[u] for u in ups if u in longest), default=0)
        bound = max(bound, path / (1 + rule.staleness(l)))
    return max([*proc, *link.values(), bound])


@pytest.mark.parametrize("seed", range(6))
def test_offloading_candidates_equal_pricing_every_move_in_full(seed):
    """The incremental candidate list (loads updated from the placement's, recurrence bounds only
    where the loads leave room) is exactly the list of every single move priced in full."""
    from models.graph.build import training_graph
    from models.network.zoo import load_network
    from schedules.methods.layerpipe import MOVABLE, _targets, candidate_moves, initial_placement, plan_rule
    from schedules.planning.partition import plan_stages as dp
    from schedules.planning.stages import layer_costs
    from simulator.costs import LinkModel, MacArray
    from simulator.hardware import Hardware
    from simulator.platform import Platform

    rng = random.Random(seed)
    widths = [rng.choice([8, 16, 64, 200]) for _ in range(rng.randint(3, 7))]
    net = load_network("mlp:" + "-".join(map(str, widths)))
    P = rng.randint(2, 4)
    hw = Hardware.of(Platform.homogeneous(P, MacArray(rng.choice([16, 64])), LinkModel(rng.choice([0, 5, 50]), 8)))
    template = training_graph(net, rng.choice([4, 32]), view="layerpipe")
    plan = dp(layer_costs(template, hw), P)
    stale = {l: rng.randint(0, 3) for l in range(1, len(widths))}
    rule = plan_rule(plan, stale)
    placement = initial_placement(template, plan)
    for n in rng.sample(sorted(t for t in placement if t[0] == "WG"), 1):  # start from an offloaded placement
        placement[n] = rng.randrange(P)
    estimate = _full_estimate(template, placement, hw, P, rule)
    expected = []
    for n in sorted(t for t in placement if t[0] in MOVABLE):
        for q in _targets(template, placement, n, P):
            t = _full_estimate(template, {**placement, n: q}, hw, P, rule)
            if t < estimate:
                expected.append((t, n, q))
    got = candidate_moves(template, placement, hw, P, rule)
    assert [(n, q) for _, n, q in got] == [(n, q) for _, n, q in sorted(expected)]
    assert [t for t, _, _ in got] == pytest.approx([t for t, _, _ in sorted(expected)], rel=1e-12)


def test_list_scheduling_leaves_the_task_graph_as_it_was():
    """HEFT's ranks take their transfer costs as a mapping: list scheduling never writes to the
    caller's graph (it used to set an edge attribute for the ranks and remove it after), checked
    with edge data that refuse writes; every task instance is ordered once."""
    from models.graph.build import training_graph
    from models.network.zoo import get_network
    from schedules.delays import DelayRule
    from schedules.planning.listsched import list_orders

    class ReadOnly(dict):
        def _refuse(self, *args, **kwargs):
            raise AssertionError("list scheduling wrote to the caller's task graph")

        __setitem__ = __delitem__ = pop = popitem = update = setdefault = clear = _refuse

    graph = training_graph(get_network("mlp"), batch=8)
    for u, v in list(graph.edges):
        graph._succ[u][v] = graph._pred[v][u] = ReadOnly(graph._succ[u][v])  # one data dict, both views
    place = {t: (t.layer - 1) % 2 for t in graph}  # layers alternate between two processors
    orders = list_orders(graph, place, 6, cost=lambda t, p: 10, comm=lambda nbytes: 3, rule=DelayRule({1: 1, 2: 1}))
    ordered = sorted((a.kind, a.layer, a.unit) for acts in orders.values() for a in acts)
    assert ordered == sorted((t.kind, t.layer, u) for t in graph for u in range(6))
