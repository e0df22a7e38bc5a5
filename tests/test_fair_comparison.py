"""The fair-comparison contract (docs/design.md section 11): the same planner freedom, the same
memory limits, an attribution that multiplies out, and exactness on one processor.

Memory figures are worked by hand for mlp:8-16-16-4 (ReLU hidden layers; params 8*16+16 = 144,
16*16+16 = 272, 16*4+4 = 68; fp16, batch 4) on 3 processors, PipeDream one layer per stage:
stage s keeps 3 - s weight versions and stashes its input and output activations for the
3 - s minibatches in flight (layer 1: (4*8 + 4*16) * 2 = 192 bytes each; layer 2: 256; layer 3:
(4*16 + 4*4) * 2 = 160), beside one momentum and one gradient buffer:

* P0: 3 * 288 + 3 * 192 + 288 + 288 = 2016
* P1: 2 * 544 + 2 * 256 + 544 + 544 = 2688
* P2: 1 * 136 + 1 * 160 + 136 + 136 = 568

Data parallelism over all three (one stage, 3 replicas): every replica holds all 484 parameters
once (968 bytes) with their buffers and one minibatch's stash of every layer: 3 * 968 + 608 = 3512.

The memory-aware DP (PipeDream's planner with a memory limit) finds layer 1 alone on P0 and layers
2-3 on two replicas: P0 keeps 2 versions and 2 stashes of layer 1, 2 * 288 + 2 * 192 + 288 + 288 =
1536; each replica keeps one version of layers 2-3 (680 bytes), one stash (256 + 160) and its
buffers, 680 + 416 + 680 + 680 = 2456.
"""

from __future__ import annotations

import math

import pytest

from models.network.zoo import get_network
from simulator.cli import main
from simulator.evaluate import compare
from simulator.explain import explain
from simulator.platform import PlatformSpec
from simulator.selection import choose

MLP = get_network("mlp:8-16-16-4")
FREE3 = PlatformSpec(3, link="none")


def test_memory_of_pipedream_by_hand():
    straight = choose("pipedream", MLP, FREE3.build(), minibatches=32, batch=4, parallelism="pipeline").chosen
    assert [m.total for m in straight.memory] == [2016, 2688, 568]
    assert [(m.weights, m.stash_peak, m.optimizer, m.gradients) for m in straight.memory][0] == (864, 576, 288, 288)
    hybrid = choose("pipedream", MLP, FREE3.build(), minibatches=32, batch=4)
    replicated = next(t for t in hybrid.trials if t.candidate.plan.stages == ((1, 3, 3),))
    assert [m.total for m in replicated.memory] == [3512, 3512, 3512]


def test_memory_capacity_decides_replication():
    # free links: replication is fastest, and fits in 3512 bytes per processor
    assert choose("pipedream", MLP, FREE3.build(), minibatches=32, batch=4).chosen.candidate.plan.stages == ((1, 3, 3),)
    # 3000 bytes: full replication (3512) does not fit; the straight pipeline (2688) and the
    # memory-aware hybrid (2456) do, and the hybrid is faster
    tight = PlatformSpec(3, link="none", memory_capacity=3000).build()
    c = choose("pipedream", MLP, tight, minibatches=32, batch=4)
    assert [(t.candidate.plan.stages, t.candidate.memory_aware, t.peak_memory, t.fits(3000)) for t in c.trials] == [
        (((1, 3, 3),), False, 3512, False),
        (((1, 1, 1), (2, 2, 1), (3, 3, 1)), False, 2688, True),
        (((1, 1, 1), (2, 3, 2)), True, 2456, True),
    ]
    assert [m.total for m in c.chosen.memory] == [1536, 2456, 2456]
    assert c.chosen.cycles_per_minibatch < c.trials[1].cycles_per_minibatch


def test_a_row_that_does_not_fit_says_what_it_needs():
    # 2400 bytes: the memory-aware DP finds no plan within its estimate, so the candidates are the
    # unconstrained ones; the row needs the least of them, the straight pipeline's 2688
    plat = PlatformSpec(3, link="none", memory_capacity=2400).build()
    pd, gp = compare(MLP, ["pipedream", "gpipe"], plat, minibatches=32, batch=4)
    assert not pd["feasible"] and pd["cycles_per_minibatch"] is None and pd["memory_needed_bytes"] == 2688
    assert [c["stages"] for c in pd["candidates"]] == [[[1, 3, 3]], [[1, 1, 1], [2, 2, 1], [3, 3, 1]]]
    assert gp["feasible"] and max(gp["peak_memory_bytes"]) <= 2400 and gp["speedup_vs_pipedream"] is None


def test_nothing_fits_is_one_line_and_exit_2(capsys):
    assert main(["compare", "mlp:8-16-16-4", "-p", "3", "--link", "none", "-b", "4", "--memory-capacity", "1000"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "nothing fits in 1000 B per processor" in captured.err and "pipedream needs 2.6 KiB" in captured.err


@pytest.mark.parametrize("net,P", [("lenet5", 4), ("alexnet", 8), ("mlp", 8), ("resnet18_cifar", 3)])
def test_pipedream_is_never_slower_than_its_straight_or_replicated_self(net, P):
    """The default (hybrid) PipeDream row against PipeDream forced straight and forced to replicate."""
    network, plat = get_network(net), PlatformSpec(P).build()
    run = dict(minibatches=36, batch=32)
    (default,) = compare(network, ["pipedream"], plat, **run)
    (straight,) = compare(network, ["pipedream"], plat, parallelism="pipeline", **run)
    (replicated,) = compare(network, ["pipedream"], plat, replicate=True, **run)
    assert default["cycles_per_minibatch"] <= straight["cycles_per_minibatch"]
    assert default["cycles_per_minibatch"] <= replicated["cycles_per_minibatch"]
    # and every method had the same candidate plans to choose from
    (lp,) = compare(network, ["layerpipe"], plat, **run)
    assert [c["stages"] for c in lp["candidates"]] == [c["stages"] for c in default["candidates"]]


@pytest.mark.parametrize("parallelism", ["pipeline", "hybrid"])
@pytest.mark.parametrize("name", ["layerpipe", "layerpipe2"])
def test_the_ladder_multiplies_to_the_reported_speedup(name, parallelism):
    network, plat = get_network("lenet5"), PlatformSpec(4).build()
    ladder = explain(network, name, plat, minibatches=32, batch=32, parallelism=parallelism)
    (row,) = compare(network, [name], plat, minibatches=32, batch=32, parallelism=parallelism)
    assert math.isclose(math.prod(r.factor for r in ladder.rungs), row["speedup_vs_pipedream"], rel_tol=1e-12)
    assert ladder.rungs[0].cycles_per_minibatch / ladder.rungs[-1].cycles_per_minibatch == row["speedup_vs_pipedream"]
    assert len(ladder.rungs) == 6


def test_lenet5_in_a_straight_pipeline_gains_from_offloading_weight_gradients():
    """Where LayerPipe's speedup comes from: the offloading rung carries it, not the split alone."""
    ladder = explain(get_network("lenet5"), "layerpipe", PlatformSpec(4).build(), minibatches=32, batch=32,
                     parallelism="pipeline")
    factors = {r.name: r.factor for r in ladder.rungs}
    assert factors["+ weight-gradient offloading"] > 1.3 and abs(factors["split tasks"] - 1) < 0.05


@pytest.mark.parametrize("net", ["lenet5", "mlp", "snn_mlp"])
def test_every_schedule_on_one_processor_is_the_sequential_reference(net):
    network = get_network(net)
    names = ["pipedream", "gpipe", "1f1b", "zb-h1", "layerpipe", "layerpipe2"] + (["spikepipe"] if "snn" in net else [])
    for hardware in ("mac:256", "systolic:16x16:ws"):
        rows = compare(network, names, PlatformSpec(1, hardware).build(), minibatches=8, batch=32)
        assert [r["speedup_vs_sequential"] for r in rows] == [1.0] * len(rows), hardware


def test_explain_prints_the_ladder_and_draws_it(tmp_path, capsys):
    import json

    out = tmp_path / "ladder.png"
    assert main(["explain", "lenet5", "-p", "4", "--parallelism", "pipeline", "--json", "--plot", str(out)]) == 0
    ladder = json.loads(capsys.readouterr().out)
    assert [r["rung"] for r in ladder["rungs"]] == ["pipedream", "pipedream on the method's plan", "split tasks",
                                                   "+ weight-gradient offloading", "+ the method's delays", "layerpipe"]
    assert math.isclose(math.prod(r["factor"] for r in ladder["rungs"]), ladder["speedup"], rel_tol=1e-12)
    assert out.stat().st_size > 10_000


def test_sweeps_take_parallelism_and_memory_as_axes(tmp_path):
    from simulator.sweep import experiment_from_mapping, run_sweep

    exp = experiment_from_mapping({"networks": ["mlp:8-16-16-4"], "schedules": ["pipedream"], "processors": 3,
                                   "links": ["none"], "batch": 4, "minibatches": 32,
                                   "parallelism": ["pipeline", "hybrid"], "memory_capacities": ["none", "3000B"]})
    runs = exp.runs()
    assert [(r.memory_capacity, r.parallelism) for r in runs] == [(None, "pipeline"), (None, "hybrid"),
                                                                   ("3000B", "pipeline"), ("3000B", "hybrid")]
    rows = run_sweep(exp, tmp_path / "s.csv", jobs=1, progress=False).rows
    plans = [r["plan"]["stages"] for r in rows]
    straight = [[1, 1, 1], [2, 2, 1], [3, 3, 1]]
    # data parallelism (3512 bytes, the hand-worked figure above) is chosen only when it fits; in 3000
    # bytes the memory-constrained planner finds a partly replicated plan that fits and beats the straight one
    assert plans[:3] == [straight, [[1, 3, 3]], straight] and plans[3] not in (straight, [[1, 3, 3]])
    assert max(rows[3]["peak_memory_bytes"]) <= 3000 and rows[3]["candidates"][-1]["memory_aware"]
    assert rows[3]["cycles_per_minibatch"] <= rows[2]["cycles_per_minibatch"]
