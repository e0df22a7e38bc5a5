"""Oracle: the NumPy LIF neuron and BPTT against snntorch's Leaky + PyTorch autograd.

Optional: skipped unless torch and snntorch are installed
(``pip install torch==2.13.0 snntorch==1.0.0``, the ``oracle`` extra). Everything runs in
float64 so that agreement is to rounding error, not to float32 noise.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
from snntorch import surrogate as snn_surrogate  # noqa: E402

from models.network.layers import Flatten, MaxPool2d  # noqa: E402
from models.network.spec import chain  # noqa: E402
from models.network.spiking import LIFConv2d, LIFLinear  # noqa: E402
from models.training.snn import SpikingNet, leaky  # noqa: E402

torch.set_default_dtype(torch.float64)


def torch_surrogate(name: str, slope: float):
    return snn_surrogate.fast_sigmoid(slope=slope) if name == "fast-sigmoid" else snn_surrogate.atan(alpha=slope)


def torch_leaky(layer) -> "snn.Leaky":
    return snn.Leaky(beta=layer.beta, threshold=layer.threshold, reset_mechanism=layer.reset,
                     spike_grad=torch_surrogate(layer.surrogate, layer.surrogate_slope))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("beta,threshold", [(0.5, 1.0), (0.9, 0.75), (1.0, 1.25), (0.0, 0.5)])
def test_leaky_matches_snntorch(reset, beta, threshold):
    # thresholds exact in float32: snntorch's spikes and resets are float32 tensors, so its
    # reset * threshold is rounded to float32 even when everything else is float64
    rng = np.random.default_rng(0)
    currents = rng.uniform(-0.5, 1.5, size=(30, 4, 5))
    spk, mem = leaky(currents, beta, threshold, reset)
    lif = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset)
    m = torch.zeros(4, 5)
    for t in range(currents.shape[0]):
        s, m = lif(torch.from_numpy(currents[t]), m)
        np.testing.assert_array_equal(spk[t], s.detach().numpy())
        np.testing.assert_allclose(mem[t], m.detach().numpy(), rtol=0, atol=1e-12)


def _torch_loss(net_spec, params, x, y, readout):
    """The same network in PyTorch + snntorch; returns the loss and the parameter tensors."""
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    modules, weights = [], iter(tensors)
    for node in net_spec.order:
        layer = node.layer
        if isinstance(layer, (LIFLinear, LIFConv2d)):
            flat = next(weights)
            in_shape = net_spec.input_shapes(node)[0]
            if isinstance(layer, LIFLinear):
                n_in = int(np.prod(in_shape))
                w = flat[: layer.out_features * n_in].reshape(layer.out_features, n_in)
                b = flat[layer.out_features * n_in:]
                op = (lambda w, b: lambda a: a.reshape(a.shape[0], -1) @ w.T + b)(w, b)
            else:
                kh, kw = layer.kernel_hw
                n = layer.out_channels * in_shape[0] * kh * kw
                w = flat[:n].reshape(layer.out_channels, in_shape[0], kh, kw)
                b = flat[n:]
                op = (lambda w, b, layer: lambda a: torch.nn.functional.conv2d(
                    a, w, b, stride=layer.stride_hw, padding=layer.padding_hw))(w, b, layer)
            modules.append(("lif", op, torch_leaky(layer)))
        elif isinstance(layer, MaxPool2d):
            modules.append(("op", lambda a: torch.nn.functional.max_pool2d(a, 2), None))
        elif isinstance(layer, Flatten):
            modules.append(("op", lambda a: a.reshape(a.shape[0], -1), None))
        else:  # pragma: no cover
            raise AssertionError(layer)
    mems = [None] * len(modules)
    out_spk, out_mem = [], []
    for t in range(x.shape[0]):
        a = torch.from_numpy(x[t])
        for i, (kind, op, lif) in enumerate(modules):
            if kind == "lif":
                cur = op(a)
                a, mems[i] = lif(cur, torch.zeros_like(cur) if mems[i] is None else mems[i])
                a = a.double()  # snntorch's spikes are float32 (exact 0/1)
            else:
                a = op(a)
        out_spk.append(a)
        out_mem.append(mems[-1])
    logits = torch.stack(out_mem).mean(0) if readout == "membrane" else torch.stack(out_spk).sum(0)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    return loss, tensors


def _spec(kind: str, reset: str, surrogate: str, T: int):
    neuron = dict(time_steps=T, beta=0.8, threshold=1.0, reset=reset, surrogate=surrogate)
    if kind == "fc":
        return chain("tiny", (6,), [LIFLinear(7, **neuron), LIFLinear(3, **neuron)])
    return chain("tinyconv", (1, 6, 6), [LIFConv2d(3, kernel=3, padding=1, **neuron), MaxPool2d(2), Flatten(),
                                          LIFLinear(3, **neuron)])


@pytest.mark.parametrize("kind", ["fc", "conv"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", ["fast-sigmoid", "arctan"])
@pytest.mark.parametrize("readout", ["membrane", "spikes"])
def test_bptt_gradients_match_autograd(kind, reset, surrogate, readout):
    T = 6
    spec = _spec(kind, reset, surrogate, T)
    net = SpikingNet(spec, readout=readout, init_gain=2.5)
    rng = np.random.default_rng(1)
    params = net.init_params(rng)
    for p in params:  # non-zero biases too
        p += 0.1 * rng.standard_normal(p.shape)
    x = (rng.random((T, 5, *spec.input_shape)) < 0.6).astype(np.float64)
    y = np.array([0, 1, 2, 0, 1])
    loss, grads = net.loss_and_grads(x, y, params)
    # the network must actually spike, or the comparison is vacuous
    assert all(0.0 < r < 1.0 for r in net.spike_rates(x, params).values())
    t_loss, tensors = _torch_loss(spec, params, x, y, readout)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), abs=1e-12)
    for g, t in zip(grads, tensors):
        # snntorch's spikes are float32, so the gradients flowing back through them are too
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-6, atol=1e-9)
        assert np.abs(g).max() > 0
