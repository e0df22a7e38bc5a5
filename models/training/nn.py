"""NumPy layers with explicit forward and backward, and trainable networks built from a :class:`NetworkSpec`.

No autograd library: every layer kind of :mod:`models.network.layers` has an *op* with

* ``forward(xs, p, train) -> (y, cache)`` — ``xs`` the list of input arrays (batch first),
  ``p`` a dict of parameter arrays (``weight``, ``bias``, ``gamma``, ``beta``), ``cache``
  what the backward needs;
* ``backward(dy, cache, p) -> (dxs, dp)`` — the gradients of the inputs and of the parameters.

``backward`` takes the parameters again instead of reading them from the cache on purpose:
the delayed-gradient trainer (:mod:`models.training`) runs the backward of a minibatch
through *other* weights than its forward in some compensation modes (no stashing, EMA
reconstruction). A parameter gradient never depends on the backward weights, only the
gradient sent to the inputs does (``dx = dz W``), exactly as in docs/design.md section 3 (WG needs the
stored input, AG1 needs W).

A :class:`Net` groups parameters by *weight layer* (docs/design.md section 3, :func:`weight_layers`):
group ``l - 1`` is one flat float vector holding the parameters of weight layer ``l`` and of the
nodes fused into it (a batch norm's scale and shift join the convolution before it), so a
layer's delay, its stashed versions and its moving average all act on one vector.

Conventions (those of PyTorch, so results can be compared): linear weight ``(out, in)``,
convolution weight ``(C_out, C_in, Kh, Kw)`` (cross-correlation), average pooling counts the
zero padding, batch norm normalises with the biased batch variance and keeps running
statistics (momentum 0.1, unbiased variance) for evaluation, GELU is the exact erf form.

>>> from models.network import chain
>>> from models.network.layers import Linear
>>> net = Net(chain("tiny", (4,), [Linear(3, activation="relu"), Linear(2)]))
>>> params = net.init_params(np.random.default_rng(0))
>>> [p.size for p in params]
[15, 8]
>>> loss, grads = net.loss_and_grads(np.ones((5, 4)), np.array([0, 1, 0, 1, 1]), params)
>>> [g.shape for g in grads]
[(15,), (8,)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf  # scipy ships with scikit-learn, which the project requires

from models.errors import NetworkError, TrainingError
from models.network.layers import (
    Activation,
    Add,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    LayerSpec,
    Linear,
    MaxPool2d,
    Shape,
    _pair,
)
from models.network.spec import INPUT, NetworkSpec, weight_layers

Array = np.ndarray


# --------------------------------------------------------------------------- activations


def activation_forward(name: str | None, z: Array) -> tuple[Array, Any]:
    """Apply a named activation; returns the output and what :func:`activation_backward` needs.

    >>> activation_forward("relu", np.array([-1.0, 2.0]))[0]
    array([0., 2.])
    """
    if name in (None, "identity"):
        return z, None
    if name == "relu":
        mask = z > 0
        return np.maximum(z, 0.0), mask
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return s, s
    if name == "tanh":
        t = np.tanh(z)
        return t, t
    if name == "gelu":
        cdf = 0.5 * (1.0 + erf(z / np.sqrt(2.0)))
        return z * cdf, (z, cdf)
    raise NetworkError(f"unknown activation {name!r}")


def activation_backward(name: str | None, da: Array, cache: Any) -> Array:
    """Gradient of the activation's input from the gradient of its output."""
    if name in (None, "identity"):
        return da
    if name == "relu":
        return da * cache
    if name == "sigmoid":
        return da * cache * (1.0 - cache)
    if name == "tanh":
        return da * (1.0 - cache * cache)
    if name == "gelu":
        z, cdf = cache
        pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        return da * (cdf + z * pdf)
    raise NetworkError(f"unknown activation {name!r}")


# --------------------------------------------------------------------------- im2col helpers


def _pad(x: Array, ph: int, pw: int, value: float = 0.0) -> Array:
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _window(i: int, j: int, oh: int, ow: int, sh: int, sw: int) -> tuple[slice, ...]:
    """Index of the input pixels that kernel offset (i, j) touches for every output pixel."""
    return (slice(None), slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))


def im2col(x: Array, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
           pad_value: float = 0.0) -> Array:
    """Patches of ``x`` (B, C, H, W) as an array (B, C, Kh, Kw, OH, OW).

    One strided copy per kernel offset (Kh*Kw copies) instead of one per output pixel: the
    kernels of the zoo are small, the feature maps comparatively large.

    >>> im2col(np.arange(9.0).reshape(1, 1, 3, 3), (2, 2), (1, 1), (0, 0))[0, 0, :, :, 0, 0]
    array([[0., 1.],
           [3., 4.]])
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    b, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xp = _pad(x, ph, pw, pad_value)
    cols = np.empty((b, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[_window(i, j, oh, ow, sh, sw)]
    return cols


def col2im(cols: Array, x_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int]) -> Array:
    """Adjoint of :func:`im2col`: sums each patch gradient back onto the input pixels."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    b, c, h, w = x_shape
    oh, ow = cols.shape[-2:]
    dxp = np.zeros((b, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[_window(i, j, oh, ow, sh, sw)] += cols[:, :, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + w]


# --------------------------------------------------------------------------- ops


class Op:
    """One node of a network with its forward and backward; parameter-free by default."""

    def __init__(self, spec: LayerSpec, in_shapes: list[Shape], out_shape: Shape):
        self.spec, self.in_shapes, self.out_shape = spec, [tuple(s) for s in in_shapes], tuple(out_shape)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def init(self, rng: np.random.Generator, dtype: Any) -> dict[str, Array]:
        return {}

    def forward(self, xs: list[Array], p: dict[str, Array], train: bool) -> tuple[Array, Any]:
        raise NotImplementedError  # pragma: no cover

    def backward(self, dy: Array, cache: Any, p: dict[str, Array]) -> tuple[list[Array], dict[str, Array]]:
        raise NotImplementedError  # pragma: no cover


def _he_gain(activation: str | None) -> float:
    # He initialisation keeps the activations' scale through ReLU-like layers; plain
    # LeCun (gain 1) for a linear output or a saturating activation.
    return np.sqrt(2.0) if activation in ("relu", "gelu") else 1.0


class LinearOp(Op):
    """``y = f(x W^T + b)``; a feature-map input is flattened first."""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        n_in = int(np.prod(self.in_shapes[0]))
        shapes = {"weight": (self.spec.out_features, n_in)}
        if self.spec.bias:
            shapes["bias"] = (self.spec.out_features,)
        return shapes

    def init(self, rng: np.random.Generator, dtype: Any) -> dict[str, Array]:
        shapes = self.param_shapes()
        fan_in = shapes["weight"][1]
        p = {"weight": (rng.standard_normal(shapes["weight"]) * _he_gain(self.spec.activation) / np.sqrt(fan_in)).astype(dtype)}
        if "bias" in shapes:
            p["bias"] = np.zeros(shapes["bias"], dtype=dtype)
        return p

    def forward(self, xs, p, train):
        x = xs[0]
        xf = x.reshape(x.shape[0], -1)
        z = xf @ p["weight"].T
        if "bias" in p:
            z = z + p["bias"]
        y, act = activation_forward(self.spec.activation, z)
        return y, (x.shape, xf, act)

    def backward(self, dy, cache, p):
        x_shape, xf, act = cache
        dz = activation_backward(self.spec.activation, dy, act)
        grads = {"weight": dz.T @ xf}
        if "bias" in p:
            grads["bias"] = dz.sum(axis=0)
        return [(dz @ p["weight"]).reshape(x_shape)], grads


class Conv2dOp(Op):
    """2-D cross-correlation through im2col: one GEMM (B*OH*OW, C*Kh*Kw) x (C*Kh*Kw, C_out)."""

    def __init__(self, spec, in_shapes, out_shape):
        super().__init__(spec, in_shapes, out_shape)
        self.k, self.s, self.pad = spec.kernel_hw, spec.stride_hw, spec.padding_hw

    def param_shapes(self):
        c = self.in_shapes[0][0]
        shapes = {"weight": (self.spec.out_channels, c, *self.k)}
        if self.spec.bias:
            shapes["bias"] = (self.spec.out_channels,)
        return shapes

    def init(self, rng, dtype):
        shapes = self.param_shapes()
        fan_in = int(np.prod(shapes["weight"][1:]))
        p = {"weight": (rng.standard_normal(shapes["weight"]) * _he_gain(self.spec.activation) / np.sqrt(fan_in)).astype(dtype)}
        if "bias" in shapes:
            p["bias"] = np.zeros(shapes["bias"], dtype=dtype)
        return p

    def forward(self, xs, p, train):
        x = xs[0]
        b = x.shape[0]
        cols = im2col(x, self.k, self.s, self.pad)
        _, c, kh, kw, oh, ow = cols.shape
        rows = cols.transpose(0, 4, 5, 1, 2, 3).reshape(b * oh * ow, c * kh * kw)
        w = p["weight"]
        z = rows @ w.reshape(w.shape[0], -1).T
        if "bias" in p:
            z = z + p["bias"]
        z = z.reshape(b, oh, ow, w.shape[0]).transpose(0, 3, 1, 2)
        y, act = activation_forward(self.spec.activation, z)
        return y, (x.shape, rows, (oh, ow), act)

    def backward(self, dy, cache, p):
        x_shape, rows, (oh, ow), act = cache
        w = p["weight"]
        cout, c, kh, kw = w.shape
        dz = activation_backward(self.spec.activation, dy, act)
        dz_rows = dz.transpose(0, 2, 3, 1).reshape(-1, cout)
        grads = {"weight": (dz_rows.T @ rows).reshape(w.shape)}
        if "bias" in p:
            grads["bias"] = dz_rows.sum(axis=0)
        drows = dz_rows @ w.reshape(cout, -1)
        dcols = drows.reshape(x_shape[0], oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
        return [col2im(dcols, x_shape, self.k, self.s, self.pad)], grads


class _PoolOp(Op):
    def __init__(self, spec, in_shapes, out_shape):
        super().__init__(spec, in_shapes, out_shape)
        self.k = _pair(spec.kernel, "kernel")
        self.s = _pair(spec.stride if spec.stride is not None else spec.kernel, "stride")
        self.pad = _pair(spec.padding, "padding")


class MaxPoolOp(_PoolOp):
    """Max over each window (padding never wins); the gradient goes to the first maximum."""

    def forward(self, xs, p, train):
        x = xs[0]
        cols = im2col(x, self.k, self.s, self.pad, pad_value=-np.inf)
        b, c, kh, kw, oh, ow = cols.shape
        flat = cols.reshape(b, c, kh * kw, oh, ow)
        arg = flat.argmax(axis=2)
        y = np.take_along_axis(flat, arg[:, :, None], axis=2)[:, :, 0]
        return y, (x.shape, arg)

    def backward(self, dy, cache, p):
        x_shape, arg = cache
        kh, kw = self.k
        b, c, oh, ow = dy.shape
        dcols = np.zeros((b, c, kh * kw, oh, ow), dtype=dy.dtype)
        np.put_along_axis(dcols, arg[:, :, None], dy[:, :, None], axis=2)
        return [col2im(dcols.reshape(b, c, kh, kw, oh, ow), x_shape, self.k, self.s, self.pad)], {}


class AvgPoolOp(_PoolOp):
    """Mean over each window, zero padding included (PyTorch's ``count_include_pad=True``)."""

    def forward(self, xs, p, train):
        x = xs[0]
        cols = im2col(x, self.k, self.s, self.pad)
        return cols.mean(axis=(2, 3)), x.shape

    def backward(self, dy, cache, p):
        kh, kw = self.k
        dcols = np.broadcast_to((dy / (kh * kw))[:, :, None, None], (*dy.shape[:2], kh, kw, *dy.shape[2:]))
        return [col2im(dcols, cache, self.k, self.s, self.pad)], {}


class GlobalAvgPoolOp(Op):
    def forward(self, xs, p, train):
        x = xs[0]
        return x.mean(axis=(2, 3)), x.shape

    def backward(self, dy, cache, p):
        b, c, h, w = cache
        return [np.broadcast_to((dy / (h * w))[:, :, None, None], cache).copy()], {}


class FlattenOp(Op):
    def forward(self, xs, p, train):
        return xs[0].reshape(xs[0].shape[0], -1), xs[0].shape

    def backward(self, dy, cache, p):
        return [dy.reshape(cache)], {}


class ActivationOp(Op):
    def forward(self, xs, p, train):
        return activation_forward(self.spec.function, xs[0])

    def backward(self, dy, cache, p):
        return [activation_backward(self.spec.function, dy, cache)], {}


class AddOp(Op):
    def forward(self, xs, p, train):
        z = xs[0]
        for x in xs[1:]:
            z = z + x
        return activation_forward(self.spec.activation, z)

    def backward(self, dy, cache, p):
        dz = activation_backward(self.spec.activation, dy, cache)
        return [dz] * len(self.in_shapes), {}


class BatchNormOp(Op):
    """Batch normalisation over the channel axis (axis 1) of a (B, C, H, W) or (B, C) input.

    Training normalises with the batch statistics and updates running statistics that
    evaluation (``train=False``) uses. The running statistics are the only mutable state of
    a :class:`Net`; they are not trained, so delays do not apply to them.
    """

    eps = 1e-5
    momentum = 0.1

    def __init__(self, spec, in_shapes, out_shape):
        super().__init__(spec, in_shapes, out_shape)
        c = self.in_shapes[0][0]
        self.running_mean = np.zeros(c)
        self.running_var = np.ones(c)

    def param_shapes(self):
        c = self.in_shapes[0][0]
        return {"gamma": (c,), "beta": (c,)}

    def init(self, rng, dtype):
        c = self.in_shapes[0][0]
        self.running_mean = np.zeros(c, dtype=dtype)
        self.running_var = np.ones(c, dtype=dtype)
        return {"gamma": np.ones(c, dtype=dtype), "beta": np.zeros(c, dtype=dtype)}

    @staticmethod
    def _axes(x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return axes, shape

    def forward(self, xs, p, train):
        x = xs[0]
        axes, shape = self._axes(x)
        if train:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            n = x.size // x.shape[1]
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var * n / max(n - 1, 1)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        y = xhat * p["gamma"].reshape(shape) + p["beta"].reshape(shape)
        return y, (xhat, inv_std, train)

    def backward(self, dy, cache, p):
        xhat, inv_std, train = cache
        axes, shape = self._axes(dy)
        grads = {"gamma": (dy * xhat).sum(axis=axes), "beta": dy.sum(axis=axes)}
        dxhat = dy * p["gamma"].reshape(shape)
        if not train:  # statistics are constants in evaluation mode
            return [dxhat * inv_std.reshape(shape)], grads
        n = dy.size // dy.shape[1]
        dx = (inv_std.reshape(shape) / n) * (
            n * dxhat - dxhat.sum(axis=axes).reshape(shape) - xhat * (dxhat * xhat).sum(axis=axes).reshape(shape)
        )
        return [dx], grads


OPS: dict[type[LayerSpec], type[Op]] = {
    Linear: LinearOp, Conv2d: Conv2dOp, MaxPool2d: MaxPoolOp, AvgPool2d: AvgPoolOp,
    GlobalAvgPool: GlobalAvgPoolOp, Flatten: FlattenOp, Activation: ActivationOp, Add: AddOp,
    BatchNorm2d: BatchNormOp,
}


def make_op(spec: LayerSpec, in_shapes: list[Shape], out_shape: Shape) -> Op:
    """The trainable op of a layer spec.

    >>> make_op(Linear(3), [(4,)], (3,)).param_shapes()
    {'weight': (3, 4), 'bias': (3,)}
    """
    for cls in type(spec).__mro__:
        if cls in OPS:
            return OPS[cls](spec, in_shapes, out_shape)
    raise NetworkError(f"layer kind {spec.kind!r} has no NumPy implementation")


# --------------------------------------------------------------------------- loss


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[float, Array]:
    """Mean cross-entropy of integer ``labels`` and its gradient with respect to ``logits``.

    >>> loss, d = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6), d.shape
    (1.386294, (2, 4))
    """
    shifted = logits - logits.max(axis=1, keepdims=True)  # stable log-sum-exp
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -float(logp[np.arange(n), labels].mean())
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return loss, grad / n


def mean_squared_error(outputs: Array, targets: Array) -> tuple[float, Array]:
    """Half the squared error summed over a sample's outputs, averaged over the samples, and its
    gradient with respect to ``outputs``: ``(o - y) / N``, so the Hessian in the outputs is ``I / N``
    (a reconstruction loss; an autoencoder's targets are its inputs).

    >>> loss, d = mean_squared_error(np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 1.0]]))
    >>> loss, d.tolist()
    (1.5, [[0.5, 1.0], [0.0, -0.5]])
    """
    diff = outputs - np.asarray(targets, dtype=outputs.dtype).reshape(outputs.shape)
    n = outputs.shape[0]
    return 0.5 * float((diff * diff).sum()) / n, diff / n


#: the training losses a :class:`Net` can minimise: a name -> (loss, its gradient in the outputs)
LOSSES = {"cross_entropy": softmax_cross_entropy, "mse": mean_squared_error}


def r_squared(outputs: Array, targets: Array) -> float:
    """The fraction of the targets' variance the outputs explain (1: a perfect reconstruction; 0: no
    better than the targets' mean): a reconstruction's score where a classifier has its accuracy.

    >>> r_squared(np.array([[1.0], [3.0]]), np.array([[1.0], [3.0]])), r_squared(np.array([[2.0], [2.0]]), np.array([[1.0], [3.0]]))
    (1.0, 0.0)
    """
    y = np.asarray(targets, dtype=np.float64).reshape(outputs.shape)
    spread = float(((y - y.mean(axis=0)) ** 2).sum())
    return 1.0 - float(((outputs - y) ** 2).sum()) / spread if spread > 0 else float(np.all(outputs == y))


# --------------------------------------------------------------------------- networks


@dataclass(frozen=True)
class ParamSlot:
    """Where one parameter tensor lives inside its weight layer's flat vector."""

    node: str
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def param_views(network: str, nodes, slots: Sequence[Sequence[ParamSlot]],
                params: Sequence[Array]) -> dict[str, dict[str, Array]]:
    """Per-node dicts of reshaped views into one flat parameter vector per weight layer."""
    if len(params) != len(slots):
        raise TrainingError(f"network {network!r} has {len(slots)} weight layers, got {len(params)} parameter vectors")
    out: dict[str, dict[str, Array]] = {name: {} for name in nodes}
    for flat, group in zip(params, slots):
        for s in group:
            out[s.node][s.name] = flat[s.offset:s.offset + s.size].reshape(s.shape)
    return out


@dataclass
class Tape:
    """What a forward pass leaves for the backward: each node's cache, in forward order."""

    caches: dict[str, Any]
    input_shape: tuple[int, ...]


class Net:
    """A trainable network: the ops of a :class:`NetworkSpec` with parameters grouped per weight layer.

    Parameters are passed to every call as a list of flat vectors, one per weight layer
    (``params[l - 1]`` for layer ``l``), so a caller can run a forward with one set of
    weights and the backward with another. :meth:`layer_names`, :meth:`param_counts` and
    :attr:`slots` describe the grouping.

    >>> from models.network import chain
    >>> from models.network.layers import Conv2d, MaxPool2d, Flatten, Linear
    >>> net = Net(chain("c", (1, 8, 8), [Conv2d(4, padding=1, activation="relu"), MaxPool2d(2), Flatten(), Linear(10)]))
    >>> net.layer_names(), net.param_counts()
    (['conv1', 'fc1'], [40, 650])
    """

    def __init__(self, spec: NetworkSpec, dtype: Any = np.float64, loss: str = "cross_entropy"):
        if loss not in LOSSES:
            raise TrainingError(f"unknown loss {loss!r} (known: {', '.join(LOSSES)})")
        self.spec = spec
        self.dtype = np.dtype(dtype)
        #: what training minimises: softmax cross-entropy of integer labels, or the squared error of
        #: target vectors (``mse``; :func:`mean_squared_error`)
        self.loss = loss
        self.layers = weight_layers(spec)
        self.ops: dict[str, Op] = {
            node.name: make_op(node.layer, spec.input_shapes(node), spec.shapes[node.name]) for node in spec.order
        }
        group_of = {}
        for wl in self.layers:
            for node in (wl.node, *wl.fused):
                group_of[node.name] = wl.index - 1
        self.slots: list[list[ParamSlot]] = [[] for _ in self.layers]
        for node in spec.order:
            for name, shape in self.ops[node.name].param_shapes().items():
                group = self.slots[group_of[node.name]]
                offset = group[-1].offset + group[-1].size if group else 0
                group.append(ParamSlot(node.name, name, tuple(shape), offset))

    # -- description ------------------------------------------------------------------

    def layer_names(self) -> list[str]:
        return [wl.name for wl in self.layers]

    def param_counts(self) -> list[int]:
        """Trainable parameters of each weight layer (its fused nodes included)."""
        return [sum(s.size for s in group) for group in self.slots]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    # -- parameters -------------------------------------------------------------------

    def init_params(self, rng: np.random.Generator) -> list[Array]:
        """Fresh parameters (He-normal weights, zero biases, unit batch-norm scales) as flat vectors."""
        flats = [np.zeros(n, dtype=self.dtype) for n in self.param_counts()]
        # initialise in topological order so the random stream does not depend on grouping
        per_node = {node.name: self.ops[node.name].init(rng, self.dtype) for node in self.spec.order}
        for flat, group in zip(flats, self.slots):
            for s in group:
                flat[s.offset:s.offset + s.size] = per_node[s.node][s.name].ravel()
        return flats

    def views(self, params: Sequence[Array]) -> dict[str, dict[str, Array]]:
        """Per-node dicts of reshaped views into the flat parameter vectors."""
        return param_views(self.spec.name, self.ops, self.slots, params)

    # -- compute ----------------------------------------------------------------------

    def prepare_input(self, x: Array) -> Array:
        """``x`` as this network's dtype and input shape (8x8 images reshape into a 64-input MLP)."""
        x = np.asarray(x, dtype=self.dtype)
        want = self.spec.input_shape
        if x.shape[1:] != want:
            if int(np.prod(x.shape[1:])) != int(np.prod(want)):
                raise TrainingError(f"network {self.spec.name!r} expects inputs of shape {want}, got {x.shape[1:]}")
            x = x.reshape(x.shape[0], *want)
        return x

    def forward(self, x: Array, params: Sequence[Array], train: bool = True) -> tuple[Array, Tape]:
        """Output of the network (logits) and the tape for :meth:`backward`."""
        x = self.prepare_input(x)
        p = self.views(params)
        values: dict[str, Array] = {INPUT: x}
        caches: dict[str, Any] = {}
        for node in self.spec.order:
            values[node.name], caches[node.name] = self.ops[node.name].forward(
                [values[i] for i in node.inputs], p[node.name], train)
        return values[self.spec.output.name], Tape(caches, x.shape)

    def backward(self, dout: Array, tape: Tape, params: Sequence[Array],
                 input_grad: bool = False) -> list[Array] | tuple[list[Array], Array]:
        """Gradients of every weight layer's flat vector, given d(loss)/d(output).

        ``params`` are the weights the backward propagates through (they may differ from the
        forward's). With ``input_grad`` also returns d(loss)/d(input).
        """
        p = self.views(params)
        grads = [np.zeros(n, dtype=self.dtype) for n in self.param_counts()]
        gviews = self.views(grads)
        pending: dict[str, Array] = {self.spec.output.name: dout}
        for node in reversed(self.spec.order):
            dy = pending.pop(node.name)
            dxs, dp = self.ops[node.name].backward(dy, tape.caches[node.name], p[node.name])
            for name, g in dp.items():
                gviews[node.name][name][...] = g
            for src, dx in zip(node.inputs, dxs):
                if src == INPUT and not input_grad:
                    continue
                pending[src] = pending[src] + dx if src in pending else dx
        if input_grad:
            return grads, pending[INPUT]
        return grads

    def loss_and_grads(self, x: Array, y: Array, params: Sequence[Array],
                       backward_params: Sequence[Array] | None = None) -> tuple[float, list[Array]]:
        """Mean loss (:attr:`loss`) of a minibatch and the gradient of every weight layer.

        The forward runs with ``params``; the backward propagates through ``backward_params``
        (default: the same weights, which gives the exact gradient).
        """
        logits, tape = self.forward(x, params, train=True)
        loss, dlogits = LOSSES[self.loss](logits, np.asarray(y))
        return loss, self.backward(dlogits, tape, params if backward_params is None else backward_params)

    def logits(self, x: Array, params: Sequence[Array], batch: int = 512) -> Array:
        """Evaluation-mode outputs, computed in chunks to bound memory."""
        x = self.prepare_input(x)
        return np.concatenate([self.forward(x[i:i + batch], params, train=False)[0] for i in range(0, len(x), batch)])

    def evaluate(self, x: Array, y: Array, params: Sequence[Array]) -> tuple[float, float]:
        """(mean loss, score) in evaluation mode: the accuracy of a classifier, the explained variance
        (:func:`r_squared`) of a reconstruction."""
        logits = self.logits(x, params)
        loss, _ = LOSSES[self.loss](logits, np.asarray(y))
        if self.loss == "mse":
            return loss, r_squared(logits, y)
        return loss, float((logits.argmax(axis=1) == np.asarray(y)).mean())


__all__ = [
    "activation_forward", "activation_backward", "im2col", "col2im", "Op", "make_op", "OPS",
    "softmax_cross_entropy", "mean_squared_error", "r_squared", "LOSSES", "ParamSlot", "Tape", "Net",
]
