"""Helpers shared by the schedule builders: per-layer costs, boundaries, stage templates.

Cycle estimates come only from the platform's cost models (``simulator.costs``): a
schedule never invents durations, it asks the hardware model.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import networkx as nx

from models.graph.build import contract

from schedules.planning.partition import StagePlan


@dataclass(frozen=True)
class Hardware:
    """What a schedule builder may ask of the platform: task cycles, transfer cycles, routes."""

    processors: tuple  # cost models
    link: object  # LinkModel
    route: Callable[[int, int], tuple[tuple[int, int], ...]] | None = None  # directed hops; None: direct

    @classmethod
    def of(cls, platform, processors: int | None = None) -> "Hardware":
        procs = platform.processors if processors is None else platform.processors[:processors]
        return cls(tuple(procs), platform.link, platform.route)

    def hops(self, src: int, dst: int) -> tuple[tuple[int, int], ...]:
        if src == dst:
            return ()
        return self.route(src, dst) if self.route is not None else ((src, dst),)

    def cycles(self, graph: nx.DiGraph, task: Hashable, proc: int = 0) -> int:
        return int(self.processors[proc].task_cycles(graph.nodes[task]["work"]))

    def transfer(self, nbytes: int) -> int:
        return int(self.link.transfer_cycles(int(nbytes)))


def layer_costs(graph: nx.DiGraph, hw: Hardware, proc: int = 0) -> list[int]:
    """Cycles of every task keyed by layer l (its ``layer`` attribute), for l = 1..L."""
    L = graph.graph["num_layers"]
    costs = [0] * L
    for node in graph.nodes:
        costs[node[1] - 1] += hw.cycles(graph, node, proc)
    return costs


def boundary_bytes(graph: nx.DiGraph) -> list[int]:
    """Bytes that cross the cut after layer k (k = 1..L-1), forward and backward, for one unit."""
    L = graph.graph["num_layers"]
    cut = [0] * max(0, L - 1)
    for u, v, data in graph.edges(data=True):
        a, b = u[1], v[1]
        lo, hi = min(a, b), max(a, b)
        for k in range(lo, hi):
            cut[k - 1] += data.get("bytes", 0)
    return cut


def stage_template(graph: nx.DiGraph, plan: StagePlan) -> nx.DiGraph:
    """Merge each stage's tasks of one kind into one task keyed ``(kind, stage)`` (stage 1-based)."""
    stage_of = {}
    for s, (a, b, _) in enumerate(plan.stages, start=1):
        for l in range(a, b + 1):
            stage_of[l] = s
    return contract(graph, lambda n: (n[0], stage_of[n[1]]))


def stage_delays(plan: StagePlan) -> dict[int, int]:
    """LayerPipe2's rule, which is also PipeDream's: Delay(l) = 2 * (stages after l's stage)."""
    n = len(plan.stages)
    return {l: 2 * (n - 1 - s) for s, (a, b, _) in enumerate(plan.stages) for l in range(a, b + 1)}


def processor_ranges(plan: StagePlan) -> list[tuple[int, ...]]:
    """Processors of each stage: consecutive ids, ``replicas`` of them per stage."""
    out, p = [], 0
    for _, _, r in plan.stages:
        out.append(tuple(range(p, p + r)))
        p += r
    return out


__all__ = ["Hardware", "layer_costs", "boundary_bytes", "stage_template", "stage_delays", "processor_ranges"]
