"""What a schedule may ask of the machine: task cycles, transfer cycles and routes.

This is the cost interface between planning and simulation: schedule builders see the
platform only through :class:`Hardware`, and :func:`task_cycles` is the one place where a
task of a task graph is priced on a processor (the engine, the bounds, the metrics and the
planners all call it), so that a planner's estimate and the engine's timing cannot drift.

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from simulator.costs import MacArray, LinkModel
>>> from simulator.platform import Platform
>>> hw = Hardware.of(Platform.homogeneous(2, MacArray(4), LinkModel(10, 8)))
>>> g = uniform_pipeline_graph(2, f=3, b=5, w=1)
>>> hw.cycles(g, ("B", 2), 1), hw.transfer(16), hw.hops(0, 1)
(5, 12, ((0, 1),))
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import networkx as nx

from models.graph.tasks import task_parts


def task_cycles(model, graph: nx.DiGraph, task: Hashable) -> int:
    """Cycles of ``task`` of ``graph`` on a processor with cost model ``model``.

    A merged task (PipeDream's backward B_l = AG1_l + AG2_{l-1} + WG_l, a pipeline stage's
    forward over its layers) costs the sum of its parts: merging changes where and when the
    pieces run, not what they are, and each piece is its own kernel with its own rounding
    and overhead. So every view of a step costs the same on one processor.

    >>> from models.graph.build import training_graph
    >>> from models.network.zoo import get_network
    >>> from simulator.costs import MacArray
    >>> net, cost = get_network("mlp"), MacArray(256)
    >>> fine, pd = training_graph(net, 4), training_graph(net, 4, view="pipedream")
    >>> sum(task_cycles(cost, fine, t) for t in fine) == sum(task_cycles(cost, pd, t) for t in pd)
    True
    """
    return sum(int(model.task_cycles(work)) for _, work in task_parts(graph, task))


@dataclass(frozen=True)
class Hardware:
    """What a schedule builder may ask of the platform: task cycles, transfer cycles, routes."""

    processors: tuple  # cost models
    link: object  # LinkModel
    route: Callable[[int, int], tuple[tuple[int, int], ...]] | None = None  # directed hops; None: direct
    memory_capacity: int | None = None  # bytes per processor (None: unlimited)
    overlap_comm: bool = True  # a processor sends while it computes

    @classmethod
    def of(cls, platform) -> "Hardware":
        return cls(tuple(platform.processors), platform.link, platform.route, getattr(platform, "memory_capacity", None),
                   getattr(platform, "overlap_comm", True))

    @property
    def size(self) -> int:
        return len(self.processors)

    def hops(self, src: int, dst: int) -> tuple[tuple[int, int], ...]:
        if src == dst:
            return ()
        return self.route(src, dst) if self.route is not None else ((src, dst),)

    def cycles(self, graph: nx.DiGraph, task: Hashable, proc: int = 0) -> int:
        return task_cycles(self.processors[proc], graph, task)

    def transfer(self, nbytes: int) -> int:
        return int(self.link.transfer_cycles(int(nbytes)))


__all__ = ["Hardware", "task_cycles"]
