"""Built-in spiking networks (SpikePipe): three SNNs of growing size, and their digits-sized instances.

Every weight layer is a spiking layer (:mod:`models.network.spiking`) with the same neuron
options: ``time_steps`` T, ``beta``, ``threshold``, ``reset`` and ``surrogate`` are keyword
arguments of every builder. The output layer is spiking too; its time-mean membrane (or its
spike counts) is the readout (:mod:`models.training.snn`).

At the default input shapes (T = 8; MACs are per sample over all T steps):

=========  ==========  ===========  ==============  ============================================
name       input       weight lay.  params          structure
=========  ==========  ===========  ==============  ============================================
snn_mlp    1x8x8       3            17,226          FC 64-128-64-10 (LIF everywhere)
snn_cnn    3x32x32     4            1,070,794       conv32-pool-conv64-pool-fc256-fc10
snn_vgg    3x32x32     10           9,488,266       VGG-11 convs (8, 5 pools)-fc512-fc10
=========  ==========  ===========  ==============  ============================================

``snn_mlp`` also takes a 1x28x28 input (``sizes=(784, ...)``). The accuracy study trains
the *digits instances* of :data:`DIGITS_SNNS` on rate-coded 8x8 digits: the same layer
structure at 1x8x8 with fewer channels, because a NumPy BPTT of the 32x32 networks would
take hours (see benchmarks/snn_accuracy.py).

>>> net = snn_mlp()
>>> net.total_params(), [n.name for n in net.nodes]
(17226, ['fc1', 'fc2', 'fc3'])
>>> get_snn_network("snn_cnn", time_steps=4).output.layer.time_steps
4
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from models.errors import NetworkError, UnknownNetworkError
from models.network.layers import Flatten, LayerSpec, MaxPool2d, Shape, numel
from models.network.spec import NetworkSpec, chain
from models.network.spiking import LIFConv2d, LIFLinear


def _neuron(time_steps: int, beta: float, threshold: float, reset: str, surrogate: str) -> dict:
    return dict(time_steps=time_steps, beta=beta, threshold=threshold, reset=reset, surrogate=surrogate)


def _named_chain(name: str, input_shape: Shape, layers: list[LayerSpec], description: str) -> NetworkSpec:
    """:func:`chain` with the usual names: conv1.., fc1.., pool1.., flatten."""
    prefix = {"lif_conv2d": "conv", "lif_linear": "fc", "maxpool": "pool", "flatten": "flatten"}
    counters: dict[str, int] = {}
    names = []
    for layer in layers:
        p = prefix.get(layer.kind, layer.kind)
        counters[p] = counters.get(p, 0) + 1
        names.append(p if p == "flatten" and counters[p] == 1 else f"{p}{counters[p]}")
    return chain(name, input_shape, layers, names=names, description=description)


def snn_mlp(input_shape: Sequence[int] | None = None, sizes: Sequence[int] = (64, 128, 64, 10), *,
            time_steps: int = 8, beta: float = 0.9, threshold: float = 1.0, reset: str = "subtract",
            surrogate: str = "arctan") -> NetworkSpec:
    """Fully connected SNN ``sizes[0] -> ... -> sizes[-1]``, LIF neurons on every layer.

    The input shape defaults to 1x8x8 for 64 inputs, 1x28x28 for 784, else ``(sizes[0],)``.
    Default: params 8,320 + 8,256 + 650 = 17,226; MACs 8 x 17,024 = 136,192 per sample.

    >>> snn_mlp(sizes=(784, 256, 10)).input_shape, snn_mlp().total_macs()
    ((1, 28, 28), 136192)
    """
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or isinstance(s, bool) or s <= 0 for s in sizes):
        raise NetworkError(f"snn_mlp sizes must be at least two positive integers, got {sizes!r}")
    default = {64: (1, 8, 8), 784: (1, 28, 28)}.get(sizes[0], (sizes[0],))
    shape = tuple(default if input_shape is None else input_shape)
    if numel(shape) != sizes[0]:
        raise NetworkError(f"snn_mlp input shape {shape} has {numel(shape)} elements but sizes[0] is {sizes[0]}")
    neuron = _neuron(time_steps, beta, threshold, reset, surrogate)
    layers = [LIFLinear(s, **neuron) for s in sizes[1:]]
    label = "-".join(map(str, sizes))
    return _named_chain("snn_mlp", shape, layers, f"fully connected SNN {label}, LIF (T={time_steps})")


def snn_cnn(input_shape: Sequence[int] | None = None, num_classes: int = 10, channels: Sequence[int] = (32, 64),
            hidden: int = 256, *, time_steps: int = 8, beta: float = 0.9, threshold: float = 1.0,
            reset: str = "subtract", surrogate: str = "arctan") -> NetworkSpec:
    """Small convolutional SNN for 3x32x32: (3x3 conv pad 1 + LIF, 2x2 max pool) per channel count, fc, fc.

    Default: conv 3->32, pool, conv 32->64, pool, flatten 4096, fc 256, fc 10;
    params 896 + 18,496 + 1,048,832 + 2,570 = 1,070,794.

    >>> snn_cnn().total_params(), snn_cnn((1, 8, 8), channels=(16, 32), hidden=64).shapes["flatten"]
    (1070794, (128,))
    """
    neuron = _neuron(time_steps, beta, threshold, reset, surrogate)
    layers: list[LayerSpec] = []
    for c in channels:
        layers += [LIFConv2d(c, kernel=3, padding=1, **neuron), MaxPool2d(2)]
    layers += [Flatten(), LIFLinear(hidden, **neuron), LIFLinear(num_classes, **neuron)]
    return _named_chain("snn_cnn", tuple((3, 32, 32) if input_shape is None else input_shape), layers,
                        f"convolutional SNN conv{'-'.join(map(str, channels))}-fc{hidden}, LIF (T={time_steps})")


#: VGG-11's convolutions (Simonyan & Zisserman, configuration A), one tuple per pooling stage
VGG11_STAGES = ((64,), (128,), (256, 256), (512, 512), (512, 512))


def snn_vgg(input_shape: Sequence[int] | None = None, num_classes: int = 10,
            stages: Sequence[Sequence[int]] = VGG11_STAGES, hidden: int = 512, *, time_steps: int = 8,
            beta: float = 0.9, threshold: float = 1.0, reset: str = "subtract",
            surrogate: str = "arctan") -> NetworkSpec:
    """Deeper VGG-style SNN: per stage 3x3 conv pad 1 + LIF layers, then a 2x2 max pool; fc, fc.

    Default (CIFAR-sized VGG-11): 8 convolutions 64-128-256-256-512-512-512-512 with five
    pools (32 -> 1), flatten 512, fc 512, fc 10: 10 weight layers, 9,488,266 parameters.

    >>> net = snn_vgg()
    >>> len([n for n in net.nodes if n.layer.has_weights]), net.total_params()
    (10, 9488266)
    """
    neuron = _neuron(time_steps, beta, threshold, reset, surrogate)
    layers: list[LayerSpec] = []
    for stage in stages:
        layers += [LIFConv2d(c, kernel=3, padding=1, **neuron) for c in stage]
        layers.append(MaxPool2d(2))
    layers += [Flatten(), LIFLinear(hidden, **neuron), LIFLinear(num_classes, **neuron)]
    convs = sum(len(s) for s in stages)
    return _named_chain("snn_vgg", tuple((3, 32, 32) if input_shape is None else input_shape), layers,
                        f"VGG-style SNN, {convs} convolutions + 2 fc, LIF (T={time_steps})")


#: the SNN zoo: name -> builder (read-only)
SNN_ZOO: Mapping[str, Callable[..., NetworkSpec]] = MappingProxyType({
    "snn_mlp": snn_mlp,
    "snn_cnn": snn_cnn,
    "snn_vgg": snn_vgg,
})


def snn_network_names() -> tuple[str, ...]:
    """The built-in SNNs, smallest first.

    >>> snn_network_names()
    ('snn_mlp', 'snn_cnn', 'snn_vgg')
    """
    return tuple(SNN_ZOO)


def get_snn_network(name: str, input_shape: Sequence[int] | None = None, **kwargs) -> NetworkSpec:
    """Build SNN ``name`` (case-insensitive); ``kwargs`` go to the builder (time_steps, beta, ...)."""
    key = name.strip().lower() if isinstance(name, str) else name
    builder = SNN_ZOO.get(key)
    if builder is None:
        raise UnknownNetworkError(f"unknown SNN {name!r} (known: {', '.join(SNN_ZOO)})")
    accepted = set(inspect.signature(builder).parameters) - {"input_shape"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise NetworkError(f"network {key!r} has no option {', '.join(unknown)} (options: {', '.join(sorted(accepted))})")
    return builder(input_shape=input_shape, **kwargs)


# --------------------------------------------------------------------------- digits instances


def digits_snn(name: str, **neuron) -> NetworkSpec:
    """The digits instance of SNN ``name``: the same structure on 1x8x8 inputs, fewer channels.

    ``snn_mlp`` is its default (64-128-64-10); ``snn_cnn`` uses channels (16, 32) and fc 64
    (8 -> 4 -> 2, flatten 128); ``snn_vgg`` uses three pooling stages of two convolutions,
    (16, 16), (32, 32), (64, 64) (8 -> 1, flatten 64), and fc 64: 8 weight layers.
    ``neuron`` overrides time_steps, beta, threshold, reset or surrogate.

    >>> [len([n for n in digits_snn(k).nodes if n.layer.has_weights]) for k in snn_network_names()]
    [3, 4, 8]
    """
    if name == "snn_mlp":
        return snn_mlp(**neuron)
    if name == "snn_cnn":
        return snn_cnn((1, 8, 8), channels=(16, 32), hidden=64, **neuron)
    if name == "snn_vgg":
        return snn_vgg((1, 8, 8), stages=((8, 8), (16, 16), (32, 32)), hidden=32, **neuron)
    raise UnknownNetworkError(f"unknown SNN {name!r} (known: {', '.join(SNN_ZOO)})")


__all__ = [
    "snn_mlp", "snn_cnn", "snn_vgg", "VGG11_STAGES", "SNN_ZOO", "snn_network_names", "get_snn_network",
    "digits_snn",
]
