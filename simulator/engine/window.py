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
from collections import defaultdict
from collections.abc import Sequence


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


def exact_core(units: int, depth_units: int, period_units: int, max_fold: int = 4) -> tuple[int, int, int, int] | None:
    """Where a run of ``units`` units logs its events for the exact steady state, in units:
    ``(log_lo, core_lo, core_hi, log_hi)``, or None when not even one fold fits.

    The core, whose periods are read, holds three times fold x ``period_units`` units (two
    aligned periods of that length always fit in it) for the largest fold up to ``max_fold``
    that fits, and ends as late as the run allows. What its events wait for lies within the
    pipeline's depth on either side, and the fill before it and the drain after it change the
    orders within about that depth, so a margin of ``2 x depth_units + fold x period_units``
    units separates the core from either end of the run; the log spans the core and both
    margins. (The simulated window skips a quarter of the run on either side; the core needs
    only the margins, so a run can be about as short as its pipeline's depth allows.)

    >>> exact_core(100, 4, 2)          # fold 4: margins of 2 x 4 + 8 units around a core of 24
    (44, 60, 84, 100)
    >>> exact_core(30, 4, 2), exact_core(25, 4, 2)   # only fold 1 fits; nothing fits
    ((4, 14, 20, 30), None)
    """
    for fold in range(max_fold, 0, -1):
        span, margin = _core_span_margin(depth_units, period_units, fold)
        if units >= 2 * margin + span:
            core_hi = units - margin
            return core_hi - span - margin, core_hi - span, core_hi, units
    return None


def _core_span_margin(depth_units: int, period_units: int, fold: int) -> tuple[int, int]:
    """The core's length (two aligned periods of ``fold`` x ``period_units`` always fit in three)
    and the margin that separates it from either end of the run, in units."""
    return 3 * fold * period_units, 2 * depth_units + fold * period_units


def orders_period(orders: Sequence[Sequence], units: int, depth_units: int, base_units: int,
                  max_multiple: int = 64) -> int | None:
    """The least multiple T of ``base_units`` with which every processor's order repeats where
    the exact steady state reads it: over the whole slice the event log holds up to the end of
    the core (:func:`exact_core` for one fold of T: the margin before the core and the core
    itself, several periods), the order's actions shifted by T units are the same actions one
    period's worth of positions later. None when no multiple up to ``max_multiple`` repeats (or
    fits). Two periods alike are not enough: a list scheduler's order repeating every 13 units
    can show two alike units.

    ``orders``: each processor's actions (``kind``, ``layer``, ``unit`` tuples). A list
    scheduler's orders may settle into a period of several of the schedule's own (each
    processor's share of a period is then whole); trying only the first few multiples would
    call them aperiodic.

    >>> from schedules.schedule import parse_orders
    >>> pairs = " ".join(f"F1.{u} F1.{u + 1} B1.{u} B1.{u + 1}" for u in range(0, 40, 2))
    >>> orders_period([parse_orders("P0: " + pairs)[0]], 40, 1, 1)   # two forwards, then two backwards
    2
    """
    if exact_core(units, depth_units, base_units, 1) is None:
        return None  # not even the schedule's own period fits: do not index the orders
    tables = []
    for seq in orders:
        first: dict[int, int] = {}
        count: dict[int, int] = defaultdict(int)
        for j, a in enumerate(seq):
            first.setdefault(a.unit, j)
            count[a.unit] += 1
        tables.append((seq, first, count))
    for f in range(1, max_multiple + 1):
        T = f * base_units
        core = exact_core(units, depth_units, T, 1)
        if core is None:
            return None
        log_lo, _, core_hi, _ = core
        periods = (core_hi - log_lo) // T - 1  # each mapped onto the next, the last ending the core
        if all(_repeats(seq, first, count, core_hi - (periods + 1) * T, T, periods) for seq, first, count in tables):
            return T
    return None


def _repeats(seq: Sequence, first: dict[int, int], count: dict[int, int], lo: int, T: int, periods: int) -> bool:
    """Whether ``seq`` shifted by ``T`` units repeats itself one period's share of positions later,
    from the first action of unit ``lo`` on, for ``periods`` periods."""
    c = sum(count.get(u, 0) for u in range(lo, lo + T))
    if c == 0:
        return all(count.get(u, 0) == 0 for u in range(lo, lo + (periods + 1) * T))
    j0 = min(first[u] for u in range(lo, lo + T) if u in first)
    if j0 + (periods + 1) * c > len(seq):
        return False
    for j in range(j0, j0 + periods * c):
        a, b = seq[j], seq[j + c]
        if b.unit != a.unit + T or b.kind != a.kind or b.layer != a.layer:
            return False
    return True


def exact_steps(sched, placement_period: int = 1, fold: int = 1, period_units: int | None = None) -> int:
    """The fewest steps of ``sched`` whose run holds the exact steady state's core
    (:func:`exact_core`) for ``fold`` x a period of ``period_units`` units (default: the
    schedule's own period, :func:`schedule_period`).

    >>> from models.graph.synthetic import uniform_pipeline_graph
    >>> from schedules.schedule import Schedule, parse_orders
    >>> s = Schedule("one", uniform_pipeline_graph(1, f=1, b=1, w=1), parse_orders("P0: F1.0 B1.0 W1.0"))
    >>> exact_steps(s), exact_steps(s, fold=4)   # margins of 2 x 1 + fold units around 3 x fold
    (9, 24)
    """
    m = sched.rule.default_group
    if period_units is None:
        period_units = schedule_period(sched, placement_period)[1] * m
    span, margin = _core_span_margin(sched.rule.depth_units(), period_units, fold)
    return max(2, -(-(2 * margin + span) // m))


def window_midpoint(first: int, last: int, period: int) -> int:
    """A step completion splitting the window into two halves of whole periods (-1: no room).

    >>> window_midpoint(16, 32, 4), window_midpoint(16, 20, 4)
    (24, -1)
    """
    if first < 0:
        return -1
    k = (last - first) // period
    return first + (k // 2) * period if k >= 2 else -1


__all__ = ["steady_window", "schedule_period", "schedule_window", "window_midpoint", "exact_core", "exact_steps",
           "orders_period"]
