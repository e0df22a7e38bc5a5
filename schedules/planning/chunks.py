"""Schedules with several pipeline stages (chunks) per processor: interleaved 1F1B and ZB-V.

The network is cut into ``v * p`` contiguous chunks by the stage DP (:func:`chunk_plan`, the
same planner and costs as the one-stage-per-processor methods, straight pipeline). Chunk
``s`` (0-based) runs on

* interleaved 1F1B (Narayanan et al., SC 2021; Megatron-LM's virtual pipeline stages): processor
  ``s mod p``, so processor r holds chunks r, r + p, ..., r + (v-1) p;
* ZB-V (Qi et al., "Pipeline parallelism with controllable memory", 2024): processor ``s`` for
  ``s < p`` and ``2p - 1 - s`` after, two chunks per processor in a V (the middle hand-off and
  the last chunk's loss stay on one processor).

Orders (stage ids are 1-based, ``Action(kind, chunk + 1, unit)``):

* :func:`interleaved_orders` is Megatron's ``forward_backward_pipelining_with_interleaving``
  with its default group size p: the k-th forward of processor r runs chunk
  ``(k mod pv) div p`` on micro-batch ``(k div pv) p + k mod p``, the k-th backward the mirror
  chunk ``v - 1 - (k mod pv) div p`` on the same micro-batch; ``2 (p - r - 1) + (v - 1) p``
  warm-up forwards (at most v m), then one forward and one backward, then the rest of the
  backwards. It needs m to be a multiple of p (Megatron's rule). With uniform costs the step
  takes ``(m + (p - 1) / v) (t_f + t_b)``, t_f and t_b a whole processor's share.
* :func:`zbv_orders` is PyTorch's ``ScheduleZBVZeroBubble`` (equal to the zero-bubble authors'
  greedy ``zbv.py`` up to the cool-down's W order): on processor r, chunk 0 = stage r and
  chunk 1 = stage 2p - 1 - r; warm-up ``2 (p - r) - 1`` F0, r x (F1, F0), (p - r) x (F1, B1, W1);
  then (F0 while any is left, B0, W0, F1, B1, W1) until every forward ran; cool-down r x (B0,
  B1), (p - r) x (B0, W0), the remaining W1, the remaining W0. It is written for
  ``n = max(m, 2p - 1)`` micro-batches and the ones past m are dropped, as PyTorch does. With
  uniform costs and m >= 2p - 1 no processor idles inside a step.

>>> [" ".join(map(str, o)) for o in interleaved_orders(2, 2, 2).values()]
['F1.0 F1.1 F3.0 F3.1 B3.0 B3.1 B1.0 B1.1', 'F2.0 F2.1 F4.0 B4.0 F4.1 B4.1 B2.0 B2.1']
>>> interleaved_placement(2, 2), v_placement(2)
([0, 1, 0, 1], [0, 1, 1, 0])
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from models.errors import ScheduleError
from models.graph.tasks import TaskKind, num_layers
from schedules.planning.candidates import pipedream_costs
from schedules.planning.partition import StagePlan, plan_stages
from schedules.planning.stages import boundary_bytes
from schedules.schedule import Action
from simulator.hardware import Hardware


def _check(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ScheduleError(f"number of {name} must be a positive integer, got {value!r}")
    return value


def interleaved_placement(processors: int, virtual: int) -> list[int]:
    """Processor of every chunk (0-based) of interleaved 1F1B: chunk s on processor s mod p."""
    _check("processors", processors), _check("virtual stages", virtual)
    return [s % processors for s in range(processors * virtual)]


def v_placement(processors: int) -> list[int]:
    """Processor of every chunk of a V schedule: s for s < p, then 2p - 1 - s."""
    p = _check("processors", processors)
    return [s if s < p else 2 * p - 1 - s for s in range(2 * p)]


def chunk_plan(fine: nx.DiGraph, hw: Hardware, chunks: int) -> StagePlan:
    """Exactly ``chunks`` contiguous stages of the fine template ``fine`` of one micro-batch, or
    :class:`ScheduleError` if there are fewer layers.

    The stage DP (PipeDream's costs, no replication) gives the smallest bottleneck T. Many plans
    reach it when one layer dominates (a language-model head), and a processor holding several
    chunks pays for all of them, so among the plans whose every chunk (with its cut) is at most
    T the one with the smallest sum of squared chunk times is taken: the most even split.
    """
    L = num_layers(fine)
    if chunks > L:
        raise ScheduleError(f"{chunks} pipeline chunks need at least {chunks} weight layers; the network has {L} "
                            "(use fewer processors or virtual stages)")
    costs = pipedream_costs(fine, hw)
    boundary = [hw.transfer(b) for b in boundary_bytes(fine)]
    bottleneck = plan_stages(costs, chunks, boundary=boundary, exact=True).bottleneck
    return StagePlan(_even_split(costs, boundary, chunks, bottleneck), bottleneck)


def _even_split(costs: list[int], boundary: list[float], chunks: int, limit: float) -> tuple[tuple[int, int, int], ...]:
    """Cut ``costs`` into ``chunks`` contiguous chunks, each (and each cut) at most ``limit``,
    minimising the sum of squared chunk costs (exact DP, O(L^2 chunks))."""
    L = len(costs)
    prefix = [0]
    for c in costs:
        prefix.append(prefix[-1] + c)
    inf = float("inf")
    # best[k][j]: (sum of squares, previous cut) for layers 1..j in k chunks
    best = [[(inf, -1)] * (L + 1) for _ in range(chunks + 1)]
    best[0][0] = (0, -1)
    for k in range(1, chunks + 1):
        for j in range(k, L - (chunks - k) + 1):
            cut_ok = j == L or boundary[j - 1] <= limit
            if not cut_ok:
                continue
            for i in range(k - 1, j):
                prev = best[k - 1][i][0]
                t = prefix[j] - prefix[i]
                if prev == inf or t > limit:
                    continue
                cand = prev + t * t
                if cand < best[k][j][0]:
                    best[k][j] = (cand, i)
    if best[chunks][L][0] == inf:  # cannot happen: the DP's own plan is such a split
        raise ScheduleError(f"no split of {L} layers into {chunks} chunks of at most {limit:g} cycles")
    out, j = [], L
    for k in range(chunks, 0, -1):
        i = best[k][j][1]
        out.append((i + 1, j, 1))
        j = i
    return tuple(reversed(out))


def interleaved_orders(processors: int, virtual: int, microbatches: int, steps: int = 1) -> dict[int, list[Action]]:
    """Interleaved 1F1B orders (module docstring), ``steps`` steps of ``microbatches`` units each."""
    p, v, m = (_check("processors", processors), _check("virtual stages", virtual),
               _check("micro-batches", microbatches))
    _check("steps", steps)
    if m % p:
        raise ScheduleError(f"interleaved 1F1B needs the micro-batches per step to be a multiple of the {p} "
                            f"processors (Megatron's rule), got {m}")
    F, B = TaskKind.F, TaskKind.B

    def virtual_microbatch(k: int) -> tuple[int, int]:  # (chunk index on the processor, micro-batch)
        group, within = divmod(k, p * v)
        chunk, i = divmod(within, p)
        return chunk, group * p + i

    orders: dict[int, list[Action]] = {}
    for r in range(p):
        warm = min(2 * (p - r - 1) + (v - 1) * p, v * m)
        seq: list[Action] = []
        for step in range(steps):
            base = step * m

            def fwd(k: int) -> Action:
                chunk, mb = virtual_microbatch(k)
                return Action(F, chunk * p + r + 1, base + mb)

            def bwd(k: int) -> Action:
                chunk, mb = virtual_microbatch(k)
                return Action(B, (v - 1 - chunk) * p + r + 1, base + mb)

            seq += [fwd(k) for k in range(warm)]
            for k in range(v * m - warm):
                seq += [fwd(k + warm), bwd(k)]
            seq += [bwd(k) for k in range(v * m - warm, v * m)]
        orders[r] = seq
    return orders


def zbv_orders(processors: int, microbatches: int, steps: int = 1) -> dict[int, list[Action]]:
    """ZB-V orders (module docstring); B is the input gradient, W the weight gradient."""
    p, m = _check("processors", processors), _check("micro-batches", microbatches)
    _check("steps", steps)
    n = max(m, 2 * p - 1)
    F, B, W = TaskKind.F, TaskKind.B, TaskKind.W
    orders: dict[int, list[Action]] = {}
    for r in range(p):
        stage = (r + 1, 2 * p - r)  # 1-based stages of chunk 0 and chunk 1
        seq: list[Action] = []
        for step in range(steps):
            base = step * m
            count = {(kind, c): 0 for kind in (F, B, W) for c in (0, 1)}
            one: list[Action] = []

            def run(kind: TaskKind, chunk: int) -> None:
                mb = count[kind, chunk]
                count[kind, chunk] += 1
                if mb < m:  # the micro-batches past m only keep the pattern (PyTorch masks them)
                    one.append(Action(kind, stage[chunk], base + mb))

            for _ in range(2 * (p - r) - 1):
                run(F, 0)
            for _ in range(r):
                run(F, 1), run(F, 0)
            for _ in range(p - r):
                run(F, 1), run(B, 1), run(W, 1)
            while count[F, 1] < count[F, 0] or count[F, 0] < n:
                if count[F, 0] < n:
                    run(F, 0)
                run(B, 0), run(W, 0), run(F, 1), run(B, 1), run(W, 1)
            for _ in range(r):
                run(B, 0), run(B, 1)
            for _ in range(p - r):
                run(B, 0), run(W, 0)
            for chunk in (1, 0):
                while count[W, chunk] < n:
                    run(W, chunk)
            seq += one
        orders[r] = seq
    return orders


#: method name -> (placement(p, v), orders(p, v, m, steps)) of the chunked schedules
ORDERS: dict[str, tuple[Callable[[int, int], list[int]], Callable[[int, int, int, int], dict[int, list[Action]]]]] = {
    "interleaved": (interleaved_placement, interleaved_orders),
    "v": (lambda p, v: v_placement(p), lambda p, v, m, steps: zbv_orders(p, m, steps)),
}

__all__ = ["interleaved_placement", "v_placement", "chunk_plan", "interleaved_orders", "zbv_orders", "ORDERS"]
