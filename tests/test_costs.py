"""Tests of simulator/costs.py against independent truths: SCALE-Sim runs and hand arithmetic.

Every expected number below is either read from tests/oracles/scalesim_cases.json (SCALE-Sim
3.0.0, a tool no one here wrote) or worked out by hand in the comment next to it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import pytest

from models.errors import HardwareError, LayerPipeError
from models.graph.work import TaskWork
from simulator.costs import (
    CostModel,
    LinkModel,
    MacArray,
    ScaledCost,
    SystolicArray,
    conv_to_gemm,
    parse_hardware,
    parse_link,
    scale,
)

ORACLE = Path(__file__).parent / "oracles" / "scalesim_cases.json"
CASES = json.loads(ORACLE.read_text())["cases"]


def _case_id(i: int, c: dict) -> str:
    return f"{i:03d}-{c['kind']}-{c['name']}-{c['rows']}x{c['cols']}-{c['dataflow']}"


CASE_PARAMS = [pytest.param(c, id=_case_id(i, c)) for i, c in enumerate(CASES)]
CONV_ARGS = ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "num_filt", "stride")


def _gemm_of(case: dict) -> tuple[int, int, int]:
    if case["kind"] == "gemm":
        return case["M"], case["N"], case["K"]
    return conv_to_gemm(*(case[a] for a in CONV_ARGS))


# =========================================================================== SCALE-Sim oracle


def test_oracle_file_is_complete():
    assert len(CASES) == 250
    assert {c["kind"] for c in CASES} == {"gemm", "conv"}
    assert {c["dataflow"] for c in CASES} == {"os", "ws", "is"}


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_cycles_match_scalesim(case):
    """Our convention counts cycles; SCALE-Sim reports the last cycle's index (one less)."""
    array = SystolicArray(rows=case["rows"], cols=case["cols"], dataflow=case["dataflow"])
    if case["kind"] == "gemm":
        cycles = array.gemm_cycles(case["M"], case["N"], case["K"])
    else:
        cycles = array.conv_cycles(*(case[a] for a in CONV_ARGS))
    assert cycles == case["compute_cycles"] + 1


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_utilisation_matches_scalesim(case):
    array = SystolicArray(rows=case["rows"], cols=case["cols"], dataflow=case["dataflow"])
    detail = array.gemm_detail(*_gemm_of(case))
    assert detail.cycles == case["compute_cycles"] + 1
    assert detail.folds * detail.per_fold_cycles == detail.cycles
    assert detail.mapping_efficiency * 100 == pytest.approx(case["mapping_eff_pct"], rel=1e-9)
    assert detail.scalesim_compute_utilization * 100 == pytest.approx(case["compute_util_pct"], rel=1e-9)
    # SCALE-Sim's overall_util_pct is MACs / (PEs * its cycle count); ours uses one more cycle.
    assert detail.compute_utilization * detail.cycles == pytest.approx(
        case["overall_util_pct"] / 100 * case["compute_cycles"], rel=1e-9
    )


# =========================================================================== systolic by hand


def test_hand_worked_4x4_ws_8x8x8():
    # ws maps (Sr, Sc, T) = (K, N, M) = (8, 8, 8).
    # folds = ceil(8/4) * ceil(8/4) = 4; per fold 2R + C + T - 2 = 8 + 4 + 8 - 2 = 18; 4 * 18 = 72.
    # Every fold uses all 16 PEs -> mapping efficiency 1; utilisation 512 / (16 * 72) = 4/9.
    d = SystolicArray(rows=4, cols=4, dataflow="ws").gemm_detail(8, 8, 8)
    assert (d.folds, d.per_fold_cycles, d.cycles) == (4, 18, 72)
    assert d.mapping_efficiency == 1.0
    assert d.compute_utilization == pytest.approx(4 / 9)
    # SCALE-Sim's window 2R + 2C + T - 3 = 21: 8*8*8 / (4 * 16 * 21) = 8/21.
    assert d.scalesim_compute_utilization == pytest.approx(8 / 21)


@pytest.mark.parametrize(
    "dataflow, expected",
    [
        ("os", 56),  # (M, N, K) = (8, 8, 8): 4 folds x (4 + 4 + 8 - 2 = 14)
        ("ws", 72),  # 4 folds x 18 (above)
        ("is", 72),  # (K, M, N) = (8, 8, 8): 4 folds x (8 + 4 + 8 - 2 = 18)
    ],
)
def test_hand_worked_square(dataflow, expected):
    assert SystolicArray(4, 4, dataflow).gemm_cycles(8, 8, 8) == expected


@pytest.mark.parametrize(
    "dataflow, expected_folds, expected_cycles",
    [
        # 4 rows x 8 cols, M=10, N=5, K=3
        ("os", 3, 39),  # Sr=M=10, Sc=N=5, T=K=3: ceil(10/4)*ceil(5/8)=3 folds x (4+8+3-2=13)
        ("ws", 1, 24),  # Sr=K=3, Sc=N=5, T=M=10: 1*1 fold x (8+8+10-2=24)
        ("is", 2, 38),  # Sr=K=3, Sc=M=10, T=N=5: 1*ceil(10/8)=2 folds x (8+8+5-2=19)
    ],
)
def test_hand_worked_non_square(dataflow, expected_folds, expected_cycles):
    d = SystolicArray(rows=4, cols=8, dataflow=dataflow).gemm_detail(10, 5, 3)
    assert (d.folds, d.cycles) == (expected_folds, expected_cycles)
    assert d.compute_utilization == pytest.approx(150 / (32 * expected_cycles))


def test_hand_worked_mapping_efficiency_partial_folds():
    # os 4x8, (Sr, Sc) = (10, 5): folds use 4x5, 4x5, 2x5 PEs of 32 -> mean (20+20+10)/3/32 = 50/96.
    d = SystolicArray(4, 8, "os").gemm_detail(10, 5, 3)
    assert d.mapping_efficiency == pytest.approx(50 / 96)


@pytest.mark.parametrize(
    "args, expected",
    [
        # OH = ceil((6 - 3 + 2) / 2) = 3 -> M = 9; K = 3*3*2 = 18; N = 4
        ((6, 6, 3, 3, 2, 4, 2), (9, 4, 18)),
        # stride 1: OH = 6 - 3 + 1 = 4 -> M = 16
        ((6, 6, 3, 3, 2, 4, 1), (16, 4, 18)),
        # non-square ifmap and filter: OH = 7-3+1 = 5, OW = 5-1+1 = 5 -> 25; K = 3*1*1 = 3
        ((7, 5, 3, 1, 1, 2, 1), (25, 2, 3)),
        # AlexNet conv1: OH = ceil((227 - 11 + 4) / 4) = 55 -> M = 3025, K = 11*11*3 = 363
        ((227, 227, 11, 11, 3, 96, 4), (3025, 96, 363)),
        # filter exactly as large as the ifmap: one output pixel
        ((5, 5, 5, 5, 3, 8, 3), (1, 8, 75)),
    ],
)
def test_conv_to_gemm_by_hand(args, expected):
    assert conv_to_gemm(*args) == expected


def test_conv_cycles_by_hand():
    # 6x6x2 ifmap, 4 filters 3x3, stride 2 -> GEMM (9, 4, 18); ws 4x4: (Sr,Sc,T) = (18, 4, 9)
    # folds = ceil(18/4) * 1 = 5; per fold 8 + 4 + 9 - 2 = 19 -> 95
    assert SystolicArray(4, 4, "ws").conv_cycles(6, 6, 3, 3, 2, 4, 2) == 95


def test_systolic_task_cycles_by_hand():
    arr = SystolicArray(4, 4, "ws", task_overhead=1)
    work = TaskWork(macs=512 + 33, elementwise=9, gemms=((8, 8, 8),), fixed_cycles=2)
    # GEMM 72 + leftover MACs ceil(33/16)=3 + element-wise ceil(9/4 lanes)=3 + overhead 1 + fixed 2
    assert arr.task_cycles(work) == 81
    # Two GEMMs: 1x1x1 on 4x4 ws is one fold of 8 + 4 + 1 - 2 = 11 (SCALE-Sim: 10, +1).
    two = TaskWork(macs=513, gemms=((8, 8, 8), (1, 1, 1)))
    assert SystolicArray(4, 4, "ws").task_cycles(two) == 72 + 11


def test_systolic_task_cycles_defaults_and_edge_cases():
    # vector lanes default to the number of columns: ceil(17/8) = 3
    assert SystolicArray(4, 8).task_cycles(TaskWork(elementwise=17)) == 3
    assert SystolicArray(4, 8, vector_lanes=2).task_cycles(TaskWork(elementwise=17)) == 9
    # macs smaller than the GEMMs' MACs never makes the leftover negative
    assert SystolicArray(4, 4).task_cycles(TaskWork(macs=0, gemms=((8, 8, 8),))) == 72
    # MACs without GEMM shapes: ceil(100 / 16) = 7
    assert SystolicArray(4, 4).task_cycles(TaskWork(macs=100)) == 7
    assert SystolicArray(4, 4).task_cycles(TaskWork()) == 0
    # sequential element-wise: T=4 steps of ceil(1001/4/4)=63 cycles = 252
    assert SystolicArray(4, 4).task_cycles(TaskWork(elementwise=1001, sequential_steps=4)) == 252


def test_systolic_describe_and_defaults():
    assert SystolicArray(32, 32).describe() == "systolic 32x32 ws"
    assert SystolicArray(32, 32).dataflow == "ws"
    assert SystolicArray(8, 4).vector_lanes == 4
    assert SystolicArray(8, 4, "OS").dataflow == "os"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: SystolicArray(0, 4), "rows"),
        (lambda: SystolicArray(4, -1), "cols"),
        (lambda: SystolicArray(4, 4, "xs"), "dataflow"),
        (lambda: SystolicArray(4, 4, vector_lanes=0), "vector_lanes"),
        (lambda: SystolicArray(4, 4, task_overhead=-1), "task_overhead"),
        (lambda: SystolicArray(4.5, 4), "rows"),
        (lambda: SystolicArray(4, 4).gemm_cycles(0, 4, 4), "M"),
        (lambda: SystolicArray(4, 4).gemm_cycles(4, -2, 4), "N"),
        (lambda: SystolicArray(4, 4).gemm_cycles(4, 4, 0), "K"),
        (lambda: SystolicArray(4, 4).gemm_detail(4, 4, 0), "K"),
        (lambda: SystolicArray(4, 4).conv_cycles(8, 8, 3, 3, 1, 4, 0), "stride"),
        (lambda: SystolicArray(4, 4).conv_cycles(3, 3, 5, 5, 1, 4, 1), "larger than the ifmap"),
        (lambda: SystolicArray(4, 4).conv_cycles(8, 3, 3, 5, 1, 4, 1), "larger than the ifmap"),
        (lambda: SystolicArray(4, 4).conv_cycles(8, 8, 3, 3, 0, 4, 1), "channels"),
        (lambda: SystolicArray(4, 4).conv_cycles(8, 8, 3, 3, 1, 0, 1), "num_filt"),
    ],
)
def test_systolic_rejects_bad_input(make, words):
    with pytest.raises(HardwareError, match=words):
        make()


# =========================================================================== MAC array by hand


@pytest.mark.parametrize(
    "array, work, expected",
    [
        # ceil(1000/256)=4 + ceil(300/256)=2
        (MacArray(256), TaskWork(macs=1000, elementwise=300), 6),
        # exact multiples: 512/256 = 2, 256/256 = 1
        (MacArray(256), TaskWork(macs=512, elementwise=256), 3),
        # 1 + ceil(65/64)=2 + overhead 10 + fixed 5
        (MacArray(256, vector_lanes=64, task_overhead=10), TaskWork(macs=256, elementwise=65, fixed_cycles=5), 18),
        # nothing to do but the overhead
        (MacArray(256, task_overhead=10), TaskWork(), 10),
        (MacArray(1), TaskWork(), 0),
        # fixed_cycles alone (synthetic golden tasks)
        (MacArray(7), TaskWork(fixed_cycles=42), 42),
        # GEMMs are already inside macs: 8*8*8 = 512 MACs / 64 = 8, not counted twice
        (MacArray(64), TaskWork(macs=512, gemms=((8, 8, 8),)), 8),
        # sequential steps: T=4 chunks of 250 -> 4 * ceil(250/10) = 100 (same as T=1)
        (MacArray(100, vector_lanes=10), TaskWork(elementwise=1000, sequential_steps=4), 100),
        (MacArray(100, vector_lanes=10), TaskWork(elementwise=1000), 100),
        # 1001 elements: T=1 -> ceil(100.1) = 101; T=4 -> 4 * ceil(1001/40 = 25.025) = 104
        (MacArray(100, vector_lanes=10), TaskWork(elementwise=1001), 101),
        (MacArray(100, vector_lanes=10), TaskWork(elementwise=1001, sequential_steps=4), 104),
        # fewer elements than steps: each of the 5 dependent steps still takes a cycle
        (MacArray(100, vector_lanes=10), TaskWork(elementwise=3, sequential_steps=5), 5),
        # steps but no element-wise work: free
        (MacArray(100), TaskWork(macs=100, sequential_steps=8), 1),
    ],
)
def test_mac_array_by_hand(array, work, expected):
    assert array.task_cycles(work) == expected


def test_mac_array_defaults():
    assert MacArray(256).vector_lanes == 256
    assert MacArray(256).task_overhead == 0
    assert MacArray(256) == MacArray(256, vector_lanes=256, task_overhead=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        MacArray(256).macs_per_cycle = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: MacArray(0), "macs_per_cycle"),
        (lambda: MacArray(-4), "macs_per_cycle"),
        (lambda: MacArray(2.5), "macs_per_cycle"),
        (lambda: MacArray(True), "macs_per_cycle"),
        (lambda: MacArray(8, vector_lanes=0), "vector_lanes"),
        (lambda: MacArray(8, task_overhead=-1), "task_overhead"),
    ],
)
def test_mac_array_rejects_bad_input(make, words):
    with pytest.raises(HardwareError, match=words):
        make()


def test_hardware_error_is_a_layerpipe_error():
    # the CLI catches LayerPipeError; bad hardware must be reported, not crash
    with pytest.raises(LayerPipeError):
        MacArray(0)


# =========================================================================== protocol / scaling


class _Fixed:
    """A user's own cost model: every task takes 7 cycles."""

    def task_cycles(self, work: TaskWork) -> int:
        return 7

    def describe(self) -> str:
        return "fixed 7"


def test_cost_model_protocol_is_structural():
    assert isinstance(MacArray(8), CostModel)
    assert isinstance(SystolicArray(4, 4), CostModel)
    assert isinstance(_Fixed(), CostModel)
    assert isinstance(ScaledCost(_Fixed(), 2), CostModel)
    assert not isinstance(object(), CostModel)


@pytest.mark.parametrize(
    "base, work, speed, expected",
    [
        (MacArray(10), TaskWork(macs=100), 2, 5),  # 10 / 2
        (MacArray(10), TaskWork(macs=100), 3, 4),  # ceil(10 / 3)
        (MacArray(10), TaskWork(macs=100), 0.5, 20),  # 10 / 0.5
        (MacArray(10), TaskWork(macs=100), 1, 10),
        (MacArray(1), TaskWork(macs=3), 0.3, 10),  # 3 / 0.3 = 10 exactly, not 11
        (MacArray(1), TaskWork(macs=11), 1.1, 10),  # 11 / 1.1 = 10 exactly
        (MacArray(1), TaskWork(macs=7), 1.5, 5),  # ceil(4.67)
        (_Fixed(), TaskWork(), 2, 4),  # ceil(7 / 2), any CostModel can be scaled
        (MacArray(1), TaskWork(), 4, 0),
    ],
)
def test_scaled_cost_by_hand(base, work, speed, expected):
    assert ScaledCost(base, speed).task_cycles(work) == expected
    assert scale(base, speed).task_cycles(work) == expected


def test_scale_identity_and_describe():
    m = MacArray(8)
    assert scale(m, 1) is m
    assert ScaledCost(_Fixed(), 2).describe() == "fixed 7, speed 2"


@pytest.mark.parametrize("speed", [0, -1, math.inf, math.nan, "2", True])
def test_scaled_cost_rejects_bad_speed(speed):
    with pytest.raises(HardwareError, match="speed"):
        ScaledCost(MacArray(8), speed)


def test_scaled_cost_rejects_non_model():
    with pytest.raises(HardwareError, match="task_cycles"):
        ScaledCost(object(), 2)  # type: ignore[arg-type]


# =========================================================================== links


@pytest.mark.parametrize(
    "link, nbytes, expected",
    [
        (LinkModel(100, 16), 0, 0),  # nothing sent, no latency paid
        (LinkModel(100, 16), 1, 101),  # 100 + ceil(1/16)
        (LinkModel(100, 16), 16, 101),
        (LinkModel(100, 16), 17, 102),
        (LinkModel(100, 16), 1000, 163),  # 100 + ceil(62.5)
        (LinkModel(0, 1), 5, 5),
        (LinkModel(3, 2.5), 10, 7),  # 3 + 10/2.5 = 3 + 4
        (LinkModel(0, 0.3), 3, 10),  # 3 / 0.3 = 10 exactly (binary 0.3 would give 11)
        (LinkModel(0, 0.5), 3, 6),
        (LinkModel(0, math.inf), 10**12, 0),  # free link
        (LinkModel(5, math.inf), 1, 5),  # infinite bandwidth still pays latency
        (LinkModel(5, math.inf), 0, 0),
        (LinkModel(10, 1e9), 10**12, 1010),  # 10 + 10^12 / 10^9
    ],
)
def test_link_transfer_by_hand(link, nbytes, expected):
    assert link.transfer_cycles(nbytes) == expected


def test_link_words_and_defaults():
    assert LinkModel(0, 1).word_bytes == 2
    assert LinkModel(0, 1).words_to_bytes(3) == 6
    assert LinkModel(0, 1, word_bytes=4).words_to_bytes(3) == 12
    assert LinkModel(0, math.inf).is_free
    assert not LinkModel(1, math.inf).is_free


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: LinkModel(-1, 16), "latency"),
        (lambda: LinkModel(1.5, 16), "latency"),
        (lambda: LinkModel(0, 0), "bytes_per_cycle"),
        (lambda: LinkModel(0, -2), "bytes_per_cycle"),
        (lambda: LinkModel(0, math.nan), "bytes_per_cycle"),
        (lambda: LinkModel(0, 1, word_bytes=0), "word_bytes"),
        (lambda: LinkModel(0, 1).transfer_cycles(-1), "bytes"),
        (lambda: LinkModel(0, 1).words_to_bytes(-1), "word"),
    ],
)
def test_link_rejects_bad_input(make, words):
    with pytest.raises(HardwareError, match=words):
        make()


# =========================================================================== parsing


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mac:256", MacArray(256, 256, 0)),
        ("mac:256:lanes=64:overhead=10", MacArray(256, 64, 10)),
        ("mac:256:overhead=10", MacArray(256, 256, 10)),
        (" MAC:128 ", MacArray(128, 128, 0)),
        ("systolic:32x32:ws", SystolicArray(32, 32, "ws", 32, 0)),
        ("systolic:32x32", SystolicArray(32, 32, "ws", 32, 0)),
        ("systolic:32x16:os:overhead=5", SystolicArray(32, 16, "os", 16, 5)),
        ("systolic:8x4:IS:lanes=2", SystolicArray(8, 4, "is", 2, 0)),
        ("systolic:8X4:overhead=3", SystolicArray(8, 4, "ws", 4, 3)),
    ],
)
def test_parse_hardware_good(text, expected):
    assert parse_hardware(text) == expected


def test_parse_hardware_describe():
    assert parse_hardware("systolic:32x32:ws").describe() == "systolic 32x32 ws"


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("gpu:4", "unknown processor kind 'gpu'"),
        ("mac", "MACs per cycle"),
        ("mac:", "MACs per cycle"),
        ("mac:abc", "MACs per cycle"),
        ("mac:-5", "MACs per cycle"),
        ("mac:0", "macs_per_cycle"),
        ("mac:256:lanes=0", "vector_lanes"),
        ("mac:256:lanes=x", "lanes"),
        ("mac:256:speed=2", "unknown option 'speed'"),
        ("mac:256:lanes=4:lanes=8", "given twice"),
        ("mac:256:64", "unexpected field"),
        ("systolic", "ROWSxCOLS"),
        ("systolic:32", "ROWSxCOLS"),
        ("systolic:32x", "ROWSxCOLS"),
        ("systolic:32x32x2", "ROWSxCOLS"),
        ("systolic:0x32", "rows"),
        ("systolic:32x0", "cols"),
        ("systolic:32x32:xs", "unknown dataflow 'xs'"),
        ("systolic:32x32:ws:os", "unexpected field"),
        ("systolic:32x32:ws:lanes=", "lanes"),
    ],
)
def test_parse_hardware_bad(text, words):
    with pytest.raises(HardwareError, match=words) as info:
        parse_hardware(text)
    message = str(info.value)
    assert "\n" not in message
    assert "accepted forms" in message and "systolic:ROWSxCOLS" in message


@pytest.mark.parametrize(
    "text, latency, bandwidth",
    [
        ("100,16", 100, 16.0),
        (" 10 , 2.5 ", 10, 2.5),
        ("0,1e3", 0, 1000.0),
        ("0,inf", 0, math.inf),
        ("none", 0, math.inf),
        ("NONE", 0, math.inf),
    ],
)
def test_parse_link_good(text, latency, bandwidth):
    link = parse_link(text)
    assert (link.latency, link.bytes_per_cycle, link.word_bytes) == (latency, bandwidth, 2)


def test_parse_link_free_costs_nothing():
    assert parse_link("none").transfer_cycles(10**9) == 0
    assert parse_link("0,inf").transfer_cycles(10**9) == 0
    assert parse_link("100,16").transfer_cycles(1000) == 163  # 100 + ceil(62.5)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("100", "two comma-separated"),
        ("1,2,3", "two comma-separated"),
        ("a,16", "latency"),
        ("-1,16", "latency"),
        ("1.5,16", "latency"),
        ("100,", "bytes per cycle"),
        ("100,0", "bytes per cycle"),
        ("100,-3", "bytes per cycle"),
        ("100,abc", "bytes per cycle"),
        ("100,nan", "bytes per cycle"),
    ],
)
def test_parse_link_bad(text, words):
    with pytest.raises(HardwareError, match=words) as info:
        parse_link(text)
    message = str(info.value)
    assert "\n" not in message and "LATENCY,BYTES_PER_CYCLE" in message


# =========================================================================== speed


def test_closed_form_is_fast():
    # The largest oracle layer takes SCALE-Sim minutes; 20,000 closed-form evaluations must
    # take well under a second (a generous bound so a loaded machine does not flake).
    arr = SystolicArray(128, 128, "ws")
    work = TaskWork(macs=10**9, elementwise=10**6, gemms=((49284, 64, 27), (3025, 96, 363)))
    start = time.perf_counter()
    for _ in range(10_000):
        arr.gemm_cycles(49284, 64, 27)
        arr.task_cycles(work)
    assert time.perf_counter() - start < 2.0
