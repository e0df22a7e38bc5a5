"""The task graph of one training step (docs/design.md, "Task model").

:func:`training_graph` turns a network and a batch size into a networkx ``DiGraph``, the
template of one step, whose nodes are :class:`models.graph.tasks.Task` ``(kind, layer)``:

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
the shortcut's producer. Nodes and edges carry what :mod:`models.graph.tasks` describes
(work, layers, parts; bytes and tensor), read through its accessors.

GEMM orientation (A = M x K, B = K x N), batch B, conv output OH x OW, K_w = Cin*Kh*Kw:

=====  ===========================  =========================  ==================
task   linear                       conv2d                     meaning
=====  ===========================  =========================  ==================
F      (B, N_out, N_in)             (B*OH*OW, Cout, K_w)       im2col(a) . W^T
WG     (N_out, N_in, B)             (Cout, K_w, B*OH*OW)       delta^T . im2col(a)
AG1    (B, N_in, N_out)             (B*OH*OW, K_w, Cout)       delta . W, then col2im
=====  ===========================  =========================  ==================

Views come from the same fine graph (:mod:`models.graph.views`): ``"pipedream"`` merges
AG1_l + AG2_{l-1} + WG_l into B_l, ``"zerobubble"`` merges AG1_l + AG2_{l-1} into B_l and
renames WG_l to W_l.

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
>>> from models.graph.tasks import task_work
>>> [str(t) for t in sorted(g.nodes)]
['AG1_2', 'AG2_1', 'F1', 'F2', 'U1', 'U2', 'WG1', 'WG2']
>>> task_work(g, ("F", 1)).macs
96
"""

from __future__ import annotations

import networkx as nx

from models.errors import LayerPipeError, NetworkError
from models.graph.tasks import LayerInfo, Task, TaskKind, add_edge, add_task
from models.graph.views import VIEWS, view_graph
from models.graph.work import TaskWork
from models.network.layers import Conv2d, Linear, numel
from models.network.spec import INPUT, NetworkSpec, weight_layers
from models.network.spiking import SPIKE_PRESERVING_KINDS, is_spiking, time_steps
from models.network.transformer import is_token_layer


def _gemms(layer, in_shape, out_shape, batch: int) -> dict[str, tuple[tuple[int, int, int], ...]]:
    """The matrix products of F, WG and AG1 of one weight layer over the whole batch."""
    if is_token_layer(layer):  # transformer layers: several products per task
        return layer.task_gemms(in_shape, out_shape, batch)
    if hasattr(layer, "task_cycles"):  # a stage of stated durations has no matrix products
        return {"F": (), "WG": (), "AG1": ()}
    if isinstance(layer, Linear):
        n_in, n_out = numel(in_shape), layer.out_features
        one = {"F": (batch, n_out, n_in), "WG": (n_out, n_in, batch), "AG1": (batch, n_in, n_out)}
    elif isinstance(layer, Conv2d):
        kh, kw = layer.kernel_hw
        k = in_shape[0] * kh * kw
        rows = batch * out_shape[1] * out_shape[2]
        cout = layer.out_channels
        one = {"F": (rows, cout, k), "WG": (cout, k, rows), "AG1": (rows, k, cout)}
    else:
        gemm = getattr(layer, "gemm_shapes", None)  # layer kinds defined elsewhere (e.g. spiking)
        if gemm is None:
            raise NetworkError(f"no GEMM mapping for weight layer kind {layer.kind!r}")
        one = gemm(in_shape, out_shape, batch)
    return {task: (g,) for task, g in one.items()}


def own_elementwise(net: NetworkSpec, wl) -> int:
    """Element-wise work of a transformer weight layer's own node, whose backward runs in its AG1
    (0 for every other kind: there AG2 differentiates all of the layer's element-wise work)."""
    layer = wl.node.layer
    return layer.elementwise([net.shapes[wl.node.inputs[0]]]) if is_token_layer(layer) else 0


def training_graph(net: NetworkSpec, batch: int = 1, *, word_bytes: int = 2, updates: bool = True,
                   view: str = "layerpipe", spike_bits: bool = False, ag_split: str | float = "design") -> nx.DiGraph:
    """The task graph of one training step of ``net`` (the template every unit of a schedule
    instantiates; steps are linked only by a schedule's delays).

    Parameters
    ----------
    batch : samples per minibatch (every work figure scales with it).
    word_bytes : bytes per tensor element (2 for fp16/bf16).
    updates : include the U_l weight-update tasks.
    view : ``"layerpipe"`` (fine tasks), ``"pipedream"`` or ``"zerobubble"``.
    ag_split : how the activation gradient is split between layer l and its producer p
        (LayerPipe's inter-layer split). ``"design"`` (default, docs/design.md): AG1_l is the
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
        token = is_token_layer(wl.node.layer)
        if token:  # what a transformer layer keeps is its own formula (models.network.transformer)
            stash = B * wl.node.layer.stash_bytes([in_shape], wb)
        # a transformer layer's tasks differ in work (the score products have no weight gradient)
        task_macs = {t: sum(m * n * k for m, n, k in g) if token else B * wl.macs for t, g in gemms.items()}
        wg_elementwise = B * wl.node.layer.weight_grad_elementwise([in_shape]) if token else 0
        ag1_elementwise = B * wl.node.layer.backward_elementwise([in_shape]) if token else 0
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
            macs=task_macs["F"], elementwise=elementwise, gemms=gemms["F"], sequential_steps=seq,
            bytes_read=ext_in_bytes + wl.params * wb, bytes_written=z_bytes + out_bytes))
        template.add_node(("WG", l), work=TaskWork(
            macs=task_macs["WG"], elementwise=wg_elementwise, gemms=gemms["WG"],
            bytes_read=z_bytes + in_bytes, bytes_written=wl.params * wb))
        # delta_l comes from the loss (last layer) or from this layer's AG2
        delta_src = ("F", l) if l == last else ("AG2", l)
        add_edge(template, ("F", l), ("WG", l), in_bytes, ("in", l))
        add_edge(template, delta_src, ("WG", l), z_bytes, ("d", l))
        # a stage of stated cycles (the uniform spec) stands for many layers: it has an input gradient
        fixed = getattr(wl.node.layer, "task_cycles", None)
        if weight_input_owner[l] not in (0, l) or fixed is not None:
            template.add_node(("AG1", l), work=TaskWork(
                macs=task_macs["AG1"], elementwise=ag1_elementwise, gemms=gemms["AG1"],
                bytes_read=z_bytes + wl.params * wb, bytes_written=tensor_bytes(in_elems, T)))
            add_edge(template, delta_src, ("AG1", l), z_bytes, ("d", l))
        if updates:
            template.add_node(("U", l), work=TaskWork(
                elementwise=wl.params, bytes_read=2 * wl.params * wb, bytes_written=wl.params * wb))
            add_edge(template, ("WG", l), ("U", l), wl.params * wb, ("dW", l))
        if fixed is not None:  # stated durations per sample replace every work figure
            for kind in ("F", "WG", "AG1", "U"):
                if (kind, l) in template:
                    template.nodes[kind, l]["work"] = TaskWork(fixed_cycles=B * fixed.get(kind, 0))
        for p, elems in wl.producers.items():
            if p != 0:
                add_edge(template, ("F", p), ("F", l), read_bytes(l, p, elems), ("a", p))

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
                # a transformer layer's own element-wise backward ran in its AG1; the fused rest is here
                elementwise=B * (wl.elementwise - own_elementwise(net, wl) + fan_in_sums),
                bytes_read=B * (g_in + wl.output_elements) * wb,
                bytes_written=B * z_elems * wb)
            stored = (B * wl.output_elements * wb, ("a", p))
        template.add_node(("AG2", p), work=work)
        add_edge(template, ("F", p), ("AG2", p), *stored)
        for c, (via_weight, via_fused) in sorted(consumers[p].items()):
            if via_weight:
                add_edge(template, ("AG1", c), ("AG2", p), tensor_bytes(via_weight, T), ("g", c, p))
            if via_fused:  # the gradient of a residual shortcut leaves through c's AG2 (or its loss)
                src = ("F", c) if c == last else ("AG2", c)
                add_edge(template, src, ("AG2", p), tensor_bytes(via_fused, T), ("gs", c, p))

    if ag_split != "design":
        split_activation_gradients(template, weight_input_owner, info, wb, ag_split)
    fine = nx.DiGraph(network=net.name, batch=B, word_bytes=wb, view=view, layers=info, num_layers=last)
    for (kind, l), data in template.nodes(data=True):
        add_task(fine, Task(TaskKind(kind), l), data["work"])
    for u, v, data in template.edges(data=True):
        fine.add_edge(Task(TaskKind(u[0]), u[1]), Task(TaskKind(v[0]), v[1]), **data)
    first_consumer = {p: min(cons) for p, cons in consumers.items() if cons}
    return view_graph(fine, first_consumer, view)


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
    >>> from models.graph.tasks import task_work
    >>> g = training_graph(chain("m", (4,), [Linear(8), Linear(8)]), 2, ag_split=0.5)
    >>> task_work(g, ("AG1", 2)).macs, task_work(g, ("AG2", 1)).macs
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
        add_edge(template, src, ag2, delta_bytes * moved // M + info[l].param_bytes, ("dpart", l))
        used[l] = moved / M
    return used


__all__ = ["training_graph", "split_activation_gradients"]
