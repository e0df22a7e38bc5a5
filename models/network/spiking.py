"""Spiking layer specifications (SpikePipe): a weight layer followed by leaky integrate-and-fire neurons.

A spiking layer runs ``time_steps`` = T steps. At every step its synapse (a linear layer
or a convolution, no activation) turns the input spikes into a current ``I_t`` and the
neurons integrate it as snntorch's ``Leaky`` does (docs/design.md section 7, :mod:`models.training.snn`):

    reset_t = H(U_{t-1} - theta)                      (no gradient through the reset)
    U_t = beta * U_{t-1} + I_t - reset_t * theta       reset "subtract"
    U_t = beta * (1 - reset_t) * U_{t-1} + I_t         reset "zero"
    S_t = H(U_t - theta)                               backward: a surrogate dS/dU

Shapes are per sample *and per step* (``(N,)`` or ``(C, H, W)``, like the non-spiking
specs), so the fused pooling and flatten layers of :mod:`models.network.layers` work unchanged.
Work figures are per sample over all T steps: ``macs`` is T times the synapse's MACs and
``elementwise`` is T times the membrane update of every neuron. The three matrix
products of training batch over ``B * T`` rows (``gemm_shapes``, which
:func:`models.graph.build.training_graph` calls through its ``gemm_shapes`` hook).

Element-wise operation counts (our modelling choice, per neuron and step):

* forward, :data:`LIF_FORWARD_OPS` = 4: decay ``beta * U``, add the current, subtract the
  reset, compare with the threshold; plus 1 for the bias when there is one;
* backward, :data:`LIF_BACKWARD_OPS` = 6: the surrogate derivative (3: absolute value or
  square, multiply-add, reciprocal), its product with the incoming gradient (1), and the
  carry ``beta * dL/dU_{t+1}`` added in (2).

Both recurrences are sequential in t (forward in t, backward in reverse t); a task graph
marks them with ``TaskWork.sequential_steps = T``.

>>> layer = LIFLinear(10, time_steps=25)
>>> layer.output_shape([(64,)]), layer.params([(64,)]), layer.macs([(64,)])
((10,), 650, 16000)
>>> layer.gemm_shapes((64,), (10,), batch=32)
{'F': (800, 10, 64), 'WG': (10, 64, 800), 'AG1': (800, 64, 10)}
>>> LIFConv2d(16, kernel=3, padding=1, time_steps=4).output_shape([(3, 32, 32)])
(16, 32, 32)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from models.errors import NetworkError
from models.network.layers import Conv2d, LayerSpec, Linear, Shape, numel

#: reset mechanisms of snntorch's Leaky that docs/design.md section 7 uses
RESETS = ("subtract", "zero")
#: surrogate gradients: name -> default slope (k of the fast sigmoid, alpha of the arctan)
SURROGATES = {"fast-sigmoid": 25.0, "arctan": 2.0}
_SURROGATE_ALIASES = {"fast-sigmoid": "fast-sigmoid", "fast_sigmoid": "fast-sigmoid", "fastsigmoid": "fast-sigmoid",
                      "arctan": "arctan", "atan": "arctan"}

LIF_FORWARD_OPS = 4
LIF_BACKWARD_OPS = 6


def canonical_surrogate(name: str) -> str:
    """``"fast_sigmoid"``, ``"atan"`` etc. -> ``"fast-sigmoid"`` / ``"arctan"``.

    >>> canonical_surrogate("atan")
    'arctan'
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _SURROGATE_ALIASES:
        raise NetworkError(f"unknown surrogate {name!r} (known: {', '.join(SURROGATES)})")
    return _SURROGATE_ALIASES[key]


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NetworkError(f"{what} must be a finite number, got {value!r}")
    return float(value)


class _LIF:
    """Neuron fields and methods shared by the spiking specs (a mixin, not a spec itself)."""

    spiking: ClassVar[bool] = True
    has_weights: ClassVar[bool] = True

    def _check_lif(self) -> None:
        t = self.time_steps
        if not isinstance(t, int) or isinstance(t, bool) or t <= 0:
            raise NetworkError(f"{self.kind} time_steps must be a positive integer, got {t!r}")
        beta = _number(self.beta, f"{self.kind} beta")
        if not 0.0 <= beta <= 1.0:  # snntorch clamps beta to [0, 1]
            raise NetworkError(f"{self.kind} beta must lie in [0, 1], got {self.beta!r}")
        threshold = _number(self.threshold, f"{self.kind} threshold")
        if threshold <= 0:
            raise NetworkError(f"{self.kind} threshold must be > 0, got {self.threshold!r}")
        if self.reset not in RESETS:
            raise NetworkError(f"{self.kind} reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        surrogate = canonical_surrogate(self.surrogate)
        slope = None
        if self.slope is not None:
            slope = _number(self.slope, f"{self.kind} slope")
            if slope <= 0:
                raise NetworkError(f"{self.kind} surrogate slope must be > 0, got {self.slope!r}")
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "surrogate", surrogate)
        object.__setattr__(self, "slope", slope)

    @property
    def surrogate_slope(self) -> float:
        """The slope in use: ``slope`` if given, else the surrogate's default (25 or 2)."""
        return SURROGATES[self.surrogate] if self.slope is None else self.slope

    def synapse(self) -> LayerSpec:  # pragma: no cover - interface
        """The non-spiking layer computing the input current of one step."""
        raise NotImplementedError

    # -- LayerSpec ----------------------------------------------------------------------

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return self.synapse().output_shape(inputs)

    def params(self, inputs: list[Shape]) -> int:
        return self.synapse().params(inputs)

    def macs(self, inputs: list[Shape]) -> int:
        """Synapse MACs of all T steps, per sample."""
        return self.time_steps * self.synapse().macs(inputs)

    def elementwise(self, inputs: list[Shape]) -> int:
        """Forward membrane updates (and bias adds) of all T steps, per sample."""
        return self.time_steps * numel(self.output_shape(inputs)) * (LIF_FORWARD_OPS + int(self.bias))

    def backward_elementwise(self, inputs: list[Shape]) -> int:
        """Back-propagation through the membrane recurrence (reverse t), per sample."""
        return self.time_steps * numel(self.output_shape(inputs)) * LIF_BACKWARD_OPS


@dataclass(frozen=True)
class LIFLinear(_LIF, LayerSpec):
    """Fully connected synapse + LIF neurons; a feature-map input is flattened.

    >>> LIFLinear(10, beta=0.5, reset="zero", surrogate="atan").surrogate_slope
    2.0
    """

    out_features: int
    bias: bool = True
    time_steps: int = 8
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "arctan"
    slope: float | None = None

    kind: ClassVar[str] = "lif_linear"

    def __post_init__(self) -> None:
        self.synapse()  # validates out_features
        self._check_lif()

    def synapse(self) -> Linear:
        return Linear(self.out_features, bias=self.bias)

    def gemm_shapes(self, in_shape: Shape, out_shape: Shape, batch: int) -> dict[str, tuple[int, int, int]]:
        """(M, N, K) of F, WG and AG1 with the batch dimension over ``batch * T`` rows."""
        rows = batch * self.time_steps
        n_in, n_out = numel(in_shape), self.out_features
        return {"F": (rows, n_out, n_in), "WG": (n_out, n_in, rows), "AG1": (rows, n_in, n_out)}


@dataclass(frozen=True)
class LIFConv2d(_LIF, LayerSpec):
    """2-D convolution synapse + LIF neurons (one neuron per output element).

    >>> LIFConv2d(8, kernel=3, padding=1, time_steps=5).gemm_shapes((3, 8, 8), (8, 8, 8), batch=2)
    {'F': (640, 8, 27), 'WG': (8, 27, 640), 'AG1': (640, 27, 8)}
    """

    out_channels: int
    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    bias: bool = True
    time_steps: int = 8
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "arctan"
    slope: float | None = None

    kind: ClassVar[str] = "lif_conv2d"

    def __post_init__(self) -> None:
        self.synapse()  # validates channels, kernel, stride, padding
        self._check_lif()

    def synapse(self) -> Conv2d:
        return Conv2d(self.out_channels, kernel=self.kernel, stride=self.stride, padding=self.padding, bias=self.bias)

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return self.synapse().kernel_hw

    @property
    def stride_hw(self) -> tuple[int, int]:
        return self.synapse().stride_hw

    @property
    def padding_hw(self) -> tuple[int, int]:
        return self.synapse().padding_hw

    def gemm_shapes(self, in_shape: Shape, out_shape: Shape, batch: int) -> dict[str, tuple[int, int, int]]:
        """im2col GEMMs (see :mod:`models.graph.build`) with ``batch * T * OH * OW`` rows."""
        kh, kw = self.kernel_hw
        k = in_shape[0] * kh * kw
        rows = batch * self.time_steps * out_shape[1] * out_shape[2]
        cout = self.out_channels
        return {"F": (rows, cout, k), "WG": (cout, k, rows), "AG1": (rows, k, cout)}


#: spiking layer kinds by their network-file name
SPIKING_KINDS: dict[str, type[LayerSpec]] = {cls.kind: cls for cls in (LIFLinear, LIFConv2d)}

#: non-weight layers through which a spike tensor stays binary (max of spikes, a reshape)
SPIKE_PRESERVING_KINDS = ("maxpool", "flatten")


def is_spiking(layer: LayerSpec) -> bool:
    """True for a spiking layer spec (anything declaring ``spiking = True``).

    >>> is_spiking(LIFLinear(4)), is_spiking(Linear(4))
    (True, False)
    """
    return bool(getattr(layer, "spiking", False))


def time_steps(layer: LayerSpec) -> int:
    """T of a spiking layer, 1 for any other layer.

    >>> time_steps(LIFLinear(4, time_steps=6)), time_steps(Linear(4))
    (6, 1)
    """
    return int(getattr(layer, "time_steps", 1)) if is_spiking(layer) else 1


__all__ = [
    "RESETS", "SURROGATES", "LIF_FORWARD_OPS", "LIF_BACKWARD_OPS", "canonical_surrogate", "LIFLinear", "LIFConv2d",
    "SPIKING_KINDS", "SPIKE_PRESERVING_KINDS", "is_spiking", "time_steps",
]
