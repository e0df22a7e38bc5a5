"""Hessian-vector products against explicit Hessians (closed form, and finite differences of Net's gradients)."""

import numpy as np
import pytest

from models.errors import TrainingError
from models.network.layers import Linear
from models.network.spec import chain
from models.network.zoo import mlp
from models.training.data import digits_cnn
from models.training.hvp import (
    FD_STEP,
    Objective,
    activation_derivatives,
    dense_chain,
    dense_pass,
    hessian,
    hvp_exact,
    hvp_fd,
    logistic_hessian,
)
from models.training.nn import Net


def _problem(net, samples=12, seed=0, l2=0.0):
    rng = np.random.default_rng(seed)
    obj = Objective(Net(net), l2=l2)
    w = obj.init(rng) + 0.1 * rng.standard_normal(obj.n)  # non-zero biases too
    x = rng.standard_normal((samples, *net.input_shape))
    classes = net.shapes[net.output.name][0]
    y = rng.integers(0, classes, samples)
    return obj, w, x, y


def _fd_hessian(obj, w, x, y, h=1e-5):
    """Explicit Hessian by central differences of the training core's gradients (independent of the R-operator)."""
    cols = []
    for i in range(obj.n):
        e = np.zeros(obj.n)
        e[i] = h
        cols.append((obj.loss_grad(w + e, x, y)[1] - obj.loss_grad(w - e, x, y)[1]) / (2 * h))
    return np.stack(cols, axis=1)


def test_exact_hvp_equals_closed_form_logistic_hessian():
    obj, w, x, y = _problem(mlp((5, 3)), samples=20)
    H = logistic_hessian(x, y, w, 3)
    assert np.allclose(hessian(obj, w, x, y, "exact"), H, atol=1e-12)
    v = np.random.default_rng(3).standard_normal(obj.n)
    assert np.allclose(hvp_exact(obj, w, v, x, y), H @ v, atol=1e-12)


@pytest.mark.parametrize("acts", [("tanh", "sigmoid"), ("gelu", "tanh")])
def test_exact_hvp_matches_explicit_hessian_of_smooth_mlp(acts):
    net = chain("smooth", (4,), [Linear(5, activation=acts[0]), Linear(3, activation=acts[1]), Linear(3)])
    obj, w, x, y = _problem(net, l2=1e-2)
    H_fd = _fd_hessian(obj, w, x, y)
    H = hessian(obj, w, x, y, "exact")
    assert np.abs(H - H_fd).max() < 1e-6 * max(1.0, np.abs(H).max())


def test_exact_hessian_is_symmetric_before_symmetrising():
    obj, w, x, y = _problem(mlp((4, 6, 5, 3)))
    eye = np.eye(obj.n)
    H = np.stack([hvp_exact(obj, w, eye[i], x, y) for i in range(obj.n)], axis=1)
    assert np.abs(H - H.T).max() < 1e-12


def test_relu_mlp_exact_and_finite_difference_agree():
    obj, w, x, y = _problem(mlp((6, 8, 7, 4)), samples=16, seed=1)
    v = np.random.default_rng(2).standard_normal(obj.n)
    exact = hvp_exact(obj, w, v, x, y)
    # the step FD_STEP * (1 + |w|) is far smaller than any pre-activation's distance to the kink here
    assert np.allclose(hvp_fd(obj, w, v, x, y), exact, rtol=1e-5, atol=1e-7)
    assert obj.hvp(w, v, x, y) is not None and np.allclose(obj.hvp(w, v, x, y), exact)


def test_l2_adds_its_multiple_of_v_and_dense_pass_matches_net_gradient():
    obj, w, x, y = _problem(mlp((4, 5, 3)), l2=0.3)
    plain = Objective(obj.net)
    v = np.arange(obj.n, dtype=float)
    assert np.allclose(obj.hvp(w, v, x, y) - plain.hvp(w, v, x, y), 0.3 * v)
    p = dense_pass(plain, w, x, y)
    loss, g = plain.loss_grad(w, x, y)
    assert np.isclose(p.loss, loss) and np.allclose(p.grad, g)
    assert [a.shape[1] for a in p.inputs] == [4, 5] and [d.shape[1] for d in p.deltas] == [5, 3]


def test_layout_round_trip_and_dense_chain():
    obj, w, *_ = _problem(mlp((4, 5, 3)))
    parts = obj.split(w)
    assert [len(p) for p in parts] == obj.sizes and np.array_equal(obj.flatten(parts), w)
    parts[0][0] = 42.0  # views, not copies: Net and FOSI see the same numbers
    assert w[0] == 42.0
    layers = dense_chain(obj.net)
    assert [(d.weight.start, d.weight.stop, d.bias.start, d.bias.stop) for d in layers] == [(0, 20, 20, 25), (25, 40, 40, 43)]


def test_cnn_falls_back_to_finite_differences():
    obj = Objective(Net(digits_cnn(channels=(2, 2), hidden=4)))
    assert obj.dense is None
    rng = np.random.default_rng(0)
    w = obj.init(rng)
    x, y = rng.random((3, 1, 8, 8)), np.array([1, 2, 3])
    v = rng.standard_normal(obj.n)
    hv = obj.hvp(w, v, x, y)
    assert hv.shape == (obj.n,) and np.all(np.isfinite(hv))
    # symmetry of the finite-difference Hessian in two random directions
    u = rng.standard_normal(obj.n)
    assert np.isclose(u @ hv, v @ obj.hvp(w, u, x, y), rtol=1e-4)
    with pytest.raises(TrainingError):
        hvp_exact(obj, w, v, x, y)


def test_activation_second_derivatives_by_differences():
    z = np.linspace(-2, 2, 9) + 0.05
    h = 1e-5
    for name in ("tanh", "sigmoid", "gelu", "relu", None):
        _, d1, d2 = activation_derivatives(name, z)
        _, d1p, _ = activation_derivatives(name, z + h)
        _, d1m, _ = activation_derivatives(name, z - h)
        assert np.allclose((np.asarray(d1p) - np.asarray(d1m)) / (2 * h) * np.ones_like(z), d2, atol=1e-6)
    assert FD_STEP == 1e-5


def test_squared_error_hessian_of_a_linear_map_is_the_inputs_second_moment():
    # L = 1/(2N) sum_i |W x_i + b - y_i|^2: in the parameters (W row-major, then b) the Hessian is
    # I_out (x) (X~^T X~ / N) with X~ = [x, 1], whatever the weights and targets
    rng = np.random.default_rng(4)
    obj = Objective(Net(mlp((4, 3)), loss="mse"))
    w = rng.standard_normal(obj.n)
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((9, 3))
    xt = np.hstack([x, np.ones((9, 1))])
    block = xt.T @ xt / 9  # (5, 5): rows of W with their bias
    H = np.zeros((obj.n, obj.n))
    for o in range(3):  # weight (o, i) at 4o + i, bias o at 12 + o
        idx = [4 * o + i for i in range(4)] + [12 + o]
        H[np.ix_(idx, idx)] = block
    assert np.allclose(hessian(obj, w, x, y, "exact"), H, atol=1e-12)
    v = rng.standard_normal(obj.n)
    assert np.allclose(hvp_fd(obj, w, v, x, y), H @ v, atol=1e-7)


def test_squared_error_gradient_and_hvp_of_a_relu_autoencoder_by_differences():
    rng = np.random.default_rng(5)
    obj = Objective(Net(mlp((6, 4, 2, 4, 6)), loss="mse"), l2=1e-3)
    w = obj.init(rng) + 0.1 * rng.standard_normal(obj.n)
    x = rng.random((10, 6))
    loss, g = obj.loss_grad(w, x, x)
    h, eye = 1e-6, np.eye(obj.n)
    fd = np.array([(obj.loss_grad(w + h * e, x, x)[0] - obj.loss_grad(w - h * e, x, x)[0]) / (2 * h) for e in eye])
    assert np.abs(fd - g).max() < 1e-7
    H_fd = _fd_hessian(obj, w, x, x)
    assert np.abs(hessian(obj, w, x, x, "exact") - 0.5 * (H_fd + H_fd.T)).max() < 1e-5
    assert np.allclose(dense_pass(obj, w, x, x).grad + obj.l2 * w, g)


def test_an_unknown_loss_is_refused():
    with pytest.raises(TrainingError, match="unknown loss 'hinge'"):
        Net(mlp((4, 3)), loss="hinge")
