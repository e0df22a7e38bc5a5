"""GPT layers against published per-layer figures.

* FLOPs: Megatron's forward ``24 b s h^2 + 4 b s^2 h`` per block and ``72 b s h^2 (1 + s / 6h)``
  forward and backward (Narayanan et al., SC 2021, section 5.1); the weight gradient carries
  no attention-score products.
* Parameters: ``12 h^2 + 13 h`` per block; GPT-2 small has 124,439,808 with its output layer tied
  to the token embedding (the count of the released checkpoint).
* Activations: ``s b h (34 + 5 a s / h)`` bytes per block (Korthikanti et al., 2022, eq. 1).
"""

import pytest

from models.errors import NetworkError
from models.graph.build import training_graph
from models.graph.tasks import layer_infos, task_work
from models.network.files import network_from_dict
from models.network.gpt_zoo import gpt, gpt2, tied_params
from models.network.spec import chain
from models.network.transformer import Attention, Embedding, FeedForward, LMHead

SHAPES = [(1024, 768, 12, 2), (2048, 2304, 24, 1), (128, 64, 4, 3), (16, 32, 2, 5)]


def block(s, h, a):
    return chain("blk", (s, h), [Attention(a), FeedForward()])


@pytest.mark.parametrize("s,h,a,b", SHAPES)
def test_block_flops_are_megatrons(s, h, a, b):
    g = training_graph(block(s, h, a), b)
    macs = {kind: sum(task_work(g, (kind, l)).macs for l in (1, 2) if (kind, l) in g) for kind in ("F", "WG", "AG1")}
    assert 2 * macs["F"] == 24 * b * s * h * h + 4 * b * s * s * h
    assert 2 * macs["WG"] == 24 * b * s * h * h  # the score products have no weight gradient
    # the first layer reads the input and has no AG1: add its input gradient (same products as a later block's)
    later = training_graph(chain("two", (s, h), [FeedForward(), Attention(a), FeedForward()]), b)
    ag1 = task_work(later, ("AG1", 2)).macs + task_work(later, ("AG1", 3)).macs
    assert 2 * (macs["F"] + macs["WG"] + ag1) == 72 * b * s * h * h + 12 * b * s * s * h  # 72bsh^2(1 + s/6h)


@pytest.mark.parametrize("s,h,a,b", SHAPES)
def test_block_parameters_and_activation_memory(s, h, a, b):
    g = training_graph(block(s, h, a), b, word_bytes=2)
    info = layer_infos(g)
    assert info[1].params + info[2].params == 12 * h * h + 13 * h
    assert info[1].stash_bytes + info[2].stash_bytes == s * b * h * 34 + 5 * a * s * s * b


def test_no_dropout_keeps_no_masks():
    s, h, a = 64, 32, 4
    net = chain("nd", (s, h), [Attention(a, dropout=False), FeedForward(dropout=False)])
    info = layer_infos(training_graph(net, 1, word_bytes=2))
    # words only: 6sh + as^2 (attention) and 10sh (feed-forward), 2 bytes each
    assert info[1].stash_bytes + info[2].stash_bytes == 2 * (16 * s * h + a * s * s)


def test_gpt2_parameter_count_is_the_released_one():
    net = gpt2()
    assert tied_params(net) == 124_439_808
    assert net.total_params() == 124_439_808 + 50257 * 768  # the pipeline's own copy of the head


def test_gemms_cover_the_macs():
    g = training_graph(gpt("t", layers=2, hidden=64, heads=4, seq=32, vocab=100), 3)
    for node in g:
        w = task_work(g, node)
        assert w.macs == w.gemm_macs


@pytest.mark.parametrize("layers,message", [
    (lambda: [Embedding(100, 30), Attention(4)], "4 heads do not divide the hidden size 30"),
    (lambda: [Embedding(100, 32), Attention(0)], "heads must be a positive integer"),
    (lambda: [Attention(2)], "needs a \\(sequence, hidden\\) input"),
])
def test_bad_transformer_specs(layers, message):
    with pytest.raises(NetworkError, match=message):
        chain("bad", (16,), layers())


def test_zero_sequence_length_is_refused():
    with pytest.raises(NetworkError, match="positive"):
        gpt("z", layers=1, hidden=8, heads=2, seq=0, vocab=10)
    with pytest.raises(NetworkError, match="positive"):
        gpt2(input_shape=(0,))


def test_network_file_with_transformer_layers():
    data = {"name": "tiny-gpt", "input": [32], "layers": [
        {"type": "embedding", "vocab": 100, "hidden": 64},
        {"type": "attention", "heads": 4}, {"type": "feedforward", "expansion": 4},
        {"type": "lm_head", "vocab": 100}]}
    net = network_from_dict(data)
    assert net.total_params() == gpt("t", layers=1, hidden=64, heads=4, seq=32, vocab=100).total_params()
    bad = dict(data, layers=[data["layers"][0], {"type": "attention", "heads": 5}])
    with pytest.raises(NetworkError, match="5 heads do not divide the hidden size 64"):
        network_from_dict(bad)
    with pytest.raises(NetworkError, match="must be true or false"):
        network_from_dict(dict(data, layers=[data["layers"][0], {"type": "attention", "heads": 4, "dropout": 1}]))


def test_head_and_embedding_work():
    s, h, v, b = 16, 8, 50, 2
    g = training_graph(chain("e", (s,), [Embedding(v, h), LMHead(v)]), b)
    assert task_work(g, ("F", 2)).macs == b * s * h * v
    assert ("AG1", 1) not in g  # token ids have no gradient
    assert task_work(g, ("WG", 1)).elementwise == 2 * b * s * h


def test_compare_gpt2_on_8_processors(capsys):
    """The issue's command: every schedule runs GPT-2 small on 8 processors, each at or above its bound."""
    import json
    import math

    from simulator.cli import main

    assert main(["compare", "gpt2", "-p", "8", "--json"]) == 0
    rows = {r["schedule"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"1f1b", "interleaved-1f1b", "zb-h1", "zb-h2", "zb-v", "layerpipe", "layerpipe2"} <= set(rows)
    for name, r in rows.items():
        assert r["steady_state"] in ("exact", "simulated"), name
        assert r["cycles_per_minibatch"] >= r["lower_bound_cycles"] * (1 - 1e-12), name
        assert 0 <= r["bubble_rate"] < 1 and not math.isnan(r["bubble_rate"]), name
