"""NumPy layers: every backward against central finite differences, forwards against naive loops."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import TrainingError
from models.network.layers import (
    Activation,
    Add,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool2d,
)
from models.network.spec import INPUT, NetworkSpec, Node, chain, weight_layers
from models.training.data import digits_cnn
from models.training.nn import Net, col2im, im2col, make_op, softmax_cross_entropy

EPS = 1e-6


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar function ``f()`` with respect to ``x`` (changed in place)."""
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


def assert_close(analytic: np.ndarray, numeric: np.ndarray, tol: float = 1e-6) -> None:
    scale = max(1.0, float(np.abs(numeric).max()))
    assert np.abs(analytic - numeric).max() <= tol * scale, (analytic, numeric)


def check_op(spec, in_shapes, batch=3, seed=0, train=True):
    """Backward of one op against finite differences of sum(R * y) for a random R."""
    rng = np.random.default_rng(seed)
    out_shape = spec.output_shape([tuple(s) for s in in_shapes])
    op = make_op(spec, in_shapes, out_shape)
    params = op.init(rng, np.float64)
    for p in params.values():  # move away from the special init values (zero bias, unit gamma)
        p += 0.3 * rng.standard_normal(p.shape)
    xs = [rng.standard_normal((batch, *s)) for s in in_shapes]
    y, cache = op.forward(xs, params, train)
    assert y.shape == (batch, *out_shape)
    r = rng.standard_normal(y.shape)

    def f():
        return float((op.forward(xs, params, train)[0] * r).sum())

    dxs, dps = op.backward(r, cache, params)
    for x, dx in zip(xs, dxs):
        assert_close(dx, numeric_grad(f, x))
    assert set(dps) == set(params)
    for name, p in params.items():
        assert_close(dps[name], numeric_grad(f, p))


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "gelu", "identity"])
def test_linear_backward(activation):
    check_op(Linear(5, activation=activation), [(7,)])


def test_linear_flattens_feature_maps_and_no_bias():
    check_op(Linear(4, bias=False), [(2, 3, 3)])


@pytest.mark.parametrize("kwargs", [
    dict(kernel=3, padding=1, activation="relu"),
    dict(kernel=3, stride=2, padding=1),
    dict(kernel=(2, 3), stride=(1, 2), padding=(1, 0), bias=False, activation="tanh"),
    dict(kernel=1),
])
def test_conv2d_backward(kwargs):
    check_op(Conv2d(4, **kwargs), [(3, 6, 5)], batch=2)


@pytest.mark.parametrize("kwargs", [dict(kernel=2), dict(kernel=3, stride=2, padding=1), dict(kernel=3, stride=1)])
def test_maxpool_backward(kwargs):
    check_op(MaxPool2d(**kwargs), [(2, 6, 6)], batch=2)


@pytest.mark.parametrize("kwargs", [dict(kernel=2), dict(kernel=3, stride=2, padding=1)])
def test_avgpool_backward(kwargs):
    check_op(AvgPool2d(**kwargs), [(2, 5, 6)], batch=2)


def test_global_avgpool_flatten_backward():
    check_op(GlobalAvgPool(), [(3, 4, 5)])
    check_op(Flatten(), [(3, 4, 5)])


@pytest.mark.parametrize("function", ["relu", "sigmoid", "tanh", "gelu", "identity"])
def test_activation_backward(function):
    check_op(Activation(function), [(3, 4, 4)])


@pytest.mark.parametrize("shape", [(3, 4, 4), (6,)])
def test_batchnorm_backward_train_and_eval(shape):
    check_op(BatchNorm2d(), [shape], batch=4, train=True)
    check_op(BatchNorm2d(), [shape], batch=4, train=False)


def test_add_backward():
    check_op(Add(activation="relu"), [(2, 3, 3), (2, 3, 3)])
    check_op(Add(), [(4,), (4,), (4,)])


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    loss, grad = softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(5), labels]).mean(), rel=1e-12)
    assert_close(grad, numeric_grad(lambda: softmax_cross_entropy(logits, labels)[0], logits))
    # large logits stay finite (log-sum-exp shift)
    assert np.isfinite(softmax_cross_entropy(logits * 1000, labels)[0])


def naive_conv(x, w, b, stride, pad):
    """Direct loops: the textbook definition of a (cross-correlation) convolution."""
    n, c, h, wd = x.shape
    co, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, co, oh, ow))
    for i in range(n):
        for o in range(co):
            for r in range(oh):
                for s in range(ow):
                    patch = xp[i, :, r * stride:r * stride + kh, s * stride:s * stride + kw]
                    out[i, o, r, s] = (patch * w[o]).sum() + b[o]
    return out


def test_conv_and_pool_forward_match_naive_loops():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6))
    op = make_op(Conv2d(4, kernel=3, stride=2, padding=1), [(3, 7, 6)], (4, 4, 3))
    p = {"weight": rng.standard_normal((4, 3, 3, 3)), "bias": rng.standard_normal(4)}
    assert np.allclose(op.forward([x], p, True)[0], naive_conv(x, p["weight"], p["bias"], 2, 1))
    pool = make_op(MaxPool2d(2), [(3, 7, 6)], (3, 3, 3))
    expect = np.array([[[[x[i, c, 2 * r:2 * r + 2, 2 * s:2 * s + 2].max() for s in range(3)] for r in range(3)]
                        for c in range(3)] for i in range(2)])
    assert np.array_equal(pool.forward([x], {}, True)[0], expect)


def test_im2col_col2im_are_adjoint():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 7))
    args = ((3, 2), (2, 1), (1, 1))
    cols = im2col(x, *args)
    c = rng.standard_normal(cols.shape)
    assert np.isclose((cols * c).sum(), (x * col2im(c, x.shape, *args)).sum())


def residual_net() -> NetworkSpec:
    """A small DAG: conv-bn-relu, a residual block with a fused add, pooling and a head."""
    nodes = [
        Node("conv1", Conv2d(3, kernel=3, padding=1), (INPUT,)),
        Node("bn1", BatchNorm2d(), ("conv1",)),
        Node("relu1", Activation("relu"), ("bn1",)),
        Node("conv2", Conv2d(3, kernel=3, padding=1, activation="tanh"), ("relu1",)),
        Node("add", Add(activation="relu"), ("conv2", "relu1")),
        Node("pool", AvgPool2d(2), ("add",)),
        Node("flat", Flatten(), ("pool",)),
        Node("fc", Linear(4), ("flat",)),
    ]
    return NetworkSpec("res", (2, 4, 4), tuple(nodes))


@pytest.mark.parametrize("spec", [residual_net(), digits_cnn(channels=(2, 3), hidden=5)], ids=["residual", "cnn"])
def test_whole_network_gradient(spec):
    net = Net(spec)
    rng = np.random.default_rng(4)
    params = net.init_params(rng)
    x = rng.standard_normal((3, *spec.input_shape))
    y = np.array([0, 1, 3]) % spec.shapes[spec.output.name][0]
    loss, grads = net.loss_and_grads(x, y, params)
    for p, g in zip(params, grads):
        assert_close(g, numeric_grad(lambda: net.loss_and_grads(x, y, params)[0], p))
    # the input gradient too (what AG1 of the first layer would send)
    logits, tape = net.forward(x, params)
    _, dlogits = softmax_cross_entropy(logits, y)
    _, dx = net.backward(dlogits, tape, params, input_grad=True)
    assert_close(dx, numeric_grad(lambda: net.loss_and_grads(x, y, params)[0], x))


def test_parameter_groups_follow_weight_layers():
    spec = residual_net()
    net = Net(spec)
    assert net.layer_names() == [w.name for w in weight_layers(spec)]
    assert net.param_counts() == [w.params for w in weight_layers(spec)]  # bn1 joins conv1
    assert sum(net.param_counts()) == spec.total_params()
    with pytest.raises(TrainingError):
        net.forward(np.zeros((1, 3, 4, 4)), net.init_params(np.random.default_rng(0)))


def test_backward_weights_only_change_the_propagated_error():
    """A parameter gradient needs only the stored input (WG); the error sent down uses W (AG1)."""
    spec = chain("m", (5,), [Linear(4, activation="tanh"), Linear(3, activation="tanh"), Linear(2)])
    net = Net(spec)
    rng = np.random.default_rng(5)
    params = net.init_params(rng)
    other = [p + 0.1 * rng.standard_normal(p.shape) for p in params]
    x, y = rng.standard_normal((4, 5)), np.array([0, 1, 1, 0])
    _, exact = net.loss_and_grads(x, y, params)
    _, mixed = net.loss_and_grads(x, y, params, backward_params=[params[0], params[1], other[2]])
    assert np.array_equal(mixed[2], exact[2])  # the last layer's own gradient is untouched
    assert not np.allclose(mixed[1], exact[1])  # the layers below see W_3's change


def test_zoo_networks_build_with_exact_parameter_counts():
    zoo = pytest.importorskip("models.network.zoo")
    for name in ("mlp", "lenet5", "resnet18_cifar"):
        spec = zoo.get_network(name)
        assert sum(Net(spec).param_counts()) == spec.total_params()
    # resnet18_cifar trains on 1x8x8 inputs too (forward + backward of one tiny batch)
    spec = zoo.get_network("resnet18_cifar", input_shape=(1, 8, 8))
    net = Net(spec)
    params = net.init_params(np.random.default_rng(0))
    loss, grads = net.loss_and_grads(np.random.default_rng(1).random((2, 1, 8, 8)), np.array([3, 7]), params)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads)
