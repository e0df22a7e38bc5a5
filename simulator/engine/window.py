"""Which optimizer steps of a run measure its steady state.

Warm-up is the first quarter of the steps and at least the ``depth`` steps a schedule keeps
in flight (until then the busiest processor may run forwards of later minibatches ahead and
completions come faster than the steady rate); the last quarter is drain. A schedule that
repeats every ``period`` steps (round-robin replicas, update rounds) completes steps in
bursts, so the window spans a whole number of periods, and its midpoint splits it into two
halves of whole periods whose rates must agree for the run to count as converged.
"""

from __future__ import annotations

import math


def steady_window(steps: int, depth: int = 1, period: int = 1) -> tuple[int, int]:
    """Indices of the step completions that bound the steady-state window.

    When not even one period fits, returns ``(-1, 0)``: the whole run is the window and
    cycles per step = makespan / steps, which can only overstate the steady-state figure.

    >>> steady_window(16), steady_window(16, depth=8), steady_window(8, depth=8), steady_window(64, 1, 16)
    ((4, 11), (8, 11), (-1, 0), (16, 32))
    """
    if steps <= 1:
        return (-1, 0)
    first = max(steps // 4, depth)
    last = steps - 1 - steps // 4
    whole = (last - first) // period * period
    if whole < 1:
        return (-1, 0)
    return first, first + whole


def schedule_period(sched, placement_period: int = 1) -> tuple[int, int]:
    """``(depth, period)`` of ``sched`` in steps.

    Depth: the units in flight of its delay rule (max over layers of g_l (S(l) + 1)), in
    steps. Period: the least common multiple of the placement period (round-robin replicas),
    the update rounds g_l and the units per step m.
    """
    rule = sched.rule
    m = rule.default_group
    layers = set(rule.stale) | set(rule.groups)
    period_units = math.lcm(placement_period, m, *(rule.group(l) for l in layers))
    return max(1, -(-rule.depth_units() // m)), max(1, period_units // m)


def schedule_window(sched, steps: int, placement_period: int = 1) -> tuple[int, int]:
    """:func:`steady_window` with ``sched``'s depth and period (:func:`schedule_period`)."""
    return steady_window(steps, *schedule_period(sched, placement_period))


def exact_steps(sched, placement_period: int = 1, fold: int = 4) -> int:
    """The fewest steps whose steady-state window holds two periods of ``fold`` x the schedule's
    period with the pipeline's depth of room after them: enough for the exact steady state
    (:mod:`simulator.engine.steady`) of a schedule whose orders repeat within ``fold`` periods.

    >>> from models.graph.synthetic import uniform_pipeline_graph
    >>> from schedules.schedule import Schedule, parse_orders
    >>> s = Schedule("one", uniform_pipeline_graph(1, f=1, b=1, w=1), parse_orders("P0: F1.0 B1.0 W1.0"))
    >>> exact_steps(s)
    27
    """
    depth, period = schedule_period(sched, placement_period)
    m = sched.rule.default_group
    span = 3 * fold * period  # two aligned periods of fold x period steps always fit in 3 x that
    after = -(-(2 * sched.rule.depth_units() + fold * period * m) // m)
    steps = 4 * max(depth, after, 1)
    while True:
        first, last = steady_window(steps, depth, period)
        if first >= 0 and last - first >= span and steps // 4 >= after:
            return steps
        steps += max(1, steps // 8)


def window_midpoint(first: int, last: int, period: int) -> int:
    """A step completion splitting the window into two halves of whole periods (-1: no room).

    >>> window_midpoint(16, 32, 4), window_midpoint(16, 20, 4)
    (24, -1)
    """
    if first < 0:
        return -1
    k = (last - first) // period
    return first + (k // 2) * period if k >= 2 else -1


__all__ = ["steady_window", "schedule_period", "schedule_window", "window_midpoint", "exact_steps"]
