"""Contiguous stage partitioning by dynamic programming (PipeDream's planner).

:func:`plan_stages` splits layers ``1..L`` (in topological order) into contiguous stages
over ``P`` processors, minimising the time of the slowest stage, following PipeDream's
``optimizer_graph_hierarchical.py`` (Narayanan et al., SOSP 2019)::

    A[j][m] = min( R(1..j, m),  min over k < j, 1 <= m' < m of
                   max(A[k][m - m'], R(k+1..j, m'), C[k] / m', C[j] / m' if j < L) )

where ``R(i..j, m') = (compute(i..j) + sync(i..j, m')) / m'`` is stage ``i..j`` replicated
``m'`` ways with data-parallel weight synchronisation ``sync = 4 (m'-1) bytes(i..j) / (bw m')``
and ``C[k]`` is the time to move the activations of boundary ``k`` forward and their
gradients back. We add compute and sync as PipeDream's code does (the paper takes
their maximum). The cut rule is the released code's: a stage is charged its input cut and,
when another stage follows, its output cut, each divided by its own replica count, so a cut
between a stage replicated m_up ways and one replicated m_down ways costs
max(C / m_down, C / m_up), except after the first stage (the DP's base case), which is
charged only C / m_down. (PipeDream's code charges cuts only with
``--activation_compression_ratio``; we always charge them, through the link model.) A
straight pipeline forces ``m' = 1``; then cuts are not divided. Using fewer processors than
available is allowed (PipeDream's ``--use_fewer_machines``).

With a ``memory_limit`` (PipeDream's ``--use_memory_constraint``) a stage is allowed only if
its estimated memory fits: with ``a`` processors left after it (all the others are assumed to
be used, as PipeDream does) it keeps f = ceil(a / m') + 1 minibatches in flight, and so f
weight versions and f stashes, beside a momentum and a gradient buffer:
``f (params + stash) + 2 params``. That is the estimate for per-stage delays. For a method whose
delays are per layer (LayerPipe: layer l is S(l) updates stale whatever the plan), ``versions``
gives each layer's versions v_l instead, and a stage (each replica of it) is estimated at
``sum over its layers of v_l (params_l + stash_l) + 2 params``. Either way this is the planner's
estimate; the simulated memory decides (``simulator.selection``).

>>> plan = plan_stages([4, 1, 1, 4], processors=2)
>>> plan.stages, plan.bottleneck
(((1, 2, 1), (3, 4, 1)), 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from models.errors import ScheduleError


@dataclass(frozen=True)
class StagePlan:
    """Stages as ``(first_layer, last_layer, replicas)`` (1-based, inclusive) and the slowest stage's time."""

    stages: tuple[tuple[int, int, int], ...]
    bottleneck: float

    @property
    def processors_used(self) -> int:
        return sum(r for _, _, r in self.stages)

    def stage_of(self, layer: int) -> int:
        """0-based stage index holding ``layer``."""
        for s, (a, b, _) in enumerate(self.stages):
            if a <= layer <= b:
                return s
        raise ScheduleError(f"layer {layer} is in no stage")


def plan_stages(compute: Sequence[float], processors: int, *, boundary: Sequence[float] | None = None,
                param_bytes: Sequence[float] | None = None, bandwidth: float = math.inf,
                replicate: bool = False, stash_bytes: Sequence[float] | None = None,
                memory_limit: float | None = None, versions: Sequence[int] | None = None,
                exact: bool = False) -> StagePlan:
    """Best contiguous partition of per-layer ``compute`` times onto ``processors``.

    ``boundary[k]`` (k = 1..L-1, index k-1) is the cycles to move boundary k's activations
    and gradients; ``param_bytes`` and ``bandwidth`` price replication; ``stash_bytes`` and
    ``memory_limit`` bound each stage's memory, with per-layer ``versions`` when the delays are
    per layer (module docstring). Ties prefer fewer stages,
    then earlier cuts, so the plan is deterministic. ``exact`` asks for exactly ``processors``
    stages (the chunks of an interleaved or V schedule, several per processor). Raises
    :class:`ScheduleError` when no plan fits the memory limit.

    >>> plan_stages([1, 1, 1, 1], processors=4, exact=True).stages
    ((1, 1, 1), (2, 2, 1), (3, 3, 1), (4, 4, 1))
    """
    L = len(compute)
    if L == 0:
        raise ScheduleError("cannot partition a network with no layers")
    if not isinstance(processors, int) or processors < 1:
        raise ScheduleError(f"number of processors must be a positive integer, got {processors!r}")
    if exact and processors > L:
        raise ScheduleError(f"cannot cut {L} layers into {processors} stages")
    if any(c < 0 for c in compute):
        raise ScheduleError("layer compute times must be non-negative")
    boundary = list(boundary) if boundary is not None else [0.0] * (L - 1)
    if len(boundary) != L - 1:
        raise ScheduleError(f"need {L - 1} boundary costs, got {len(boundary)}")
    params = list(param_bytes) if param_bytes is not None else [0.0] * L
    stash = list(stash_bytes) if stash_bytes is not None else [0.0] * L
    if versions is not None and len(versions) != L:
        raise ScheduleError(f"need {L} per-layer version counts, got {len(versions)}")
    prefix, pprefix, sprefix, vprefix = [0.0], [0.0], [0.0], [0.0]
    for l, (c, b, a) in enumerate(zip(compute, params, stash)):
        prefix.append(prefix[-1] + c)
        pprefix.append(pprefix[-1] + b)
        sprefix.append(sprefix[-1] + a)
        vprefix.append(vprefix[-1] + (versions[l] * (b + a) if versions is not None else 0.0))

    def fits(i: int, j: int, m: int, used: int) -> bool:  # layers i+1..j on m replicas, ``used`` processors so far
        if memory_limit is None:
            return True
        weights = pprefix[j] - pprefix[i]
        if versions is not None:
            return vprefix[j] - vprefix[i] + 2 * weights <= memory_limit
        in_flight = -(-(processors - used) // m) + 1
        return in_flight * (weights + sprefix[j] - sprefix[i]) + 2 * weights <= memory_limit

    def stage_time(i: int, j: int, m: int) -> float:  # layers i+1..j (prefix indices), m replicas
        work = prefix[j] - prefix[i]
        if m == 1:
            return work
        sync = 4 * (m - 1) * (pprefix[j] - pprefix[i]) / (bandwidth * m) if bandwidth != math.inf else 0.0
        return (work + sync) / m

    INF = math.inf
    # best[j][m]: (time, stages) for layers 1..j on exactly m processors
    best: list[list[tuple[float, tuple]]] = [[(INF, ())] * (processors + 1) for _ in range(L + 1)]
    for j in range(1, L + 1):
        for m in range(1, processors + 1):
            cand: list[tuple[float, int, tuple]] = []
            if (replicate or m == 1) and fits(0, j, m, m):
                cand.append((stage_time(0, j, m), 1, ((1, j, m),)))
            for k in range(1, j):
                for mp in range(1, m):
                    if not replicate and mp != 1:
                        continue
                    prev_t, prev_st = best[k][m - mp]
                    if prev_t == INF or not fits(k, j, mp, m):
                        continue
                    out = boundary[j - 1] / mp if j < L else 0.0  # the cut after this stage, as its sender
                    t = max(prev_t, stage_time(k, j, mp), boundary[k - 1] / mp, out)
                    cand.append((t, len(prev_st) + 1, prev_st + ((k + 1, j, mp),)))
            if cand:
                t, _, st = min(cand, key=lambda c: (c[0], c[1], c[2]))
                best[j][m] = (t, st)
    # using fewer processors than available is allowed (a straight pipeline has at most L stages)
    options = [(best[L][m][0], m, best[L][m][1]) for m in range(1 if not exact else processors, processors + 1)
               if best[L][m][0] < INF]
    if not options:
        raise ScheduleError(f"no plan of {L} layers on {processors} processors fits {memory_limit:,.0f} bytes per processor")
    t, _, stages = min(options, key=lambda o: (o[0], o[1]))
    return StagePlan(tuple(stages), float(t))


def plan_text(stages) -> str:
    """Stages ``(first, last, replicas)`` as text: each stage's layers, times its replicas.

    >>> plan_text([[1, 5, 7], [6, 8, 1]])
    '1-5x7 6-8'
    """
    return " ".join((f"{a}-{b}" if b > a else f"{a}") + (f"x{r}" if r > 1 else "") for a, b, r in stages)


__all__ = ["StagePlan", "plan_stages", "plan_text"]
