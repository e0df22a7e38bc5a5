"""Per-stage action orders of the classic flush pipeline schedules.

These functions only order actions; they work on any stage-level template whose stages
have ``F`` and ``B`` tasks and optionally ``W`` (weight gradient split from B):

* ``gpipe``: all forwards of a step, then all backwards in reverse order (synchronous, flush).
* ``1f1b``: stage s (0-based, of n) admits ``n - 1 - s`` warm-up forwards, then alternates one
  forward and one backward; W (if split) runs right after its B.
* ``1f1b`` with ``defer_w`` is ZB-H1 (Qi et al., 2024): same forwards and backwards as 1F1B,
  but on stage s each W trails its B by ``s`` micro-batches (the last ``s`` run in the
  cool-down), so the backward chain reaches stage 1 sooner; in-flight micro-batches stay at
  1F1B's ``n - s``.
* ``1f1b`` with ``defer_w`` and ``warm_factor=2`` is ZB-H2: stage s admits ``2 (n - 1 - s)``
  warm-up forwards (2n - 1 micro-batches in flight on the first stage) and W trails B by ``2 s``,
  which turns the trapezoid into a parallelogram (bubble (n-1)(F + B - 2W) with uniform costs).

A stage replicated R ways (:func:`flush_orders` on a replicated plan) splits the m micro-batches
of a step round robin over its replicas; each replica runs the pattern on its share, a 1F1B
replica with PipeDream's warm-up window in global micro-batches (``schedules.methods.pipedream``).
With ``steps`` > 1 the step pattern repeats on units ``k*m .. k*m + m - 1``.

>>> [[str(a) for a in o] for o in one_f_one_b_orders(2, 2).values()]
[['F1.0', 'F1.1', 'B1.0', 'W1.0', 'B1.1', 'W1.1'], ['F2.0', 'B2.0', 'W2.0', 'F2.1', 'B2.1', 'W2.1']]
"""

from __future__ import annotations

from collections import deque

from models.errors import ScheduleError
from models.graph.tasks import TaskKind
from schedules.planning.partition import StagePlan
from schedules.planning.stages import processor_ranges
from schedules.schedule import Action

PATTERNS = ("gpipe", "1f1b")


def _check(stages: int, microbatches: int, steps: int) -> None:
    for name, v in (("stages", stages), ("micro-batches", microbatches), ("steps", steps)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ScheduleError(f"number of {name} must be a positive integer, got {v!r}")


def replica_windows(replicas: list[int]) -> list[int]:
    """Warm-up window of every stage in global micro-batches: before its backward of micro-batch
    j a replica of stage s has run its forwards up to j + window[s]. Each window exceeds the next
    stage's by that stage's replica count, so a backward never waits for a forward not yet run.

    >>> replica_windows([1, 1, 1]), replica_windows([1, 2, 1])
    ([2, 1, 0], [3, 1, 0])
    """
    window = [0] * len(replicas)
    for s in range(len(replicas) - 2, -1, -1):
        window[s] = window[s + 1] + replicas[s + 1]
    return window


def _stage_sequence(s: int, units: list[int], pattern: str, *, warm: int, lag: int, split_w: bool) -> list[Action]:
    """One step of one processor of stage ``s`` (1-based) over its ``units``, in the pattern's order.

    The 1F1B family follows the zero-bubble authors' generator (``get_hand_schedule`` of their
    ``efficiency.py``): ``warm`` forwards, then per unit i a forward (while any is left) and the
    backward of unit i, then, once i >= ``lag``, the oldest weight gradient not yet run (so W
    trails B by ``lag`` units, first in first out); the last ``lag`` weight gradients close the step.
    """
    F, B, W = TaskKind.F, TaskKind.B, TaskKind.W
    seq: list[Action] = []
    if pattern == "gpipe":
        seq += [Action(F, s, u) for u in units]
        for u in reversed(units):
            seq.append(Action(B, s, u))
            if split_w:
                seq.append(Action(W, s, u))
        return seq
    n = len(units)
    f = min(warm, n)
    seq += [Action(F, s, u) for u in units[:f]]
    pending: deque[int] = deque()
    for i, u in enumerate(units):
        if f < n:
            seq.append(Action(F, s, units[f]))
            f += 1
        seq.append(Action(B, s, u))
        if split_w:
            pending.append(u)
            if i >= lag:
                seq.append(Action(W, s, pending.popleft()))
    seq += [Action(W, s, u) for u in pending]
    return seq


def flush_orders(plan: StagePlan, microbatches: int, steps: int = 1, *, pattern: str = "1f1b",
                 split_w: bool = True, defer_w: bool = False, warm_up: bool = True,
                 warm_factor: int = 1) -> dict[int, list[Action]]:
    """Orders of a flush schedule on ``plan``'s processors (module docstring). ``warm_up=False``
    runs every forward of a step before its backwards on every replica (GPipe's order), the
    order no delay can deadlock. ``warm_factor`` 2 with ``defer_w`` is ZB-H2: twice the warm-up
    forwards and W trailing B by 2s on stage s."""
    _check(len(plan.stages), microbatches, steps)
    if pattern not in PATTERNS:
        raise ScheduleError(f"unknown flush pattern {pattern!r} (known: {', '.join(PATTERNS)})")
    if defer_w and not split_w:
        raise ScheduleError("ZB-H1 and ZB-H2 need the weight gradient split from the backward (split_w=True)")
    if warm_factor not in (1, 2):
        raise ScheduleError(f"warm-up factor must be 1 (1F1B, ZB-H1) or 2 (ZB-H2), got {warm_factor!r}")
    reps = [r for _, _, r in plan.stages]
    window = replica_windows(reps)
    orders: dict[int, list[Action]] = {}
    for s0, procs in enumerate(processor_ranges(plan)):
        r = len(procs)
        for idx, p in enumerate(procs):
            seq: list[Action] = []
            for k in range(steps):
                units = [k * microbatches + i for i in range(idx, microbatches, r)]
                warm = warm_factor * window[s0] // r if warm_up else len(units)
                lag = warm_factor * s0 if defer_w else 0
                seq += _stage_sequence(s0 + 1, units, pattern, warm=warm, lag=lag, split_w=split_w)
            orders[p] = seq
    return orders


def add_round_updates(orders: dict[int, list[Action]], template, units_per_round: int) -> dict[int, list[Action]]:
    """The orders with one update per round on each processor: after the last gradient task (a
    predecessor of the stage's U) of every round, that stage's U for the unit of that task. The
    processor has accumulated the gradients of all its units of the round by then (the rule of
    ``schedules.passes``: an update runs once per round where the round's gradients were computed).
    """
    updates = {n[1]: n for n in template if TaskKind(n[0]).is_update}
    grads = {n: set(template.predecessors(n)) for n in updates.values()}
    out: dict[int, list[Action]] = {}
    for p, seq in orders.items():
        last: dict[tuple, int] = {}  # (stage, round) -> index of its last gradient task in seq
        for i, a in enumerate(seq):
            u = updates.get(a.layer)
            if u is not None and a.task in grads[u]:
                last[(a.layer, a.unit // units_per_round)] = i
        after = {i: key for key, i in last.items()}
        new: list[Action] = []
        for i, a in enumerate(seq):
            new.append(a)
            if i in after:
                stage = after[i][0]
                new.append(Action(updates[stage][0], stage, a.unit))
        out[p] = new
    return out


def _straight(stages: int) -> StagePlan:
    return StagePlan(tuple((s, s, 1) for s in range(1, stages + 1)), 0.0)


def gpipe_orders(stages: int, microbatches: int, steps: int = 1, split_w: bool = True) -> dict[int, list[Action]]:
    """GPipe on ``stages`` processors, stage s on processor s-1."""
    _check(stages, microbatches, steps)
    return flush_orders(_straight(stages), microbatches, steps, pattern="gpipe", split_w=split_w)


def one_f_one_b_orders(stages: int, microbatches: int, steps: int = 1, split_w: bool = True,
                       defer_w: bool = False, warm_factor: int = 1) -> dict[int, list[Action]]:
    """1F1B (``defer_w=False``), ZB-H1 (``defer_w=True``) or ZB-H2 (and ``warm_factor=2``) on
    ``stages`` processors."""
    _check(stages, microbatches, steps)
    return flush_orders(_straight(stages), microbatches, steps, pattern="1f1b", split_w=split_w, defer_w=defer_w,
                        warm_factor=warm_factor)


__all__ = ["PATTERNS", "flush_orders", "add_round_updates", "gpipe_orders", "one_f_one_b_orders", "replica_windows"]
