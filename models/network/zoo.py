"""Built-in networks (the zoo) and :func:`load_network`, the one door for "which network?".

Every builder is a plain function returning a fresh :class:`NetworkSpec`; it takes the
per-sample ``input_shape`` (and ``num_classes`` where a classifier head exists). Shapes
are re-inferred for any input shape, so a bad one fails with :class:`NetworkError`.

Parameter counts include biases and BatchNorm scale/shift (what ``torchvision`` and the
papers count); MACs are the forward multiply-accumulates of convolutions and linear layers
per sample (what fvcore and the torchvision model tables count as "GFLOPS").

Measured at the default input shapes (see ``layerpipe networks``):

==============  ===========  ==============  =========================================
name            params       MACs / sample   published
==============  ===========  ==============  =========================================
lenet5          61,706       416,520         (hand count, see :func:`lenet5`)
alexnet         61,100,840   714,188,480     61,100,840 params, 0.71 GFLOPS (torchvision)
vgg16           138,357,544  15,470,264,320  138,357,544 params, 15.47 GFLOPS (torchvision)
resnet18        11,689,512   1,814,073,344   11,689,512 params, 1.81 GFLOPS (torchvision), 1.8e9 (He et al.)
resnet18_cifar  11,173,962   555,422,720     11,173,962 params (kuangliu/pytorch-cifar), ~0.56 G
mlp             17,226       17,024          (hand count)
==============  ===========  ==============  =========================================

The GPT networks (``gpt2``, ``gpt2_medium``, ``gpt3-1.5b`` ... ``gpt3-28.3b``) are in
:mod:`models.network.gpt_zoo`; ``uniform:p=P,f=F,b=B,w=W[,comm=C]`` (:mod:`models.network.uniform`)
states a pipeline's per-stage cycles directly.

>>> net = get_network("mlp:4-3-2")
>>> net.input_shape, net.total_params()
((4,), 23)
>>> "resnet18" in network_names()
True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from models.errors import NetworkError, UnknownNetworkError
from models.network.files import read_network_file
from models.network.gpt_zoo import GPT_ZOO
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
    Shape,
    numel,
)
from models.network.snn_zoo import SNN_ZOO
from models.network.spec import INPUT, NetworkSpec, Node, chain
from models.network.uniform import is_uniform, uniform_network
from models.userfiles import is_plain_int

#: file name endings that :func:`load_network` hands to :mod:`models.network.files`
NETWORK_FILE_SUFFIXES = (".yaml", ".yml", ".json", ".csv")


def _shape(input_shape: Sequence[int] | None, default: Shape) -> Shape:
    return tuple(default if input_shape is None else input_shape)


def lenet5(input_shape: Sequence[int] | None = None, num_classes: int = 10) -> NetworkSpec:
    """LeNet-5 on 1x32x32 (LeCun et al. 1998), in the dense form everyone re-implements.

    Variant: C3 is fully connected to S2 (the paper's sparse 60-of-96 table is dropped),
    S2/S4 are 2x2 average pooling without the trainable coefficient, C5 is a linear
    400 -> 120 layer (identical to a 5x5 convolution on the 5x5 map), the output is
    a plain linear layer instead of RBF units, and the non-linearity is tanh.
    Params 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706; MACs 117,600 + 240,000 +
    48,000 + 10,080 + 840 = 416,520 per sample.

    >>> lenet5().total_params(), lenet5().total_macs()
    (61706, 416520)
    """
    return chain(
        "lenet5", _shape(input_shape, (1, 32, 32)),
        [
            Conv2d(6, kernel=5, activation="tanh"), AvgPool2d(2),
            Conv2d(16, kernel=5, activation="tanh"), AvgPool2d(2),
            Flatten(),
            Linear(120, activation="tanh"), Linear(84, activation="tanh"), Linear(num_classes),
        ],
        description="LeNet-5 (dense C3, avg pool, tanh)",
    )


def alexnet(input_shape: Sequence[int] | None = None, num_classes: int = 1000) -> NetworkSpec:
    """Single-tower AlexNet as in torchvision (64-192-384-256-256 filters, not the 2-GPU 96-256-...).

    Dropout is omitted (no work in the task model); torchvision's adaptive average pool
    to 6x6 is the identity at 224x224 and is left out, so at other input sizes the first
    linear layer reads whatever map the features produce.

    >>> alexnet().total_params()
    61100840
    """
    return chain(
        "alexnet", _shape(input_shape, (3, 224, 224)),
        [
            Conv2d(64, kernel=11, stride=4, padding=2, activation="relu"), MaxPool2d(3, stride=2),
            Conv2d(192, kernel=5, padding=2, activation="relu"), MaxPool2d(3, stride=2),
            Conv2d(384, kernel=3, padding=1, activation="relu"),
            Conv2d(256, kernel=3, padding=1, activation="relu"),
            Conv2d(256, kernel=3, padding=1, activation="relu"), MaxPool2d(3, stride=2),
            Flatten(),
            Linear(4096, activation="relu"), Linear(4096, activation="relu"), Linear(num_classes),
        ],
        description="AlexNet, torchvision single tower",
    )


def vgg16(input_shape: Sequence[int] | None = None, num_classes: int = 1000) -> NetworkSpec:
    """VGG-16 (configuration D of Simonyan & Zisserman), no BatchNorm, as in torchvision.

    As for :func:`alexnet`, the adaptive 7x7 average pool (identity at 224x224) and the
    dropout layers are left out.

    >>> len([n for n in vgg16().nodes if n.layer.has_weights])
    16
    """
    layers: list = []
    for width, repeats in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        layers += [Conv2d(width, kernel=3, padding=1, activation="relu") for _ in range(repeats)]
        layers.append(MaxPool2d(2))
    layers += [Flatten(), Linear(4096, activation="relu"), Linear(4096, activation="relu"), Linear(num_classes)]
    return chain("vgg16", _shape(input_shape, (3, 224, 224)), layers, description="VGG-16 (config D)")


def _resnet18(name: str, input_shape: Shape, num_classes: int, imagenet_stem: bool, description: str) -> NetworkSpec:
    """ResNet-18 as a DAG with torchvision's node names (``layer2.0.downsample.0`` etc.).

    Convolutions carry no bias (BatchNorm follows each one); the post-addition ReLU is
    fused into the :class:`Add` node, the others are :class:`Activation` nodes.
    """
    nodes: list[Node] = []

    def add(node_name: str, layer, *inputs: str) -> str:
        nodes.append(Node(node_name, layer, tuple(inputs)))
        return node_name

    if imagenet_stem:
        x = add("conv1", Conv2d(64, kernel=7, stride=2, padding=3, bias=False), INPUT)
    else:  # CIFAR stem: a 32x32 image cannot afford the 4x early down-sampling
        x = add("conv1", Conv2d(64, kernel=3, stride=1, padding=1, bias=False), INPUT)
    x = add("bn1", BatchNorm2d(), x)
    x = add("relu", Activation("relu"), x)
    if imagenet_stem:
        x = add("maxpool", MaxPool2d(3, stride=2, padding=1), x)

    in_channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            p = f"layer{stage}.{block}"
            shortcut = x
            y = add(f"{p}.conv1", Conv2d(width, kernel=3, stride=stride, padding=1, bias=False), x)
            y = add(f"{p}.bn1", BatchNorm2d(), y)
            y = add(f"{p}.relu", Activation("relu"), y)
            y = add(f"{p}.conv2", Conv2d(width, kernel=3, padding=1, bias=False), y)
            y = add(f"{p}.bn2", BatchNorm2d(), y)
            if stride != 1 or in_channels != width:
                # projection shortcut (option B of He et al.): 1x1 stride-2 conv + BN
                s = add(f"{p}.downsample.0", Conv2d(width, kernel=1, stride=stride, bias=False), shortcut)
                shortcut = add(f"{p}.downsample.1", BatchNorm2d(), s)
            # main branch first: weight_layers() fuses the add into the main branch's conv2
            x = add(f"{p}.add", Add(activation="relu"), y, shortcut)
            in_channels = width
    x = add("avgpool", GlobalAvgPool(), x)
    add("fc", Linear(num_classes), x)
    return NetworkSpec(name, input_shape, tuple(nodes), description)


def resnet18(input_shape: Sequence[int] | None = None, num_classes: int = 1000) -> NetworkSpec:
    """ResNet-18 for ImageNet (He et al. 2016; torchvision layout), a DAG with residual adds.

    21 weight layers: the stem conv, 16 block convs, 3 downsample 1x1 convs and the fc.

    >>> net = resnet18()
    >>> net.total_params(), net.shapes["avgpool"]
    (11689512, (512,))
    """
    return _resnet18("resnet18", _shape(input_shape, (3, 224, 224)), num_classes, True,
                     "ResNet-18, ImageNet stem")


def resnet18_cifar(input_shape: Sequence[int] | None = None, num_classes: int = 10) -> NetworkSpec:
    """ResNet-18 for CIFAR: 3x3 stride-1 stem, no max pool (the kuangliu/pytorch-cifar layout).

    Use ``num_classes=100`` for CIFAR-100 (LayerPipe2's benchmark).

    >>> net = resnet18_cifar()
    >>> net.total_params(), net.shapes["layer4.1.add"]
    (11173962, (512, 4, 4))
    """
    return _resnet18("resnet18_cifar", _shape(input_shape, (3, 32, 32)), num_classes, False,
                     "ResNet-18, CIFAR stem (3x3, no maxpool)")


def resnet50(input_shape: Sequence[int] | None = None, num_classes: int = 1000) -> NetworkSpec:
    """ResNet-50 for ImageNet (He et al. 2016, torchvision layout): bottleneck blocks
    1x1 -> 3x3 (stride here, as torchvision's v1.5) -> 1x1 with 4x expansion, 3-4-6-3 blocks.

    54 weight layers: the stem conv, 48 block convs, 4 projection shortcuts and the fc;
    25,557,032 parameters as torchvision counts them (BatchNorm's affine ones included).

    >>> net = resnet50()
    >>> net.total_params(), net.shapes["layer4.2.add"]
    (25557032, (2048, 7, 7))
    """
    nodes: list[Node] = []

    def add(node_name: str, layer, *inputs: str) -> str:
        nodes.append(Node(node_name, layer, tuple(inputs)))
        return node_name

    x = add("conv1", Conv2d(64, kernel=7, stride=2, padding=3, bias=False), INPUT)
    x = add("bn1", BatchNorm2d(), x)
    x = add("relu", Activation("relu"), x)
    x = add("maxpool", MaxPool2d(3, stride=2, padding=1), x)
    in_channels = 64
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            p = f"layer{stage}.{block}"
            shortcut = x
            y = add(f"{p}.conv1", Conv2d(width, kernel=1, bias=False), x)
            y = add(f"{p}.bn1", BatchNorm2d(), y)
            y = add(f"{p}.relu1", Activation("relu"), y)
            y = add(f"{p}.conv2", Conv2d(width, kernel=3, stride=stride, padding=1, bias=False), y)
            y = add(f"{p}.bn2", BatchNorm2d(), y)
            y = add(f"{p}.relu2", Activation("relu"), y)
            y = add(f"{p}.conv3", Conv2d(4 * width, kernel=1, bias=False), y)
            y = add(f"{p}.bn3", BatchNorm2d(), y)
            if stride != 1 or in_channels != 4 * width:
                s = add(f"{p}.downsample.0", Conv2d(4 * width, kernel=1, stride=stride, bias=False), shortcut)
                shortcut = add(f"{p}.downsample.1", BatchNorm2d(), s)
            x = add(f"{p}.add", Add(activation="relu"), y, shortcut)
            in_channels = 4 * width
    x = add("avgpool", GlobalAvgPool(), x)
    add("fc", Linear(num_classes), x)
    return NetworkSpec("resnet50", _shape(input_shape, (3, 224, 224)), tuple(nodes),
                       "ResNet-50 (bottleneck blocks), ImageNet stem")


def mlp128(input_shape: Sequence[int] | None = None) -> NetworkSpec:
    """A deep MLP for scale: 64 inputs, 127 hidden layers of 128 units, 10 outputs (128 weight layers).

    >>> net = mlp128()   # 64*128+128 + 126*(128*128+128) + 128*10+10 parameters
    >>> len(net.nodes), net.total_params()
    (128, 2090122)
    """
    return replace(mlp((64, *([128] * 127), 10), input_shape), name="mlp128",
                   description="MLP 64-128x127-10, ReLU hidden (128 weight layers)")


def mlp(sizes: Sequence[int] = (64, 128, 64, 10), input_shape: Sequence[int] | None = None) -> NetworkSpec:
    """Fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``, ReLU on hidden layers.

    The input shape defaults to ``(sizes[0],)``; another shape with ``sizes[0]`` elements
    (e.g. 1x8x8 digit images for 64) is accepted and flattened by the first layer.
    Default: params 8,320 + 8,256 + 650 = 17,226, MACs 8,192 + 8,192 + 640 = 17,024.

    >>> net = mlp((8, 4, 2))
    >>> net.total_params(), net.total_macs()
    (46, 40)
    """
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or isinstance(s, bool) or s <= 0 for s in sizes):
        raise NetworkError(f"mlp sizes must be at least two positive integers, got {sizes!r}")
    shape = _shape(input_shape, (sizes[0],))
    if numel(shape) != sizes[0]:
        raise NetworkError(f"mlp input shape {shape} has {numel(shape)} elements but sizes[0] is {sizes[0]}")
    layers = [Linear(s, activation="relu") for s in sizes[1:-1]] + [Linear(sizes[-1])]
    label = "-".join(str(s) for s in sizes)
    name = "mlp" if sizes == (64, 128, 64, 10) else f"mlp:{label}"
    return chain(name, shape, layers, description=f"MLP {label}, ReLU hidden")


#: The zoo: read-only mapping of network names to builders (use :func:`zoo` for a copy).
ZOO: Mapping[str, Callable[..., NetworkSpec]] = MappingProxyType({
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet18_cifar": resnet18_cifar,
    "resnet50": resnet50,
    "mlp": mlp,
    "mlp128": mlp128,
    **GPT_ZOO,
})


def zoo() -> dict[str, Callable[..., NetworkSpec]]:
    """A fresh dict of name -> builder; changing it does not change the zoo.

    >>> list(zoo())[:2]
    ['lenet5', 'alexnet']
    """
    return dict(ZOO)


def network_names() -> tuple[str, ...]:
    """Zoo names in listing order (``mlp`` also accepts ``mlp:784-256-10``).

    >>> network_names()[6:9]
    ('mlp', 'mlp128', 'gpt2')
    """
    return tuple(ZOO)


def all_network_names() -> tuple[str, ...]:
    """Every built-in network: the zoo, then the spiking networks of :mod:`models.network.snn_zoo`."""
    return (*network_names(), *SNN_ZOO)


def _unknown(name: str) -> UnknownNetworkError:
    known = ", ".join((*ZOO, *SNN_ZOO))
    return UnknownNetworkError(f"unknown network {name!r} (known: {known}, or mlp:N0-N1-...-Nk)")


def _parse_mlp_sizes(name: str) -> tuple[int, ...]:
    text = name.split(":", 1)[1]
    parts = text.split("-")
    if len(parts) < 2 or not all(is_plain_int(p.strip(), 9) and int(p) > 0 for p in parts):
        raise UnknownNetworkError(
            f"bad mlp name {name!r}: sizes must be two or more positive integers joined by '-', "
            "e.g. mlp:784-256-10"
        )
    return tuple(int(p) for p in parts)


def get_network(name: str, input_shape: Sequence[int] | None = None, **kwargs) -> NetworkSpec:
    """Build zoo network ``name`` (case-insensitive); ``kwargs`` go to the builder (e.g. num_classes).

    ``"mlp:784-256-10"`` builds :func:`mlp` with those sizes.

    >>> get_network("resnet18_cifar", num_classes=100).output.layer.out_features
    100
    >>> get_network("mlp:784-256-10").total_params()
    203530
    """
    if not isinstance(name, str):
        raise _unknown(repr(name))
    key = name.strip().lower()
    if key.startswith("mlp:"):
        if "sizes" in kwargs:
            raise NetworkError(f"network {name!r} already gives the mlp sizes; do not pass sizes= too")
        kwargs = {**kwargs, "sizes": _parse_mlp_sizes(key)}
        key = "mlp"
    builder = ZOO.get(key) or SNN_ZOO.get(key)
    if builder is None:
        raise _unknown(name)
    # check keyword names here so a typo is a user error, not a TypeError from deep inside
    accepted = set(inspect.signature(builder).parameters) - {"input_shape"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise NetworkError(
            f"network {key!r} has no option {', '.join(unknown)} (options: {', '.join(sorted(accepted)) or 'none'})"
        )
    return builder(input_shape=input_shape, **kwargs)


def load_network(name_or_path: str | Path, input_shape: Sequence[int] | None = None) -> NetworkSpec:
    """A zoo network by name, or a network file (.yaml, .yml, .json, SCALE-Sim .csv) by path.

    Zoo names win over files of the same name. ``input_shape`` re-targets a file's
    network too (shapes are re-inferred). Anything else raises
    :class:`UnknownNetworkError`.

    >>> load_network("lenet5").name
    'lenet5'
    >>> load_network("nosuchnet")
    Traceback (most recent call last):
    ...
    models.errors.UnknownNetworkError: 'nosuchnet' is neither a zoo network (lenet5, alexnet, vgg16, resnet18, resnet18_cifar, resnet50, mlp, mlp128, gpt2, gpt2_medium, gpt3-1.5b, gpt3-6.2b, gpt3-14.6b, gpt3-28.3b, mlp:N0-...-Nk, uniform:p=P,f=F,b=B,w=W) nor a readable network file (.yaml, .yml, .json, .csv)
    """
    text = str(name_or_path)
    key = text.strip().lower()
    if key in ZOO or key in SNN_ZOO or key.startswith("mlp:"):
        return get_network(key, input_shape)
    if is_uniform(key):
        if input_shape is not None:
            raise NetworkError("a uniform: network states its stages' cycles; it takes no --input shape")
        return uniform_network(key)
    path = Path(text)
    if path.suffix.lower() in NETWORK_FILE_SUFFIXES:
        if not path.exists():
            raise UnknownNetworkError(
                f"{text!r} is neither a zoo network ({', '.join(ZOO)}) nor a readable file: no such file"
            )
        net = read_network_file(path)
        return net if input_shape is None else net.with_input(tuple(input_shape))
    raise UnknownNetworkError(
        f"{text!r} is neither a zoo network ({', '.join(ZOO)}, mlp:N0-...-Nk, uniform:p=P,f=F,b=B,w=W) nor a "
        "readable network file "
        f"({', '.join(NETWORK_FILE_SUFFIXES)})"
    )


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """The text form of a per-sample input shape: ``"3x32x32"`` -> (3, 32, 32); None -> None.

    >>> parse_input_shape("3x32x32"), parse_input_shape("784"), parse_input_shape(None)
    ((3, 32, 32), (784,), None)
    """
    if text is None:
        return None
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise NetworkError(f"--input must look like CxHxW or N (for example 3x32x32), got {text!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise NetworkError(f"--input sizes must be positive, got {text!r}")
    return shape


__all__ = [
    "ZOO", "NETWORK_FILE_SUFFIXES", "zoo", "network_names", "get_network", "load_network", "parse_input_shape",
    "lenet5", "alexnet", "vgg16", "resnet18", "resnet18_cifar", "mlp",
]
