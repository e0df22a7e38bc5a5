"""Task graphs of one training step (DESIGN section 3).

:func:`training_graph` turns a network and a batch size into a networkx ``DiGraph``
whose nodes are keyed by readable tuples ``(kind, layer, minibatch)``:

======  ==========================================  ===============================
kind    computes                                    needs
======  ==========================================  ===============================
F       z_l = W_l a_{l-1}, a_l = f(z_l)              outputs of producer layers
WG      grad W_l = delta_l a_{l-1}^T                delta_l, stored input of layer l
AG1     g = W_l^T delta_l (gradient of l's input)   delta_l, W_l; absent when l reads the input
AG2     delta_p = (sum of g from consumers) * f'    every consumer's g, stored z_p
U       weight update of layer l                    WG_l
======  ==========================================  ===============================

The loss and its gradient are element-wise work of the last layer's F (so delta_L is
available when F_L ends, and the last layer has no AG2). In a DAG a layer's AG2 also
back-propagates through its fused residual ``add`` and so sends gradients straight to
the shortcut's producer. Every node carries ``work`` (:class:`models.graph.work.TaskWork`),
``kind``, ``layer``, ``minibatch`` and ``layers`` (the weight layers merged into it).
Every edge carries ``bytes`` and ``tensor``, an identifier of the data it moves: two
edges with the same tensor from the same producer move the same data, so a processor
receives it once (see ``schedules.passes``).

GEMM orientation (A = M x K, B = K x N), batch B, conv output OH x OW, K_w = Cin*Kh*Kw:

=====  ===========================  =========================  ==================
task   linear                       conv2d                     meaning
=====  ===========================  =========================  ==================
F      (B, N_out, N_in)             (B*OH*OW, Cout, K_w)       im2col(a) . W^T
WG     (N_out, N_in, B)             (Cout, K_w, B*OH*OW)       delta^T . im2col(a)
AG1    (B, N_in, N_out)             (B*OH*OW, K_w, Cout)       delta . W, then col2im
=====  ===========================  =========================  ==================

Views come from the same fine graph by :func:`contract`: ``"pipedream"`` merges
AG1_l + AG2_{l-1} + WG_l into B_l, ``"zerobubble"`` merges AG1_l + AG2_{l-1} into B_l and
renames WG_l to W_l. AG2 of a layer with several consumers joins the consumer with the
smallest index (the last to finish its backward), which keeps the view acyclic.

Spiking layers (SpikePipe, :mod:`models.network.spiking`) run T time steps. Their three GEMMs
batch over ``B*T`` rows (the layer's ``gemm_shapes``), every activation and gradient tensor
holds ``B*T`` values per element, and the LIF membrane recurrence is element-wise work that
is sequential in t: the forward one in F_l, the backward one (reverse t) in AG2_l, or in
F_L for the output layer, whose membrane BPTT makes delta_L; both carry
``TaskWork.sequential_steps = T``. AG2 of a spiking layer reads the stored membrane (tensor
``("mem", p)``) instead of the layer's output. A tensor of spikes (a spiking layer's output,
through max pooling or flatten only, and a spiking network's rate-coded input) is binary:
it counts 1 byte per element, or 1 bit with ``spike_bits=True``, on its edges (F_p -> F_l,
F_l -> WG_l) and in ``LayerInfo`` input, output and stash bytes. A network without spiking
layers gets exactly the graph it had before.

>>> from models.network import chain
>>> from models.network.layers import Linear
>>> g = training_graph(chain("m", (4,), [Linear(3, activation="relu"), Linear(2)]), batch=8)
>>> sorted(g.nodes)[:4]
[('AG1', 2, 0), ('AG2', 1, 0), ('F', 1, 0), ('F', 2, 0)]
>>> g.nodes["F", 1, 0]["work"].macs
96
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import networkx as nx

from models.errors import LayerPipeError, NetworkError
from models.network.layers import Conv2d, Linear, numel
from models.network.spec import INPUT, NetworkSpec, weight_layers
from models.network.spiking import SPIKE_PRESERVING_KINDS, is_spiking, time_steps
from models.graph.work import TaskWork

#: task kinds of the fine-grained model and of the views
KINDS = ("F", "WG", "AG1", "AG2", "U", "B", "W")
VIEWS = ("layerpipe", "pipedream", "zerobubble")

TaskKey = tuple[str, int, int]


@dataclass(frozen=True)
class LayerInfo:
    """What the memory and communication models need to know of weight layer ``index``."""

    index: int
    name: str
    kind: str
    params: int
    param_bytes: int
    input_bytes: int  # a_{l-1} for the whole batch
    output_bytes: int  # the tensor that leaves the layer, whole batch
    stash_bytes: int  # activations kept from F_l until the backward of the minibatch ends
    producers: tuple[int, ...]


def _gemms(layer, in_shape, out_shape, batch: int) -> dict[str, tuple[int, int, int]]:
    if isinstance(layer, Linear):
        n_in, n_out = numel(in_shape), layer.out_features
        return {"F": (batch, n_out, n_in), "WG": (n_out, n_in, batch), "AG1": (batch, n_in, n_out)}
    if isinstance(layer, Conv2d):
        kh, kw = layer.kernel_hw
        k = in_shape[0] * kh * kw
        rows = batch * out_shape[1] * out_shape[2]
        cout = layer.out_channels
        return {"F": (rows, cout, k), "WG": (cout, k, rows), "AG1": (rows, k, cout)}
    gemm = getattr(layer, "gemm_shapes", None)  # layer kinds defined elsewhere (e.g. spiking)
    if gemm is None:
        raise NetworkError(f"no GEMM mapping for weight layer kind {layer.kind!r}")
    return gemm(in_shape, out_shape, batch)


def _add_data_edge(graph: nx.DiGraph, u, v, nbytes: int, tensor) -> None:
    """Add an edge moving ``tensor``; a second tensor on the same pair adds its bytes."""
    data = graph.get_edge_data(u, v)
    if data is None:
        graph.add_edge(u, v, bytes=nbytes, tensor=tensor)
    elif data["tensor"] != tensor:
        data["bytes"] += nbytes
        data["tensor"] = (data["tensor"], tensor)


def training_graph(net: NetworkSpec, batch: int = 1, *, word_bytes: int = 2, minibatches: int = 1,
                   updates: bool = True, view: str = "layerpipe", spike_bits: bool = False,
                   ag_split: str | float = "design") -> nx.DiGraph:
    """The task graph of ``minibatches`` independent training steps of ``net``.

    Parameters
    ----------
    batch : samples per minibatch (every work figure scales with it).
    word_bytes : bytes per tensor element (2 for fp16/bf16).
    minibatches : copies of the step, keyed by their minibatch index; no edge links two
        minibatches (cross-minibatch dependencies are a schedule's delays).
    updates : include the U_l weight-update tasks.
    view : ``"layerpipe"`` (fine tasks), ``"pipedream"`` or ``"zerobubble"``.
    ag_split : how the activation gradient is split between layer l and its producer p
        (LayerPipe's inter-layer split). ``"design"`` (default, DESIGN section 3): AG1_l is the
        whole product W_l^T delta_l on layer l, AG2_p the element-wise rest on p. A number rho
        in [0, 1], or ``"balanced"``, is the second reading: a fraction rho_l of AG1_l's
        product (rows of delta_l) runs in AG2_p, which then receives those rows of delta_l and
        a fresh copy of W_l every minibatch; ``"balanced"`` picks rho_l per layer, from the
        last layer down, so that the two layers' work (MACs + element-wise) is as equal as the
        split allows (see :func:`split_activation_gradients`).
    spike_bits : count binary spike tensors as 1 bit per element (default: 1 byte).
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch <= 0:
        raise NetworkError(f"batch size must be a positive integer, got {batch!r}")
    if not isinstance(word_bytes, int) or word_bytes <= 0:
        raise NetworkError(f"word size must be a positive number of bytes, got {word_bytes!r}")
    if not isinstance(minibatches, int) or minibatches <= 0:
        raise NetworkError(f"minibatches must be a positive integer, got {minibatches!r}")
    if view not in VIEWS:
        raise LayerPipeError(f"unknown task-graph view {view!r} (known: {', '.join(VIEWS)})")

    layers = weight_layers(net)
    last = len(layers)
    owner = {INPUT: 0}
    for wl in layers:
        owner[wl.node.name] = wl.index
        for f in wl.fused:
            owner[f.name] = wl.index
    B, wb = batch, word_bytes
    # spiking layers: T steps each (1 otherwise); is the tensor leaving layer l binary spikes?
    steps = {wl.index: time_steps(wl.node.layer) for wl in layers}
    spiking = {wl.index: is_spiking(wl.node.layer) for wl in layers}
    binary = {wl.index: spiking[wl.index] and all(f.layer.kind in SPIKE_PRESERVING_KINDS for f in wl.fused)
              for wl in layers}

    def tensor_bytes(elems: int, t: int = 1, spikes: bool = False) -> int:
        """Bytes of B*t*elems values: words, or spikes (1 byte, or 1 bit with spike_bits)."""
        n = B * t * elems
        if not spikes:
            return n * wb
        return -(-n // 8) if spike_bits else n

    def read_bytes(l: int, p: int, elems: int) -> int:
        """Bytes layer l reads from producer p (0 = the network input, rate-coded spikes for an SNN)."""
        if p == 0:
            return tensor_bytes(elems, steps[l], spiking[l])
        return tensor_bytes(elems, steps[p], binary[p])

    template = nx.DiGraph()
    info: dict[int, LayerInfo] = {}
    # consumers[p] = {c: (elements c reads from p through its weight node, ... through fused nodes)}
    consumers: dict[int, dict[int, list[int]]] = {wl.index: {} for wl in layers}
    weight_input_owner: dict[int, int] = {}
    for wl in layers:
        src = wl.node.inputs[0]
        weight_input_owner[wl.index] = owner[src]
        member_names = {wl.node.name, *(f.name for f in wl.fused)}
        seen: set[str] = set()
        for member in (wl.node, *wl.fused):
            for s in member.inputs:
                p = owner[s]
                if s in member_names or s in seen or p in (0, wl.index):
                    continue
                seen.add(s)
                via = consumers[p].setdefault(wl.index, [0, 0])
                via[0 if member is wl.node else 1] += numel(net.shapes[s])

    for wl in layers:
        l = wl.index
        in_shape = net.shapes[wl.node.inputs[0]]
        z_shape = net.shapes[wl.node.name]
        gemms = _gemms(wl.node.layer, in_shape, z_shape, B)
        z_elems, in_elems, out_elems = numel(z_shape), numel(in_shape), wl.output_elements
        T = steps[l]
        in_bytes = read_bytes(l, weight_input_owner[l], in_elems)  # a_{l-1} (spikes for an SNN)
        z_bytes = tensor_bytes(z_elems, T)  # z_l, delta_l; the membrane potentials of a spiking layer
        out_bytes = tensor_bytes(out_elems, T, binary[l])
        ext_in_bytes = sum(read_bytes(l, p, elems) for p, elems in wl.producers.items())
        # stash: the input for WG, and the output (ANN, for f') or the membrane (SNN, for the surrogate)
        stash = in_bytes + (z_bytes if spiking[l] else out_bytes)
        info[l] = LayerInfo(l, wl.name, wl.node.layer.kind, wl.params, wl.params * wb, in_bytes,
                            out_bytes, stash, tuple(sorted(wl.producers)))
        loss = 3 * B * out_elems if l == last else 0  # softmax, cross-entropy and its gradient
        elementwise, seq = B * wl.elementwise + loss, 1
        if spiking[l]:  # membrane forward over T steps (the layer's own figure), fused layers at every step
            own = wl.node.layer.elementwise([in_shape])
            elementwise, seq = B * (own + T * (wl.elementwise - own)) + loss, T
            if l == last:  # readout over T, then the output membrane's BPTT makes delta_L
                elementwise += B * T * out_elems + B * wl.node.layer.backward_elementwise([in_shape])
        template.add_node(("F", l), work=TaskWork(
            macs=B * wl.macs, elementwise=elementwise, gemms=(gemms["F"],), sequential_steps=seq,
            bytes_read=ext_in_bytes + wl.params * wb, bytes_written=z_bytes + out_bytes))
        template.add_node(("WG", l), work=TaskWork(
            macs=B * wl.macs, gemms=(gemms["WG"],),
            bytes_read=z_bytes + in_bytes, bytes_written=wl.params * wb))
        # delta_l comes from the loss (last layer) or from this layer's AG2
        delta_src = ("F", l) if l == last else ("AG2", l)
        _add_data_edge(template, ("F", l), ("WG", l), in_bytes, ("in", l))
        _add_data_edge(template, delta_src, ("WG", l), z_bytes, ("d", l))
        if weight_input_owner[l] not in (0, l):
            template.add_node(("AG1", l), work=TaskWork(
                macs=B * wl.macs, gemms=(gemms["AG1"],),
                bytes_read=z_bytes + wl.params * wb, bytes_written=tensor_bytes(in_elems, T)))
            _add_data_edge(template, delta_src, ("AG1", l), z_bytes, ("d", l))
        if updates:
            template.add_node(("U", l), work=TaskWork(
                elementwise=wl.params, bytes_read=2 * wl.params * wb, bytes_written=wl.params * wb))
            _add_data_edge(template, ("WG", l), ("U", l), wl.params * wb, ("dW", l))
        for p, elems in wl.producers.items():
            if p != 0:
                _add_data_edge(template, ("F", p), ("F", l), read_bytes(l, p, elems), ("a", p))

    for wl in layers:
        p = wl.index
        if not consumers[p]:
            continue
        g_in = sum(sum(v) for v in consumers[p].values())
        fan_in_sums = max(0, len(consumers[p]) - 1) * wl.output_elements
        T, z_elems = steps[p], numel(net.shapes[wl.node.name])
        if spiking[p]:  # BPTT through the membrane in reverse t, then the fused layers at every step
            in_shape = net.shapes[wl.node.inputs[0]]
            own = wl.node.layer.elementwise([in_shape])
            work = TaskWork(
                elementwise=B * (wl.node.layer.backward_elementwise([in_shape])
                                 + T * (wl.elementwise - own + fan_in_sums)),
                bytes_read=tensor_bytes(g_in, T) + tensor_bytes(z_elems, T),
                bytes_written=tensor_bytes(z_elems, T), sequential_steps=T)
            stored = (tensor_bytes(z_elems, T), ("mem", p))  # the surrogate needs the membrane
        else:
            work = TaskWork(
                elementwise=B * (wl.elementwise + fan_in_sums),
                bytes_read=B * (g_in + wl.output_elements) * wb,
                bytes_written=B * z_elems * wb)
            stored = (B * wl.output_elements * wb, ("a", p))
        template.add_node(("AG2", p), work=work)
        _add_data_edge(template, ("F", p), ("AG2", p), *stored)
        for c, (via_weight, via_fused) in sorted(consumers[p].items()):
            if via_weight:
                _add_data_edge(template, ("AG1", c), ("AG2", p), tensor_bytes(via_weight, T), ("g", c, p))
            if via_fused:  # the gradient of a residual shortcut leaves through c's AG2 (or its loss)
                src = ("F", c) if c == last else ("AG2", c)
                _add_data_edge(template, src, ("AG2", p), tensor_bytes(via_fused, T), ("gs", c, p))

    if ag_split != "design":
        split_activation_gradients(template, weight_input_owner, info, wb, ag_split)
    if view != "layerpipe":
        template = _view(template, consumers, view)

    graph = nx.DiGraph(network=net.name, batch=B, word_bytes=wb, view=view, layers=info,
                       num_layers=last)
    for mb in range(minibatches):
        for (kind, l), data in template.nodes(data=True):
            graph.add_node((kind, l, mb), kind=kind, layer=l, minibatch=mb, layers=data.get("layers", (l,)),
                           parts=data.get("parts", ((kind, l),)), work=data["work"])
        for (u, v, data) in template.edges(data=True):
            graph.add_edge((*u, mb), (*v, mb), **data)
    return graph


def split_activation_gradients(template: nx.DiGraph, producer: dict[int, int], info: dict[int, LayerInfo],
                               word_bytes: int, rho: str | float) -> dict[int, float]:
    """Move a fraction rho_l of each AG1_l's matrix product into its producer's AG2 (in place).

    Only the product's rows move, so the total MACs are unchanged. The moved part needs its
    rows of delta_l and W_l on the producer's side: the edge from delta_l's task to AG2_p
    carries rho_l x delta_l bytes plus W_l's parameter bytes (fresh weights each minibatch).
    With ``rho="balanced"`` layers are visited from the last down and rho_l equalises the work
    (MACs + element-wise ops) of layer l and its producer as far as [0, 1] allows. Returns
    the rho used per layer.

    >>> from models.network import chain
    >>> from models.network.layers import Linear
    >>> g = training_graph(chain("m", (4,), [Linear(8), Linear(8)]), 2, ag_split=0.5)
    >>> g.nodes["AG1", 2, 0]["work"].macs, g.nodes["AG2", 1, 0]["work"].macs
    (64, 64)
    """
    if isinstance(rho, str) and rho != "balanced":
        raise LayerPipeError(f"ag_split must be 'design', 'balanced' or a fraction in [0, 1], got {rho!r}")
    if not isinstance(rho, str) and not (isinstance(rho, (int, float)) and 0 <= rho <= 1):
        raise LayerPipeError(f"ag_split fraction must be in [0, 1], got {rho!r}")

    def layer_work(l: int) -> int:
        return sum(d["work"].macs + d["work"].elementwise for n, d in template.nodes(data=True) if n[1] == l)

    used: dict[int, float] = {}
    for l in sorted((n[1] for n in template if n[0] == "AG1"), reverse=True):
        p = producer[l]
        ag1, ag2 = ("AG1", l), ("AG2", p)
        if ag2 not in template:
            continue
        work = template.nodes[ag1]["work"]
        (M, N, K), = work.gemms
        if rho == "balanced":
            r = min(1.0, max(0.0, (layer_work(l) - layer_work(p)) / (2 * work.macs))) if work.macs else 0.0
        else:
            r = float(rho)
        moved = round(M * r)
        if moved == 0:
            continue
        kept = M - moved
        delta_bytes = template.nodes[ag1]["work"].bytes_read - info[l].param_bytes
        template.nodes[ag1]["work"] = TaskWork(
            macs=work.macs - moved * N * K, elementwise=work.elementwise,
            gemms=((kept, N, K),) if kept else (), bytes_read=work.bytes_read * kept // M,
            bytes_written=work.bytes_written * kept // M, sequential_steps=work.sequential_steps)
        old = template.nodes[ag2]["work"]
        template.nodes[ag2]["work"] = old + TaskWork(
            macs=moved * N * K, gemms=((moved, N, K),),
            bytes_read=delta_bytes * moved // M + info[l].param_bytes, bytes_written=work.bytes_written * moved // M)
        src = next(q for q in template.predecessors(ag1))  # delta_l's task (AG2_l, or F_L for the last)
        _add_data_edge(template, src, ag2, delta_bytes * moved // M + info[l].param_bytes, ("dpart", l))
        used[l] = moved / M
    return used


def _view(template: nx.DiGraph, consumers: dict[int, dict[int, list[int]]], view: str) -> nx.DiGraph:
    back_owner = {}
    for p, cons in consumers.items():
        if cons:
            back_owner[p] = min(cons)  # AG2_p joins the first consumer's backward
    mapping: dict[Hashable, Hashable] = {}
    for kind, l in template.nodes:
        if kind == "AG1":
            mapping[kind, l] = ("B", l)
        elif kind == "AG2":
            mapping[kind, l] = ("B", back_owner[l])
        elif kind == "WG":
            mapping[kind, l] = ("B", l) if view == "pipedream" else ("W", l)
    return contract(template, lambda n: mapping.get(n, n))


def contract(graph: nx.DiGraph, merge: Callable[[Hashable], Hashable]) -> nx.DiGraph:
    """Merge the nodes that ``merge`` maps to the same key into one task.

    Work is summed, ``layers`` are united, ``parts`` lists the fine tasks ``(kind, layer)``
    a merged task is made of, edges inside a merged task vanish and parallel
    edges between two merged tasks become one edge whose bytes are the sum of the
    distinct tensors it moves (a tensor counted once). Raises ``LayerPipeError`` if the
    merge creates a cycle (the grouping would deadlock).

    >>> g = nx.DiGraph()
    >>> g.add_edge("a", "b", bytes=4, tensor="x"); g.add_edge("a", "c", bytes=4, tensor="x")
    >>> for n in g: g.nodes[n]["work"] = TaskWork(macs=1)
    >>> h = contract(g, lambda n: "bc" if n in "bc" else n)
    >>> h.edges["a", "bc"]["bytes"], h.nodes["bc"]["work"].macs
    (4, 2)
    """
    def layers_of(node, data) -> tuple:
        if "layers" in data:
            return tuple(data["layers"])
        return (node[1],) if isinstance(node, tuple) and len(node) > 1 else ()

    def parts_of(node, data) -> tuple:
        if "parts" in data:
            return tuple(data["parts"])
        return (tuple(node[:2]),) if isinstance(node, tuple) and len(node) > 1 else (node,)

    out = nx.DiGraph(**graph.graph)
    for node, data in graph.nodes(data=True):
        key = merge(node)
        if key in out:
            merged = out.nodes[key]
            merged["work"] = merged["work"] + data["work"]
            merged["layers"] = tuple(sorted(set(merged["layers"]) | set(layers_of(node, data))))
            merged["parts"] = tuple(sorted(set(merged["parts"]) | set(parts_of(node, data)), key=repr))
        else:
            attrs = {k: v for k, v in data.items() if k not in ("work", "layers", "kind", "parts")}
            if isinstance(key, tuple) and key and isinstance(key[0], str):
                attrs["kind"] = key[0]
                if len(key) > 1:
                    attrs["layer"] = key[1]
            out.add_node(key, **attrs, work=data["work"], layers=layers_of(node, data), parts=parts_of(node, data))
    tensors: dict[tuple, dict] = {}
    for u, v, data in graph.edges(data=True):
        a, b = merge(u), merge(v)
        if a == b:
            continue
        moved = tensors.setdefault((a, b), {})
        moved[data.get("tensor", (u, v))] = data.get("bytes", 0)
    for (a, b), moved in tensors.items():
        tensor = next(iter(moved)) if len(moved) == 1 else tuple(sorted(moved, key=repr))
        out.add_edge(a, b, bytes=sum(moved.values()), tensor=tensor)
    if not nx.is_directed_acyclic_graph(out):
        cycle = " -> ".join(str(u) for u, _ in nx.find_cycle(out))
        raise LayerPipeError(f"merging tasks creates a dependency cycle: {cycle}")
    return out


def uniform_pipeline_graph(stages: int, f: int, b: int, w: int, *, act_bytes: int = 0,
                           param_bytes: int = 0, split_backward: bool = True) -> nx.DiGraph:
    """Synthetic template of ``stages`` pipeline stages with fixed task durations.

    Stage ``s`` (1-based) has F (``f`` cycles), B (input gradient, ``b``) and W (weight
    gradient, ``w``) tasks; with ``split_backward=False`` B takes ``b + w`` and there is no
    W. Forward sends ``act_bytes`` to the next stage, B sends as many back. This is the
    setting of the zero-bubble paper's closed forms (DESIGN section 9).

    >>> g = uniform_pipeline_graph(2, f=1, b=2, w=3)
    >>> sorted(g.nodes)
    [('B', 1), ('B', 2), ('F', 1), ('F', 2), ('W', 1), ('W', 2)]
    """
    for name, v in (("stages", stages), ("f", f), ("b", b), ("w", w)):
        if not isinstance(v, int) or v < (1 if name == "stages" else 0):
            raise LayerPipeError(f"{name} must be a {'positive' if name == 'stages' else 'non-negative'} integer, got {v!r}")
    g = nx.DiGraph(network=f"uniform{stages}", batch=1, word_bytes=1, view="zerobubble", num_layers=stages)
    g.graph["layers"] = {s: LayerInfo(s, f"stage{s}", "synthetic", 0, param_bytes, act_bytes, act_bytes,
                                      2 * act_bytes, (s - 1,) if s > 1 else ())
                         for s in range(1, stages + 1)}
    for s in range(1, stages + 1):
        g.add_node(("F", s), kind="F", layer=s, layers=(s,), work=TaskWork(fixed_cycles=f))
        g.add_node(("B", s), kind="B", layer=s, layers=(s,), work=TaskWork(fixed_cycles=b if split_backward else b + w))
        g.add_edge(("F", s), ("B", s), bytes=act_bytes, tensor=("in", s))
        if split_backward:
            g.add_node(("W", s), kind="W", layer=s, layers=(s,), work=TaskWork(fixed_cycles=w))
            g.add_edge(("B", s), ("W", s), bytes=act_bytes, tensor=("d", s))
        if s > 1:
            g.add_edge(("F", s - 1), ("F", s), bytes=act_bytes, tensor=("a", s - 1))
            g.add_edge(("B", s), ("B", s - 1), bytes=act_bytes, tensor=("g", s, s - 1))
    return g


def total_work(graph: nx.DiGraph) -> TaskWork:
    """The summed work of every task (identical across views of the same step)."""
    total = TaskWork()
    for _, data in graph.nodes(data=True):
        total = total + data["work"]
    return total


def minibatch_slice(graph: nx.DiGraph, minibatch: int = 0) -> nx.DiGraph:
    """The tasks of one minibatch, keyed ``(kind, layer)`` as schedules use them."""
    nodes = [n for n in graph if n[2] == minibatch]
    if not nodes:
        raise LayerPipeError(f"the task graph has no minibatch {minibatch}")
    sub = graph.subgraph(nodes)
    return nx.relabel_nodes(nx.DiGraph(sub), {n: n[:2] for n in nodes})


__all__ = ["KINDS", "VIEWS", "TaskKey", "LayerInfo", "training_graph", "split_activation_gradients", "contract",
           "uniform_pipeline_graph",
           "total_work", "minibatch_slice"]
