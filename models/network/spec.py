"""Network descriptions: a DAG of named layer nodes with inferred shapes.

A :class:`NetworkSpec` is immutable and validated on construction: every input is
known, the graph has no cycle, and every layer accepts the shapes it receives. The
task model works on *weight layers* (convolutions and linear layers) numbered 1..L in
topological order; every other node is element-wise work fused into the weight layer
that produces its first input (see :func:`weight_layers`).

>>> from models.network.layers import Linear
>>> net = chain("tiny", (8,), [Linear(4, activation="relu"), Linear(2)])
>>> [layer.name for layer in weight_layers(net)]
['fc1', 'fc2']
>>> net.total_params()
46
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from models.errors import NetworkError
from models.network.layers import LayerSpec, Shape, numel

INPUT = "input"


@dataclass(frozen=True)
class Node:
    """One layer of a network: a unique name, its spec and the names of its inputs."""

    name: str
    layer: LayerSpec
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class NetworkSpec:
    """A network: per-sample input shape and nodes in any order that forms a DAG.

    The special name ``"input"`` refers to the network's input tensor. The output is
    the single node that no other node consumes.
    """

    name: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        if not self.input_shape or any(
            not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in self.input_shape
        ):
            raise NetworkError(f"network {self.name!r}: input shape must be positive integers, got {self.input_shape}")
        if not self.nodes:
            raise NetworkError(f"network {self.name!r} has no layers")
        names = [n.name for n in self.nodes]
        seen: set[str] = set()
        for n in names:
            if n == INPUT:
                raise NetworkError(f"network {self.name!r}: layer name {INPUT!r} is reserved for the input")
            if n in seen:
                raise NetworkError(f"network {self.name!r}: duplicate layer name {n!r}")
            seen.add(n)
        for node in self.nodes:
            if not node.inputs:
                raise NetworkError(f"network {self.name!r}: layer {node.name!r} has no inputs")
            for src in node.inputs:
                if src != INPUT and src not in seen:
                    raise NetworkError(f"network {self.name!r}: layer {node.name!r} reads unknown input {src!r}")
        if not nx.is_directed_acyclic_graph(self.graph):
            cycle = " -> ".join(u for u, _ in nx.find_cycle(self.graph))
            raise NetworkError(f"network {self.name!r} has a cycle: {cycle}")
        outputs = [n for n in self.graph if n != INPUT and self.graph.out_degree(n) == 0]
        if len(outputs) != 1:
            raise NetworkError(f"network {self.name!r} must have exactly one output layer, found {sorted(outputs)}")
        self.shapes  # infer now so that bad shapes fail at construction

    @cached_property
    def graph(self) -> nx.DiGraph:
        """Data-flow graph over node names, including ``"input"``."""
        g = nx.DiGraph()
        g.add_node(INPUT)
        for node in self.nodes:
            g.add_node(node.name)
            for src in node.inputs:
                g.add_edge(src, node.name)
        return g

    @cached_property
    def order(self) -> tuple[Node, ...]:
        """Nodes in a deterministic topological order (ties broken by declaration order)."""
        position = {n.name: i for i, n in enumerate(self.nodes)}
        by_name = {n.name: n for n in self.nodes}
        names = nx.lexicographical_topological_sort(self.graph, key=lambda n: position.get(n, -1))
        return tuple(by_name[n] for n in names if n != INPUT)

    @cached_property
    def shapes(self) -> dict[str, Shape]:
        """Per-sample output shape of every node (and of ``"input"``)."""
        shapes: dict[str, Shape] = {INPUT: self.input_shape}
        for node in self.order:
            try:
                shapes[node.name] = tuple(node.layer.output_shape([shapes[i] for i in node.inputs]))
            except NetworkError as exc:
                raise NetworkError(f"network {self.name!r}, layer {node.name!r}: {exc}") from None
        return shapes

    def input_shapes(self, node: Node) -> list[Shape]:
        return [self.shapes[i] for i in node.inputs]

    @property
    def output(self) -> Node:
        return self.order[-1]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise NetworkError(f"network {self.name!r} has no layer {name!r}")

    def params(self, node: Node) -> int:
        return node.layer.params(self.input_shapes(node))

    def macs(self, node: Node) -> int:
        """Forward multiply-accumulates of ``node`` per sample."""
        return node.layer.macs(self.input_shapes(node))

    def total_params(self) -> int:
        return sum(self.params(n) for n in self.nodes)

    def total_macs(self) -> int:
        """Forward MACs per sample."""
        return sum(self.macs(n) for n in self.nodes)

    def with_input(self, input_shape: Shape) -> "NetworkSpec":
        """The same layers on another input shape (shapes are re-inferred and re-checked)."""
        return NetworkSpec(self.name, tuple(input_shape), self.nodes, self.description)


def chain(name: str, input_shape: Shape, layers: list[LayerSpec], names: list[str] | None = None,
          description: str = "") -> NetworkSpec:
    """A sequential network; layers are named ``conv1, conv2, fc1, pool1, ...`` unless ``names`` is given."""
    if names is not None and len(names) != len(layers):
        raise NetworkError(f"network {name!r}: {len(names)} names for {len(layers)} layers")
    counters: dict[str, int] = {}
    nodes = []
    previous = INPUT
    for i, layer in enumerate(layers):
        if names is not None:
            node_name = names[i]
        else:
            prefix = {"conv2d": "conv", "linear": "fc", "maxpool": "pool", "avgpool": "pool"}.get(layer.kind, layer.kind)
            counters[prefix] = counters.get(prefix, 0) + 1
            node_name = f"{prefix}{counters[prefix]}"
        nodes.append(Node(node_name, layer, (previous,)))
        previous = node_name
    return NetworkSpec(name, tuple(input_shape), tuple(nodes), description)


@dataclass(frozen=True)
class WeightLayer:
    """A weight layer l (1-based) with the element-wise nodes fused into it.

    ``fused`` are the non-weight nodes whose work belongs to this layer's tasks, in
    topological order; ``producers`` are the weight layers whose outputs this layer's
    nodes read (0 stands for the network input), with the per-sample number of elements
    read from each; ``output`` is the node whose tensor leaves the layer.
    """

    index: int
    name: str
    node: Node
    fused: tuple[Node, ...]
    producers: dict[int, int] = field(default_factory=dict)
    input_elements: int = 0
    output_elements: int = 0
    params: int = 0
    macs: int = 0
    elementwise: int = 0


def weight_layers(net: NetworkSpec) -> list[WeightLayer]:
    """Number the weight layers 1..L and fuse every other node into one of them.

    A non-weight node belongs to the latest-numbered weight layer among the owners of its
    inputs, so a pooling layer joins the convolution before it and a residual ``add``
    joins whichever branch ends last (the downsample convolution when there is one).
    This keeps every producer numbered below its consumers, so any contiguous range of
    layers is a valid pipeline stage. A non-weight node that reads only the network
    input belongs to the first weight layer that consumes it.

    >>> from models.network.layers import Conv2d, MaxPool2d, Flatten, Linear
    >>> net = chain("n", (1, 8, 8), [Conv2d(4), MaxPool2d(2), Flatten(), Linear(10)])
    >>> [(w.name, [f.name for f in w.fused]) for w in weight_layers(net)]
    [('conv1', ['pool1', 'flatten1']), ('fc1', [])]
    """
    order = net.order
    owner: dict[str, int] = {INPUT: 0}
    weights = [n for n in order if n.layer.has_weights]
    if not weights:
        raise NetworkError(f"network {net.name!r} has no layer with weights (conv2d or linear)")
    index = {n.name: i + 1 for i, n in enumerate(weights)}
    pending: list[Node] = []  # non-weight nodes that read only the input so far
    for node in order:
        if node.layer.has_weights:
            owner[node.name] = index[node.name]
        else:
            owner[node.name] = max(owner[i] for i in node.inputs)
            if owner[node.name] == 0:
                pending.append(node)
    # nodes owned by the input go to their first weight-layer consumer
    for node in reversed(pending):
        consumers = [owner[c] for c in net.graph.successors(node.name) if owner.get(c, 0) > 0]
        owner[node.name] = min(consumers) if consumers else 1

    fused: dict[int, list[Node]] = {i: [] for i in index.values()}
    for node in order:
        if not node.layer.has_weights:
            fused[owner[node.name]].append(node)

    result = []
    for w in weights:
        l = index[w.name]
        members = [w, *fused[l]]
        member_names = {m.name for m in members}
        producers: dict[int, int] = {}
        read: set[str] = set()
        for m in members:
            for src in m.inputs:
                if src not in member_names and src not in read:
                    read.add(src)
                    producers[owner[src]] = producers.get(owner[src], 0) + numel(net.shapes[src])
        # the tensor that leaves: the last member another layer reads, else the network output
        leaving = [m for m in members if any(owner.get(c) != l for c in net.graph.successors(m.name))]
        out_node = leaving[-1] if leaving else members[-1]
        result.append(WeightLayer(
            index=l,
            name=w.name,
            node=w,
            fused=tuple(fused[l]),
            producers=producers,
            input_elements=numel(net.shapes[w.inputs[0]]),
            output_elements=numel(net.shapes[out_node.name]),
            params=sum(net.params(m) for m in members),
            macs=net.macs(w),
            elementwise=sum(m.layer.elementwise(net.input_shapes(m)) for m in members),
        ))
    return result


__all__ = ["INPUT", "Node", "NetworkSpec", "chain", "WeightLayer", "weight_layers"]
