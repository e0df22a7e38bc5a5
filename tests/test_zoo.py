"""The built-in networks against published figures, the zoo registry and ``layerpipe networks``."""

from __future__ import annotations

import json

import pytest

from models.errors import NetworkError, UnknownNetworkError
from models.network.layers import Add, BatchNorm2d, Conv2d, Linear, MaxPool2d
from models.network.spec import weight_layers
from models.network.zoo import ZOO, get_network, lenet5, load_network, mlp, network_names, resnet18, resnet18_cifar, zoo
from simulator.cli import main

# Published figures. Parameters: torchvision's model tables (alexnet 61,100,840; vgg16
# 138,357,544; resnet18 11,689,512) and kuangliu/pytorch-cifar's ResNet18 (11,173,962).
# They count the same tensors we do (weights, biases, BatchNorm scale and shift; running
# statistics are buffers, not parameters), so the tolerance is zero: any difference is a
# wrong layer. MACs: torchvision's "GFLOPS" column (fvcore, one multiply-add = one
# "flop", convolutions and linear layers only - our convention): alexnet 0.71, vgg16
# 15.47, resnet18 1.81 (He et al. 2016 Table 1: 1.8e9; commonly quoted 1.82). Those are
# rounded to 2-4 significant digits, and other counters also add BatchNorm, ReLU, pooling
# and residual additions (about 0.3% on ResNet-18), so the tolerance is the rounding of
# the figure plus 1% for counting conventions.
PUBLISHED = {
    #  name            params        MACs     rel. tolerance of MACs
    "alexnet": (61_100_840, 0.71e9, 0.007 + 0.01),  # "0.71" is +-0.7%
    "vgg16": (138_357_544, 15.47e9, 0.0003 + 0.01),  # "15.47" is +-0.03%
    "resnet18": (11_689_512, 1.82e9, 0.003 + 0.01),  # "1.82" is +-0.3%
    "resnet18_cifar": (11_173_962, 0.56e9, 0.009 + 0.01),  # "0.56" is +-0.9%
    "resnet50": (25_557_032, 4.09e9, 0.0012 + 0.01),  # torchvision ResNet50_Weights.IMAGENET1K_V1: "4.09"
}


def test_deep_networks_for_scale():
    """The zoo's scale cases: ResNet-50's 54 weight layers (stem, 16 bottlenecks x 3 convs, 4
    projections, fc) and mlp128's 128 (a hand count of its parameters)."""
    from models.network.spec import weight_layers

    assert len(weight_layers(get_network("resnet50"))) == 1 + 16 * 3 + 4 + 1
    net = get_network("mlp128")
    assert len(weight_layers(net)) == 128
    assert net.total_params() == (64 * 128 + 128) + 126 * (128 * 128 + 128) + (128 * 10 + 10)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_params_and_macs(name):
    params, macs, tol = PUBLISHED[name]
    net = get_network(name)
    assert net.total_params() == params
    assert net.total_macs() == pytest.approx(macs, rel=tol)


def test_measured_macs_exactly():
    # our own counts, pinned so a change to a builder or to Conv2d.macs is noticed
    assert get_network("alexnet").total_macs() == 714_188_480
    assert get_network("vgg16").total_macs() == 15_470_264_320
    assert get_network("resnet18").total_macs() == 1_814_073_344
    assert get_network("resnet18_cifar").total_macs() == 555_422_720


def test_lenet5_hand_count():
    net = lenet5()
    assert net.input_shape == (1, 32, 32)
    # conv1 6*(1*5*5)+6, conv2 16*(6*5*5)+16, fc 400*120+120, 120*84+84, 84*10+10
    assert [net.params(n) for n in net.nodes if n.layer.has_weights] == [156, 2416, 48120, 10164, 850]
    assert net.total_params() == 61_706
    # conv1 28*28*6*25, conv2 10*10*16*150, then 400*120, 120*84, 84*10
    assert [net.macs(n) for n in net.nodes if n.layer.has_weights] == [117_600, 240_000, 48_000, 10_080, 840]
    assert net.total_macs() == 416_520
    assert net.shapes["pool2"] == (16, 5, 5)
    assert len(weight_layers(net)) == 5


def test_mlp_default_and_hand_count():
    net = mlp()
    assert net.input_shape == (64,)
    assert net.total_params() == (64 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10) == 17_226
    assert net.total_macs() == 64 * 128 + 128 * 64 + 64 * 10 == 17_024
    acts = [n.layer.activation for n in net.nodes]
    assert acts == ["relu", "relu", None]  # ReLU on hidden layers only


def test_mlp_parametrised_name_and_input_shape():
    net = get_network("mlp:784-256-10")
    assert net.input_shape == (784,)
    assert net.total_params() == 784 * 256 + 256 + 256 * 10 + 10
    assert net.total_macs() == 784 * 256 + 256 * 10
    assert get_network("MLP:4-2").name == "mlp:4-2"
    digits = get_network("mlp:64-32-10", input_shape=(1, 8, 8))
    assert digits.input_shape == (1, 8, 8) and digits.total_params() == 64 * 32 + 32 + 32 * 10 + 10
    with pytest.raises(NetworkError, match="64 elements"):
        get_network("mlp:60-10", input_shape=(1, 8, 8))
    for bad in ("mlp:", "mlp:10", "mlp:10-x", "mlp:10-0-3", "mlp:10--3"):
        with pytest.raises(UnknownNetworkError, match="mlp:784-256-10"):
            get_network(bad)
    with pytest.raises(NetworkError):
        mlp((10,))


def test_resnet18_is_a_dag_with_21_weight_layers():
    net = resnet18()
    joins = [n for n in net.nodes if len(n.inputs) == 2]
    assert len(joins) == 8 and all(isinstance(n.layer, Add) for n in joins)
    weights = weight_layers(net)
    assert len(weights) == 21
    convs = [n for n in net.nodes if isinstance(n.layer, Conv2d)]
    assert len(convs) == 20 and not any(c.layer.bias for c in convs)
    downsample = [n for n in convs if "downsample" in n.name]
    assert [(d.layer.kernel, d.layer.stride) for d in downsample] == [(1, 2)] * 3
    # each projection shortcut reads the block input, and is added to the main branch
    assert net.node("layer2.0.downsample.0").inputs == ("layer1.1.add",)
    assert net.node("layer2.0.add").inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    # identity shortcuts read the previous block's output directly
    assert net.node("layer1.0.add").inputs == ("layer1.0.bn2", "maxpool")
    assert sum(isinstance(n.layer, BatchNorm2d) for n in net.nodes) == 20
    assert net.shapes["maxpool"] == (64, 56, 56)
    assert net.shapes["layer4.1.add"] == (512, 7, 7)
    assert isinstance(net.output.layer, Linear) and net.shapes[net.output.name] == (1000,)
    # a residual add joins the branch numbered last: the projection when there is one,
    # else the main branch's second convolution; so producers always precede consumers
    fused = {w.name: [f.name for f in w.fused] for w in weights}
    assert "layer2.0.add" in fused["layer2.0.downsample.0"]
    assert "layer1.0.add" in fused["layer1.0.conv2"]
    assert all(p < w.index for w in weights for p in w.producers)


def test_resnet18_cifar_variant():
    net = resnet18_cifar()
    stem = net.node("conv1").layer
    assert (stem.kernel, stem.stride, stem.padding) == (3, 1, 1)
    assert not any(isinstance(n.layer, MaxPool2d) for n in net.nodes)
    assert net.shapes["layer1.1.add"] == (64, 32, 32)
    assert len(weight_layers(net)) == 21
    assert net.shapes["fc"] == (10,)
    assert resnet18_cifar(num_classes=100).total_params() == 11_173_962 + 90 * 512 + 90


def test_input_shape_is_a_parameter():
    assert resnet18(input_shape=(3, 64, 64)).shapes["layer4.1.add"] == (512, 2, 2)
    assert resnet18(input_shape=(3, 64, 64)).total_params() == 11_689_512  # global pool: size-free
    assert get_network("vgg16", input_shape=(3, 32, 32)).shapes["pool5"] == (512, 1, 1)
    assert get_network("lenet5", num_classes=7).shapes["fc3"] == (7,)
    with pytest.raises(NetworkError):
        lenet5(input_shape=(1, 8, 8))  # two 5x5 convs and pools do not fit an 8x8 image


def test_registry():
    assert network_names() == ("lenet5", "alexnet", "vgg16", "resnet18", "resnet18_cifar", "resnet50", "mlp", "mlp128",
                               "gpt2", "gpt2_medium", "gpt3-1.5b", "gpt3-6.2b", "gpt3-14.6b", "gpt3-28.3b")
    copy = zoo()
    copy["mine"] = mlp
    del copy["vgg16"]
    assert "mine" not in ZOO and "vgg16" in ZOO  # callers cannot change the zoo
    with pytest.raises(TypeError):
        ZOO["mine"] = mlp  # type: ignore[index]
    for name in network_names():
        net = get_network(name)
        assert net is not get_network(name) and net == get_network(name)  # fresh and deterministic


def test_unknown_network_lists_known_names():
    with pytest.raises(UnknownNetworkError) as err:
        get_network("resnet34")
    for name in network_names():
        assert name in str(err.value)
    with pytest.raises(NetworkError, match="no option"):
        get_network("vgg16", num_clases=10)


def test_load_network(tmp_path):
    assert load_network("VGG16") == get_network("vgg16")
    assert load_network("mlp:8-2").total_params() == 18
    assert load_network("resnet18", input_shape=(3, 32, 32)).input_shape == (3, 32, 32)

    with pytest.raises(UnknownNetworkError, match="neither a zoo network") as err:
        load_network("resnet1000")
    assert "lenet5" in str(err.value)
    with pytest.raises(UnknownNetworkError, match="neither a zoo network.*no such file"):
        load_network(str(tmp_path / "missing.yaml"))
    other = tmp_path / "net.txt"
    other.write_text("input: [4]\n")
    with pytest.raises(UnknownNetworkError, match="neither a zoo network"):
        load_network(str(other))

    good = tmp_path / "tiny.yaml"
    good.write_text("input: [4]\nlayers:\n  - {type: linear, out_features: 3}\n")
    net = load_network(str(good))
    assert net.name == "tiny" and net.total_params() == 15
    assert load_network(good, input_shape=(6,)).total_params() == 21


def test_networks_command_json(capsys):
    assert main(["networks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # the zoo, then the spiking networks of models.network.snn_zoo
    assert [r["name"] for r in rows] == [*network_names(), "snn_mlp", "snn_cnn", "snn_vgg"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["snn_cnn"]["params"] == 1_070_794
    assert by_name["vgg16"]["params"] == 138_357_544
    assert by_name["vgg16"]["macs"] == 15_470_264_320
    assert by_name["resnet18"]["weight_layers"] == 21
    assert by_name["lenet5"]["input_shape"] == [1, 32, 32]
    assert by_name["mlp"]["layers"] == 3
    assert all(r["description"] for r in rows)


def test_networks_command_table(capsys):
    assert main(["networks"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["name", "input"]
    assert len(lines) == 1 + len(network_names()) + 3  # and the three SNNs
    assert "138,357,544" in out and "3x224x224" in out


def test_networks_command_rejects_bad_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["networks", "--nope"])
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
