"""Coarser views of the fine task graph, made by merging tasks.

:func:`contract` merges the tasks a function maps to the same key. Two views of the
training step come from it (:func:`view_graph`):

* ``"pipedream"``: PipeDream's backward of layer l is one task, B_l = AG1_l + AG2_{l-1} + WG_l;
* ``"zerobubble"``: the zero-bubble split, B_l = AG1_l + AG2_{l-1} (input gradient) and
  W_l = WG_l (weight gradient).

AG2 of a layer with several consumers joins the consumer with the smallest index (the last
to finish its backward), which keeps the view acyclic. Total work is identical in every view.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

import networkx as nx

from models.errors import LayerPipeError
from models.graph.tasks import Task, TaskKind, edge_bytes, edge_tensor, task_layers, task_parts, task_work

VIEWS = ("layerpipe", "pipedream", "zerobubble")


def contract(graph: nx.DiGraph, merge: Callable[[Hashable], Hashable]) -> nx.DiGraph:
    """Merge the nodes that ``merge`` maps to the same key into one task.

    Work is summed, ``layers`` are united, ``parts`` lists the fine tasks (with their work)
    a merged task is made of, edges inside a merged task vanish and parallel edges between
    two merged tasks become one edge whose bytes are the sum of the distinct tensors it moves
    (a tensor counted once). ``graph`` is not changed. Raises ``LayerPipeError`` if the merge
    creates a cycle (the grouping would deadlock).

    >>> from models.graph.tasks import add_task, task_work
    >>> from models.graph.work import TaskWork
    >>> g = nx.DiGraph()
    >>> for n in ("F", 1), ("F", 2), ("F", 3): add_task(g, Task(*n), TaskWork(macs=1))
    >>> g.add_edge(("F", 1), ("F", 2), bytes=4, tensor="x"); g.add_edge(("F", 1), ("F", 3), bytes=4, tensor="x")
    >>> h = contract(g, lambda n: Task(TaskKind.F, min(n[1], 2)))
    >>> h.edges[("F", 1), ("F", 2)]["bytes"], task_work(h, ("F", 2)).macs, task_layers(h, ("F", 2))
    (4, 2, (2, 3))
    """
    out = nx.DiGraph(**graph.graph)
    for node in graph:
        key = merge(node)
        if key in out:
            merged = out.nodes[key]
            merged["work"] = merged["work"] + task_work(graph, node)
            merged["layers"] = tuple(sorted(set(merged["layers"]) | set(task_layers(graph, node))))
            merged["parts"] = tuple(sorted({*merged["parts"], *task_parts(graph, node)}, key=lambda p: p[0]))
        else:
            extra = {k: v for k, v in graph.nodes[node].items() if k not in ("work", "layers", "parts")}
            out.add_node(key, **extra, work=task_work(graph, node), layers=task_layers(graph, node),
                         parts=task_parts(graph, node))
    tensors: dict[tuple, dict] = {}
    for u, v in graph.edges:
        a, b = merge(u), merge(v)
        if a == b:
            continue
        moved = tensors.setdefault((a, b), {})
        moved[edge_tensor(graph, u, v)] = edge_bytes(graph, u, v)
    for (a, b), moved in tensors.items():
        tensor = next(iter(moved)) if len(moved) == 1 else tuple(sorted(moved, key=repr))
        out.add_edge(a, b, bytes=sum(moved.values()), tensor=tensor)
    if not nx.is_directed_acyclic_graph(out):
        cycle = " -> ".join(str(u) for u, _ in nx.find_cycle(out))
        raise LayerPipeError(f"merging tasks creates a dependency cycle: {cycle}")
    return out


def view_graph(fine: nx.DiGraph, first_consumer: Mapping[int, int], view: str) -> nx.DiGraph:
    """The ``view`` of the fine graph (module docstring); ``first_consumer[p]`` is the smallest
    weight layer reading layer p, whose backward AG2_p joins."""
    if view not in VIEWS:
        raise LayerPipeError(f"unknown task-graph view {view!r} (known: {', '.join(VIEWS)})")
    if view == "layerpipe":
        return fine
    weight_gradient = TaskKind.B if view == "pipedream" else TaskKind.W
    mapping: dict[Hashable, Task] = {}
    for kind, l in fine:
        if kind == TaskKind.AG1:
            mapping[kind, l] = Task(TaskKind.B, l)
        elif kind == TaskKind.AG2:
            mapping[kind, l] = Task(TaskKind.B, first_consumer[l])
        elif kind == TaskKind.WG:
            mapping[kind, l] = Task(weight_gradient, l)
    return contract(fine, lambda n: mapping.get(n, n))


__all__ = ["VIEWS", "contract", "view_graph"]
