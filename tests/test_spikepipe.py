"""The spikepipe schedule: LayerPipe's machinery with stage-grouped delays on spiking networks."""

import pytest

from models.network.snn_zoo import get_snn_network
from schedules.registry import build_schedule
from simulator.costs import LinkModel, SystolicArray
from simulator.engine import simulate
from simulator.evaluate import compare
from simulator.platform import Platform


def platform(p):
    return Platform.homogeneous(p, SystolicArray(32, 32, "ws"), LinkModel(100, 16.0))


@pytest.mark.parametrize("P", [2, 3, 4])
def test_delays_are_shared_by_the_layers_of_a_stage(P):
    net = get_snn_network("snn_cnn")
    s = build_schedule("spikepipe", net, platform(P), minibatches=4, batch=8)
    stages = s.info["stages"]
    for i, (a, b, _) in enumerate(stages):
        for l in range(a, b + 1):
            assert s.delays[l] == 2 * (len(stages) - 1 - i)  # Delay = 2 S(stage)
            assert s.versions()[l] == len(stages) - i  # stashing: S + 1 versions


def test_one_processor_runs_the_step_back_to_back():
    net = get_snn_network("snn_mlp")
    plat = platform(1)
    seq = simulate(build_schedule("sequential", net, plat, minibatches=3, batch=8), plat)
    sp = simulate(build_schedule("spikepipe", net, plat, minibatches=3, batch=8), plat)
    assert sp.stats.cycles_per_step == seq.stats.cycles_per_step  # same fine tasks, same order of work


def test_spike_bits_shrink_what_crosses_processors():
    net = get_snn_network("snn_mlp")
    rows = {bits: compare(net, ["spikepipe"], platform(3), minibatches=16, batch=8, spike_bits=bits)[0]
            for bits in (False, True)}
    assert rows[True]["comm_bytes_per_minibatch"] < rows[False]["comm_bytes_per_minibatch"]


def test_spikepipe_beats_gpipe_style_pipelining_on_the_conv_snn():
    """The shape SpikePipe reports: faster than standard (GPipe-style) pipelining of the same SNN."""
    net = get_snn_network("snn_cnn")
    gp, sp = compare(net, ["gpipe", "spikepipe"], platform(4), minibatches=32, batch=32)
    assert sp["cycles_per_minibatch"] < gp["cycles_per_minibatch"]
    assert sp["efficiency"] <= 1.0 and gp["efficiency"] <= 1.0
