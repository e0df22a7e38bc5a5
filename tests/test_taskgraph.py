"""Task graphs of one training step (docs/design.md section 3), checked against hand-worked counts."""

import networkx as nx
import pytest

from models.errors import LayerPipeError, NetworkError
from models.graph.build import training_graph
from models.graph.tasks import total_work
from models.graph.views import VIEWS, contract
from models.network.layers import Conv2d, Flatten, Linear, MaxPool2d
from models.network.spec import chain
from models.network.zoo import get_network


def mlp_graph(batch=8):
    # 4 -> 3 (relu) -> 2
    return training_graph(chain("m", (4,), [Linear(3, activation="relu"), Linear(2)]), batch)


def test_tasks_of_a_two_layer_mlp():
    g = mlp_graph()
    assert sorted(g.nodes) == [("AG1", 2), ("AG2", 1), ("F", 1), ("F", 2),
                               ("U", 1), ("U", 2), ("WG", 1), ("WG", 2)]
    # no AG1 for the first layer (nothing needs the input's gradient), no AG2 for the last (loss in F)
    assert ("AG1", 1) not in g and ("AG2", 2) not in g


def test_work_and_gemm_shapes_by_hand():
    g = mlp_graph(batch=8)
    f1, wg1, ag12 = g.nodes["F", 1]["work"], g.nodes["WG", 1]["work"], g.nodes["AG1", 2]["work"]
    assert f1.macs == 8 * 4 * 3 and f1.gemms == ((8, 3, 4),)
    assert wg1.macs == 96 and wg1.gemms == ((3, 4, 8),)  # grad W (3x4) = delta^T (3x8) . a (8x4)
    assert ag12.gemms == ((8, 3, 2),)  # g (8x3) = delta (8x2) . W2 (2x3)
    assert f1.elementwise == 8 * 3 * 2  # bias + relu on 3 outputs
    assert g.nodes["AG2", 1]["work"].elementwise == 48  # relu' and bias on the 3 outputs, batch 8
    assert g.nodes["U", 1]["work"].elementwise == 15  # 3*4 weights + 3 biases


def test_edge_bytes_by_hand():
    g = mlp_graph(batch=8)  # fp16: 2 bytes per element
    assert g.edges[("F", 1), ("F", 2)]["bytes"] == 8 * 3 * 2
    assert g.edges[("AG1", 2), ("AG2", 1)]["bytes"] == 8 * 3 * 2
    # the last layer's F hands WG both its stored input (8x3) and the loss gradient (8x2)
    assert g.edges[("F", 2), ("WG", 2)]["bytes"] == 8 * 3 * 2 + 8 * 2 * 2
    assert g.edges[("F", 2), ("AG1", 2)]["bytes"] == 8 * 2 * 2
    assert g.edges[("WG", 1), ("U", 1)]["bytes"] == 15 * 2


def test_conv_gemm_orientation():
    net = chain("c", (3, 8, 8), [Conv2d(4, kernel=3, padding=1), MaxPool2d(2), Flatten(), Linear(5)])
    g = training_graph(net, 2)
    rows, k = 2 * 8 * 8, 3 * 3 * 3
    assert g.nodes["F", 1]["work"].gemms == ((rows, 4, k),)
    assert g.nodes["WG", 1]["work"].gemms == ((4, k, rows),)
    assert g.nodes["F", 1]["work"].macs == rows * 4 * k
    # the pooling layer is element-wise work of the convolution's tasks
    assert g.nodes["F", 2]["work"].gemms == ((2, 5, 4 * 4 * 4),)


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "resnet18", "mlp"])
def test_total_work_identical_across_views(name):
    net = get_network(name)
    totals = {v: total_work(training_graph(net, 4, view=v)) for v in VIEWS}
    assert len({(t.macs, t.elementwise, t.gemm_macs, t.bytes_read, t.bytes_written) for t in totals.values()}) == 1


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_views_are_acyclic_and_merge_as_designed(name):
    net = get_network(name)
    pd = training_graph(net, 2, view="pipedream")
    zb = training_graph(net, 2, view="zerobubble")
    assert nx.is_directed_acyclic_graph(pd) and nx.is_directed_acyclic_graph(zb)
    assert {k for k, *_ in pd.nodes} == {"F", "B", "U"}
    assert {k for k, *_ in zb.nodes} >= {"F", "B", "W", "U"}
    # the forward MACs are forward, every backward MAC is in B (pipedream) or B + W (zero bubble)
    fine = training_graph(net, 2)
    back = sum(d["work"].macs for n, d in fine.nodes(data=True) if n[0] in ("WG", "AG1"))
    assert sum(d["work"].macs for n, d in pd.nodes(data=True) if n[0] == "B") == back


def test_macs_scale_with_batch():
    net = get_network("lenet5")
    g1, g4 = training_graph(net, 1), training_graph(net, 4)
    assert total_work(g4).macs == 4 * total_work(g1).macs
    assert nx.is_isomorphic(g1, g4)


def test_forward_macs_match_the_network():
    net = get_network("vgg16")
    g = training_graph(net, 1)
    assert sum(d["work"].macs for n, d in g.nodes(data=True) if n[0] == "F") == net.total_macs()


def test_bad_arguments():
    net = get_network("mlp")
    with pytest.raises(NetworkError, match="batch"):
        training_graph(net, 0)
    with pytest.raises(LayerPipeError, match="view"):
        training_graph(net, 1, view="nope")


def test_contract_rejects_cycles():
    g = mlp_graph()
    with pytest.raises(LayerPipeError, match="cycle"):
        contract(g, lambda n: "x" if n in (("F", 1), ("AG2", 1)) else n)


def test_ag_split_fraction_moves_rows_of_the_product():
    """rho = 0.25 of AG1_2's 8 rows (batch 8) runs in AG2_1: 2 rows x 3 x 2 MACs move, none are created."""
    net = chain("m", (4,), [Linear(3, activation="relu"), Linear(2)])
    base, split = training_graph(net, 8), training_graph(net, 8, ag_split=0.25)
    assert split.nodes["AG1", 2]["work"].gemms == ((6, 3, 2),)
    assert split.nodes["AG2", 1]["work"].gemms == ((2, 3, 2),)
    assert split.nodes["AG2", 1]["work"].macs - base.nodes["AG2", 1]["work"].macs == 2 * 3 * 2
    assert total_work(split).macs == total_work(base).macs and total_work(split).elementwise == total_work(base).elementwise
    # the producer receives its rows of delta_2 (2 rows x 2 x 2 bytes) and W_2 (3*2 + 2 params x 2 bytes)
    assert split.edges[("F", 2), ("AG2", 1)]["bytes"] == 2 * 2 * 2 + 8 * 2


def test_ag_split_balanced_equalises_layer_work():
    """A split moves work only from a heavier layer to a lighter producer, and narrows their gap."""
    net = get_network("alexnet")
    g, base = training_graph(net, 4, ag_split="balanced"), training_graph(net, 4)

    def work(graph, l):
        return sum(d["work"].macs + d["work"].elementwise for n, d in graph.nodes(data=True) if n[1] == l)

    moved = [l for l in range(2, 9) if g.nodes["AG2", l - 1]["work"].macs > base.nodes["AG2", l - 1]["work"].macs]
    assert moved  # conv2 (448 M MACs per sample) outweighs conv1 (105 M), for one
    for l in moved:
        assert abs(work(g, l) - work(g, l - 1)) < abs(work(base, l) - work(base, l - 1))
    assert total_work(g).macs == total_work(base).macs


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half"])
def test_ag_split_rejects_bad_values(bad):
    with pytest.raises(LayerPipeError, match="ag_split"):
        training_graph(get_network("mlp"), 2, ag_split=bad)
