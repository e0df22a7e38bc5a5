"""Hessian-vector products of a :class:`models.training.nn.Net`'s loss, seen as a function of one flat vector.

FOSI (and its distributed form DHO2) works on the whole parameter vector at once: Lanczos
multiplies the Hessian of the loss by vectors of length n = all parameters. The training core
groups parameters per weight layer (``Net`` takes a list of flat vectors), so
:class:`Objective` is the adapter: it concatenates the per-layer vectors into one vector ``w``
(``split`` hands ``Net`` views into ``w``, no copy), and gives

* ``loss_grad(w, x, y)`` - the net's mean loss (softmax cross-entropy, or half the squared error of a
  reconstruction; + ``l2/2 * |w|^2``) and its gradient,
  computed by ``Net.loss_and_grads`` (the colleague's backward, not a re-implementation);
* ``hvp(w, v, x, y)`` - the Hessian of that loss times ``v``.

Two HVPs:

``hvp_exact`` - Pearlmutter's R-operator ("forward-over-backward"): one forward, one
    R-forward (directional derivative of every activation along ``v``), one backward and one
    R-backward, for networks that are chains of fully connected layers (MLPs, logistic
    regression): exact to rounding. Work per linear layer l > 1: 9 GEMMs of the layer's
    shapes (forward 1, R-forward 2, backward 2, R-backward 4), i.e. 3x a gradient; the first
    layer needs 4 (no input gradient) - ``simulator.studies.dho2`` costs an HVP this way.
``hvp_fd`` - central finite difference of two gradients, for any network:
    ``Hv ~ (g(w + h u) - g(w - h u)) / (2h) * |v|`` with ``u = v/|v|`` and the step
    ``h = FD_STEP * (1 + |w|_inf)``, FD_STEP = 1e-5 ~ cube root of the float64 epsilon: it
    balances the O(h^2) truncation error against the O(eps/h) rounding error of the two
    gradients. Across a ReLU kink the gradient is not differentiable and the difference
    sees the kink; the exact R-operator uses f'' = 0 there (the a.e. Hessian).

``hvp`` picks the exact one whenever the network allows it.

>>> from models.network.zoo import mlp
>>> obj = Objective(Net(mlp((4, 3, 2))))
>>> w = obj.init(np.random.default_rng(0))
>>> x, y = np.random.default_rng(1).normal(size=(5, 4)), np.array([0, 1, 0, 1, 1])
>>> v = np.random.default_rng(2).normal(size=obj.n)
>>> bool(np.allclose(obj.hvp(w, v, x, y), hvp_fd(obj, w, v, x, y), atol=1e-6))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from models.errors import TrainingError
from models.training.nn import LOSSES, FlattenOp, LinearOp, Net

Array = np.ndarray

#: relative finite-difference step of :func:`hvp_fd` (about the cube root of float64's epsilon)
FD_STEP = 1e-5


# --------------------------------------------------------------------------- activations and their derivatives


def activation_derivatives(name: str | None, z: Array) -> tuple[Array, Array | float, Array | float]:
    """``(f(z), f'(z), f''(z))`` of a named activation (ReLU's f'' is 0 almost everywhere).

    >>> a, d1, d2 = activation_derivatives("tanh", np.array([0.0]))
    >>> float(a[0]), float(d1[0]), float(d2[0])
    (0.0, 1.0, -0.0)
    """
    if name in (None, "identity"):
        return z, 1.0, 0.0
    if name == "relu":
        mask = (z > 0).astype(z.dtype)
        return z * mask, mask, 0.0
    if name == "tanh":
        t = np.tanh(z)
        d1 = 1.0 - t * t
        return t, d1, -2.0 * t * d1
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        d1 = s * (1.0 - s)
        return s, d1, d1 * (1.0 - 2.0 * s)
    if name == "gelu":
        cdf = 0.5 * (1.0 + erf(z / np.sqrt(2.0)))
        pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        return z * cdf, cdf + z * pdf, pdf * (2.0 - z * z)
    raise TrainingError(f"no second derivative for activation {name!r}")


# --------------------------------------------------------------------------- layout of a dense chain


@dataclass(frozen=True)
class DenseLayer:
    """One fully connected layer inside the flat vector: ``weight`` (out, in) and ``bias`` slices."""

    node: str
    weight: slice
    bias: slice | None
    out_features: int
    in_features: int
    activation: str | None

    def views(self, w: Array) -> tuple[Array, Array | None]:
        W = w[self.weight].reshape(self.out_features, self.in_features)
        return W, (w[self.bias] if self.bias is not None else None)


def dense_chain(net: Net) -> list[DenseLayer] | None:
    """The layers of ``net`` if it is a chain of Linear ops (Flatten allowed), else None.

    >>> from models.network.zoo import mlp
    >>> [(d.out_features, d.in_features, d.activation) for d in dense_chain(Net(mlp((4, 3, 2))))]
    [(3, 4, 'relu'), (2, 3, None)]
    """
    group_start = np.concatenate([[0], np.cumsum(net.param_counts())]).astype(int)
    where = {}
    for g, slots in enumerate(net.slots):
        for s in slots:
            start = int(group_start[g]) + s.offset
            where[(s.node, s.name)] = slice(start, start + s.size)
    layers: list[DenseLayer] = []
    previous = None
    for node in net.spec.order:
        op = net.ops[node.name]
        if len(node.inputs) != 1 or (previous is not None and node.inputs[0] != previous):
            return None  # not a chain
        previous = node.name
        if isinstance(op, FlattenOp):
            continue
        if type(op) is not LinearOp:
            return None
        shapes = op.param_shapes()
        out_f, in_f = shapes["weight"]
        layers.append(DenseLayer(node.name, where[(node.name, "weight")], where.get((node.name, "bias")),
                                 out_f, in_f, op.spec.activation))
    return layers


# --------------------------------------------------------------------------- the objective


class Objective:
    """Mean loss of ``net`` (``net.loss``; + ``l2/2 |w|^2``) as a function of one flat parameter vector.

    ``w`` concatenates the per-weight-layer vectors of ``Net`` in layer order. ``l2`` is added
    to the loss itself (not to the gradient inside an optimizer), so every optimizer, every
    HVP and the Hessian see the same function - FOSI's authors note that weight decay
    added inside the base optimizer would be counted twice.

    >>> from models.network.zoo import mlp
    >>> obj = Objective(Net(mlp((4, 3, 2))), l2=1e-3)
    >>> obj.n, obj.sizes
    (23, [15, 8])
    """

    def __init__(self, net: Net, l2: float = 0.0):
        if l2 < 0:
            raise TrainingError(f"l2 must be >= 0, got {l2}")
        self.net, self.l2 = net, float(l2)
        self.sizes = net.param_counts()
        self.n = int(sum(self.sizes))
        self._bounds = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.dense = dense_chain(net)

    # -- layout -------------------------------------------------------------------------
    def split(self, w: Array) -> list[Array]:
        """Per-weight-layer views into ``w`` (what ``Net`` takes)."""
        if w.shape != (self.n,):
            raise TrainingError(f"expected a parameter vector of length {self.n}, got shape {w.shape}")
        return [w[a:b] for a, b in zip(self._bounds[:-1], self._bounds[1:])]

    def flatten(self, params: Sequence[Array]) -> Array:
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in params])

    def init(self, rng: np.random.Generator) -> Array:
        """Fresh parameters from ``Net.init_params`` as one vector."""
        return self.flatten(self.net.init_params(rng))

    def inputs(self, x: Array) -> Array:
        """Inputs flattened per sample (an 8x8 image becomes 64 features for an MLP)."""
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(len(x), -1) if self.dense is not None else x

    # -- values ---------------------------------------------------------------------------
    def loss_grad(self, w: Array, x: Array, y: Array) -> tuple[float, Array]:
        """Mean loss of the minibatch and its gradient (through ``Net.loss_and_grads``)."""
        loss, grads = self.net.loss_and_grads(x, y, self.split(w))
        g = self.flatten(grads)
        if self.l2:
            loss += 0.5 * self.l2 * float(w @ w)
            g += self.l2 * w
        return float(loss), g

    def evaluate(self, w: Array, x: Array, y: Array) -> tuple[float, float]:
        """(mean loss incl. the l2 term, accuracy) in evaluation mode."""
        loss, acc = self.net.evaluate(x, y, self.split(w))
        if self.l2:
            loss += 0.5 * self.l2 * float(w @ w)
        return float(loss), float(acc)

    def hvp(self, w: Array, v: Array, x: Array, y: Array, method: str = "auto") -> Array:
        """Hessian of the minibatch loss at ``w`` times ``v`` (``method``: auto, exact, fd)."""
        if method == "auto":
            method = "exact" if self.dense is not None else "fd"
        if method == "exact":
            return hvp_exact(self, w, v, x, y)
        if method == "fd":
            return hvp_fd(self, w, v, x, y)
        raise TrainingError(f"unknown HVP method {method!r} (known: auto, exact, fd)")


# --------------------------------------------------------------------------- dense passes


@dataclass
class DensePass:
    """What one forward + backward of a dense chain leaves: per-layer inputs, pre-activations, deltas.

    ``inputs[l]`` is a_{l-1} (N, in), ``deltas[l]`` is dL/dz_l (N, out) of the *mean* loss,
    ``grad`` the flat gradient (without the l2 term), ``loss`` the mean cross-entropy.
    K-FAC builds its Kronecker factors from ``inputs`` and ``deltas``.
    """

    loss: float
    grad: Array
    inputs: list[Array]
    pre: list[Array]
    deltas: list[Array]
    probs: Array


def _require_dense(obj: Objective) -> list[DenseLayer]:
    if obj.dense is None:
        raise TrainingError(f"network {obj.net.spec.name!r} is not a chain of fully connected layers; "
                            "the exact HVP and K-FAC need one (use the finite-difference HVP)")
    return obj.dense


def dense_pass(obj: Objective, w: Array, x: Array, y: Array) -> DensePass:
    """Forward and backward of a dense chain, keeping every layer's input and delta.

    >>> from models.network.zoo import mlp
    >>> obj = Objective(Net(mlp((4, 3, 2))))
    >>> w = obj.init(np.random.default_rng(0)); x = np.ones((2, 4)); y = np.array([0, 1])
    >>> bool(np.allclose(dense_pass(obj, w, x, y).grad, obj.loss_grad(w, x, y)[1]))
    True
    """
    layers = _require_dense(obj)
    a = obj.inputs(x)
    inputs, pre, derivs = [], [], []
    for d in layers:
        W, b = d.views(w)
        z = a @ W.T + (b if b is not None else 0.0)
        inputs.append(a)
        pre.append(z)
        a, d1, _ = activation_derivatives(d.activation, z)
        derivs.append(d1)
    loss, da = LOSSES[obj.net.loss](a, np.asarray(y))
    if obj.net.loss == "cross_entropy":
        probs = np.exp(a - a.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    else:  # a reconstruction: the outputs themselves
        probs = a
    grad = np.zeros(obj.n)
    deltas: list[Array] = [None] * len(layers)  # type: ignore[list-item]
    for i in range(len(layers) - 1, -1, -1):
        d = layers[i]
        dz = da * derivs[i]
        deltas[i] = dz
        grad[d.weight] = (dz.T @ inputs[i]).ravel()
        if d.bias is not None:
            grad[d.bias] = dz.sum(axis=0)
        if i:
            da = dz @ d.views(w)[0]
    return DensePass(float(loss), grad, inputs, pre, deltas, probs)


def hvp_exact(obj: Objective, w: Array, v: Array, x: Array, y: Array) -> Array:
    """Exact Hessian-vector product by Pearlmutter's R-operator (dense chains only).

    R{.} is the directional derivative along ``v``. Forward: R{z} = R{a_prev} W^T + a_prev V^T
    + R{b}, R{a} = f'(z) R{z}. Softmax cross-entropy: R{dL/dlogits} = (p * R{o} - p (p . R{o})) / N;
    half the squared error: R{dL/do} = R{o} / N.
    Backward: R{dz} = R{da} f'(z) + da f''(z) R{z}; R{gW} = R{dz}^T a_prev + dz^T R{a_prev};
    R{da_prev} = R{dz} W + dz V.

    >>> from models.network.zoo import mlp
    >>> obj = Objective(Net(mlp((3, 2))))     # logistic regression: 3 inputs, 2 classes
    >>> w = np.zeros(obj.n); x = np.eye(3); y = np.array([0, 1, 1])
    >>> # moving every logit by the same amount leaves the softmax unchanged: a null direction
    >>> bool(np.allclose(hvp_exact(obj, w, np.ones(obj.n), x, y), 0.0))
    True
    """
    layers = _require_dense(obj)
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (obj.n,):
        raise TrainingError(f"HVP vector must have length {obj.n}, got shape {v.shape}")
    a = obj.inputs(x)
    n_samples = len(a)
    Ra = np.zeros_like(a)
    inputs, Rinputs, Rzs, d1s, d2s = [], [], [], [], []
    for d in layers:
        W, b = d.views(w)
        V, vb = d.views(v)
        z = a @ W.T + (b if b is not None else 0.0)
        Rz = Ra @ W.T + a @ V.T + (vb if vb is not None else 0.0)
        inputs.append(a)
        Rinputs.append(Ra)
        a, d1, d2 = activation_derivatives(d.activation, z)
        Ra = d1 * Rz
        Rzs.append(Rz)
        d1s.append(d1)
        d2s.append(d2)
    _, da = LOSSES[obj.net.loss](a, np.asarray(y))
    if obj.net.loss == "mse":  # half the squared error: the outputs' Hessian is I / N
        Rda = Ra / n_samples
    else:
        p = da * n_samples
        p[np.arange(n_samples), np.asarray(y)] += 1.0  # da = (p - onehot) / N, so recover p
        Rda = (p * Ra - p * (p * Ra).sum(axis=1, keepdims=True)) / n_samples
    out = np.zeros(obj.n)
    for i in range(len(layers) - 1, -1, -1):
        d = layers[i]
        W, _ = d.views(w)
        V, _ = d.views(v)
        dz = da * d1s[i]
        Rdz = Rda * d1s[i] + da * d2s[i] * Rzs[i]
        RgW = Rdz.T @ inputs[i]
        if i:  # the network input does not depend on the parameters: R{a_0} = 0
            RgW += dz.T @ Rinputs[i]
        out[d.weight] = RgW.ravel()
        if d.bias is not None:
            out[d.bias] = Rdz.sum(axis=0)
        if i:
            da, Rda = dz @ W, Rdz @ W + dz @ V
    if obj.l2:
        out += obj.l2 * v
    return out


def hvp_fd(obj: Objective, w: Array, v: Array, x: Array, y: Array, step: float = FD_STEP) -> Array:
    """Central finite difference of gradients along ``v`` (any network; see the module docstring)."""
    v = np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        return np.zeros(obj.n)
    u = v / norm
    h = step * (1.0 + float(np.max(np.abs(w))))
    _, g_plus = obj.loss_grad(w + h * u, x, y)
    _, g_minus = obj.loss_grad(w - h * u, x, y)
    return (g_plus - g_minus) * (norm / (2.0 * h))


def hessian(obj: Objective, w: Array, x: Array, y: Array, method: str = "auto") -> Array:
    """The explicit n x n Hessian, one HVP per unit vector, symmetrised (small problems only)."""
    if obj.n > 5000:
        raise TrainingError(f"an explicit Hessian of {obj.n} parameters is too large")
    eye = np.eye(obj.n)
    H = np.stack([obj.hvp(w, eye[i], x, y, method) for i in range(obj.n)], axis=1)
    return 0.5 * (H + H.T)


def logistic_hessian(x: Array, y: Array, w: Array, num_classes: int, l2: float = 0.0) -> Array:
    """Closed-form Hessian of mean softmax cross-entropy for a linear model (an independent check).

    Parameters are ordered as ``Objective`` orders a single Linear layer: the weight matrix
    (classes x features, row-major) then the bias. With x~ = [x, 1] and p the softmax,
    H = 1/N sum_i (diag(p_i) - p_i p_i^T) (x) x~_i x~_i^T, permuted into that order.

    >>> H = logistic_hessian(np.zeros((1, 2)), np.array([0]), np.zeros(2 * 2 + 2), 2)
    >>> H.shape, float(H[-1, -1])
    ((6, 6), 0.25)
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    N, d = x.shape
    C = num_classes
    W = w[:C * d].reshape(C, d)
    b = w[C * d:]
    z = x @ W.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    xt = np.hstack([x, np.ones((N, 1))])
    # H[(c, j), (c', j')] = 1/N sum_i S_i[c, c'] xt_i[j] xt_i[j']
    S = p[:, :, None] * np.eye(C)[None] - p[:, :, None] * p[:, None, :]
    full = np.einsum("iab,ij,ik->ajbk", S, xt, xt) / N  # (C, d+1, C, d+1)
    # reorder: weights (c, j < d) first in row-major order, then the biases (c, j = d)
    order = [c * (d + 1) + j for c in range(C) for j in range(d)] + [c * (d + 1) + d for c in range(C)]
    H = full.reshape(C * (d + 1), C * (d + 1))[np.ix_(order, order)]
    if l2:
        H = H + l2 * np.eye(len(H))
    return H


__all__ = [
    "FD_STEP", "activation_derivatives", "DenseLayer", "dense_chain", "Objective", "DensePass", "dense_pass",
    "hvp_exact", "hvp_fd", "hessian", "logistic_hessian",
]
