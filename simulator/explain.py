"""Why a method is faster than PipeDream: the attribution ladder (docs/design.md section 11).

Each rung is a real schedule, simulated until converged on the same network, platform and run
length; the next rung changes one thing:

1. ``pipedream`` - PipeDream as planned (its fastest fitting candidate, ``simulator.selection``);
2. ``pipedream on the method's plan`` - PipeDream's schedule (backward as one task, 1F1B, its
   delays) on the stages and replicas the method runs on;
3. ``split tasks`` - the same plan with WG, AG1 and AG2 as separate tasks, list-scheduled, with
   PipeDream's delays (S = the stages after a layer's stage), nothing moved off its stage;
4. ``+ weight-gradient offloading`` - rung 3 with LayerPipe's offloading search;
5. ``+ the method's delays`` - rung 4's placement with the method's own delays (LayerPipe: every
   layer its own retimed stage, S(l) = L - l);
6. the method as it runs (its own offloading search under its own delays).

The factor of a rung is the previous rung's cycles per minibatch over its own, so the factors
multiply to the method's speedup over PipeDream exactly. Methods outside the LayerPipe family
have two rungs (PipeDream, the method).

Beyond the ladder (``optimal=True``): the optimal schedule of the method's own task graph and
delays (docs/design.md section 14), and the factor the method's planner leaves to it.

>>> from models.network.zoo import get_network
>>> from simulator.platform import PlatformSpec
>>> ladder = explain(get_network("mlp"), "layerpipe", PlatformSpec(4).build(), minibatches=32, batch=32)
>>> [r.name for r in ladder.rungs][2:4]
['split tasks', '+ weight-gradient offloading']
>>> import math
>>> math.isclose(math.prod(r.factor for r in ladder.rungs), ladder.speedup, rel_tol=1e-12)
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.errors import LayerPipeError
from models.network.spec import NetworkSpec
from schedules.methods.layerpipe import plan_fine_tasks
from schedules.methods.pipedream import pipedream_on
from schedules.passes import Placement
from schedules.registry import OPTIONS, method
from schedules.schedule import Schedule
from simulator.engine import SimResult
from simulator.hardware import Hardware
from simulator.metrics import processor_memory
from simulator.runs import auto_minibatches, converge
from simulator.selection import Trial, choose
from simulator.studies.optimal_gap import solve_beyond

#: the methods whose ladder has every rung
LAYERPIPE_FAMILY = ("layerpipe", "layerpipe2", "spikepipe")


@dataclass
class Rung:
    """One rung: its schedule, simulated, and its factor over the rung below."""

    name: str
    schedule: Schedule
    result: SimResult
    factor: float = 1.0

    @property
    def cycles_per_minibatch(self) -> float:
        return float(self.result.stats.cycles_per_step)

    @property
    def peak_memory(self) -> int:
        return max((m.total for m in processor_memory(self.result)), default=0)

    @property
    def bytes_per_minibatch(self) -> float:
        return self.result.stats.bytes_moved / max(1, self.schedule.steps)

    def to_dict(self) -> dict:
        return {"rung": self.name, "cycles_per_minibatch": self.cycles_per_minibatch, "factor": self.factor,
                "peak_memory_bytes": self.peak_memory, "comm_bytes_per_minibatch": self.bytes_per_minibatch,
                "stages": [list(s) for s in self.schedule.info.get("stages", [])],
                "delays": self.schedule.layer_delays(), "offloaded": self.schedule.info.get("offloaded", [])}


@dataclass
class Beyond:
    """The optimal modulo schedule of the method's graph and delays, as the engine runs it."""

    cycles_per_minibatch: float
    interval: int
    proven_bound: int
    status: str
    planner_factor: float  # the method's cycles per minibatch over these
    note: str = ""  # what the solver says of how it got there (a relaxed bound, a model too large)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Ladder:
    network: str
    method: str
    platform: str
    rungs: list[Rung]
    optimal: Beyond | None = None

    @property
    def speedup(self) -> float:
        """The method's speedup over PipeDream: the first rung's cycles over the last's."""
        return self.rungs[0].cycles_per_minibatch / self.rungs[-1].cycles_per_minibatch

    def to_dict(self) -> dict:
        return {"network": self.network, "method": self.method, "platform": self.platform, "speedup": self.speedup,
                "rungs": [r.to_dict() for r in self.rungs],
                "optimal": self.optimal.to_dict() if self.optimal is not None else None}


def _chosen(name: str, network: NetworkSpec, platform, **kwargs) -> Trial:
    choice = choose(name, network, platform, **kwargs)
    if choice.chosen is None:
        raise LayerPipeError(choice.why_not() + ": give the processors more memory (--memory-capacity) or add processors")
    return choice.chosen


def explain(network: NetworkSpec, name: str, platform, *, minibatches: int, batch: int, optimal: bool = False,
            **options) -> Ladder:
    """The attribution ladder from PipeDream to method ``name`` and, with ``optimal``, what lies beyond
    it (module docstring)."""
    if not method(name).plans:
        raise LayerPipeError(f"{name} plans no pipeline stages: there is no ladder from PipeDream to it")
    run = dict(minibatches=minibatches, batch=batch)
    base = _chosen("pipedream", network, platform, **run, **options)
    top = _chosen(name, network, platform, **run, **options)
    rungs = [Rung("pipedream", base.schedule, base.result)]

    def rung(label: str, build: Callable[[int], Schedule]) -> Schedule:
        n = auto_minibatches(network) if minibatches is None else minibatches
        sched, result = converge(build, platform, n, record_versions=True, shortest=minibatches is None)
        rungs.append(Rung(label, sched, result))
        return sched

    if name in LAYERPIPE_FAMILY:
        plan = top.candidate.plan
        hw = Hardware.of(platform)
        opts = {k: v for k, v in options.items() if k in ("spike_bits", "ag_split") and v is not None}
        fine = dict(batch=batch, spike_bits=bool(opts.get("spike_bits")), ag_split=opts.get("ag_split", "design"))
        rung("pipedream on the method's plan",
             lambda n: pipedream_on(plan, network, minibatches=n, batch=batch, spike_bits=fine["spike_bits"]))
        # each rung plans once (offloading included) and is only ordered again as its run lengthens
        rung("split tasks", plan_fine_tasks(plan, network, hw, offload=False, **fine).schedule)
        offloaded = rung("+ weight-gradient offloading", plan_fine_tasks(plan, network, hw, offload=True, **fine).schedule)
        own = dict(top.schedule.rule.stale)
        # rung 4's placement; a replicated plan offloads nothing (its replicas take units round robin)
        where = Placement(offloaded)
        placement = None if offloaded.update_rounds else {t: where(t, 0) for t in offloaded.graph}
        rung("+ the method's delays", plan_fine_tasks(plan, network, hw, stale_of=lambda _plan: own,
                                                      placement=placement, offload=False, **fine).schedule)
    rungs.append(Rung(name, top.schedule, top.result))
    for below, above in zip(rungs, rungs[1:]):
        above.factor = below.cycles_per_minibatch / above.cycles_per_minibatch
    beyond = _beyond(top, network, platform, batch, options) if optimal else None
    return Ladder(network.name, name, platform.describe(), rungs, beyond)


def _beyond(top: Trial, network: NetworkSpec, platform, batch: int, options: dict) -> Beyond:
    """The optimal schedule of ``top``'s graph and delays, warm-started from it."""
    rate = top.cycles_per_minibatch
    solver = {k: OPTIONS[k].parse(options[k]) for k in ("time_limit", "unroll") if options.get(k) is not None}
    opt, res = solve_beyond(top.schedule, network, platform, batch=batch, rate=rate, **solver)
    cycles = min(float(res.stats.cycles_per_step), rate)  # never worse than the warm start
    return Beyond(cycles, opt.solution.interval, opt.solution.lower_bound, opt.solution.status, rate / cycles,
                  opt.solution.message)


__all__ = ["Rung", "Ladder", "Beyond", "explain", "LAYERPIPE_FAMILY"]
