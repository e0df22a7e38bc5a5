"""Golden makespans of docs/design.md section 9: closed forms any correct engine must reproduce.

Uniform per-stage costs F, B, W, p stages, m micro-batches, no communication cost
(Qi et al., ICLR 2024, section 2): 1F1B and GPipe run backward as one task of B + W;
ZB-H1 splits W off and defers it, with at most p micro-batches in flight.
"""

import pytest

from models.graph.synthetic import uniform_pipeline_graph
from schedules.planning.orders import gpipe_orders, one_f_one_b_orders
from schedules.schedule import Schedule
from simulator.costs import MacArray
from simulator.engine import simulate
from simulator.platform import Platform

CASES = [(4, 8, 1, 2, 1), (4, 8, 2, 3, 1), (3, 6, 3, 3, 2), (5, 10, 1, 1, 1), (2, 2, 1, 1, 1),
         (4, 4, 2, 2, 1), (1, 3, 1, 1, 1), (4, 2, 1, 1, 1), (8, 16, 3, 5, 2)]


def run(graph, orders, p, m):
    return simulate(Schedule("golden", graph, orders, microbatches_per_step=m), Platform.homogeneous(p, MacArray(1)))


@pytest.mark.parametrize("p,m,F,B,W", CASES)
def test_1f1b_makespan(p, m, F, B, W):
    g = uniform_pipeline_graph(p, F, B, W, split_backward=False)
    assert run(g, one_f_one_b_orders(p, m, split_w=False), p, m).makespan == m * (F + B + W) + (p - 1) * (F + B + W)


@pytest.mark.parametrize("p,m,F,B,W", CASES)
def test_gpipe_makespan(p, m, F, B, W):
    g = uniform_pipeline_graph(p, F, B, W, split_backward=False)
    assert run(g, gpipe_orders(p, m, split_w=False), p, m).makespan == (m + p - 1) * (F + B + W)


@pytest.mark.parametrize("p,m,F,B,W", [c for c in CASES if c[1] >= c[0]])
def test_zbh1_makespan(p, m, F, B, W):
    g = uniform_pipeline_graph(p, F, B, W)
    assert run(g, one_f_one_b_orders(p, m, defer_w=True), p, m).makespan == m * (F + B + W) + (p - 1) * (F + B - W)


@pytest.mark.parametrize("p,m", [(4, 8), (3, 3)])
def test_zbh1_keeps_1f1b_memory(p, m):
    """ZB-H1 admits no more forwards ahead of backwards than 1F1B: stage s (0-based) at most p - s."""
    for s, actions in one_f_one_b_orders(p, m, defer_w=True).items():
        in_flight = peak = 0
        for a in actions:
            in_flight += {"F": 1, "B": -1}.get(a.kind, 0)
            peak = max(peak, in_flight)
        assert peak == min(p - s, m)


def test_one_processor_is_sum_of_work():
    g = uniform_pipeline_graph(1, 3, 4, 5)
    r = run(g, one_f_one_b_orders(1, 6), 1, 6)
    assert r.makespan == 6 * (3 + 4 + 5)
