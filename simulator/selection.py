"""Every method chooses its stage plan the same way: by simulation, within the memory it has.

This is the fair-comparison contract of docs/design.md section 11. For a method that plans
pipeline stages, :func:`choose` builds its schedule on every candidate plan of
``schedules.planning.candidates`` (the same candidate set for every method: PipeDream's DP
over both task groupings, straight and, in the ``hybrid`` mode, replicated), simulates each
until its steady state has converged (``simulator.evaluate.run_until_converged``), and keeps
the fastest plan whose peak memory fits the platform's ``memory_capacity`` on every
processor. The figure reported is the measured one of the chosen trial, so a method's row is
never slower than any of its own variants (a straight or a replicated pipeline, either
grouping) measured the same way. Ties go to the earlier candidate (PipeDream's own choice
first).

Memory is the metrics' model (``simulator.metrics.processor_memory``): weights x the versions
the run really held (weight stashing keeps each in-flight minibatch's version; EMA keeps two),
the engine's peak of stashed activations, optimizer state and gradient buffers. So replication
multiplies weight copies and realised staleness multiplies versions.

>>> from models.network.zoo import get_network
>>> from simulator.platform import PlatformSpec
>>> c = choose("pipedream", get_network("mlp"), PlatformSpec(4).build(), minibatches=32, batch=32)
>>> [t.candidate.plan.stages for t in c.trials] == [t.plan.stages for t in c.candidates]
True
>>> c.chosen.cycles_per_minibatch == min(t.cycles_per_minibatch for t in c.trials)
True
"""

from __future__ import annotations

from dataclasses import dataclass

from models.network.spec import NetworkSpec
from schedules.planning.candidates import Candidate
from schedules.registry import plan_candidates
from schedules.schedule import Schedule
from simulator.engine import SimResult
from simulator.limits import human_bytes
from simulator.metrics import ProcessorMemory, processor_memory
from simulator.runs import run_until_converged


@dataclass
class Trial:
    """A method's schedule on one candidate plan (None for a method that plans no stages), simulated."""

    candidate: Candidate | None
    schedule: Schedule
    result: SimResult
    memory: list[ProcessorMemory]

    @property
    def cycles_per_minibatch(self) -> float:
        return float(self.result.stats.cycles_per_step)

    @property
    def peak_memory(self) -> int:
        return max((m.total for m in self.memory), default=0)

    def fits(self, capacity: int | None) -> bool:
        return capacity is None or self.peak_memory <= capacity

    def describe(self, capacity: int | None) -> dict:
        plan = self.candidate.describe() if self.candidate is not None else {}
        return {**plan, "cycles_per_minibatch": self.cycles_per_minibatch, "converged": self.result.stats.converged,
                "peak_memory_bytes": self.peak_memory, "fits": self.fits(capacity)}


@dataclass
class Choice:
    """The trials of one method and the one it runs (None when no plan fits in memory)."""

    name: str
    trials: list[Trial]
    chosen: Trial | None
    capacity: int | None

    @property
    def candidates(self) -> list[Candidate]:
        return [t.candidate for t in self.trials if t.candidate is not None]

    @property
    def memory_needed(self) -> int:
        """The least peak memory per processor any of the method's plans needs."""
        return min(t.peak_memory for t in self.trials)

    def why_not(self) -> str:
        return (f"{self.name} does not fit: its leanest plan needs {human_bytes(self.memory_needed)} on its "
                f"fullest processor, the platform has {human_bytes(self.capacity)} per processor")


def choose(name: str, network: NetworkSpec, platform, *, minibatches: int | None, batch: int, **options) -> Choice:
    """Simulate method ``name`` on every candidate plan and choose (module docstring). Every trial
    records the weight versions its tasks used (``SimResult.versions``): they decide how many
    versions weight stashing keeps, and so the memory. ``minibatches`` None: each run as short
    as its exact steady state allows (:func:`simulator.runs.run_until_converged`)."""
    capacity = getattr(platform, "memory_capacity", None)
    candidates: list[Candidate | None] = list(plan_candidates(name, network, platform, batch=batch, **options)) or [None]
    trials = []
    for cand in candidates:
        plan = {"plan": cand.plan} if cand is not None else {}
        sched, result = run_until_converged(name, network, platform, minibatches=minibatches, batch=batch,
                                            record_versions=True, **options, **plan)
        trials.append(Trial(cand, sched, result, processor_memory(result)))
    fitting = [t for t in trials if t.fits(capacity)]
    chosen = min(fitting, key=lambda t: t.cycles_per_minibatch) if fitting else None
    return Choice(name, trials, chosen, capacity)


__all__ = ["Trial", "Choice", "choose"]
