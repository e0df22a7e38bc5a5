"""Layer specifications: what one node of a network computes, with shape inference.

Shapes are per sample and exclude the batch: ``(C, H, W)`` for feature maps and
``(N,)`` for vectors. Work figures (MACs, element-wise operations, parameters) are
also per sample; the task-graph builder multiplies by the batch size.

Each spec is a frozen dataclass with four methods taking the list of input shapes:
``output_shape``, ``params``, ``macs`` and ``elementwise``. Only :class:`Conv2d` and
:class:`Linear` carry weights; every other layer is element-wise work that the task
model attaches to the weight layer producing its input (docs/design.md section 3).

>>> Conv2d(16, kernel=3, padding=1).output_shape([(3, 32, 32)])
(16, 32, 32)
>>> Linear(10).params([(64,)])
650
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from models.errors import NetworkError

Shape = tuple[int, ...]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "identity")


def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise NetworkError(f"{what} must be an integer or a pair of integers, got {value!r}")
    return pair


def _positive(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise NetworkError(f"{what} must be a positive integer, got {value!r}")
    return value


def _check_activation(act: str | None) -> None:
    if act is not None and act not in ACTIVATIONS:
        raise NetworkError(f"unknown activation {act!r} (known: {', '.join(ACTIVATIONS)})")


def numel(shape: Shape) -> int:
    """Number of elements of a per-sample shape."""
    return math.prod(shape)


class LayerSpec:
    """Interface shared by all layer specifications."""

    kind: ClassVar[str] = "layer"
    has_weights: ClassVar[bool] = False
    arity: ClassVar[int | None] = 1  # number of inputs; None = two or more

    def output_shape(self, inputs: list[Shape]) -> Shape:  # pragma: no cover - interface
        raise NotImplementedError

    def params(self, inputs: list[Shape]) -> int:
        return 0

    def macs(self, inputs: list[Shape]) -> int:
        return 0

    def elementwise(self, inputs: list[Shape]) -> int:
        """Element-wise operations of the forward pass (per sample)."""
        return 0

    def _one(self, inputs: list[Shape]) -> Shape:
        if len(inputs) != 1:
            raise NetworkError(f"{self.kind} takes exactly one input, got {len(inputs)}")
        return tuple(inputs[0])

    def _feature_map(self, inputs: list[Shape]) -> Shape:
        shape = self._one(inputs)
        if len(shape) != 3:
            raise NetworkError(f"{self.kind} needs a (C, H, W) input, got shape {shape}")
        return shape


@dataclass(frozen=True)
class Conv2d(LayerSpec):
    """2-D convolution with ``out_channels`` filters; ``activation`` is fused after it."""

    out_channels: int
    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    bias: bool = True
    activation: str | None = None

    kind: ClassVar[str] = "conv2d"
    has_weights: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _positive(self.out_channels, "conv2d out_channels")
        kh, kw = _pair(self.kernel, "conv2d kernel")
        sh, sw = _pair(self.stride, "conv2d stride")
        ph, pw = _pair(self.padding, "conv2d padding")
        if min(kh, kw, sh, sw) <= 0 or min(ph, pw) < 0:
            raise NetworkError(
                f"conv2d needs kernel and stride > 0 and padding >= 0, got kernel {self.kernel}, "
                f"stride {self.stride}, padding {self.padding}"
            )
        _check_activation(self.activation)

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return _pair(self.kernel, "kernel")

    @property
    def stride_hw(self) -> tuple[int, int]:
        return _pair(self.stride, "stride")

    @property
    def padding_hw(self) -> tuple[int, int]:
        return _pair(self.padding, "padding")

    def output_shape(self, inputs: list[Shape]) -> Shape:
        c, h, w = self._feature_map(inputs)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_hw, self.stride_hw, self.padding_hw
        oh = (h + 2 * ph - kh) // sh + 1
        ow = (w + 2 * pw - kw) // sw + 1
        if oh <= 0 or ow <= 0 or h + 2 * ph < kh or w + 2 * pw < kw:
            raise NetworkError(f"conv2d kernel {kh}x{kw} does not fit a padded {h}x{w} input")
        return (self.out_channels, oh, ow)

    def params(self, inputs: list[Shape]) -> int:
        c = self._feature_map(inputs)[0]
        kh, kw = self.kernel_hw
        return self.out_channels * c * kh * kw + (self.out_channels if self.bias else 0)

    def macs(self, inputs: list[Shape]) -> int:
        c = self._feature_map(inputs)[0]
        kh, kw = self.kernel_hw
        _, oh, ow = self.output_shape(inputs)
        return oh * ow * self.out_channels * c * kh * kw

    def elementwise(self, inputs: list[Shape]) -> int:
        out = numel(self.output_shape(inputs))
        return out * (int(self.bias) + int(self.activation not in (None, "identity")))


@dataclass(frozen=True)
class Linear(LayerSpec):
    """Fully connected layer; the input is flattened if it is a feature map."""

    out_features: int
    bias: bool = True
    activation: str | None = None

    kind: ClassVar[str] = "linear"
    has_weights: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _positive(self.out_features, "linear out_features")
        _check_activation(self.activation)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._one(inputs)
        return (self.out_features,)

    def params(self, inputs: list[Shape]) -> int:
        n_in = numel(self._one(inputs))
        return self.out_features * n_in + (self.out_features if self.bias else 0)

    def macs(self, inputs: list[Shape]) -> int:
        return self.out_features * numel(self._one(inputs))

    def elementwise(self, inputs: list[Shape]) -> int:
        self._one(inputs)
        return self.out_features * (int(self.bias) + int(self.activation not in (None, "identity")))


@dataclass(frozen=True)
class _Pool2d(LayerSpec):
    kernel: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None
    padding: int | tuple[int, int] = 0

    def __post_init__(self) -> None:
        kh, kw = _pair(self.kernel, f"{self.kind} kernel")
        sh, sw = _pair(self.stride if self.stride is not None else self.kernel, f"{self.kind} stride")
        ph, pw = _pair(self.padding, f"{self.kind} padding")
        if min(kh, kw, sh, sw) <= 0 or min(ph, pw) < 0:
            raise NetworkError(f"{self.kind} needs kernel and stride > 0 and padding >= 0")

    def output_shape(self, inputs: list[Shape]) -> Shape:
        c, h, w = self._feature_map(inputs)
        kh, kw = _pair(self.kernel, "kernel")
        sh, sw = _pair(self.stride if self.stride is not None else self.kernel, "stride")
        ph, pw = _pair(self.padding, "padding")
        if h + 2 * ph < kh or w + 2 * pw < kw:
            raise NetworkError(f"{self.kind} kernel {kh}x{kw} does not fit a padded {h}x{w} input")
        return (c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    def elementwise(self, inputs: list[Shape]) -> int:
        kh, kw = _pair(self.kernel, "kernel")
        return numel(self.output_shape(inputs)) * kh * kw


@dataclass(frozen=True)
class MaxPool2d(_Pool2d):
    """Max pooling (stride defaults to the kernel size)."""

    kind: ClassVar[str] = "maxpool"


@dataclass(frozen=True)
class AvgPool2d(_Pool2d):
    """Average pooling (stride defaults to the kernel size)."""

    kind: ClassVar[str] = "avgpool"


@dataclass(frozen=True)
class GlobalAvgPool(LayerSpec):
    """Average over the whole H x W plane: (C, H, W) -> (C,)."""

    kind: ClassVar[str] = "globalavgpool"

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (self._feature_map(inputs)[0],)

    def elementwise(self, inputs: list[Shape]) -> int:
        return numel(self._feature_map(inputs))


@dataclass(frozen=True)
class Flatten(LayerSpec):
    """Reshape to a vector; costs nothing."""

    kind: ClassVar[str] = "flatten"

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (numel(self._one(inputs)),)


@dataclass(frozen=True)
class Activation(LayerSpec):
    """A stand-alone element-wise non-linearity."""

    function: str = "relu"

    kind: ClassVar[str] = "activation"

    def __post_init__(self) -> None:
        _check_activation(self.function)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return self._one(inputs)

    def elementwise(self, inputs: list[Shape]) -> int:
        return numel(self._one(inputs))


@dataclass(frozen=True)
class BatchNorm2d(LayerSpec):
    """Batch normalisation over channels: 2*C trainable parameters (scale, shift).

    The parameters are counted (published parameter counts include them) but the layer is
    element-wise work attached to the producing weight layer, like an activation.
    """

    kind: ClassVar[str] = "batchnorm"

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return self._one(inputs)

    def params(self, inputs: list[Shape]) -> int:
        return 2 * self._one(inputs)[0]

    def elementwise(self, inputs: list[Shape]) -> int:
        return 2 * numel(self._one(inputs))


@dataclass(frozen=True)
class Add(LayerSpec):
    """Element-wise sum of two or more equally shaped inputs (residual connections)."""

    activation: str | None = None

    kind: ClassVar[str] = "add"
    arity: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        _check_activation(self.activation)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        if len(inputs) < 2:
            raise NetworkError(f"add needs at least two inputs, got {len(inputs)}")
        first = tuple(inputs[0])
        for other in inputs[1:]:
            if tuple(other) != first:
                raise NetworkError(f"add inputs must have equal shapes, got {first} and {tuple(other)}")
        return first

    def elementwise(self, inputs: list[Shape]) -> int:
        out = numel(self.output_shape(inputs))
        return out * (len(inputs) - 1 + int(self.activation not in (None, "identity")))


#: The conventional layer kinds by the name used in network files (the spiking kinds are in
#: :data:`models.network.spiking.SPIKING_KINDS`; :data:`models.network.files.FILE_LAYER_KINDS` has both).
LAYER_KINDS: dict[str, type[LayerSpec]] = {
    cls.kind: cls
    for cls in (Conv2d, Linear, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Activation, BatchNorm2d, Add)
}


__all__ = [
    "Shape", "numel", "LayerSpec", "Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "GlobalAvgPool",
    "Flatten", "Activation", "BatchNorm2d", "Add", "LAYER_KINDS", "ACTIVATIONS",
]
