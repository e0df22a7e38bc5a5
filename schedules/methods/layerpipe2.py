"""LayerPipe2 (Unnikrishnan & Parhi, arXiv 2512.08160): grouped multistage pipelining.

Layers are grouped into stages that share one delay: Delay(l) = 2 * S(group of l), with
S the number of groups after it (derived by retiming the training data-flow graph).
The grouping is given by the user (``groups="1-3,4-6,7-8"``) or computed: by default
the processor stages of LayerPipe's partition, or ``groups=k`` for the best k-way
contiguous partition of the layers (fewer groups, less staleness, more contention).

Weights: instead of stashing S(l) + 1 versions, a layer keeps its current weights and
one moving average of its updates, from which the past weights are rebuilt (docs/design.md
section 4); so every delayed layer stores 2 copies, an undelayed one 1. ``memory="stash"``
reports stashing instead, for comparison.
"""

from __future__ import annotations

from models.errors import ScheduleError
from models.graph.build import training_graph
from models.graph.tasks import num_layers
from models.network.spec import NetworkSpec
from models.userfiles import is_plain_int
from schedules.methods.layerpipe import Planned, layerpipe_placement
from schedules.planning.partition import StagePlan, plan_stages
from schedules.planning.stages import layer_costs
from schedules.schedule import Schedule
from simulator.hardware import Hardware


def parse_groups(text: str, layers: int) -> list[tuple[int, int]]:
    """``"1-3,4,5-8"`` -> contiguous ranges covering 1..layers exactly once.

    >>> parse_groups("1-2,3,4-5", 5)
    [(1, 2), (3, 3), (4, 5)]
    """
    groups = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise ScheduleError(f"cannot read layer group {part!r}: expected FIRST-LAST such as 1-3") from None
        groups.append((lo, hi))
    expect = 1
    for lo, hi in groups:
        if lo != expect or hi < lo:
            raise ScheduleError(f"layer groups must be contiguous ranges covering 1..{layers} in order; "
                                f"group {lo}-{hi} should start at {expect}")
        expect = hi + 1
    if expect != layers + 1:
        raise ScheduleError(f"layer groups cover 1..{expect - 1} but the network has {layers} weight layers")
    return groups


def layerpipe2(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, **options) -> Schedule:
    """LayerPipe2 for ``minibatches`` steps; the options are :func:`plan_layerpipe2`'s."""
    return plan_layerpipe2(net, hw, batch=batch, **options).schedule(minibatches)


def plan_layerpipe2(net: NetworkSpec, hw: Hardware, *, batch: int, word_bytes: int = 2,
                    spike_bits: bool = False, groups: str | int | None = None, offload: bool = True,
                    memory: str = "ema", parallelism: str = "hybrid", replicate: bool | None = None,
                    ag_split: str | float = "design", plan: StagePlan | None = None,
                    name: str = "layerpipe2") -> Planned:
    """LayerPipe2's plan (grouped delays; EMA or stashed weights), for any run length."""
    if memory not in ("ema", "stash"):
        raise ScheduleError(f"memory model must be 'ema' or 'stash', got {memory!r}")
    template = training_graph(net, batch, view="layerpipe", word_bytes=word_bytes, spike_bits=spike_bits,
                             ag_split=ag_split)
    L = num_layers(template)
    if groups is None:
        ranges_of = lambda plan: [(a, b) for a, b, _ in plan.stages]  # noqa: E731 - the processor stages
    elif isinstance(groups, int) or is_plain_int(str(groups), 9):
        k = int(groups)
        if k < 1:
            raise ScheduleError(f"number of groups must be positive, got {k}")
        fixed = [(a, b) for a, b, _ in plan_stages(layer_costs(template, hw), min(k, L)).stages]
        ranges_of = lambda plan: fixed  # noqa: E731
    else:
        fixed = parse_groups(groups, L)
        ranges_of = lambda plan: fixed  # noqa: E731
    found: list = []

    def stale_of(plan) -> dict[int, int]:
        found[:] = ranges_of(plan)
        n = len(found)
        return {l: n - 1 - g for g, (a, b) in enumerate(found) for l in range(a, b + 1)}

    plan, placement, rule = layerpipe_placement(template, hw, stale_of, offload, parallelism, replicate, plan)
    versions = {l: 2 if s > 0 else 1 for l, s in rule.stale.items()} if memory == "ema" else None
    return Planned(name, template, plan, placement, hw, rule, {"groups": list(found), "memory": memory}, versions)


__all__ = ["layerpipe2", "plan_layerpipe2", "parse_groups"]
