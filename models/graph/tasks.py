"""The typed task model: what a task is, what a task-graph node carries, and how to read it.

A task graph (``networkx.DiGraph``) is the template of one unit of work (a minibatch, or a
micro-batch of the flush schedules). Every node is a :class:`Task` ``(kind, layer)``: a
:class:`TaskKind` and the weight layer (or pipeline stage) it belongs to. Unit ``i`` of a
schedule instantiates the template as ``(kind, layer, i)`` (``schedules.schedule.Action``).

What a node carries (set by :func:`add_task`, read by the accessors below, never by hand):

=========  ==========================================================================
attribute  meaning
=========  ==========================================================================
work       :class:`models.graph.work.TaskWork`: the task's hardware-independent work
layers     the weight layers the task belongs to (merged tasks span several)
parts      the fine tasks ``(kind, layer)`` a merged task is made of, with their work
=========  ==========================================================================

Every edge carries ``bytes`` (what crosses when its two ends run on different processors)
and ``tensor``, an identifier of the data moved: two edges with the same tensor from the
same producer move the same data, so a processor receives it once. The graph itself
carries ``layers`` (weight layer -> :class:`LayerInfo`) and ``num_layers``.

The kinds and what the engine, the metrics and the delay rule need to know of them:

======  ==============================================  =============  ===========  ======
kind    what it computes                                reads weights  frees stash  update
======  ==============================================  =============  ===========  ======
F       forward of a layer (its weights are versioned)  yes
WG      weight gradient grad W_l = delta_l a_{l-1}^T                   yes
AG1     W_l^T delta_l (activation gradient, part 1)
AG2     delta_{l-1} = g * f'(z_{l-1}) (part 2)                         yes
B       backward as one task (PipeDream: AG1+AG2+WG;                   yes
        zero-bubble: AG1+AG2)
W       weight gradient in the zero-bubble view                        yes
U       weight update                                                               yes
HVP     a Hessian-vector product (curvature)
CURV    curvature vector work (Lanczos orthogonalisation,
        K-FAC factor statistics)
EIG     eigen-solve or factor inversion
COLL    a collective (all-reduce, all-gather, ...):
        communication with a fixed duration
======  ==============================================  =============  ===========  ======

>>> import networkx as nx
>>> from models.graph.work import TaskWork
>>> g = nx.DiGraph()
>>> add_task(g, Task(TaskKind.F, 1), TaskWork(macs=8))
>>> t = next(iter(g))
>>> t.kind.reads_weights, task_layers(g, t), task_work(g, t).macs, t == ("F", 1)
(True, (1,), 8, True)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import networkx as nx

from models.errors import LayerPipeError
from models.graph.work import TaskWork


class TaskKind(StrEnum):
    """The kinds of task (see the module docstring); a kind compares equal to its name."""

    F = "F"
    WG = "WG"
    AG1 = "AG1"
    AG2 = "AG2"
    B = "B"
    W = "W"
    U = "U"
    HVP = "HVP"
    CURV = "CURV"
    EIG = "EIG"
    COLL = "COLL"

    def __repr__(self) -> str:
        return f"TaskKind.{self.name}"

    @property
    def reads_weights(self) -> bool:
        """A forward reads its layers' weights: the delay rule decides which version."""
        return self is TaskKind.F

    @property
    def frees_stash(self) -> bool:
        """A backward task that reads the activations its layer's forward stashed; the stash of a
        unit is freed when every such task of the layer has run."""
        return self in _FREES_STASH

    @property
    def is_update(self) -> bool:
        return self is TaskKind.U

    @property
    def is_communication(self) -> bool:
        """A collective: it moves data, its duration comes from the link model."""
        return self is TaskKind.COLL

    @property
    def computes_weight_gradient(self) -> bool:
        return self in (TaskKind.WG, TaskKind.W)

    @property
    def output_kind(self) -> str:
        """What the task's outputs are when they cross processors: a forward's are activations,
        everything else sends gradients (or, in the DHO2 designs, synchronisation only)."""
        return "activation" if self is TaskKind.F else "gradient"

    @property
    def meaning(self) -> str:
        return _MEANING[self]

    @classmethod
    def parse(cls, text: str) -> "TaskKind":
        try:
            return cls(text)
        except ValueError:
            raise LayerPipeError(f"unknown task kind {text!r} (known: {', '.join(k.value for k in cls)})") from None


_FREES_STASH = frozenset({TaskKind.WG, TaskKind.AG2, TaskKind.B, TaskKind.W})
#: kinds whose completion finishes a layer's update in a graph without U tasks (the flush
#: schedules' micro-batch templates update once per step, after the last weight gradient)
_UPDATE_FALLBACK = (TaskKind.WG, TaskKind.W, TaskKind.B)
_MEANING = {
    TaskKind.F: "forward",
    TaskKind.WG: "weight gradient",
    TaskKind.AG1: "activation gradient, W^T delta",
    TaskKind.AG2: "activation gradient, element-wise part",
    TaskKind.B: "backward",
    TaskKind.W: "weight gradient (zero-bubble view)",
    TaskKind.U: "weight update",
    TaskKind.HVP: "Hessian-vector product",
    TaskKind.CURV: "curvature vector work",
    TaskKind.EIG: "eigen-solve / factor inversion",
    TaskKind.COLL: "collective communication",
}


class Task(NamedTuple):
    """A task of the template: a kind and the weight layer (or pipeline stage) it belongs to."""

    kind: TaskKind
    layer: int

    def __str__(self) -> str:
        sep = "_" if self.kind[-1].isdigit() else ""
        return f"{self.kind}{sep}{self.layer}"


def task(kind: str, layer: int) -> Task:
    """``Task`` from a kind name: ``task("AG1", 3)``."""
    return Task(TaskKind(kind), layer)


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


# --------------------------------------------------------------------------- writing


def add_task(graph: nx.DiGraph, node: Task, work: TaskWork, *, layers: Iterable[int] | None = None,
             parts: Iterable[tuple[Task, TaskWork]] | None = None, **extra) -> None:
    """Add ``node`` with everything a node carries; ``layers`` defaults to ``(node.layer,)``,
    ``parts`` to the task itself."""
    node = Task(TaskKind(node[0]), node[1])
    graph.add_node(node, work=work, layers=tuple(layers) if layers is not None else (node.layer,),
                   parts=tuple(parts) if parts is not None else ((node, work),), **extra)


def add_edge(graph: nx.DiGraph, u: Hashable, v: Hashable, nbytes: int, tensor: Hashable) -> None:
    """Add an edge moving ``tensor``; a second tensor on the same pair adds its bytes."""
    data = graph.get_edge_data(u, v)
    if data is None:
        graph.add_edge(u, v, bytes=int(nbytes), tensor=tensor)
    elif data["tensor"] != tensor:
        data["bytes"] += int(nbytes)
        data["tensor"] = (data["tensor"], tensor)


# --------------------------------------------------------------------------- reading


def task_work(graph: nx.DiGraph, node: Hashable) -> TaskWork:
    """The total work of ``node``."""
    return graph.nodes[node]["work"]


def task_parts(graph: nx.DiGraph, node: Hashable) -> tuple[tuple[Task, TaskWork], ...]:
    """The fine tasks ``node`` is made of, with their work (the node itself for a fine task)."""
    data = graph.nodes[node]
    parts = data.get("parts")
    return parts if parts is not None else ((node, data["work"]),)


def task_layers(graph: nx.DiGraph, node: Hashable) -> tuple[int, ...]:
    """The weight layers ``node`` belongs to (its own ``layer`` unless it was merged)."""
    layers = graph.nodes[node].get("layers")
    if layers is not None:
        return layers
    return (node[1],) if isinstance(node, tuple) and len(node) > 1 else ()


def edge_bytes(graph: nx.DiGraph, u: Hashable, v: Hashable) -> int:
    return int(graph.edges[u, v].get("bytes", 0))


def edge_tensor(graph: nx.DiGraph, u: Hashable, v: Hashable) -> Hashable:
    """The data edge ``u -> v`` moves (the edge itself when it names none)."""
    return graph.edges[u, v].get("tensor", (u, v))


def layer_infos(graph: nx.DiGraph) -> Mapping[int, LayerInfo]:
    """Weight layer -> :class:`LayerInfo` (empty for synthetic graphs without layers)."""
    return graph.graph.get("layers", {})


def num_layers(graph: nx.DiGraph) -> int:
    return int(graph.graph["num_layers"])


def param_bytes(graph: nx.DiGraph, layer: int) -> int:
    info = layer_infos(graph).get(layer)
    return info.param_bytes if info is not None else 0


def weight_readers(graph: nx.DiGraph) -> dict[Hashable, tuple[int, ...]]:
    """Forward tasks and the weight layers whose weights each one reads."""
    return {n: task_layers(graph, n) for n in graph if TaskKind(n[0]).reads_weights}


def backward_weight_readers(graph: nx.DiGraph) -> dict[Hashable, tuple[int, ...]]:
    """Tasks that propagate the error through a layer's weights (they contain its AG1,
    ``W_l^T delta_l``), and those layers: which weight version they see is what weight stashing
    fixes and what a backward through the current weights does not.

    >>> from models.graph.work import TaskWork
    >>> g = nx.DiGraph()
    >>> add_task(g, Task(TaskKind.B, 2), TaskWork(macs=4), layers=(1, 2),
    ...          parts=[(Task(TaskKind.AG1, 2), TaskWork(macs=2)), (Task(TaskKind.WG, 2), TaskWork(macs=2))])
    >>> backward_weight_readers(g)
    {Task(kind=TaskKind.B, layer=2): (2,)}
    """
    out: dict[Hashable, tuple[int, ...]] = {}
    for node in graph:
        layers = tuple(sorted({p[1] for p, _ in task_parts(graph, node) if p[0] == TaskKind.AG1}))
        if layers:
            out[node] = layers
    return out


def update_tasks(graph: nx.DiGraph) -> dict[int, tuple[Hashable, ...]]:
    """For each weight layer, the tasks whose completion finishes its update in a unit: its U
    tasks, or, in a graph without any U (the flush schedules' micro-batch templates), the
    tasks that compute its weight gradient (WG, W, or B where the gradient is merged into it)."""
    kinds = (TaskKind.U,) if any(n[0] == TaskKind.U for n in graph) else _UPDATE_FALLBACK
    result: dict[int, list] = defaultdict(list)
    for node in graph:
        if node[0] in kinds:
            for l in task_layers(graph, node):
                result[l].append(node)
    return {l: tuple(sorted(t)) for l, t in result.items()}


def stash_freers(graph: nx.DiGraph) -> dict[int, tuple[Hashable, ...]]:
    """For each weight layer, the tasks that read its stashed activations (the stash of a unit
    lives from the layer's forward until the last of these ends)."""
    result: dict[int, list] = defaultdict(list)
    for node in graph:
        if TaskKind(node[0]).frees_stash:
            for l in task_layers(graph, node):
                result[l].append(node)
    return {l: tuple(t) for l, t in result.items()}


def gradient_tasks(graph: nx.DiGraph, layer: int) -> tuple[Hashable, ...]:
    """The tasks that compute ``layer``'s weight gradient: what its WG was merged into (built
    graphs record their parts), else a WG/W task of the layer, else its B (hand-built views)."""
    found = tuple(n for n in graph if any(p[0] == (TaskKind.WG, layer) for p in task_parts(graph, n)))
    if not found:
        found = tuple(n for n in graph if TaskKind(n[0]).computes_weight_gradient and layer in task_layers(graph, n))
    if not found:
        found = tuple(n for n in graph if n[0] == TaskKind.B and n[1] == layer)
    return found


class StateHolders(NamedTuple):
    """Which tasks hold a weight layer's state on the processor they run on (``param_bytes`` each):
    a weight version (``readers``: the forwards), the gradient buffer (``gradients``) and the
    optimizer state (``updates``: its U tasks, or its gradient tasks in a graph without U)."""

    param_bytes: int
    readers: tuple[Hashable, ...]
    gradients: tuple[Hashable, ...]
    updates: tuple[Hashable, ...]


def state_holders(graph: nx.DiGraph) -> dict[int, StateHolders]:
    """Every weight layer with parameters and the tasks that hold its state: the one rule of the
    static memory a placement implies (``simulator.metrics.static_memory`` counts it per processor).

    >>> from models.graph.synthetic import uniform_pipeline_graph
    >>> h = state_holders(uniform_pipeline_graph(1, f=1, b=1, w=1, param_bytes=8))  # no U: W updates
    >>> h[1].param_bytes, [t.kind.value for t in h[1].readers], [t.kind.value for t in h[1].updates]
    (8, ['F'], ['W'])
    """
    has_u = any(n[0] == TaskKind.U for n in graph.nodes)
    readers = weight_readers(graph)
    out = {}
    for l, li in sorted(layer_infos(graph).items()):
        if not li.param_bytes:
            continue
        grads = gradient_tasks(graph, l)
        updates = tuple(n for n in graph if n[0] == TaskKind.U and l in task_layers(graph, n)) if has_u else grads
        out[l] = StateHolders(li.param_bytes, tuple(f for f, ls in readers.items() if l in ls), grads, updates)
    return out


def total_work(graph: nx.DiGraph) -> TaskWork:
    """The summed work of every task (identical across views of the same step)."""
    total = TaskWork()
    for node in graph:
        total = total + task_work(graph, node)
    return total


__all__ = ["TaskKind", "Task", "task", "LayerInfo", "add_task", "add_edge", "task_work", "task_parts",
           "task_layers", "edge_bytes", "edge_tensor", "layer_infos", "num_layers", "param_bytes",
           "weight_readers", "backward_weight_readers", "update_tasks", "stash_freers", "gradient_tasks", "total_work",
           "StateHolders", "state_holders"]
