"""Interleaved 1F1B, ZB-H2 and ZB-V against independent truths.

* Orders: the per-rank orders the reference implementations emit, written out by hand from
  their rules (Megatron-LM ``forward_backward_pipelining_with_interleaving`` with its default
  group size; PyTorch ``ScheduleZBVZeroBubble``; the zero-bubble authors' ``get_hand_schedule``
  in ``efficiency.py``). Reference labels are ``<0-based stage><kind><micro-batch>``; their
  ``I`` (input gradient) is our B.
* Closed forms with uniform costs and free links: interleaved 1F1B's step is
  ``v m (f + b) + (p - 1)(f + b)`` per-chunk costs (Narayanan et al., SC 2021); ZB-H2's longest
  stage span is ``m (F + B + W) + (p - 1)(F + B - 2W)`` (Qi et al., ICLR 2024, Table 2); ZB-V's
  per-processor span is ``6 m t + 2 max(0, 2p - 1 - m) t`` for F = B = W = t.
* Memory: ZB-H2 keeps 2p - 1 micro-batches in flight on the first stage, 1F1B and ZB-H1 p.
"""

import math
import re

import pytest

from models.graph.synthetic import uniform_pipeline_graph
from models.network.uniform import uniform_network
from schedules.planning.chunks import interleaved_orders, v_placement, zbv_orders
from schedules.planning.orders import one_f_one_b_orders
from schedules.registry import METHODS, default_schedules
from schedules.schedule import Schedule
from simulator.costs import MacArray
from simulator.costs.links import LinkModel
from simulator.engine import simulate
from simulator.evaluate import compare
from simulator.platform import Platform
from simulator.trace import MemoryTrace


def ours(reference: str) -> list[str]:
    """Reference labels -> our action text (stage + 1, I -> B)."""
    out = []
    for tok in reference.split():
        stage, kind, mb = re.fullmatch(r"(\d+)([FBIW])(\d+)", tok).groups()
        out.append(f"{'B' if kind == 'I' else kind}{int(stage) + 1}.{mb}")
    return out


def texts(orders) -> list[list[str]]:
    return [[str(a) for a in orders[p]] for p in sorted(orders)]


# Megatron's interleaved order, p = 4, v = 2, m = 8 (chunk c of rank r is stage c p + r)
INTERLEAVED_4_2_8 = [
    "0F0 0F1 0F2 0F3 4F0 4F1 4F2 4F3 0F4 0F5 0F6 4B0 0F7 4B1 4F4 4B2 4F5 4B3 4F6 0B0 4F7 0B1 0B2 0B3 4B4 4B5 4B6 4B7 "
    "0B4 0B5 0B6 0B7",
    "1F0 1F1 1F2 1F3 5F0 5F1 5F2 5F3 1F4 5B0 1F5 5B1 1F6 5B2 1F7 5B3 5F4 1B0 5F5 1B1 5F6 1B2 5F7 1B3 5B4 5B5 5B6 5B7 "
    "1B4 1B5 1B6 1B7",
    "2F0 2F1 2F2 2F3 6F0 6F1 6F2 6B0 6F3 6B1 2F4 6B2 2F5 6B3 2F6 2B0 2F7 2B1 6F4 2B2 6F5 2B3 6F6 6B4 6F7 6B5 6B6 6B7 "
    "2B4 2B5 2B6 2B7",
    "3F0 3F1 3F2 3F3 7F0 7B0 7F1 7B1 7F2 7B2 7F3 7B3 3F4 3B0 3F5 3B1 3F6 3B2 3F7 3B3 7F4 7B4 7F5 7B5 7F6 7B6 7F7 7B7 "
    "3B4 3B5 3B6 3B7",
]

# PyTorch's ScheduleZBVZeroBubble, p = 4, m = 8 (rank r holds stages r and 7 - r)
ZBV_4_8 = [
    "0F0 0F1 0F2 0F3 0F4 0F5 0F6 7F0 7I0 7W0 7F1 7I1 7W1 7F2 7I2 7W2 7F3 7I3 7W3 0F7 0I0 0W0 7F4 7I4 7W4 0I1 0W1 "
    "7F5 7I5 7W5 0I2 0W2 7F6 7I6 7W6 0I3 0W3 7F7 7I7 7W7 0I4 0W4 0I5 0W5 0I6 0W6 0I7 0W7",
    "1F0 1F1 1F2 1F3 1F4 6F0 1F5 6F1 6I0 6W0 6F2 6I1 6W1 6F3 6I2 6W2 1F6 1I0 1W0 6F4 6I3 6W3 1F7 1I1 1W1 6F5 6I4 6W4 "
    "1I2 1W2 6F6 6I5 6W5 1I3 1W3 6F7 6I6 6W6 1I4 6I7 1I5 1W4 1I6 1W5 1I7 1W6 6W7 1W7",
    "2F0 2F1 2F2 5F0 2F3 5F1 2F4 5F2 5I0 5W0 5F3 5I1 5W1 2F5 2I0 2W0 5F4 5I2 5W2 2F6 2I1 2W1 5F5 5I3 5W3 2F7 2I2 2W2 "
    "5F6 5I4 5W4 2I3 2W3 5F7 5I5 5W5 2I4 5I6 2I5 5I7 2I6 2W4 2I7 2W5 5W6 5W7 2W6 2W7",
    "3F0 4F0 3F1 4F1 3F2 4F2 3F3 4F3 4I0 4W0 3F4 3I0 3W0 4F4 4I1 4W1 3F5 3I1 3W1 4F5 4I2 4W2 3F6 3I2 3W2 4F6 4I3 4W3 "
    "3F7 3I3 3W3 4F7 4I4 4W4 3I4 4I5 3I5 4I6 3I6 4I7 3I7 3W4 4W5 4W6 4W7 3W5 3W6 3W7",
]
ZBV_2_4 = [
    "0F0 0F1 0F2 3F0 3I0 3W0 3F1 3I1 3W1 0F3 0I0 0W0 3F2 3I2 3W2 0I1 0W1 3F3 3I3 3W3 0I2 0W2 0I3 0W3",
    "1F0 2F0 1F1 2F1 2I0 2W0 1F2 1I0 1W0 2F2 2I1 2W1 1F3 1I1 1W1 2F3 2I2 2W2 1I2 2I3 1I3 1W2 2W3 1W3",
]

# the zero-bubble authors' get_hand_schedule, p = 4, n = 8: warmup_c = 1 (ZB-H1) and 2 (ZB-H2)
ZBH1_4_8 = ["FFFFBWFBWFBWFBWFBWBWBWBW", "FFFBFBWFBWFBWFBWFBWBWBWW", "FFBFBFBWFBWFBWFBWFBWBWWW",
            "FBFBFBFBWFBWFBWFBWFBWWWW"]
ZBH2_4_8 = ["FFFFFFFBWFBWBWBWBWBWBWBW", "FFFFFBFBFBWFBWBWBWBWBWWW", "FFFBFBFBFBFBWFBWBWBWWWWW",
            "FBFBFBFBFBFBFBWFBWWWWWWW"]


def test_interleaved_order_is_megatrons():
    assert texts(interleaved_orders(4, 2, 8)) == [ours(r) for r in INTERLEAVED_4_2_8]


def test_zbv_order_is_pytorchs():
    assert texts(zbv_orders(4, 8)) == [ours(r) for r in ZBV_4_8]
    assert texts(zbv_orders(2, 4)) == [ours(r) for r in ZBV_2_4]


def test_zbv_drops_the_padding_micro_batches():
    """With m < 2p - 1 the order is the one of 2p - 1 micro-batches without those past m."""
    full, short = zbv_orders(4, 7), zbv_orders(4, 3)
    for p in full:
        assert [str(a) for a in short[p]] == [str(a) for a in full[p] if a.unit < 3]


@pytest.mark.parametrize("factor,expected", [(1, ZBH1_4_8), (2, ZBH2_4_8)])
def test_zero_bubble_hand_orders_are_the_authors(factor, expected):
    orders = one_f_one_b_orders(4, 8, defer_w=True, warm_factor=factor)
    assert ["".join(a.kind.value for a in orders[p]) for p in range(4)] == expected
    for p in range(4):  # weight gradients run first in, first out
        ws = [a.unit for a in orders[p] if a.kind == "W"]
        assert ws == sorted(ws)


def test_interleaved_needs_a_multiple_of_p():
    with pytest.raises(Exception, match="multiple of the 4 processors"):
        interleaved_orders(4, 2, 6)


def spans(schedule, p, link=None):
    trace = MemoryTrace()
    simulate(schedule, Platform.homogeneous(p, MacArray(1), link or LinkModel(0, math.inf)), trace=trace, exact=False)
    out = {}
    for t in trace.tasks:
        lo, hi = out.get(t.proc, (math.inf, 0))
        out[t.proc] = (min(lo, t.start), max(hi, t.end))
    return {q: hi - lo for q, (lo, hi) in out.items()}, max(hi for _, hi in out.values())


@pytest.mark.parametrize("p,v,m,f,b", [(2, 2, 4, 1, 2), (4, 2, 8, 1, 2), (4, 3, 8, 2, 3), (3, 2, 6, 1, 1), (4, 4, 4, 1, 2),
                                            (4, 1, 8, 1, 2)])
def test_interleaved_closed_form(p, v, m, f, b):
    g = uniform_pipeline_graph(p * v, f, b, 0, split_backward=False)
    s = Schedule("interleaved", g, interleaved_orders(p, v, m), microbatches_per_step=m)
    _, makespan = spans(s, p)
    assert makespan == v * m * (f + b) + (p - 1) * (f + b)


@pytest.mark.parametrize("p,m,f,b,w", [(4, 8, 1, 1, 1), (4, 8, 3, 3, 2), (3, 6, 2, 3, 1), (5, 10, 1, 2, 1), (8, 24, 4, 4, 2)])
def test_zbh2_closed_form(p, m, f, b, w):
    g = uniform_pipeline_graph(p, f, b, w)
    span, _ = spans(Schedule("zb-h2", g, one_f_one_b_orders(p, m, defer_w=True, warm_factor=2),
                             microbatches_per_step=m), p)
    assert max(span.values()) == m * (f + b + w) + (p - 1) * (f + b - 2 * w)


@pytest.mark.parametrize("p,m", [(2, 4), (4, 8), (4, 7), (4, 5), (3, 3), (5, 12)])
def test_zbv_closed_form(p, m):
    g = uniform_pipeline_graph(2 * p, 1, 1, 1)
    orders = zbv_orders(p, m)
    span, _ = spans(Schedule("zb-v", g, orders, microbatches_per_step=m), p)
    assert max(span.values()) == 6 * m + 2 * max(0, 2 * p - 1 - m)
    placed = {a.layer: q for q, seq in orders.items() for a in seq}
    assert [placed[s + 1] for s in range(2 * p)] == v_placement(p)


def rows(spec: str, schedules, p, m, **kw):
    net = uniform_network(spec)
    link = LinkModel(int(spec.rsplit("comm=", 1)[1]), math.inf) if "comm=" in spec else LinkModel(0, math.inf)
    plat = Platform.homogeneous(p, MacArray(256), link)
    return {r["schedule"]: r for r in compare(net, schedules, plat, minibatches=kw.pop("steps", 3), batch=m,
                                                 microbatches=m, parallelism="pipeline", **kw)}


def test_in_flight_micro_batches():
    """Peak stash on the first processor: p micro-batches for 1F1B and ZB-H1, 2p - 1 for ZB-H2,
    a p-chunk V holds p micro-batches of its two chunks."""
    p, m = 4, 12
    r = rows("uniform:p=4,f=3,b=3,w=2", ["1f1b", "zb-h1", "zb-h2"], p, m)
    per_mb = 2 * 2  # one 1-element input and output word of 2 bytes per sample
    assert [r[s]["peak_memory_bytes"][0] for s in ("1f1b", "zb-h1", "zb-h2")] == [p * per_mb, p * per_mb,
                                                                                   (2 * p - 1) * per_mb]
    v = rows("uniform:p=8,f=3,b=3,w=2", ["zb-v"], p, m)["zb-v"]
    assert v["peak_memory_bytes"][0] == p * 2 * per_mb


def test_bubble_rate_of_1f1b_is_its_closed_form():
    p, m = 4, 8
    r = rows("uniform:p=4,f=2,b=2,w=1", ["1f1b", "zb-h2"], p, m)
    assert r["1f1b"]["bubble_rate"] == pytest.approx((p - 1) / (m + p - 1), abs=1e-12)
    assert r["zb-h2"]["bubble_rate"] == pytest.approx((p - 1) * (2 + 2 - 2) / (m * 5 + (p - 1) * 2), abs=1e-12)


def test_chunked_methods_say_when_they_do_not_apply():
    from models.network.zoo import get_network

    net = get_network("alexnet")  # 8 weight layers
    assert "16 weight layers" in METHODS["zb-v"].not_applicable(net, 8)
    assert METHODS["interleaved-1f1b"].not_applicable(net, 4) is None
    assert METHODS["interleaved-1f1b"].not_applicable(net, 4, {"virtual_stages": 3}) is not None
    assert "zb-v" not in default_schedules(net, 8) and "zb-v" in default_schedules(net, 4)
