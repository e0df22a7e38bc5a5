"""Lower bounds: hand-worked cases, an exact maximum cycle ratio, and achieved >= bound."""

import itertools
import random
from fractions import Fraction

import networkx as nx
import pytest
from netcases import runnable

from models.errors import LayerPipeError
from models.graph.synthetic import uniform_pipeline_graph
from models.graph.tasks import LayerInfo
from models.graph.work import TaskWork
from models.network.zoo import get_network
from schedules.planning.orders import gpipe_orders, one_f_one_b_orders
from schedules.schedule import Schedule, parse_orders
from simulator.bounds import lower_bounds, max_cycle_ratio
from simulator.costs import LinkModel, MacArray
from simulator.engine import simulate
from simulator.platform import Platform

ONE = Platform.homogeneous(1, MacArray(1))


def stage_graph(F, B):
    p = len(F)
    g = nx.DiGraph(network="stages", num_layers=p)
    g.graph["layers"] = {s: LayerInfo(s, f"s{s}", "synthetic", 0, 0, 0, 0, 0, ()) for s in range(1, p + 1)}
    for s in range(1, p + 1):
        g.add_node(("F", s), kind="F", layer=s, layers=(s,), work=TaskWork(fixed_cycles=F[s - 1]))
        g.add_node(("B", s), kind="B", layer=s, layers=(s,), work=TaskWork(fixed_cycles=B[s - 1]))
        g.add_edge(("F", s), ("B", s))
        if s > 1:
            g.add_edge(("F", s - 1), ("F", s))
            g.add_edge(("B", s), ("B", s - 1))
    return g


def bounds_of(graph, delays=None, m=1, orders=None, platform=None):
    if orders is None:
        orders = {0: [a for k in ("F", "B") for a in parse_orders(
            "P0: " + " ".join(f"{k}{l}.0" for l in sorted({n[1] for n in graph})))[0]]}
    s = Schedule("b", graph, orders, delays=delays or {}, microbatches_per_step=m)
    return lower_bounds(s, platform or Platform.homogeneous(len(orders), MacArray(1)))


# --------------------------------------------------------------------------- max cycle ratio


def test_two_cycles_known_by_hand():
    # cycle a->b->a: (3 + 4) / (1 + 2) = 7/3; self-loop on b: 5/2; cycle a->c->a: (1 + 1) / 1 = 2
    edges = [("a", "b", 3, 1), ("b", "a", 4, 2), ("b", "b", 5, 2), ("a", "c", 1, 1), ("c", "a", 1, 0)]
    ratio, cycle = max_cycle_ratio("abc", edges)
    assert ratio == Fraction(5, 2) and cycle == [("b", "b", 5, 2)]
    edges[2] = ("b", "b", 4, 2)  # now the two-node cycle wins
    ratio, cycle = max_cycle_ratio("abc", edges)
    assert ratio == Fraction(7, 3) and sorted(cycle) == [("a", "b", 3, 1), ("b", "a", 4, 2)]


@pytest.mark.parametrize("w", [6004799503160662, 6004799503160660])
def test_exact_where_floats_tie(w):
    """A self-loop of ratio 1/3 and, in the same component, a cycle one float ulp away from it."""
    d = 2 ** 54  # float(1/3) == 6004799503160661 / 2**54 exactly
    edges = [(0, 0, 1, 3), (0, 1, w // 2, d // 2), (1, 0, w - w // 2, d // 2)]
    ratio, cycle = max_cycle_ratio(range(2), edges)
    assert ratio == max(Fraction(1, 3), Fraction(w, d))
    assert Fraction(sum(e[2] for e in cycle), sum(e[3] for e in cycle)) == ratio


def test_no_cycle_and_zero_delay_cycle():
    assert max_cycle_ratio("ab", [("a", "b", 5, 1)]) == (Fraction(0), [])
    with pytest.raises(LayerPipeError, match="no delay"):
        max_cycle_ratio("ab", [("a", "b", 1, 0), ("b", "a", 1, 0)])


def test_matches_brute_force_on_random_graphs():
    rng = random.Random(7)
    for _ in range(150):
        n = rng.randint(1, 6)
        edges = [(rng.randrange(n), rng.randrange(n), rng.randint(0, 40), rng.randint(1, 5))
                 for _ in range(rng.randint(1, 14))]
        simple = nx.DiGraph((u, v) for u, v, _, _ in edges)
        best = Fraction(0)
        for cyc in nx.simple_cycles(simple):
            hops = list(zip(cyc, cyc[1:] + cyc[:1]))
            for combo in itertools.product(*[[e for e in edges if e[:2] == h] for h in hops]):
                best = max(best, Fraction(sum(e[2] for e in combo), sum(e[3] for e in combo)))
        ratio, cycle = max_cycle_ratio(range(n), edges)
        assert ratio == best
        if cycle:
            assert Fraction(sum(e[2] for e in cycle), sum(e[3] for e in cycle)) == ratio
            assert all(a[1] == b[0] for a, b in zip(cycle, cycle[1:] + cycle[:1]))


# --------------------------------------------------------------------------- training graphs


def test_two_layer_chain_delay_halves_the_bound():
    f, b = 3, 5
    g = uniform_pipeline_graph(2, f, b, 0, split_backward=False)
    assert bounds_of(g).iteration == 2 * f + 2 * b  # the whole chain, once per step
    halved = bounds_of(g, delays={1: 2})  # S(1) = 1: layer 1's loop spans two steps
    assert halved.iteration == f + b and halved.iteration * 2 == 2 * f + 2 * b


@pytest.mark.parametrize("S,expect,loop", [((0, 0), 10, (1,)), ((1, 0), 7, (2,)), ((1, 1), 5, (1,)),
                                           ((2, 0), 7, (2,)), ((3, 3), Fraction(10, 4), (1,))])
def test_two_layer_loops_compete(S, expect, loop):
    """F = (2, 1), B = (1, 6): loop of layer 1 is F1 F2 B2 B1 = 10, of layer 2 is F2 B2 = 7,
    the cross cycle 1 -> 2 -> 1 is (F1 F2 B2) + (F2 B2 B1) = 9 + 8 = 17 over 2 + S1 + S2."""
    g = stage_graph([2, 1], [1, 6])
    b = bounds_of(g, delays={1: 2 * S[0], 2: 2 * S[1]})
    assert b.iteration == expect and b.critical_loop == loop
    assert b.iteration == max(Fraction(10, 1 + S[0]), Fraction(7, 1 + S[1]), Fraction(17, 2 + S[0] + S[1]))
    # on one processor the work (F1 F2 B2 B1 = 10) binds however long the loops; its name says so
    assert b.binding == ("work / 1" if b.work >= b.iteration else f"delays: loop through layer {loop[0]}")


def test_work_and_largest_task_bounds():
    g = stage_graph([2, 1, 4], [3, 6, 2])
    orders = {p: parse_orders(f"P0: F{p + 1}.0 B{p + 1}.0")[0] for p in range(3)}
    b = bounds_of(g, orders=orders)
    assert b.work == Fraction(18, 3) and b.largest_task == 6 and b.largest == ("B", 2)
    assert b.iteration == 18 and b.binding.startswith("delays: loop")  # no delays: the whole chain each step
    assert b.placement == 7  # stage 2's F + B
    fast = Platform.homogeneous(3, MacArray(1), speeds=[1.0, 2.0, 1.0])  # the fastest processor sets c(t)
    b = bounds_of(g, orders=orders, platform=fast)
    assert b.work == Fraction(1 + 1 + 2 + 2 + 3 + 1, 3) and b.largest_task == 3


def test_replicated_task_shares_its_processors():
    g = uniform_pipeline_graph(1, 8, 2, 0, split_backward=False)
    s = Schedule("rr", g, parse_orders("P0: F1.0 B1.0 F1.2 B1.2 ; P1: F1.1 B1.1 F1.3 B1.3"), delays={1: 2})
    b = lower_bounds(s, Platform.homogeneous(2, MacArray(1)))
    assert b.largest_task == 4 and b.work == 5  # F (8 cycles) alternates over 2 processors
    assert simulate(s, Platform.homogeneous(2, MacArray(1))).stats.cycles_per_step >= b.best


def test_gpipe_efficiency_is_its_bubble():
    """m micro-batches per step: the loop bound is one chain (m chains run side by side in the
    data-flow graph); work is m x the chain / p; achieved is (m + p - 1)(F + B + W)."""
    for p, m, F, B, W in [(4, 8, 1, 2, 1), (4, 2, 1, 1, 1), (3, 3, 2, 2, 2)]:
        g = uniform_pipeline_graph(p, F, B, W, split_backward=False)
        s = Schedule("gpipe", g, gpipe_orders(p, m, split_w=False), microbatches_per_step=m)
        plat = Platform.homogeneous(p, MacArray(1))
        b = lower_bounds(s, plat)
        assert b.work == m * (F + B + W) and b.iteration == p * (F + B + W) and b.largest_task == m * (B + W)
        assert b.binding == (f"work / {p}" if m >= p else "delays: loop through layer 1")  # m >= p: work binds
        achieved = simulate(s, plat).stats.cycles_per_step
        assert achieved == (m + p - 1) * (F + B + W)
        assert b.efficiency(achieved) == pytest.approx(max(m, p) / (m + p - 1))


# --------------------------------------------------------------------------- achieved >= bounds

GOLDEN = [(4, 8, 1, 2, 1), (4, 8, 2, 3, 1), (3, 6, 3, 3, 2), (5, 10, 1, 1, 1), (2, 2, 1, 1, 1),
          (4, 4, 2, 2, 1), (1, 3, 1, 1, 1), (4, 2, 1, 1, 1), (8, 16, 3, 5, 2)]


@pytest.mark.parametrize("p,m,F,B,W", GOLDEN)
def test_golden_cases_respect_every_bound(p, m, F, B, W):
    plat = Platform.homogeneous(p, MacArray(1))
    split = uniform_pipeline_graph(p, F, B, W)
    fused = uniform_pipeline_graph(p, F, B, W, split_backward=False)
    cases = [(fused, one_f_one_b_orders(p, m, split_w=False)), (fused, gpipe_orders(p, m, split_w=False)),
             (split, one_f_one_b_orders(p, m, defer_w=True)), (split, one_f_one_b_orders(p, m, steps=3))]
    for graph, orders in cases:
        s = Schedule("golden", graph, orders, microbatches_per_step=m)
        b = lower_bounds(s, plat)
        achieved = simulate(s, plat).stats.cycles_per_step
        assert achieved >= b.work and achieved >= b.largest_task and achieved >= b.iteration
        assert achieved >= b.placement


def registry_results():
    from schedules.registry import SCHEDULES, build_schedule
    out = []
    for net, P in (("mlp", 3), ("lenet5", 4)):
        plat = Platform.homogeneous(P, MacArray(64), LinkModel(10, 32.0))
        for name in SCHEDULES:
            network, batch = runnable(name, get_network(net), P, 4)
            s = build_schedule(name, network, plat, minibatches=24, batch=batch)
            out.append((f"{network.name}-{name}", s, plat))
    return out


@pytest.mark.parametrize("case", registry_results(), ids=lambda c: c[0])
def test_training_graphs_respect_every_bound(case):
    _, s, plat = case
    r = simulate(s, plat)
    b = lower_bounds(s, plat)
    st = r.stats
    steps = st.units // s.microbatches_per_step
    # whole run, exact: P processors did all the work; the critical loop went round floor(steps / D) times
    assert st.makespan >= steps * b.work and st.makespan >= steps * b.largest_task
    assert st.makespan >= steps * b.placement
    if b.critical_loop:
        delay = sum(1 + s.rule.staleness(k) for k in b.critical_loop)
        assert st.makespan >= (steps // delay) * delay * b.iteration
    # steady state: the measured window is a whole number of the schedule's periods for these
    if s.name in ("sequential", "pipedream", "gpipe", "1f1b", "zb-h1", "zb-h2", "interleaved-1f1b", "zb-v"):
        assert st.cycles_per_step >= b.best and st.cycles_per_step >= b.placement
    assert 0 < b.efficiency(st.cycles_per_step) <= 1.0 + 1e-9 or s.name.startswith("layerpipe")
