"""One processor runs every task of every minibatch in order: the speedup reference.

The order within a minibatch is the forward pass layer by layer, then the backward pass
from the last layer to the first (a topological order of the fine task graph), with no
staleness: speedup vs sequential is 1 on one processor by construction.

>>> from models.graph.build import training_graph
>>> from models.network.zoo import get_network
>>> s = sequential(training_graph(get_network("mlp"), batch=4), units=2)
>>> [str(a) for a in s.orders[0][:4]]
['F1.0', 'F2.0', 'F3.0', 'AG1_3.0']
"""

from __future__ import annotations

import networkx as nx

from models.graph.build import training_graph
from models.graph.tasks import Task, TaskKind
from models.network.spec import NetworkSpec
from schedules.schedule import Action, Schedule

_BACKWARD_RANK = {TaskKind.AG1: 0, TaskKind.B: 0, TaskKind.WG: 1, TaskKind.W: 1, TaskKind.U: 2, TaskKind.AG2: 3}


def task_order(template: nx.DiGraph) -> list[Task]:
    """Forward by increasing layer, then backward by decreasing layer (AG1, WG, U, then AG2)."""
    def key(n):
        return (0, n[1], 0) if n[0] == TaskKind.F else (1, -n[1], _BACKWARD_RANK.get(n[0], 9))
    return list(nx.lexicographical_topological_sort(template, key=key))


def sequential(template: nx.DiGraph, units: int) -> Schedule:
    """Every task of ``units`` units of ``template`` on processor 0, in :func:`task_order`."""
    order = task_order(template)
    actions = [Action(k, l, i) for i in range(units) for k, l in order]
    return Schedule("sequential", template, {0: actions}, info={"stages": 1})


def sequential_method(net: NetworkSpec, hw, *, minibatches: int, batch: int, word_bytes: int = 2,
                      spike_bits: bool = False) -> Schedule:
    """The reference on the first processor of ``hw`` (the registry's builder)."""
    return sequential(training_graph(net, batch, word_bytes=word_bytes, spike_bits=spike_bits), minibatches)


__all__ = ["sequential", "sequential_method", "task_order"]
