"""Optimizers on one flat parameter vector: SGD with momentum and Adam.

Each weight layer of the delayed-gradient trainer owns one optimizer, because its updates
(and, with PipeMare's warm-up, its learning rate) are its own. An optimizer updates the
vector it was given *in place* and can say what its next update is expected to be
(:meth:`predicted_step`), which the ``predict`` compensation mode extrapolates with
(SpecTrain: ``W_hat = W - s * lr * v``).

Both follow PyTorch's formulas so that numbers can be compared:

* SGD: ``g <- g + wd*W``; ``v <- mu*v + g`` (no dampening); ``W <- W - lr*v``.
  The buffer ``v`` is kept even with ``mu = 0`` (it is then the last gradient), so that
  prediction has a velocity to extrapolate with.
* Adam: ``m <- b1*m + (1-b1)*g``; ``v <- b2*v + (1-b2)*g^2``;
  ``W <- W - lr * m_hat / (sqrt(v_hat) + eps)`` with bias-corrected ``m_hat``, ``v_hat``.

>>> w = np.array([1.0, -2.0])
>>> opt = SGD(w, lr=0.1, momentum=0.0)
>>> opt.step(np.array([1.0, 1.0])); w
array([ 0.9, -2.1])
>>> opt.predicted_step()
array([-0.1, -0.1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import TrainingError

OPTIMIZERS = ("sgd", "adam")


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum and L2 weight decay."""

    def __init__(self, params: np.ndarray, lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 0.0):
        # written as "not (ok)" so that NaN, which fails every comparison, is refused too
        if not (0 < lr < float("inf")) or not 0 <= momentum < 1 or not 0 <= weight_decay < float("inf"):
            raise TrainingError(f"SGD needs a finite lr > 0, 0 <= momentum < 1, finite weight_decay >= 0; "
                                f"got {lr}, {momentum}, {weight_decay}")
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.velocity = np.zeros_like(params)
        self.steps = 0

    def step(self, grad: np.ndarray, lr_scale: float = 1.0) -> None:
        """Apply one update to the parameters in place (``lr_scale`` scales this step's rate)."""
        if self.weight_decay:
            grad = grad + self.weight_decay * self.params
        self.velocity *= self.momentum
        self.velocity += grad
        self.params -= (self.lr * lr_scale) * self.velocity
        self.steps += 1

    def predicted_step(self) -> np.ndarray:
        """Expected next update, ``-lr * v`` (exact when the gradient keeps ``v`` steady)."""
        return -self.lr * self.velocity


class Adam:
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient."""

    def __init__(self, params: np.ndarray, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        b1, b2 = betas
        if (not (0 < lr < float("inf")) or not (0 <= b1 < 1 and 0 <= b2 < 1) or not (0 < eps < float("inf"))
                or not 0 <= weight_decay < float("inf")):
            raise TrainingError(f"Adam needs a finite lr > 0, betas in [0, 1), finite eps > 0 and weight_decay >= 0; "
                                f"got {lr}, {betas}, {eps}, {weight_decay}")
        self.params, self.lr, self.betas, self.eps, self.weight_decay = params, lr, (b1, b2), eps, weight_decay
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.steps = 0

    def _direction(self) -> np.ndarray:
        b1, b2 = self.betas
        m_hat = self.m / (1.0 - b1 ** self.steps)
        v_hat = self.v / (1.0 - b2 ** self.steps)
        return m_hat / (np.sqrt(v_hat) + self.eps)

    def step(self, grad: np.ndarray, lr_scale: float = 1.0) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * self.params
        b1, b2 = self.betas
        self.m *= b1
        self.m += (1.0 - b1) * grad
        self.v *= b2
        self.v += (1.0 - b2) * grad * grad
        self.steps += 1
        self.params -= (self.lr * lr_scale) * self._direction()

    def predicted_step(self) -> np.ndarray:
        """Expected next update: the current bias-corrected step (zero before the first)."""
        if self.steps == 0:
            return np.zeros_like(self.params)
        return -self.lr * self._direction()


@dataclass(frozen=True)
class OptimizerConfig:
    """Which optimizer and its hyper-parameters; ``lr=None`` takes the optimizer's default.

    >>> OptimizerConfig("adam").learning_rate
    0.002
    """

    name: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)

    #: defaults that train the digits networks in a few epochs without delay (the command line
    #: uses SGD 0.01: 0.05 with momentum 0.9 diverges with the delays 3,2,1,0 of a 4-stage pipeline)
    DEFAULT_LR = {"sgd": 0.05, "adam": 0.002}

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer {self.name!r} (known: {', '.join(OPTIMIZERS)})")

    @property
    def learning_rate(self) -> float:
        return self.DEFAULT_LR[self.name] if self.lr is None else self.lr

    def build(self, params: np.ndarray) -> SGD | Adam:
        """An optimizer that updates ``params`` in place."""
        if self.name == "sgd":
            return SGD(params, lr=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay)
        return Adam(params, lr=self.learning_rate, betas=self.betas, weight_decay=self.weight_decay)


__all__ = ["OPTIMIZERS", "SGD", "Adam", "OptimizerConfig"]
