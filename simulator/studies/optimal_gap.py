"""How far each method is from the best schedule its own task graph and delays allow.

For a method M on a network and platform (pipeline mode: no stage replication, one update
per minibatch, so every method is in the solver's class), one :class:`GapRow` holds

* M's cycles per minibatch (exact steady state, the engine);
* the *analytic* bound every schedule of M's graph and delays obeys (work / P, the largest
  task, the iteration bound of the delay loops; no placement assumed);
* the optimal modulo schedule of M's graph and delays (:mod:`schedules.methods.optimal`),
  warm-started from M's placement: the solver's interval, the bound it proved, and the
  engine's exact rate of that schedule (at most the interval: the model's links are first come,
  first served like the engine's, and the engine starts everything as early as it can; above
  ``bound - 1``: the solver's starts are whole cycles, the engine's steady state may interleave
  two minibatches); the best schedule found is the faster of that and M's own;
* M's distance to the analytic bound split in two factors that multiply to it:
  ``planner = M / optimal`` (what M's placement and order lose) and ``bound = optimal /
  analytic`` (what no schedule of this class can recover; proven up to the solver's gap).

>>> from simulator.platform import PlatformSpec
>>> row = gap_row("mlp", "layerpipe", PlatformSpec(2, link="none"), batch=8, time_limit=2)
>>> row.status, row.proven_bound - 1 < row.engine_cycles <= row.solver_interval  # free links: the interval
('optimal', True)
>>> abs(row.planner_factor * row.bound_factor - row.method_cycles / row.analytic_bound) < 1e-9
True
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from fractions import Fraction

import networkx as nx

from models.errors import ScheduleError
from models.graph.tasks import task_parts
from models.network.zoo import load_network
from schedules.delays import DelayRule
from schedules.methods.optimal import OptimalPlan, plan_optimal, reference_view, view_for
from schedules.registry import METHODS
from schedules.schedule import Schedule
from simulator.bounds import fastest_cycles, iteration_bound
from simulator.engine import SimResult, simulate
from simulator.hardware import Hardware
from simulator.metrics import processor_memory
from simulator.platform import PlatformSpec
from simulator.runs import converge, run_until_converged
from simulator.trace import MemoryTrace


@dataclass(frozen=True)
class GapRow:
    network: str
    processors: int
    method: str
    method_cycles: float
    method_exact: bool
    method_period: int | None  # minibatches with which the method's orders repeat
    analytic_bound: float
    analytic_kind: str
    solver_interval: int
    proven_bound: int  # every one-minibatch modulo schedule with whole-cycle starts has interval >= this
    status: str  # optimal, gap, too large
    engine_cycles: float  # the engine's exact rate of the solver's schedule
    engine_exact: bool
    solver_seconds: float  # CP-SAT's deterministic time
    solver_tried: str = ""  # each interval asked about and the answer, "lam:answer ..."
    #: the first-come link rule over every placement was too large to state: the bound is the
    #: relaxation's without it, the schedule a placement timed with it
    relaxed: bool = False
    #: the peak memory of each run (weights x versions held, stashed activations, gradients, optimizer
    #: state) fits the platform's memory capacity on every processor (True without a capacity)
    method_fits: bool = True
    solver_fits: bool = True

    @property
    def optimal_cycles(self) -> float:
        """The best schedule found that fits: the solver's as the engine runs it, or the method's own if
        that is faster (a method whose orders repeat over several minibatches can beat the solver's
        class); the solver's when neither fits (its placement's static memory does, by construction)."""
        return self.engine_cycles if self.optimal_source == "solver" else self.method_cycles

    @property
    def optimal_source(self) -> str:
        if self.method_fits and (not self.solver_fits or self.method_cycles < self.engine_cycles):
            return "method"
        return "solver"

    @property
    def engine_over_interval(self) -> float:
        """How much slower the engine runs the solver's orders than the solver's interval (0: not at
        all; the engine starts everything as early as it can, which with first-come links could in
        principle reorder a channel)."""
        return max(0.0, self.engine_cycles / self.solver_interval - 1)

    @property
    def planner_factor(self) -> float:
        return self.method_cycles / self.optimal_cycles

    @property
    def bound_factor(self) -> float:
        return self.optimal_cycles / self.analytic_bound

    @property
    def below_proven(self) -> bool:
        """The method beats every one-minibatch modulo schedule (its orders repeat over several
        minibatches and interleave them in ways one period cannot): the class, not a wrong model."""
        return self.method_fits and self.method_cycles <= self.proven_bound - 1

    def to_dict(self) -> dict:
        return {**asdict(self), "optimal_cycles": self.optimal_cycles, "optimal_source": self.optimal_source,
                "engine_over_interval": self.engine_over_interval, "planner_factor": self.planner_factor,
                "bound_factor": self.bound_factor, "below_proven": self.below_proven}


def analytic_bound(graph, platform, rule: DelayRule) -> tuple[Fraction, str]:
    """The largest of work / P, the largest task and the iteration bound, with no placement assumed."""
    c = fastest_cycles(graph, platform, range(platform.size))
    ratio, _ = iteration_bound(graph, c, rule)
    candidates = {"work / P": Fraction(sum(c.values()), platform.size), "largest task": Fraction(max(c.values())),
                  "iteration": ratio}
    kind = max(candidates, key=lambda k: candidates[k])
    return candidates[kind], kind


def warm_starts(schedule: Schedule, platform, graph: nx.DiGraph) -> dict[Hashable, int]:
    """When each task of ``graph`` starts in a steady-state minibatch of ``schedule`` (the middle one of
    its run, from a trace), relative to the graph's first task: CP-SAT's warm start. A task of a
    coarser schedule (PipeDream's stage tasks) lends its start to each of its parts."""
    trace = MemoryTrace()
    simulate(schedule, platform, trace=trace)
    unit = schedule.units // 2
    began = {(r.kind, r.layer): r.start for r in trace.tasks if r.unit == unit}
    part_of: dict[Hashable, float] = {}
    for task in schedule.graph:
        if (task[0], task[1]) in began:
            for part, _ in task_parts(schedule.graph, task):
                part_of[part] = began[(task[0], task[1])]
    starts = {}
    for t in graph:
        found = [part_of[p] for p, _ in task_parts(graph, t) if p in part_of]
        if found:
            starts[t] = min(found)
    first = next(iter(nx.lexicographical_topological_sort(graph)))
    base = starts.get(first, min(starts.values(), default=0))
    return {t: max(0, int(v - base)) for t, v in starts.items()}


def solve_beyond(schedule: Schedule, network, platform, *, batch: int, rate: float, lower: int | None = None,
                 time_limit: float | None = None, unroll: int = 1) -> tuple[OptimalPlan, SimResult]:
    """The optimal schedule of ``schedule``'s graph and delays (``rate``: its cycles per minibatch),
    warm-started from its placement and steady-state starts, and the engine's run of it."""
    view = view_for(METHODS[schedule.name].tasks_per_stage)
    graph = reference_view(schedule, network, batch=batch, view=view)
    solver = {"time_limit": time_limit} if time_limit is not None else {}
    opt = plan_optimal(schedule, network, Hardware.of(platform), batch=batch, view=view, upper=math.ceil(rate * unroll),
                       lower=lower, unroll=unroll, hint_starts=warm_starts(schedule, platform, graph), **solver)
    _, result = converge(opt.schedule, platform, 8, shortest=True)
    return opt, result


def gap_row(network: str, method: str, spec: PlatformSpec, *, batch: int = 32, time_limit: float = 10.0) -> GapRow:
    """One :class:`GapRow` for ``method`` on ``network`` over the platform ``spec`` (pipeline mode)."""
    m = METHODS.get(method)
    if m is None or m.synchronous or m.reference or m.on_request:
        raise ScheduleError(f"the optimal gap is for the asynchronous methods, got {method!r}")
    net = load_network(network)
    platform = spec.build()
    sched, res = run_until_converged(method, net, platform, minibatches=None, batch=batch, parallelism="pipeline")
    rate = float(res.stats.cycles_per_step)
    capacity = platform.memory_capacity

    def fits(result: SimResult) -> bool:
        return capacity is None or max(m.total for m in processor_memory(result)) <= capacity

    graph = reference_view(sched, net, batch=batch, view=view_for(m.tasks_per_stage))  # its own, or per layer
    bound, kind = analytic_bound(graph, platform, DelayRule.from_delays(sched.delays))
    opt, ores = solve_beyond(sched, net, platform, batch=batch, rate=rate, lower=math.ceil(bound),
                             time_limit=time_limit)
    return GapRow(net.name, platform.size, method, rate, res.stats.exact, res.stats.orders_period, float(bound), kind,
                  opt.solution.interval, opt.solution.lower_bound, opt.solution.status,
                  float(ores.stats.cycles_per_step), ores.stats.exact, round(opt.solution.solver_seconds, 3),
                  " ".join(f"{lam}:{what}" for lam, what in opt.solution.tried),
                  relaxed=opt.solution.status != "too large" and bool(opt.solution.message),
                  method_fits=fits(res), solver_fits=fits(ores))


__all__ = ["GapRow", "gap_row", "analytic_bound", "solve_beyond", "warm_starts"]
