"""The candidate stage plans every pipelined method chooses from (docs/design.md section 11).

One candidate set for every method, so a baseline has the planner freedom the method has:
the stage planner of ``schedules.planning.partition`` (PipeDream's DP, with its cut rule) run
over the step's per-layer cycles in both groupings of the same tasks,

* ``"pipedream"``: AG2_{l-1} counted with layer l, where PipeDream's backward B_l runs it;
* ``"layerpipe"``: AG2_{l-1} counted with layer l-1, where LayerPipe's inter-layer split puts it;

each as a straight pipeline and, in the ``hybrid`` parallelism mode, with stage replication
allowed (data parallelism inside a stage; PipeDream's planner replicates by default). The
``pipeline`` mode allows no replication for anyone. On a platform with a memory capacity the
same DPs also run with a memory constraint, once with PipeDream's estimate (per-stage delays)
and once with per-layer delays (S(l) = L - l, LayerPipe's: versions fixed by the layer, not the
plan), so plans that spread the weights thin enough to fit are among the candidates for everyone. Duplicate plans are dropped; the first candidate is
the plan PipeDream's own planner picks in that mode.

Choosing among the candidates is the simulator's job (``simulator.selection``): every method
takes the one whose schedule simulates fastest and fits the memory of the platform.

>>> from models.graph.build import training_graph
>>> from models.network.zoo import get_network
>>> from simulator.costs import MacArray, LinkModel
>>> from simulator.hardware import Hardware
>>> from simulator.platform import Platform
>>> hw = Hardware.of(Platform.homogeneous(4, MacArray(256), LinkModel(100, 16)))
>>> fine = training_graph(get_network("mlp"), 32)
>>> [(c.grouping, c.replicated, c.plan.stages) for c in candidate_plans(fine, hw, parallelism="pipeline")]
[('pipedream', False, ((1, 1, 1), (2, 2, 1), (3, 3, 1)))]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx

from models.errors import ScheduleError
from models.graph.tasks import Task, TaskKind, layer_infos, num_layers
from schedules.planning.partition import StagePlan, plan_stages
from schedules.planning.stages import boundary_bytes, layer_costs
from simulator.hardware import Hardware

PARALLELISM = ("pipeline", "hybrid")
GROUPINGS = ("pipedream", "layerpipe")
#: the delays a memory-constrained DP assumes: PipeDream's per-stage ones, or per layer (LayerPipe's)
MEMORY_MODELS = ("stage delays", "layer delays")


@dataclass(frozen=True)
class Candidate:
    """A stage plan, the task grouping its per-layer costs came from, and whether the DP could replicate."""

    plan: StagePlan
    grouping: str
    replicated: bool
    memory_model: str | None = None  # None, or the delays the memory constraint assumed: MEMORY_MODELS

    @property
    def memory_aware(self) -> bool:
        return self.memory_model is not None

    def describe(self) -> dict:
        return {"stages": [list(s) for s in self.plan.stages], "grouping": self.grouping,
                "replication_allowed": self.replicated, "memory_aware": self.memory_aware,
                "memory_model": self.memory_model, "planned_bottleneck": self.plan.bottleneck}


def pipedream_costs(fine: nx.DiGraph, hw: Hardware) -> list[int]:
    """Per-layer cycles as PipeDream groups them: AG2_{l-1} counted with layer l (its first consumer)."""
    costs = [0] * num_layers(fine)
    for node in fine.nodes:
        owner = node[1]
        if node[0] == TaskKind.AG2:
            consumers = fine.successors(Task(TaskKind.F, node[1]))
            owner = min((c[1] for c in consumers if c[0] == TaskKind.F), default=owner)
        costs[owner - 1] += hw.cycles(fine, node, 0)
    return costs


def check_parallelism(parallelism: str) -> str:
    if parallelism not in PARALLELISM:
        raise ScheduleError(f"parallelism must be one of {', '.join(PARALLELISM)}, got {parallelism!r}")
    return parallelism


def candidate_plans(fine: nx.DiGraph, hw: Hardware, *, parallelism: str = "hybrid",
                    replicate: bool | None = None) -> list[Candidate]:
    """The candidates (module docstring) for the fine task template ``fine`` of one unit.

    ``replicate`` narrows the set: True keeps the plans of the DP that may replicate, False the
    straight ones; None keeps both (``hybrid``) or the straight ones (``pipeline``).
    """
    check_parallelism(parallelism)
    if replicate and parallelism == "pipeline":
        raise ScheduleError("--replicate asks for stage replication, which --parallelism pipeline forbids")
    L = num_layers(fine)
    boundary = [hw.transfer(b) for b in boundary_bytes(fine)]
    params = [layer_infos(fine)[l].param_bytes for l in range(1, L + 1)]
    stash = [layer_infos(fine)[l].stash_bytes for l in range(1, L + 1)]
    bw = getattr(hw.link, "bytes_per_cycle", math.inf)
    if replicate is not None:
        modes = (bool(replicate),)
    else:
        modes = (True, False) if parallelism == "hybrid" else (False,)
    models = (None,) if hw.memory_capacity is None else (None, *MEMORY_MODELS)
    per_layer = [L - l + 1 for l in range(1, L + 1)]  # S(l) + 1 versions with S(l) = L - l
    out: list[Candidate] = []
    for model in models:
        limit = None if model is None else hw.memory_capacity
        versions = per_layer if model == "layer delays" else None
        for grouping, costs in (("pipedream", pipedream_costs(fine, hw)), ("layerpipe", layer_costs(fine, hw))):
            for rep in modes:
                try:
                    plan = plan_stages(costs, hw.size, boundary=boundary, param_bytes=params, bandwidth=bw,
                                       replicate=rep, stash_bytes=stash, memory_limit=limit, versions=versions)
                except ScheduleError:  # nothing fits the memory constraint's estimate
                    continue
                if all(c.plan.stages != plan.stages for c in out):
                    out.append(Candidate(plan, grouping, rep, model))
    return out


__all__ = ["PARALLELISM", "GROUPINGS", "MEMORY_MODELS", "Candidate", "candidate_plans", "pipedream_costs", "check_parallelism"]
