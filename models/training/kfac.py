"""K-FAC for fully connected networks: the second-order baseline of the DHO2 study.

Kronecker-factored approximate curvature (Martens & Grosse, 2015), as the data-parallel
second-order designs the DHO2 paper compares against use it (KAISA / kfac-pytorch style):
for every dense layer l with input a (N x d_in, with a column of ones for the bias) and
back-propagated delta dz (N x d_out) the Fisher block is approximated by G (x) A with

    A = a~^T a~ / N,        G = N * dz^T dz      (dz is the gradient of the *mean* loss)

i.e. the empirical Fisher, built from the gradients of the training loss itself, as
kfac-pytorch does (no sampled labels, so no extra backward). Factors are running averages
(``ema``) refreshed, together with their inverses, every ``refresh`` steps (T_inv). The
preconditioned gradient of layer l is ``(G + sqrt(gamma)/pi I)^-1 [gW gb] (A + pi sqrt(gamma) I)^-1``
with factored Tikhonov damping ``pi = sqrt((tr A / dim A) / (tr G / dim G))``, scaled down by
the KL clip ``nu = min(1, sqrt(kl_clip / (lr^2 * sum(precond . grad))))``, and fed to the
training core's SGD with momentum (:class:`models.training.optim.SGD`).

Memory: the factors ``sum (d_in + 1)^2 + d_out^2`` and as many inverse values; work per refresh:
``2 N d^2`` MACs for the statistics and about ``d^3`` MACs per factor inversion
(``simulator.studies.dho2`` charges the same).

>>> from models.training.nn import Net
>>> from models.network.zoo import mlp
>>> from models.training.hvp import Objective
>>> obj = Objective(Net(mlp((4, 3, 2))))
>>> w = obj.init(np.random.default_rng(0))
>>> k = Kfac(obj, w, KfacConfig(lr=0.1))
>>> loss = k.step(np.ones((5, 4)), np.array([0, 1, 0, 1, 1]))
>>> k.factor_words()
[25, 9, 16, 4]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import TrainingError
from models.training.hvp import DenseLayer, Objective, dense_pass
from models.training.optim import SGD

Array = np.ndarray


@dataclass(frozen=True)
class KfacConfig:
    """K-FAC's hyper-parameters (kfac-pytorch's defaults for damping, factor decay and KL clip).

    >>> KfacConfig().refresh
    10
    """

    lr: float = 0.05
    momentum: float = 0.9
    damping: float = 1e-3
    ema: float = 0.95
    refresh: int = 10
    kl_clip: float | None = 1e-3

    def __post_init__(self) -> None:
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.damping <= 0 or not 0 <= self.ema < 1:
            raise TrainingError("K-FAC needs lr > 0, 0 <= momentum < 1, damping > 0, 0 <= ema < 1")
        if self.refresh < 1 or (self.kl_clip is not None and self.kl_clip <= 0):
            raise TrainingError("K-FAC needs refresh >= 1 and kl_clip > 0 (or None)")


def factor_sizes(layers: list[DenseLayer]) -> list[tuple[int, int]]:
    """(dim A, dim G) per layer: (d_in + 1 with a bias, d_out).

    >>> from models.training.nn import Net
    >>> from models.network.zoo import mlp
    >>> from models.training.hvp import dense_chain
    >>> factor_sizes(dense_chain(Net(mlp((64, 128, 64, 10)))))
    [(65, 128), (129, 64), (65, 10)]
    """
    return [(d.in_features + (1 if d.bias is not None else 0), d.out_features) for d in layers]


class Kfac:
    """K-FAC as a step rule on the flat vector ``w`` (see the module docstring)."""

    def __init__(self, objective: Objective, w: Array, config: KfacConfig = KfacConfig()):
        if objective.dense is None:
            raise TrainingError(f"K-FAC here handles chains of fully connected layers; {objective.net.spec.name!r} is not one")
        self.objective, self.w, self.config = objective, w, config
        self.layers = objective.dense
        self.sizes = factor_sizes(self.layers)
        self.A: list[Array | None] = [None] * len(self.layers)
        self.G: list[Array | None] = [None] * len(self.layers)
        self.A_inv: list[Array] = []
        self.G_inv: list[Array] = []
        self.optimizer = SGD(w, lr=config.lr, momentum=config.momentum)
        self.t = 0
        self.refreshes = 0

    def factor_words(self) -> list[int]:
        """Values of every factor, A and G of each layer in turn."""
        return [d * d for pair in self.sizes for d in pair]

    def _refresh(self, inputs: list[Array], deltas: list[Array]) -> None:
        beta = self.config.ema
        self.A_inv, self.G_inv = [], []
        for i, d in enumerate(self.layers):
            a = inputs[i]
            if d.bias is not None:
                a = np.hstack([a, np.ones((len(a), 1))])
            n = len(a)
            A = a.T @ a / n
            G = n * (deltas[i].T @ deltas[i])
            self.A[i] = A if self.A[i] is None else beta * self.A[i] + (1 - beta) * A
            self.G[i] = G if self.G[i] is None else beta * self.G[i] + (1 - beta) * G
            A, G = self.A[i], self.G[i]
            pi = np.sqrt((np.trace(A) / len(A)) / max(np.trace(G) / len(G), 1e-30))
            pi = pi if np.isfinite(pi) and pi > 0 else 1.0
            root = np.sqrt(self.config.damping)
            self.A_inv.append(np.linalg.inv(A + pi * root * np.eye(len(A))))
            self.G_inv.append(np.linalg.inv(G + (root / pi) * np.eye(len(G))))
        self.refreshes += 1

    def precondition(self, grad: Array) -> Array:
        """The K-FAC direction of a flat gradient (using the current inverses)."""
        out = np.empty_like(grad)
        for i, d in enumerate(self.layers):
            gW = grad[d.weight].reshape(d.out_features, d.in_features)
            M = np.hstack([gW, grad[d.bias][:, None]]) if d.bias is not None else gW
            P = self.G_inv[i] @ M @ self.A_inv[i]
            out[d.weight] = P[:, :d.in_features].ravel()
            if d.bias is not None:
                out[d.bias] = P[:, -1]
        return out

    def step(self, x: Array, y: Array) -> float:
        p = dense_pass(self.objective, self.w, x, y)
        loss, grad = p.loss, p.grad
        if self.objective.l2:
            loss += 0.5 * self.objective.l2 * float(self.w @ self.w)
            grad = grad + self.objective.l2 * self.w
        if self.t % self.config.refresh == 0:
            self._refresh(p.inputs, p.deltas)
        direction = self.precondition(grad)
        if self.config.kl_clip is not None:
            vg = float(direction @ grad) * self.config.lr ** 2
            if vg > 0:
                direction *= min(1.0, float(np.sqrt(self.config.kl_clip / vg)))
        self.optimizer.step(direction)
        self.t += 1
        return loss

    def stats(self) -> dict[str, Any]:
        return {"refreshes": self.refreshes, "factor_words": int(sum(self.factor_words()))}


__all__ = ["KfacConfig", "factor_sizes", "Kfac"]
