"""The SimPy engine: assigns times to a validated schedule on a platform, and nothing else.

Each processor walks its ordered actions. Before an action starts it waits for (1) each
predecessor in the task graph, locally or through the transfer that brings its output,
and (2) for a forward, the weights the delay rule allows (:class:`schedules.delays.DelayRule`).
A task then holds its processor for the cost model's cycles
(:func:`simulator.hardware.task_cycles`). Transfers hold one directed link channel per hop
(store and forward).

The bookkeeping lives in one state object (:mod:`simulator.engine.state`), moved by one of
two thin drivers (:mod:`simulator.engine.drivers`); the steady-state window is defined in
:mod:`simulator.engine.window`. The engine streams what the metrics need (busy cycles,
bytes, link-busy cycles, waits on transfers, stashed-activation memory, step completion
times), so with ``trace=None`` its memory does not grow with the number of units. A trace
sink, when given, receives every task and transfer as it ends.

>>> from models.graph.synthetic import uniform_pipeline_graph
>>> from schedules.schedule import Schedule, parse_orders
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> g = uniform_pipeline_graph(2, f=1, b=1, w=1)
>>> s = Schedule("hand", g, parse_orders("P0: F1.0 B1.0 W1.0; P1: F2.0 B2.0 W2.0"))
>>> simulate(s, Platform.homogeneous(2, MacArray(1))).makespan
5
"""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from models.errors import DeadlockError, LayerPipeError
from models.graph.tasks import edge_bytes
from schedules.passes import ExecutableSchedule, insert_transfers, validate
from schedules.schedule import Schedule
from simulator.engine.drivers import run_callbacks, run_processes
from simulator.engine.state import EngineState, SimStats, describe_key
from simulator.engine.versions import RealisedVersions
from simulator.engine.window import schedule_period, schedule_window, steady_window, window_midpoint
from simulator.platform import Platform
from simulator.trace import TraceSink

DRIVERS = ("auto", "processes", "callbacks")


@dataclass
class SimResult:
    schedule: Schedule
    platform: Platform
    stats: SimStats
    executable: ExecutableSchedule
    versions: RealisedVersions | None = None  # with ``record_versions=True``

    @property
    def makespan(self) -> int:
        return self.stats.makespan


def _transfers_free(ex: ExecutableSchedule, platform: Platform) -> bool:
    """No transfer of this schedule can cost a link cycle."""
    link = platform.link
    if link.is_free:
        return True
    graph = ex.schedule.graph
    sizes = {edge_bytes(graph, u, v) for u, v in graph.edges}
    sizes |= {nbytes for nbytes, _ in ex.weight_readers.values()}
    return all(link.transfer_cycles(n) == 0 for n in sizes)


def simulate(schedule: Schedule | ExecutableSchedule, platform: Platform, *, trace: TraceSink | None = None,
             check: bool = True, driver: str = "auto", record_versions: bool = False, exact: bool = True) -> SimResult:
    """Run ``schedule`` on ``platform`` and return streamed statistics.

    ``schedule`` is validated and its transfers inserted unless it is already an
    :class:`ExecutableSchedule`. ``trace`` receives every task and transfer (see
    :mod:`simulator.trace`). ``driver`` forces the process driver (``"processes"``, for
    tests) or the callback driver (``"callbacks"``, only valid when no transfer costs a
    cycle); ``"auto"`` takes the callbacks whenever they apply. ``record_versions`` notes the
    weight version every task used (``SimResult.versions``, :mod:`simulator.engine.versions`).
    ``exact`` logs what the events of a slice near the end of the run waited for and reads
    the exact steady state from it (``stats.steady``, :mod:`simulator.engine.steady`); the log
    holds a few periods, however long the run. Raises :class:`DeadlockError` naming the blocked task.
    """
    if driver not in DRIVERS:
        raise LayerPipeError(f"unknown engine driver {driver!r} (known: {', '.join(DRIVERS)})")
    ex = schedule if isinstance(schedule, ExecutableSchedule) else insert_transfers(
        validate(schedule) if check else schedule)
    if ex.schedule.processors > platform.size:
        raise LayerPipeError(f"the schedule uses {ex.schedule.processors} processors but the platform has {platform.size}")
    free = _transfers_free(ex, platform)
    if driver == "callbacks" and not free:
        raise LayerPipeError("the callback driver needs transfers that cost no link cycles")
    callbacks = free if driver == "auto" else driver == "callbacks"
    state = EngineState(ex, platform, trace, free_links=callbacks, record_versions=record_versions,
                        record_events=exact)
    env = simpy.Environment()
    position = (run_callbacks if callbacks else run_processes)(state, env)
    stuck = [p for p in range(state.P) if position[p] < len(state.orders[p])]
    if stuck:
        p = stuck[0]
        head = state.orders[p][position[p]]
        waits = state.describe_wait(state.waiting_on[p])
        raise DeadlockError(f"simulation deadlocked: {head} on P{p} waits for {describe_key(waits)}",
                            task=head, waits_for=waits)
    stats = state.close(env.now)
    stats.steady = state.steady_state()
    if trace is not None:
        trace.close()
    return SimResult(ex.schedule, platform, stats, ex, state.versions())


__all__ = ["SimStats", "SimResult", "RealisedVersions", "simulate", "schedule_period", "schedule_window", "steady_window",
           "window_midpoint", "DRIVERS"]
