"""Per-stage action orders of the classic pipeline schedules (stage s runs on processor s-1).

These functions only order actions; they work on any stage-level template whose stages
have ``F`` and ``B`` tasks and optionally ``W`` (weight gradient split from B):

* :func:`gpipe_orders`: all forwards of a step, then all backwards (synchronous, flush).
* :func:`one_f_one_b_orders`: stage s admits ``p - 1 - s`` warm-up forwards, then
  alternates one forward and one backward; W (if split) runs right after its B.
* ``one_f_one_b_orders(..., defer_w=True)`` is ZB-H1 (Qi et al., 2024): same forwards
  and backwards as 1F1B, but stage s postpones the W of its first ``s`` backwards to the
  cool-down, so the backward chain reaches stage 1 sooner; in-flight micro-batches stay
  at 1F1B's ``p - s``.

With ``steps`` > 1 the step pattern repeats on units ``k*m .. k*m + m - 1``.

>>> [[str(a) for a in o] for o in one_f_one_b_orders(2, 2).values()]
[['F1.0', 'F1.1', 'B1.0', 'W1.0', 'B1.1', 'W1.1'], ['F2.0', 'B2.0', 'W2.0', 'F2.1', 'B2.1', 'W2.1']]
"""

from __future__ import annotations

from models.errors import ScheduleError
from models.graph.tasks import TaskKind
from schedules.schedule import Action


def _check(stages: int, microbatches: int, steps: int) -> None:
    for name, v in (("stages", stages), ("micro-batches", microbatches), ("steps", steps)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ScheduleError(f"number of {name} must be a positive integer, got {v!r}")


def gpipe_orders(stages: int, microbatches: int, steps: int = 1, split_w: bool = True) -> dict[int, list[Action]]:
    """GPipe: F of every micro-batch, then B (and W) of every micro-batch in reverse order."""
    _check(stages, microbatches, steps)
    orders: dict[int, list[Action]] = {}
    for p in range(stages):
        s = p + 1
        seq: list[Action] = []
        for k in range(steps):
            base = k * microbatches
            seq += [Action(TaskKind.F, s, base + i) for i in range(microbatches)]
            for i in reversed(range(microbatches)):
                seq.append(Action(TaskKind.B, s, base + i))
                if split_w:
                    seq.append(Action(TaskKind.W, s, base + i))
        orders[p] = seq
    return orders


def one_f_one_b_orders(stages: int, microbatches: int, steps: int = 1, split_w: bool = True,
                       defer_w: bool = False) -> dict[int, list[Action]]:
    """1F1B (``defer_w=False``) or ZB-H1 (``defer_w=True``) orders; see the module docstring."""
    _check(stages, microbatches, steps)
    if defer_w and not split_w:
        raise ScheduleError("ZB-H1 needs the weight gradient split from the backward (split_w=True)")
    orders: dict[int, list[Action]] = {}
    for p in range(stages):
        s = p + 1
        seq: list[Action] = []
        for k in range(steps):
            base = k * microbatches
            warm = min(stages - 1 - p, microbatches)
            f_next = b_next = 0
            deferred: list[int] = []
            for _ in range(warm):
                seq.append(Action(TaskKind.F, s, base + f_next))
                f_next += 1

            def backward() -> None:
                nonlocal b_next
                seq.append(Action(TaskKind.B, s, base + b_next))
                if split_w:
                    if defer_w and len(deferred) < p and b_next < microbatches - 1:
                        deferred.append(b_next)
                    else:
                        seq.append(Action(TaskKind.W, s, base + b_next))
                b_next += 1

            while f_next < microbatches:
                seq.append(Action(TaskKind.F, s, base + f_next))
                f_next += 1
                backward()
            while b_next < microbatches:
                backward()
            seq += [Action(TaskKind.W, s, base + i) for i in deferred]
        orders[p] = seq
    return orders


__all__ = ["gpipe_orders", "one_f_one_b_orders"]
