"""Spiking networks: the LIF neuron (docs/design.md section 7), surrogate gradients, BPTT, SNN specs,
task graphs and delayed-gradient training on rate-coded digits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.errors import NetworkError, TrainingError, UnknownNetworkError
from models.graph.build import training_graph
from models.graph.work import TaskWork
from models.network.files import FILE_LAYER_KINDS, network_from_dict, network_to_dict
from models.network.layers import AvgPool2d, Flatten, Linear, MaxPool2d
from models.network.snn_zoo import (
    SNN_ZOO,
    digits_snn,
    get_snn_network,
    snn_cnn,
    snn_mlp,
    snn_network_names,
    snn_vgg,
)
from models.network.spec import chain, weight_layers
from models.network.spiking import LIF_BACKWARD_OPS, LIF_FORWARD_OPS, LIFConv2d, LIFLinear, is_spiking, time_steps
from models.network.zoo import get_network, mlp
from models.training.data import Dataset, load_digits_split, rate_code
from models.training.snn import (
    SNNConfig,
    SpikingNet,
    Surrogate,
    default_snn_train_config,
    leaky,
    lif_backward,
    lif_forward,
    train_snn,
)
from models.training.trainer import stage_delays
from simulator.costs import SystolicArray

EPS = 1e-6
INPUTS = np.array([1.2, 0.0, 0.9, 0.9, 0.0])


# --------------------------------------------------------------------------- the neuron


def test_design_worked_example_subtract_reset():
    # docs/design.md section 7: beta 0.5, theta 1, inputs 1.2, 0, 0.9, 0.9, 0
    spk, mem = leaky(INPUTS, beta=0.5, threshold=1.0, reset="subtract")
    assert spk.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(mem, [1.2, -0.4, 0.7, 1.25, -0.375], rtol=0, atol=1e-12)


def test_zero_reset_hand_example():
    # t0: U = 1.2 > 1 -> spike.  t1: reset, U = 0.5*(1-1)*1.2 + 0 = 0.
    # t2: U = 0.5*0 + 0.9 = 0.9.  t3: U = 0.45 + 0.9 = 1.35 -> spike.  t4: reset, U = 0 + 0 = 0.
    spk, mem = leaky(INPUTS, beta=0.5, threshold=1.0, reset="zero")
    assert spk.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(mem, [1.2, 0.0, 0.9, 1.35, 0.0], rtol=0, atol=1e-12)


def test_spike_needs_strictly_above_threshold_and_reset_uses_previous_step():
    spk, mem = leaky(np.array([1.0, 0.5, 0.0]), beta=1.0)
    # U0 = 1.0 is not > 1 (no spike, no reset); U1 = 1.5 spikes; U2 = 1.5 - 1 (reset of step 1)
    assert spk.tolist() == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(mem, [1.0, 1.5, 0.5])


def test_leaky_keeps_shape_and_is_elementwise():
    rng = np.random.default_rng(0)
    cur = rng.uniform(-1, 2, size=(7, 3, 2, 4))
    for reset in ("subtract", "zero"):
        spk, mem = leaky(cur, 0.8, 0.9, reset)
        assert spk.shape == mem.shape == cur.shape
        one_spk, one_mem = leaky(cur[:, 1, 0, 2], 0.8, 0.9, reset)
        np.testing.assert_array_equal(spk[:, 1, 0, 2], one_spk)
        np.testing.assert_array_equal(mem[:, 1, 0, 2], one_mem)
        assert set(np.unique(spk)) <= {0.0, 1.0}


@pytest.mark.parametrize("kwargs", [dict(beta=1.5), dict(beta=-0.1), dict(threshold=0.0), dict(reset="none")])
def test_leaky_rejects_bad_neuron_options(kwargs):
    args = dict(beta=0.5, threshold=1.0, reset="subtract") | kwargs
    with pytest.raises(NetworkError):
        leaky(INPUTS, **args)


# --------------------------------------------------------------------------- surrogates


def test_surrogates_match_closed_forms():
    u = np.linspace(-1, 1, 41)
    fs = Surrogate("fast-sigmoid")
    np.testing.assert_allclose(fs.grad(u), 1.0 / (25 * np.abs(u) + 1.0) ** 2, rtol=1e-15)
    at = Surrogate("arctan")
    np.testing.assert_allclose(at.grad(u), 1.0 / (1.0 + (np.pi * u) ** 2), rtol=1e-15)  # (a/2) / (1 + (pi/2 a u)^2), a=2
    assert fs.slope == 25.0 and at.slope == 2.0 and Surrogate("atan").name == "arctan"
    assert Surrogate("fast_sigmoid", 5).grad(np.array(0.2)) == pytest.approx(1 / 4)
    assert Surrogate("arctan", 4).grad(np.array(0.0)) == pytest.approx(2.0)
    with pytest.raises(NetworkError):
        Surrogate("sigmoid")


@pytest.mark.parametrize("name,slope", [("fast-sigmoid", 25.0), ("fast-sigmoid", 3.0), ("arctan", 2.0)])
def test_smooth_spike_is_the_surrogates_antiderivative(name, slope):
    s = Surrogate(name, slope)
    u = np.linspace(-0.9, 0.9, 37) + 0.013  # avoid the kink of |u| at 0
    numeric = (s.smooth(u + EPS) - s.smooth(u - EPS)) / (2 * EPS)
    np.testing.assert_allclose(numeric, s.grad(u), rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------------------- BPTT


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        plus = f()
        flat[i] = old - EPS
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * EPS)
    return grad


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", ["fast-sigmoid", "arctan"])
def test_lif_backward_matches_finite_differences_of_smooth_spikes(reset, surrogate):
    rng = np.random.default_rng(3)
    cur = rng.uniform(-0.5, 1.8, size=(9, 4))
    r_spk, r_mem = rng.standard_normal(cur.shape), rng.standard_normal(cur.shape)
    s = Surrogate(surrogate)

    def f():
        spk, mem, _ = lif_forward(cur, 0.7, 1.0, reset, spike_fn=s.smooth)
        return float((r_spk * spk).sum() + (r_mem * mem).sum())

    _, mem, rst = lif_forward(cur, 0.7, 1.0, reset)
    assert rst.any() and not rst.all()  # resets happen, so their (absent) gradient is exercised
    analytic = lif_backward(r_spk, mem, rst, 0.7, 1.0, reset, s, dmem=r_mem)
    np.testing.assert_allclose(analytic, numeric_grad(f, cur), rtol=1e-6, atol=1e-8)


def _tiny(kind: str, reset: str, surrogate: str, T: int = 4):
    neuron = dict(time_steps=T, beta=0.8, threshold=1.0, reset=reset, surrogate=surrogate)
    if kind == "fc":
        return chain("fc", (5,), [LIFLinear(4, **neuron), LIFLinear(3, **neuron)])
    return chain("conv", (1, 6, 6), [LIFConv2d(3, kernel=3, padding=1, **neuron), MaxPool2d(2), Flatten(),
                                      LIFLinear(3, **neuron)])


@pytest.mark.parametrize("kind", ["fc", "conv"])
@pytest.mark.parametrize("reset,surrogate,readout", [
    ("subtract", "fast-sigmoid", "membrane"), ("zero", "arctan", "membrane"), ("subtract", "arctan", "spikes"),
])
def test_bptt_matches_finite_differences_on_a_smooth_snn(kind, reset, surrogate, readout):
    """With spikes = the surrogate's antiderivative, BPTT is the exact gradient: check every parameter."""
    spec = _tiny(kind, reset, surrogate)
    net = SpikingNet(spec, readout=readout, spike="smooth", init_gain=3.0)
    rng = np.random.default_rng(5)
    params = net.init_params(rng)
    for p in params:
        p += 0.2 * rng.standard_normal(p.shape)
    x = (rng.random((4, 3, *spec.input_shape)) < 0.7).astype(float)
    y = np.array([0, 2, 1])
    _, grads = net.loss_and_grads(x, y, params)
    for p, g in zip(params, grads):
        numeric = numeric_grad(lambda: net.loss_and_grads(x, y, params)[0], p)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8)
        assert np.abs(g).max() > 1e-4


def test_heaviside_snn_output_layer_gradient_is_exact_with_membrane_readout():
    # the membrane readout is linear in the last weights given the hidden spikes: no surrogate involved
    spec = _tiny("fc", "subtract", "fast-sigmoid", T=6)
    net = SpikingNet(spec, init_gain=3.0)
    rng = np.random.default_rng(2)
    params = net.init_params(rng)
    x = (rng.random((6, 4, 5)) < 0.7).astype(float)
    y = np.array([0, 1, 2, 1])
    _, grads = net.loss_and_grads(x, y, params)
    numeric = numeric_grad(lambda: net.loss_and_grads(x, y, params)[0], params[1])
    np.testing.assert_allclose(grads[1], numeric, rtol=1e-6, atol=1e-9)


def test_backward_weights_change_only_the_propagated_gradient():
    spec = _tiny("fc", "subtract", "arctan")
    net = SpikingNet(spec, init_gain=3.0)
    rng = np.random.default_rng(0)
    params = net.init_params(rng)
    other = [p + 0.5 * rng.standard_normal(p.shape) for p in params]
    x = (rng.random((4, 3, 5)) < 0.7).astype(float)
    y = np.array([0, 1, 2])
    _, same = net.loss_and_grads(x, y, params)
    _, mixed = net.loss_and_grads(x, y, params, other)
    np.testing.assert_array_equal(same[1], mixed[1])  # the output layer's gradient needs no weights
    assert not np.allclose(same[0], mixed[0])  # the hidden layer's error came through W_2


def test_input_gradient_and_rates():
    spec = _tiny("conv", "subtract", "fast-sigmoid")
    net = SpikingNet(spec, init_gain=3.0)
    params = net.init_params(np.random.default_rng(0))
    x = rate_code(np.full((2, 1, 6, 6), 0.6), 4, np.random.default_rng(1))
    logits, tape = net.forward(x, params)
    grads, dx = net.backward(np.ones_like(logits), tape, params, input_grad=True)
    assert dx.shape == (4, 2, 1, 6, 6) and len(grads) == 2
    rates = net.spike_rates(x, params)
    assert set(rates) == {"lif_conv2d1", "lif_linear1"} and all(0 <= r <= 1 for r in rates.values())


def test_spiking_net_rejects_what_it_cannot_train():
    with pytest.raises(NetworkError, match="not spiking"):
        SpikingNet(mlp((4, 3, 2)))
    with pytest.raises(NetworkError, match="time_steps"):
        SpikingNet(chain("t", (4,), [LIFLinear(3, time_steps=2), LIFLinear(2, time_steps=3)]))
    with pytest.raises(NetworkError, match="output"):
        SpikingNet(chain("t", (1, 4, 4), [LIFConv2d(2, padding=1), MaxPool2d(2)]))
    with pytest.raises(TrainingError):
        SpikingNet(snn_mlp(), readout="rate")
    net = SpikingNet(snn_mlp(time_steps=3))
    params = net.init_params(np.random.default_rng(0))
    with pytest.raises(TrainingError, match="T=3"):
        net.forward(np.zeros((4, 2, 64)), params)
    assert net.forward(np.zeros((3, 2, 64)), params)[0].shape == (2, 10)  # flat input is reshaped


# --------------------------------------------------------------------------- specs and zoo


def test_layer_specs():
    lin = LIFLinear(10, time_steps=5)
    assert (lin.params([(1, 8, 8)]), lin.macs([(1, 8, 8)])) == (650, 5 * 640)
    assert lin.elementwise([(64,)]) == 5 * 10 * (LIF_FORWARD_OPS + 1)
    assert lin.backward_elementwise([(64,)]) == 5 * 10 * LIF_BACKWARD_OPS
    conv = LIFConv2d(4, kernel=3, stride=2, padding=1, bias=False, time_steps=3)
    assert conv.output_shape([(2, 8, 8)]) == (4, 4, 4)
    assert conv.params([(2, 8, 8)]) == 72 and conv.macs([(2, 8, 8)]) == 3 * 16 * 4 * 18
    assert conv.gemm_shapes((2, 8, 8), (4, 4, 4), 5) == {"F": (240, 4, 18), "WG": (4, 18, 240), "AG1": (240, 18, 4)}
    assert is_spiking(conv) and time_steps(conv) == 3 and not is_spiking(Linear(3)) and time_steps(Linear(3)) == 1
    assert FILE_LAYER_KINDS["lif_linear"] is LIFLinear and FILE_LAYER_KINDS["lif_conv2d"] is LIFConv2d
    for bad in (dict(time_steps=0), dict(beta=2.0), dict(threshold=-1), dict(reset="none"), dict(surrogate="relu"),
                dict(slope=0.0), dict(beta="x")):
        with pytest.raises(NetworkError):
            LIFLinear(3, **bad)


def test_network_files_round_trip_spiking_layers():
    for net in (snn_mlp(reset="zero", surrogate="arctan", time_steps=5), snn_cnn(beta=0.5)):
        back = network_from_dict(network_to_dict(net))
        assert back == net
    d = {"name": "f", "input": [4], "layers": [{"type": "lif_linear", "out_features": 2, "threshold": 1, "beta": 1}]}
    layer = network_from_dict(d).nodes[0].layer
    assert layer.threshold == 1.0 and isinstance(layer.threshold, float)


def test_zoo_networks():
    assert snn_network_names() == ("snn_mlp", "snn_cnn", "snn_vgg") == tuple(SNN_ZOO)
    sizes = {name: get_snn_network(name) for name in snn_network_names()}
    assert [len(weight_layers(n)) for n in sizes.values()] == [3, 4, 10]
    assert [n.total_params() for n in sizes.values()] == [17226, 1070794, 9488266]
    assert sizes["snn_cnn"].input_shape == sizes["snn_vgg"].input_shape == (3, 32, 32)
    assert snn_mlp(sizes=(784, 100, 10)).input_shape == (1, 28, 28)
    assert get_snn_network("SNN_VGG", time_steps=4, reset="zero").output.layer.reset == "zero"
    assert get_network("snn_mlp").name == "snn_mlp" and get_network("mlp").name == "mlp"  # one zoo lookup
    assert [len(weight_layers(digits_snn(n))) for n in snn_network_names()] == [3, 4, 8]
    assert digits_snn("snn_vgg", time_steps=3).input_shape == (1, 8, 8)
    with pytest.raises(UnknownNetworkError):
        get_snn_network("snn_resnet")
    with pytest.raises(NetworkError, match="no option"):
        get_snn_network("snn_mlp", hidden=3)
    with pytest.raises(NetworkError):
        snn_vgg((1, 8, 8))  # five poolings do not fit 8x8


# --------------------------------------------------------------------------- task graphs


def test_snn_task_graph_batches_over_time_and_serialises_the_membrane():
    T, B = 4, 2
    net = snn_cnn(time_steps=T)
    g = training_graph(net, B)
    f1, f2 = g.nodes["F", 1]["work"], g.nodes["F", 2]["work"]
    assert f1.gemms == ((B * T * 32 * 32, 32, 27),)
    assert g.nodes["WG", 2]["work"].gemms == ((64, 288, B * T * 16 * 16),)
    assert g.nodes["AG1", 4]["work"].gemms == ((B * T, 256, 10),)
    assert f1.macs == B * T * 32 * 32 * 32 * 27 == f1.gemm_macs
    # forward membrane: T*(4+1 bias) ops per neuron; the fused 2x2 max pool runs at every step
    assert f1.elementwise == B * T * (32 * 32 * 32 * (LIF_FORWARD_OPS + 1) + 32 * 16 * 16 * 4)
    assert f1.sequential_steps == f2.sequential_steps == T
    ag2 = g.nodes["AG2", 1]["work"]
    assert ag2.sequential_steps == T
    assert ag2.elementwise == B * T * (32 * 32 * 32 * LIF_BACKWARD_OPS + 32 * 16 * 16 * 4)
    # the output layer's F also holds the readout, the loss and the output membrane's BPTT
    f4 = g.nodes["F", 4]["work"]
    assert f4.elementwise == B * T * 10 * (LIF_FORWARD_OPS + 1) + 3 * B * 10 + B * T * 10 + B * T * 10 * LIF_BACKWARD_OPS
    for kind in ("WG", "AG1", "U"):
        assert g.nodes[kind, 2]["work"].sequential_steps == 1
    # AG2 reads the stored membrane (words), not the spikes
    assert g.edges[("F", 1), ("AG2", 1)] == {"bytes": B * T * 32 * 32 * 32 * 2, "tensor": ("mem", 1)}


def test_spike_tensors_cost_a_byte_or_a_bit():
    T, B = 5, 3
    net = snn_mlp(sizes=(64, 48, 10), time_steps=T)
    by_byte = training_graph(net, B)
    by_bit = training_graph(net, B, spike_bits=True)
    assert by_byte.edges[("F", 1), ("F", 2)]["bytes"] == B * T * 48  # binary spikes, 1 byte each
    assert by_bit.edges[("F", 1), ("F", 2)]["bytes"] == -(-B * T * 48 // 8)
    assert by_byte.edges[("F", 2), ("WG", 2)]["bytes"] == B * T * 48 + B * T * 10 * 2  # in (spikes) + delta
    # gradients and membranes stay words
    assert by_bit.edges[("AG1", 2), ("AG2", 1)]["bytes"] == B * T * 48 * 2
    info = by_bit.graph["layers"][1]
    assert info.input_bytes == -(-B * T * 64 // 8)  # the rate-coded input is spikes too
    assert info.output_bytes == -(-B * T * 48 // 8)
    assert info.stash_bytes == info.input_bytes + B * T * 48 * 2  # input spikes + membrane
    # an average pool after the neurons makes the tensor real-valued again
    def pooled(pool):
        return chain("p", (1, 4, 4), [LIFConv2d(2, padding=1, time_steps=T), pool, Flatten(), LIFLinear(3, time_steps=T)])

    assert training_graph(pooled(MaxPool2d(2)), 1).edges[("F", 1), ("F", 2)]["bytes"] == T * 8
    assert training_graph(pooled(AvgPool2d(2)), 1).edges[("F", 1), ("F", 2)]["bytes"] == T * 8 * 2


def test_ann_graphs_ignore_spike_bits_and_views_work():
    net = mlp((8, 6, 4))
    a, b = training_graph(net, 4), training_graph(net, 4, spike_bits=True)
    assert {n: d["work"] for n, d in a.nodes(data=True)} == {n: d["work"] for n, d in b.nodes(data=True)}
    assert all(a.edges[e] == b.edges[e] for e in a.edges)
    for view in ("pipedream", "zerobubble"):
        g = training_graph(snn_vgg(time_steps=2), 2, view=view)
        assert g.graph["num_layers"] == 10
        assert all(d["work"].sequential_steps in (1, 2) for _, d in g.nodes(data=True))


def test_systolic_cost_of_snn_tasks_counts_sequential_membrane_steps():
    T = 8
    g = training_graph(snn_mlp(time_steps=T), 4)
    work = g.nodes["F", 1]["work"]
    array = SystolicArray(8, 8, "ws")
    gemm = array.gemm_cycles(*work.gemms[0])
    assert array.task_cycles(work) == gemm + T * -(-work.elementwise // (T * 8))
    flat = dataclasses.replace(work, sequential_steps=1)
    assert array.task_cycles(work) >= array.task_cycles(flat)
    assert isinstance(work, TaskWork)


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def _subset(data: Dataset, n: int) -> Dataset:
    return Dataset(data.name, data.x_train[:n], data.y_train[:n], data.x_test[:100], data.y_test[:100], 10)


def test_training_is_deterministic_and_reports_delays(digits):
    small = _subset(digits, 96)
    net = snn_mlp(sizes=(64, 32, 16, 10), time_steps=4)
    cfg = default_snn_train_config(epochs=1, compensation="stash", delays=(2, 1, 0), seed=3)
    a, b = train_snn(net, small, cfg), train_snn(net, small, cfg)
    assert a.to_dict() == b.to_dict()
    assert a.delays == [2, 1, 0] and a.weight_copies == [3, 2, 1] and a.steps == 3
    assert a.dataset == "digits (rate-coded, T=4)"
    for mode in ("nostash", "ema", "predict"):
        r = train_snn(net, small, dataclasses.replace(cfg, compensation=mode))
        assert r.delays == [2, 1, 0] and not r.diverged
    none = train_snn(net, small, dataclasses.replace(cfg, compensation="none"))
    assert none.delays == [0, 0, 0]
    with pytest.raises(TrainingError):
        train_snn(net, small, dataclasses.replace(cfg, delays=(1, 0)))
    with pytest.raises(TrainingError):
        train_snn(snn_mlp(sizes=(64, 5)), small, cfg)


def test_small_snn_accuracy_without_and_with_delays(digits):
    """The small SNN (64-128-64-10, T=8) on rate-coded digits: >= 93%, and delays cost <= 3 points here.

    One seed keeps this to seconds; benchmarks/snn_accuracy.py averages 3 seeds for the 2-point claim.
    """
    net = digits_snn("snn_mlp")
    cfg = default_snn_train_config(epochs=8, seed=0)
    plain = train_snn(net, digits, cfg)
    delayed = train_snn(net, digits, dataclasses.replace(cfg, compensation="stash", delays=(2, 1, 0)))
    assert plain.test_accuracy >= 0.93
    assert delayed.test_accuracy >= plain.test_accuracy - 0.03
    assert plain.curve[-1]["test_accuracy"] == plain.test_accuracy


def test_delays_from_a_schedule():
    from schedules.registry import build_schedule
    from simulator.platform import Platform

    net = snn_mlp(time_steps=4)
    schedule = build_schedule("pipedream", net, Platform.homogeneous(3, SystolicArray(16, 16)), parallelism="pipeline",
                              minibatches=4, batch=8)
    delays = tuple(schedule.layer_staleness())
    assert delays == (2, 1, 0) == tuple(stage_delays([0, 1, 2]))
    result = train_snn(net, _subset(load_digits_split(), 64),
                       default_snn_train_config(epochs=1, compensation="stash", delays=delays))
    assert result.weight_copies == [3, 2, 1]
    assert SNNConfig().readout == "membrane"
    with pytest.raises(TrainingError):
        SNNConfig(readout="x")
