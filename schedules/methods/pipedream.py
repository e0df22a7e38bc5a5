"""PipeDream (Narayanan et al., SOSP 2019): planned stages, async 1F1B, weight stashing.

The plan (stages and their replicas) is given, or is the first of the shared candidates
(``schedules.planning.candidates``): PipeDream's dynamic-programming planner with its cut rule
over the per-layer cycles of its grouping (the backward B_l = AG1_l + AG2_{l-1} + WG_l is one
task), boundary costs from the link model and, in the ``hybrid`` parallelism mode (PipeDream's
default; ``--straight_pipeline`` is its opt-out), replication of a stage (data parallelism,
round-robin minibatches) priced by the weight-sync term.

Each replica of stage s of N takes every R-th minibatch (round robin), admits N - 1 - s
warm-up forwards, then alternates one forward and one backward (1F1B); the update follows
each backward. The replicas of a stage apply one synchronous update per round of R
minibatches (``Schedule.update_rounds``); the engine sends the new weights to the other
replicas after each round, which is how the data-parallel weight synchronisation is
charged. Stage s stashes N - s weight versions; its gradients are N - 1 - s rounds stale
(delay 2(N-1-s)).
"""

from __future__ import annotations

from models.graph.build import training_graph
from models.graph.tasks import TaskKind
from models.network.spec import NetworkSpec
from schedules.planning.candidates import candidate_plans
from schedules.planning.partition import StagePlan
from schedules.planning.stages import processor_ranges, stage_delays, stage_template
from schedules.schedule import Action, Schedule
from simulator.hardware import Hardware


def async_1f1b_orders(plan: StagePlan, units: int, has_update: bool) -> dict[int, list[Action]]:
    n = len(plan.stages)
    # Warm-up window of stage s in global minibatches: before the backward of minibatch j a
    # replica has run the forwards of its minibatches up to j + window[s], i.e. window[s] // r
    # warm-up forwards (n - 1 - s without replication). The window must exceed the next
    # stage's (else a replica waits for a backward that waits for a forward it has not run:
    # deadlock) and stay within r_s * S(s) (the delay rule); take the largest such window.
    reps = [r for _, _, r in plan.stages]
    window = [min(reps[t] * (n - 1 - t) - (s - t) for t in range(s + 1)) for s in range(n)]
    orders: dict[int, list[Action]] = {}
    for s, procs in enumerate(processor_ranges(plan)):
        r = len(procs)
        for idx, p in enumerate(procs):
            mine = list(range(idx, units, r))
            warm = min(len(mine), window[s] // r)
            seq: list[Action] = []
            f = b = 0

            def backward() -> None:
                nonlocal b
                seq.append(Action(TaskKind.B, s + 1, mine[b]))
                if has_update:
                    seq.append(Action(TaskKind.U, s + 1, mine[b]))
                b += 1

            for _ in range(warm):
                seq.append(Action(TaskKind.F, s + 1, mine[f]))
                f += 1
            while f < len(mine):
                seq.append(Action(TaskKind.F, s + 1, mine[f]))
                f += 1
                backward()
            while b < len(mine):
                backward()
            orders[p] = seq
    return orders


def pipedream_on(plan: StagePlan, net: NetworkSpec, *, minibatches: int, batch: int, word_bytes: int = 2,
                 spike_bits: bool = False, name: str = "pipedream") -> Schedule:
    """PipeDream's schedule (stage tasks, async 1F1B, stage delays) on a given ``plan``."""
    fine = training_graph(net, batch, view="pipedream", word_bytes=word_bytes, spike_bits=spike_bits)
    template = stage_template(fine, plan)
    orders = async_1f1b_orders(plan, minibatches, has_update=True)
    rounds = {l: r for a, b, r in plan.stages if r > 1 for l in range(a, b + 1)}
    return Schedule(name, template, orders, delays=stage_delays(plan), update_rounds=rounds,
                    info={"stages": [(a, b, r) for a, b, r in plan.stages], "planned_bottleneck": plan.bottleneck})


def pipedream(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, word_bytes: int = 2,
              spike_bits: bool = False, parallelism: str = "hybrid", replicate: bool | None = None,
              plan: StagePlan | None = None) -> Schedule:
    """PipeDream on ``plan``, or on its own planner's choice in the ``parallelism`` mode."""
    if plan is None:
        fine = training_graph(net, batch, word_bytes=word_bytes, spike_bits=spike_bits)
        plan = candidate_plans(fine, hw, parallelism=parallelism, replicate=replicate)[0].plan
    return pipedream_on(plan, net, minibatches=minibatches, batch=batch, word_bytes=word_bytes, spike_bits=spike_bits)


__all__ = ["pipedream", "pipedream_on", "async_1f1b_orders"]
