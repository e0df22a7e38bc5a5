"""Network files: the YAML/JSON schema, round trips, SCALE-Sim CSVs and every malformed-file case."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from models.errors import NetworkError, NetworkFileError
from models.network.files import Placeholder, network_from_dict, network_to_dict, read_network_file
from models.network.layers import Add, GlobalAvgPool, Linear, MaxPool2d
from models.network.spec import weight_layers
from models.network.zoo import get_network, network_names

ORACLES = Path(__file__).parent / "oracles" / "scalesim_cases.json"

EXAMPLE_YAML = """\
name: tiny-cnn
description: a toy
input: [3, 32, 32]
layers:
  - {type: conv2d, out_channels: 16, kernel: 3, padding: 1, activation: relu}   # conv1
  - {type: maxpool, kernel: 2}                                                  # pool1
  - {type: conv2d, out_channels: 16, kernel: 3, padding: 1}                     # conv2
  - {name: skip, type: conv2d, out_channels: 16, kernel: 1, inputs: [pool1]}
  - {name: sum, type: add, inputs: [conv2, skip], activation: relu}
  - {type: linear, out_features: 10}                                            # fc1
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- YAML / JSON


def test_schema_example_from_the_docstring(tmp_path):
    net = read_network_file(write(tmp_path, "tiny.yaml", EXAMPLE_YAML))
    assert net.name == "tiny-cnn" and net.description == "a toy"
    assert [n.name for n in net.nodes] == ["conv1", "pool1", "conv2", "skip", "sum", "fc1"]
    assert net.node("conv2").inputs == ("pool1",)  # default: the previous layer
    assert net.node("fc1").inputs == ("sum",)
    assert isinstance(net.node("sum").layer, Add)
    assert net.shapes["sum"] == (16, 16, 16)
    assert len(weight_layers(net)) == 4


def test_auto_names_skip_explicit_ones():
    net = network_from_dict({"input": 4, "layers": [
        {"type": "linear", "out_features": 4, "name": "fc1"},
        {"type": "linear", "out_features": 3},
        {"type": "linear", "out_features": 2, "name": "fc2"},
    ]})
    assert [n.name for n in net.nodes] == ["fc1", "fc3", "fc2"]
    spaced = network_from_dict({"input": 4, "layers": [
        {"type": "linear", "out_features": 4, "name": " a "},
        {"type": "linear", "out_features": 2, "inputs": [" a"]},
    ]})
    assert spaced.node("fc1").inputs == ("a",)
    assert net.input_shape == (4,) and net.name == "network"


def test_pairs_and_inputs_forms():
    net = network_from_dict({"name": "p", "input": [1, 9, 12], "layers": [
        {"type": "conv2d", "out_channels": 2, "kernel": [3, 5], "stride": [1, 2], "padding": [1, 0]},
        {"type": "maxpool", "kernel": 3, "stride": None},
        {"type": "flatten", "inputs": "pool1"},
        {"type": "linear", "out_features": 2},
    ]})
    assert net.node("conv1").layer.kernel == (3, 5)
    assert net.shapes["conv1"] == (2, 9, 4)
    assert net.shapes["pool1"] == (2, 3, 1)


@pytest.mark.parametrize("name", network_names())
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_zoo_round_trip_through_files(tmp_path, name, fmt):
    net = get_network(name)
    data = network_to_dict(net)
    text = yaml.safe_dump(data, sort_keys=False) if fmt == "yaml" else json.dumps(data, indent=1)
    back = read_network_file(write(tmp_path, f"{name}.{fmt}", text))
    assert back == net
    assert back.total_params() == net.total_params() and back.total_macs() == net.total_macs()


def test_round_trip_keeps_non_default_inputs_only():
    data = network_to_dict(get_network("resnet18"))
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert "inputs" not in layers["layer1.0.conv2"]  # reads the previous layer
    assert layers["layer1.0.add"]["inputs"] == ["layer1.0.bn2", "maxpool"]
    assert layers["conv1"] == {"name": "conv1", "type": "conv2d", "out_channels": 64, "kernel": 7, "stride": 2,
                               "padding": 3, "bias": False}


def test_network_to_dict_refuses_foreign_layer_kinds():
    from dataclasses import dataclass

    from models.network.spec import chain

    @dataclass(frozen=True)
    class Odd(Linear):
        pass

    with pytest.raises(NetworkError, match="no file representation"):
        network_to_dict(chain("x", (4,), [Odd(2)]))


# ----------------------------------------------------------------------------- SCALE-Sim CSV

CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


def scalesim_macs(ih, iw, fh, fw, c, n, s):
    """SCALE-Sim's own count: ofmap = ceil((ifmap - filter + stride) / stride), no padding."""
    oh = math.ceil((ih - fh + s) / s)
    ow = math.ceil((iw - fw + s) / s)
    return oh * ow * fh * fw * c * n


def test_csv_chain_with_glue(tmp_path):
    rows = [
        ("Conv1", 32, 32, 5, 5, 1, 6, 1),     # -> 6x28x28
        ("Conv2", 14, 14, 5, 5, 6, 16, 1),    # pool 28 -> 14 (2x2/2), -> 16x10x10
        ("Conv3", 12, 12, 3, 3, 16, 16, 1),   # padding 10 -> 12, -> 16x10x10
        ("FC1", 1, 1, 1, 1, 1600, 120, 1),    # flattens 16*10*10, no glue
        ("FC2", 1, 1, 1, 1, 120, 84, 1),
    ]
    text = CONV_HEADER + "".join(",".join(str(v) for v in r) + ",\n" for r in rows)
    net = read_network_file(write(tmp_path, "small.csv", text))
    assert net.name == "small" and net.input_shape == (1, 32, 32)
    assert [n.name for n in net.nodes] == ["Conv1", "Conv2_pool", "Conv2", "Conv3_pad", "Conv3", "FC1", "FC2"]
    pool = net.node("Conv2_pool").layer
    assert isinstance(pool, MaxPool2d) and (pool.kernel, pool.stride, pool.padding) == (2, 2, 0)
    assert isinstance(net.node("Conv3_pad").layer, Placeholder)
    assert isinstance(net.node("FC1").layer, Linear)
    for name, *dims in rows:
        node = net.node(name)
        got = net.input_shapes(node)[0]
        # the row's own input; a Linear row may read a map with as many elements (it flattens)
        assert got == (dims[4], dims[0], dims[1]) or math.prod(got) == dims[4]
        assert net.macs(node) == scalesim_macs(*dims)
        assert not node.layer.bias and getattr(node.layer, "padding", 0) == 0
    assert [w.name for w in weight_layers(net)] == [r[0] for r in rows]
    assert "5 rows" in net.description and "pool" in net.description
    # a CSV network can be written as YAML and read back
    back = read_network_file(write(tmp_path, "small.yaml", yaml.safe_dump(network_to_dict(net))))
    assert back == net


def test_csv_scalesim_quirks(tmp_path):
    # BOM, CRLF, blank and ",,,," rows, padded cells, a missing trailing comma, extra columns,
    # a leading tab, duplicate names, a stride-width column
    text = (
        "\ufeffLayer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
        "Stride height, Stride width, Sparsity,\r\n"
        "\r\n"
        ",,,,,,,,,,\r\n"
        "  conv ,  16 , 20 , 3 , 3 , 3 , 8 , 1 , 2 , 2:4,\r\n"
        "\tconv,14,10,3,3,8,4,1,1\r\n"
        "FC, 1, 1, 1, 1, 4, 10, 1, , 1:4\r\n"
    )
    net = read_network_file(write(tmp_path, "quirks.csv", text))
    assert [n.name for n in net.nodes] == ["conv", "conv_2", "FC_gap", "FC"]
    first = net.node("conv").layer
    assert first.stride == (1, 2)
    # SCALE-Sim's width: ceil((20 - 3 + 2) / 2) = 10, reached with padding 1 on the width
    assert first.padding == (0, 1) and net.shapes["conv"] == (8, 14, 10)
    assert isinstance(net.node("FC_gap").layer, GlobalAvgPool)
    assert net.shapes["FC"] == (10,)
    # without a stride-width column a 9th cell is ignored (mobilenet_paper.csv ends rows with "#dw")
    dw = read_network_file(write(tmp_path, "dw.csv", CONV_HEADER + "Conv2_dw, 12, 12, 3, 3, 1, 1, 2,#dw\n"))
    assert dw.node("Conv2_dw").layer.stride == 2


def test_csv_independent_rows_and_downsampling(tmp_path):
    text = CONV_HEADER + (
        "Conv1,224,224,7,7,3,64,2,\n"      # -> 64x109x109
        "Conv2,56,56,3,3,64,64,1,\n"       # pooled 109 -> 56
        "Short,56,56,1,1,32,128,2,\n"      # 32 channels: no earlier layer makes them -> independent
        "FC,1,1,1,1,999,10,1,\n"           # neither flattens nor pools to 999 -> independent
    )
    net = read_network_file(write(tmp_path, "indep.csv", text))
    assert net.shapes["Conv2_pool"] == (64, 56, 56)
    assert isinstance(net.node("Short_in").layer, Placeholder) and net.shapes["Short_in"] == (32, 56, 56)
    assert net.shapes["FC_in"] == (999,)
    assert "independent-row" in net.description
    # the tensor leaving a row's weight layer is the next row's declared input
    outs = {w.name: w.output_elements for w in weight_layers(net)}
    assert outs["Conv2"] == 32 * 56 * 56


@pytest.mark.parametrize("have,want", [(55, 27), (54, 27), (27, 13), (13, 6), (224, 112), (109, 56),
                                       (60, 56), (100, 60), (7, 2), (5, 2), (9, 2), (3, 2), (4, 3)])
def test_csv_pool_glue_always_fits(tmp_path, have, want):
    text = CONV_HEADER + f"A,{have},{have},1,1,4,4,1,\nB,{want},{want},1,1,4,4,1,\n"
    net = read_network_file(write(tmp_path, "pool.csv", text))
    assert net.shapes["B_pool"] == (4, want, want)


def test_csv_gemm(tmp_path):
    text = "Layer, M, N, K,\nQKT, 1024, 1024, 64,\nProj, 1024, 64, 1024,\nMLP, 512, 256, 300,\n"
    net = read_network_file(write(tmp_path, "gemm.csv", text))
    assert net.input_shape == (64,)
    assert [n.name for n in net.nodes] == ["QKT", "Proj", "MLP_in", "MLP"]
    assert all(isinstance(net.node(n).layer, Linear) for n in ("QKT", "Proj", "MLP"))
    # per sample: N*K; SCALE-Sim's M rows are the batch
    assert [net.macs(net.node(n)) for n in ("QKT", "Proj", "MLP")] == [1024 * 64, 64 * 1024, 256 * 300]
    assert "M (batch rows) = 512..1024" in net.description
    same_m = read_network_file(write(tmp_path, "g2.csv", "Layer,M,N,K\nA,8,4,2\nB,8,3,4\n"))
    assert "M (batch rows) = 8" in same_m.description and len(same_m.nodes) == 2


def test_csv_matches_scalesim_oracle(tmp_path):
    """Each conv case of the SCALE-Sim oracle read from a topology CSV gives SCALE-Sim's GEMM.

    The output-stationary cycle count folds * (R + C + K - 2) - 1 (tests/oracles/README.md)
    then equals SCALE-Sim's compute cycles, which pins M = OH*OW, N = filters, K = Fh*Fw*C.
    """
    cases = [c for c in json.loads(ORACLES.read_text())["cases"] if c["kind"] == "conv"]
    distinct = {c["name"]: c for c in cases}
    cols = ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "num_filt", "stride")
    text = CONV_HEADER + "".join(f"{n}," + ",".join(str(c[k]) for k in cols) + ",\n" for n, c in distinct.items())
    net = read_network_file(write(tmp_path, "oracle.csv", text))
    checked = 0
    for case in cases:
        node = net.node(case["name"])
        (c, _, _), (n, oh, ow) = net.input_shapes(node)[0], net.shapes[node.name]
        kh, kw = node.layer.kernel_hw
        m, k = oh * ow, kh * kw * c
        assert net.macs(node) == m * n * k == scalesim_macs(*(case[k_] for k_ in cols))
        if case["dataflow"] == "os":
            r, cc = case["rows"], case["cols"]
            folds = math.ceil(m / r) * math.ceil(n / cc)
            assert folds * (r + cc + k - 2) - 1 == case["compute_cycles"]
            checked += 1
    assert checked > 10


# ----------------------------------------------------------------------------- malformed files

GOOD_YAML = "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel: 3}\n  - {type: linear, out_features: 2}\n"

# (file name, content, line or None, field or None, words in the message)
MALFORMED = [
    # --- any format
    ("empty.yaml", "", None, None, "empty"),
    ("blank.json", "  \n\n", None, None, "empty"),
    ("empty.csv", "\n", 1, None, "empty"),
    ("commas.csv", ",,,,\n\n", 1, None, "empty"),
    ("latin1.yaml", b"input: [4]\nname: caf\xe9\nlayers: []\n", 2, None, "UTF-8"),
    ("latin1.csv", CONV_HEADER.encode() + b"C\xf61,8,8,3,3,1,2,1,\n", 2, None, "UTF-8"),
    # --- YAML syntax and structure
    ("syntax.yaml", "input: [3, 8, 8\nlayers:\n  - {type: linear}\n", 2, None, "invalid YAML"),
    ("truncated.yaml", "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_ch", 3, None, "invalid YAML"),
    ("tabs.yaml", "input: [4]\nlayers:\n\t- {type: linear}\n", 3, None, "invalid YAML"),
    ("date.yaml", "input: [4]\nname: 2001-13-01\nlayers: []\n", None, None, "invalid YAML value"),
    ("list.yaml", "- 1\n- 2\n", 1, None, "top level must be a mapping"),
    ("topkey.yaml", "input: [4]\nlayer: []\n", 2, "layer", "unknown top-level key"),
    ("noinput.yaml", "layers:\n  - {type: linear, out_features: 2}\n", 1, "input", "missing 'input'"),
    ("inputstr.yaml", "input: 3x32x32\nlayers: [{type: flatten}]\n", 1, "input", "list of positive integers"),
    ("inputneg.yaml", "input:\n  - 3\n  - -8\n  - 8\nlayers: [{type: flatten}]\n", 3, "input[1]", "positive"),
    ("inputfloat.yaml", "input: [3.5]\nlayers: [{type: flatten}]\n", 1, "input[0]", "positive integers"),
    ("nolayers.yaml", "input: [4]\nlayers: []\n", 2, "layers", "non-empty list"),
    ("layersmap.yaml", "input: [4]\nlayers: {type: linear}\n", 2, "layers", "non-empty list"),
    ("layerstr.yaml", "input: [4]\nlayers:\n  - linear\n", 3, "layers[0]", "must be a mapping"),
    ("notype.yaml", "input: [4]\nlayers:\n  - {out_features: 2}\n", 3, "layers[0]", "no 'type'"),
    ("badtype.yaml", "input: [4]\nlayers:\n  - type: linear\n    out_features: 2\n  - type: dense\n",
     5, "layers[1].type", "unknown layer type 'dense'"),
    ("typo.yaml", "input: [4]\nlayers:\n  - type: linear\n    out_feature: 2\n", 4, "layers[0].out_feature",
     "no field 'out_feature'"),
    ("missing.yaml", "input: [4]\nlayers:\n  - type: linear\n", 3, "layers[0].out_features", "needs out_features"),
    ("strint.yaml", "input: [3, 8, 8]\nlayers:\n  - type: conv2d\n    out_channels: '4'\n", 4,
     "layers[0].out_channels", "must be an integer"),
    ("boolint.yaml", "input: [4]\nlayers:\n  - {type: linear, out_features: true}\n", 3,
     "layers[0].out_features", "must be an integer"),
    ("zero.yaml", "input: [4]\nlayers:\n  - type: linear\n    out_features: 0\n", 4, "layers[0].out_features",
     "positive"),
    ("negkernel.yaml", "input: [3, 8, 8]\nlayers:\n  - type: conv2d\n    out_channels: 4\n    kernel: -3\n", 5,
     "layers[0].kernel", "positive"),
    ("negpad.yaml", "input: [3, 8, 8]\nlayers:\n  - type: conv2d\n    out_channels: 4\n    padding: -1\n", 5,
     "layers[0].padding", ">= 0"),
    ("triple.yaml", "input: [3, 8, 8]\nlayers:\n  - type: conv2d\n    out_channels: 4\n    kernel: [3, 3, 3]\n",
     5, "layers[0].kernel", "pair"),
    ("badbias.yaml", "input: [4]\nlayers:\n  - {type: linear, out_features: 2, bias: 1}\n", 3,
     "layers[0].bias", "true or false"),
    ("badact.yaml", "input: [4]\nlayers:\n  - type: linear\n    out_features: 2\n    activation: relux\n", 5,
     "layers[0].activation", "relux"),
    ("badname.yaml", "input: [4]\nlayers:\n  - {name: 7, type: linear, out_features: 2}\n", 3,
     "layers[0].name", "non-empty string"),
    ("reserved.yaml", "input: [4]\nlayers:\n  - {name: input, type: linear, out_features: 2}\n", 3,
     "layers[0].name", "reserved"),
    ("dup.yaml", "input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 2}\n"
     "  - {name: a, type: linear, out_features: 2}\n", 4, "layers[1].name", "duplicate layer name 'a'"),
    ("unknownin.yaml", "input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 2}\n"
     "  - name: b\n    type: linear\n    out_features: 2\n    inputs: [ghost]\n", 7, "layers[1].inputs",
     "unknown input 'ghost'"),
    ("badinputs.yaml", "input: [4]\nlayers:\n  - {type: linear, out_features: 2, inputs: [1]}\n", 3,
     "layers[0].inputs", "layer name"),
    ("self.yaml", "input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 2, inputs: [a]}\n", 3,
     "layers[0].inputs", "reads itself"),
    ("cycle.yaml", "input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 4, inputs: [c]}\n"
     "  - {name: b, type: linear, out_features: 4}\n  - {name: c, type: linear, out_features: 4}\n"
     "  - {name: d, type: linear, out_features: 2, inputs: [input]}\n", 3, "layers[0].inputs", "cycle"),
    ("twoout.yaml", "input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 2}\n"
     "  - {name: b, type: linear, out_features: 2, inputs: [input]}\n", 3, "layers[0]", "exactly one output"),
    ("shapes.yaml", "input: [3, 8, 8]\nlayers:\n  - {name: a, type: conv2d, out_channels: 4, kernel: 3}\n"
     "  - {name: b, type: conv2d, out_channels: 4, kernel: 1, inputs: [input]}\n"
     "  - {name: s, type: add, inputs: [a, b]}\n", 5, "layers[2]", "equal shapes"),
    ("toobig.yaml", "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel: 9}\n", 3,
     "layers[0]", "does not fit"),
    ("arity.yaml", "input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 2}\n"
     "  - {name: b, type: linear, out_features: 2, inputs: [a, input]}\n", 4, "layers[1]", "exactly one input"),
    ("conv1d.yaml", "input: [16]\nlayers:\n  - {type: conv2d, out_channels: 4}\n", 3, "layers[0]", "(C, H, W)"),
    ("badshape.yaml", "input: [4]\nlayers:\n  - {type: placeholder, shape: [0, 2]}\n", 3, "layers[0].shape",
     "positive"),
    ("desc.yaml", "input: [4]\ndescription: [1]\nlayers: [{type: flatten}]\n", 2, "description", "string"),
    # --- JSON
    ("syntax.json", '{\n  "input": [4],\n  "layers": [\n    {"type": "linear",}\n  ]\n}\n', 4, None,
     "invalid JSON"),
    ("truncated.json", '{\n  "input": [4],\n  "layers": [\n    {"type": "lin', 4, None, "invalid JSON"),
    ("semantic.json", '{\n  "input": [4],\n  "layers": [\n    {"type": "linear",\n     "out_features": -2}\n'
     "  ]\n}\n", 5, "layers[0].out_features", "positive"),
    ("array.json", "[1, 2]\n", 1, None, "top level must be a mapping"),
    # --- SCALE-Sim CSV
    ("header.csv", "name,height,width\nA,1,2\n", 1, "header", "not a SCALE-Sim topology header"),
    ("swapped.csv", "Layer name, Channels, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Num Filter,"
     " Strides,\n", 1, "header", "not a SCALE-Sim topology header"),
    ("headeronly.csv", CONV_HEADER, 1, None, "no layer rows"),
    ("truncrow.csv", CONV_HEADER + "C1,8,8,3,3,1,4,1,\nC2,6,6,3,3,4\n", 3, "Num Filter", "row ends early"),
    ("emptycell.csv", CONV_HEADER + "C1,8,8,3,3,1,4,,\n", 2, "Strides", "row ends early"),
    ("word.csv", CONV_HEADER + "C1,8,eight,3,3,1,4,1,\n", 2, "IFMAP Width", "must be an integer, got 'eight'"),
    ("float.csv", CONV_HEADER + "C1,8,8,3,3,1,4.5,1,\n", 2, "Num Filter", "must be an integer"),
    ("zero.csv", CONV_HEADER + "C1,8,8,3,3,0,4,1,\n", 2, "Channels", "positive"),
    ("neg.csv", CONV_HEADER + "C1,8,8,3,3,1,4,1,\nC2,-6,6,3,3,4,4,1,\n", 3, "IFMAP Height", "positive"),
    ("bigfilter.csv", CONV_HEADER + "C1,8,8,3,3,1,4,1,\nC2,2,6,3,3,4,4,1,\n", 3, "Filter Height", "larger"),
    ("gemmtrunc.csv", "Layer, M, N, K,\nA, 4, 4, 4,\nB, 4, 4\n", 3, "K", "row ends early"),
    ("gemmzero.csv", "Layer, M, N, K,\nA, 0, 4, 4,\n", 2, "M", "positive"),
    ("gemmword.csv", "Layer,M,N,K\nA,4,x,4\n", 2, "N", "integer"),
    # --- file type
    ("net.txt", "input: [4]\n", None, None, "unsupported network file type"),
]


@pytest.mark.parametrize("name,content,line,field,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_raise_network_file_error(tmp_path, name, content, line, field, words):
    path = write(tmp_path, name, content)
    with pytest.raises(NetworkFileError) as err:
        read_network_file(path)
    exc = err.value
    message = str(exc)
    assert name in message and exc.path == str(path)
    assert words in message
    assert exc.line == line, message
    assert exc.field == field, message
    if line is not None:
        assert f"{name}:{line}" in message
    if field is not None:
        assert f"field '{field}'" in message
    assert "\n" not in message  # the CLI prints it as one line


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(NetworkFileError, match="cannot read"):
        read_network_file(tmp_path / "absent.yaml")
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(NetworkFileError, match="dir.json: cannot read"):
        read_network_file(folder)


def test_network_from_dict_without_lines():
    with pytest.raises(NetworkFileError) as err:
        network_from_dict({"input": [4], "layers": [{"type": "linear", "out_features": "2"}]}, source="mem")
    assert err.value.line is None and err.value.field == "layers[0].out_features"
    assert str(err.value).startswith("mem: field 'layers[0].out_features': ")


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_truncation_is_a_clean_error(tmp_path, fmt):
    """Cutting a valid file anywhere gives a network or a NetworkFileError, never a raw error."""
    if fmt == "csv":
        text = CONV_HEADER + "Conv1,32,32,5,5,1,6,1,\nConv2,14,14,5,5,6,16,1,\nFC,1,1,1,1,16,10,1,\n"
    elif fmt == "yaml":
        text = EXAMPLE_YAML
    else:
        text = json.dumps(yaml.safe_load(EXAMPLE_YAML), indent=1)
    data = text.encode()
    step = max(1, len(data) // 150)
    for cut in range(0, len(data), step):
        path = write(tmp_path, f"cut.{fmt}", data[:cut])
        try:
            read_network_file(path)
        except NetworkFileError:
            pass


def test_yaml_aliases_and_odd_values_are_clean_errors(tmp_path):
    cyclic = "input: [4]\nlayers: &a\n  - *a\n"
    with pytest.raises(NetworkFileError, match=r"aliases \(\*name\) are not allowed"):
        read_network_file(write(tmp_path, "alias.yaml", cyclic))
    unhashable = "input: [4]\nlayers:\n  - {[1, 2]: 3}\n"
    with pytest.raises(NetworkFileError, match="invalid YAML"):
        read_network_file(write(tmp_path, "unhash.yaml", unhashable))
    nan = '{"input": [NaN], "layers": [{"type": "flatten"}]}'
    with pytest.raises(NetworkFileError, match="positive integers"):
        read_network_file(write(tmp_path, "nan.json", nan))
