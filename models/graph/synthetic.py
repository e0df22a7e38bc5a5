"""Synthetic task graphs with durations stated directly (the closed-form checks of the schedules)."""

from __future__ import annotations

import networkx as nx

from models.errors import LayerPipeError
from models.graph.tasks import LayerInfo, Task, TaskKind, add_task
from models.graph.work import TaskWork


def uniform_pipeline_graph(stages: int, f: int, b: int, w: int, *, act_bytes: int = 0,
                           param_bytes: int = 0, split_backward: bool = True) -> nx.DiGraph:
    """Template of ``stages`` pipeline stages with fixed task durations.

    Stage ``s`` (1-based) has F (``f`` cycles), B (input gradient, ``b``) and W (weight
    gradient, ``w``) tasks; with ``split_backward=False`` B takes ``b + w`` and there is no
    W. Forward sends ``act_bytes`` to the next stage, B sends as many back. This is the
    setting of the zero-bubble paper's closed forms (docs/design.md, "Golden checks").

    >>> g = uniform_pipeline_graph(2, f=1, b=2, w=3)
    >>> [str(t) for t in sorted(g.nodes)]
    ['B1', 'B2', 'F1', 'F2', 'W1', 'W2']
    """
    for name, v in (("stages", stages), ("f", f), ("b", b), ("w", w)):
        if not isinstance(v, int) or v < (1 if name == "stages" else 0):
            raise LayerPipeError(f"{name} must be a {'positive' if name == 'stages' else 'non-negative'} integer, got {v!r}")
    g = nx.DiGraph(network=f"uniform{stages}", batch=1, word_bytes=1, view="zerobubble", num_layers=stages)
    g.graph["layers"] = {s: LayerInfo(s, f"stage{s}", "synthetic", 0, param_bytes, act_bytes, act_bytes,
                                      2 * act_bytes, (s - 1,) if s > 1 else ())
                         for s in range(1, stages + 1)}
    F, B, W = TaskKind.F, TaskKind.B, TaskKind.W
    for s in range(1, stages + 1):
        add_task(g, Task(F, s), TaskWork(fixed_cycles=f))
        add_task(g, Task(B, s), TaskWork(fixed_cycles=b if split_backward else b + w))
        g.add_edge(Task(F, s), Task(B, s), bytes=act_bytes, tensor=("in", s))
        if split_backward:
            add_task(g, Task(W, s), TaskWork(fixed_cycles=w))
            g.add_edge(Task(B, s), Task(W, s), bytes=act_bytes, tensor=("d", s))
        if s > 1:
            g.add_edge(Task(F, s - 1), Task(F, s), bytes=act_bytes, tensor=("a", s - 1))
            g.add_edge(Task(B, s), Task(B, s - 1), bytes=act_bytes, tensor=("g", s, s - 1))
    return g


__all__ = ["uniform_pipeline_graph"]
