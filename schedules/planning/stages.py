"""Helpers shared by the schedule builders: per-layer costs, boundaries, stage templates.

Cycle estimates come only from the platform's cost models, through
:class:`simulator.hardware.Hardware`: a schedule never invents durations, it asks the hardware.
"""

from __future__ import annotations

import networkx as nx

from models.graph.tasks import Task, edge_bytes, num_layers
from models.graph.views import contract
from schedules.planning.partition import StagePlan
from simulator.hardware import Hardware


def layer_costs(graph: nx.DiGraph, hw: Hardware, proc: int = 0) -> list[int]:
    """Cycles of every task keyed by layer l (its ``layer`` attribute), for l = 1..L."""
    costs = [0] * num_layers(graph)
    for node in graph.nodes:
        costs[node[1] - 1] += hw.cycles(graph, node, proc)
    return costs


def boundary_bytes(graph: nx.DiGraph) -> list[int]:
    """Bytes that cross the cut after layer k (k = 1..L-1), forward and backward, for one unit."""
    cut = [0] * max(0, num_layers(graph) - 1)
    for u, v in graph.edges:
        a, b = u[1], v[1]
        lo, hi = min(a, b), max(a, b)
        for k in range(lo, hi):
            cut[k - 1] += edge_bytes(graph, u, v)
    return cut


def stage_template(graph: nx.DiGraph, plan: StagePlan) -> nx.DiGraph:
    """Merge each stage's tasks of one kind into one task keyed ``(kind, stage)`` (stage 1-based)."""
    stage_of = {}
    for s, (a, b, _) in enumerate(plan.stages, start=1):
        for l in range(a, b + 1):
            stage_of[l] = s
    return contract(graph, lambda n: Task(n[0], stage_of[n[1]]))


def stage_staleness(plan: StagePlan) -> dict[int, int]:
    """PipeDream's rule, which is also LayerPipe2's default: S(l) = the stages after l's stage."""
    n = len(plan.stages)
    return {l: n - 1 - s for s, (a, b, _) in enumerate(plan.stages) for l in range(a, b + 1)}


def stage_delays(plan: StagePlan) -> dict[int, int]:
    """:func:`stage_staleness` in slots: Delay(l) = 2 S(l)."""
    return {l: 2 * s for l, s in stage_staleness(plan).items()}


def processor_ranges(plan: StagePlan) -> list[tuple[int, ...]]:
    """Processors of each stage: consecutive ids, ``replicas`` of them per stage."""
    out, p = [], 0
    for _, _, r in plan.stages:
        out.append(tuple(range(p, p + r)))
        p += r
    return out


__all__ = ["layer_costs", "boundary_bytes", "stage_template", "stage_staleness", "stage_delays", "processor_ranges"]
