"""Time to accuracy: every schedule trained with the staleness its own simulated run realises.

One schedule drives both halves of the answer. For each schedule, :func:`time_to_accuracy`

1. runs it on the platform as ``compare`` does (the same plan, :func:`simulator.selection.choose`),
   recording which weight version every task used, and turns that into the pattern the trainer
   replays (:func:`simulator.staleness.schedule_staleness`): per minibatch and layer, the forward's
   and the backward's version, and the update rounds of replicated stages (R minibatches, one
   update with their mean gradient);
2. trains the same network (the digits-sized instance that was simulated) with that pattern and
   the compensation its method implies (weight stashing, or LayerPipe2's EMA reconstruction;
   ``NAME:MODE`` overrides it), for every seed, measuring test accuracy every ``eval_every``
   minibatches;
3. reports steps to the target accuracy (the first measurement at or above it), cycles per
   minibatch from the simulation, cycles to the target (their product), final accuracy and peak
   memory. A seed that never reaches the target within the budget counts as not reached; the
   schedule's steps and cycles are given only when every seed reached it.

Schedules whose patterns and compensation coincide (the synchronous flush schedules: every lag
0, one update per minibatch) train the same numbers; each distinct pattern is trained once.

>>> from models.training.data import load_dataset
>>> from models.training.optim import OptimizerConfig
>>> from simulator.commands.train import resolve_network
>>> from simulator.platform import PlatformSpec
>>> data = load_dataset("digits")
>>> rows = time_to_accuracy(resolve_network("mlp", data), ["pipedream", "gpipe"], PlatformSpec(2).build(), data,
...                         target=0.8, seeds=1, epochs=2, eval_every=15,
...                         optimizer=OptimizerConfig("sgd", lr=0.01, momentum=0.9), parallelism="pipeline")
>>> [(r.schedule, r.reached, r.steps_to_target is not None) for r in rows]
[('pipedream', 1, True), ('gpipe', 1, True)]
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.errors import LayerPipeError
from models.network.spec import NetworkSpec
from models.network.spiking import is_spiking
from models.training.data import Dataset
from models.training.optim import OptimizerConfig
from models.training.snn import train_snn
from models.training.trainer import COMPENSATIONS, TrainConfig, TrainResult, train
from schedules.registry import method, training_compensation
from simulator.staleness import LayerStaleness, realised_staleness, schedule_staleness


class TargetNotReachedError(LayerPipeError):
    """No schedule reached the target accuracy within the step budget (or every run diverged)."""


@dataclass(frozen=True)
class Entry:
    """A schedule to train: ``NAME`` or ``NAME:MODE`` (MODE a compensation mode overriding the method's)."""

    name: str
    compensation: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Entry":
        """``"layerpipe2:stash"`` -> ``Entry("layerpipe2", "stash")``.

        >>> Entry.parse("layerpipe2:stash"), Entry.parse("pipedream").label
        (Entry(name='layerpipe2', compensation='stash'), 'pipedream')
        """
        name, _, mode = text.strip().partition(":")
        method(name)
        if mode and mode not in COMPENSATIONS:
            raise LayerPipeError(f"unknown compensation {mode!r} in {text!r} (known: {', '.join(COMPENSATIONS)})")
        return cls(name, mode or None)

    @property
    def label(self) -> str:
        return self.name if self.compensation is None else f"{self.name}:{self.compensation}"

    def options(self) -> dict:
        # LayerPipe2's memory model follows the compensation it trains with (EMA keeps 2 copies)
        if self.name == "layerpipe2" and self.compensation in ("ema", "stash"):
            return {"memory": self.compensation}
        return {}


@dataclass
class SeedRun:
    """One training run: the accuracy measured every ``eval_every`` minibatches and when it first
    reached the target (None: never, within the budget)."""

    seed: int
    steps_to_target: int | None
    final_accuracy: float
    diverged: bool
    curve: list[tuple[int, float]]


@dataclass
class TimeToAccuracy:
    """One schedule's row (module docstring)."""

    schedule: str
    method: str
    compensation: str
    target: float
    budget_steps: int
    cycles_per_minibatch: float
    peak_memory_bytes: int
    plan: list | None
    staleness: list[LayerStaleness]
    round_size: list[int]
    runs: list[SeedRun] = field(default_factory=list)

    @property
    def reached(self) -> int:
        """Seeds that reached the target."""
        return sum(r.steps_to_target is not None for r in self.runs)

    @property
    def diverged(self) -> int:
        return sum(r.diverged for r in self.runs)

    @property
    def steps_to_target(self) -> float | None:
        """Mean steps to the target over the seeds, when every seed reached it."""
        if not self.runs or self.reached < len(self.runs):
            return None
        return statistics.fmean(r.steps_to_target for r in self.runs)

    @property
    def steps_std(self) -> float | None:
        if self.steps_to_target is None:
            return None
        return statistics.pstdev(r.steps_to_target for r in self.runs)

    @property
    def cycles_to_target(self) -> float | None:
        steps = self.steps_to_target
        return None if steps is None else steps * self.cycles_per_minibatch

    @property
    def final_accuracy(self) -> float:
        return statistics.fmean(r.final_accuracy for r in self.runs)

    @property
    def final_std(self) -> float:
        return statistics.pstdev(r.final_accuracy for r in self.runs)

    def to_dict(self) -> dict:
        return {
            "schedule": self.schedule, "method": self.method, "compensation": self.compensation,
            "target": self.target, "budget_steps": self.budget_steps, "seeds": len(self.runs),
            "reached": self.reached, "diverged": self.diverged, "steps_to_target": self.steps_to_target,
            "steps_to_target_std": self.steps_std, "cycles_per_minibatch": self.cycles_per_minibatch,
            "cycles_to_target": self.cycles_to_target, "final_accuracy": self.final_accuracy,
            "final_accuracy_std": self.final_std, "peak_memory_bytes": self.peak_memory_bytes, "plan": self.plan,
            "round_size": self.round_size, "staleness": [s.to_dict() for s in self.staleness],
            "runs": [{"seed": r.seed, "steps_to_target": r.steps_to_target, "final_accuracy": r.final_accuracy,
                      "diverged": r.diverged, "curve": [list(p) for p in r.curve]} for r in self.runs],
        }


def _seed_run(result: TrainResult, target: float, seed: int) -> SeedRun:
    curve = [(int(p["step"]), float(p["test_accuracy"])) for p in result.eval_curve]
    reached = next((step for step, acc in curve if acc >= target), None)
    return SeedRun(seed, reached, float(result.test_accuracy), result.diverged, curve)


def time_to_accuracy(network: NetworkSpec, schedules: Sequence[str | Entry], platform, data: Dataset, *,
                     target: float, seeds: int = 3, epochs: int = 20, eval_every: int = 5,
                     optimizer: OptimizerConfig | None = None, batch: int = 32, minibatches: int | None = None,
                     round_lr: str = "same", **options) -> list[TimeToAccuracy]:
    """Train every schedule with its own realised staleness and report time to ``target`` accuracy
    (module docstring). ``options`` are schedule options (``parallelism``, ...); ``round_lr`` is
    the learning rate of a replicated stage's update round (:data:`models.training.trainer.ROUND_LR`)."""
    if not 0 < target <= 1:
        raise LayerPipeError(f"the target accuracy must be in (0, 1], got {target!r}")
    if seeds < 1 or epochs < 1 or eval_every < 1:
        raise LayerPipeError("seeds, epochs and eval_every must be positive")
    optimizer = optimizer or OptimizerConfig("sgd", lr=0.01, momentum=0.9)
    spiking = any(is_spiking(n.layer) for n in network.nodes)
    trainer = train_snn if spiking else train
    per_epoch = -(-len(data.y_train) // batch)
    cache: dict[tuple, list[SeedRun]] = {}
    rows = []
    for item in schedules:
        entry = item if isinstance(item, Entry) else Entry.parse(item)
        run_options = {**options, **entry.options()}
        trial, pattern = schedule_staleness(entry.name, network, platform, batch=batch, minibatches=minibatches,
                                            **run_options)
        mode = entry.compensation or training_compensation(entry.name, run_options)
        rounds = round_lr if any(r > 1 for r in pattern.round_size) else "same"  # no round, no difference
        key = (pattern.round_size, pattern.forward_lag, pattern.backward_lag, pattern.period, mode, rounds)
        if key not in cache:
            runs = []
            for seed in range(seeds):
                config = TrainConfig(compensation=mode, staleness=pattern, optimizer=optimizer, batch_size=batch,
                                     epochs=epochs, seed=seed, eval_every=eval_every, round_lr=rounds)
                runs.append(_seed_run(trainer(network, data, config), target, seed))
            cache[key] = runs
        plan = [list(s) for s in trial.candidate.plan.stages] if trial.candidate is not None else None
        rows.append(TimeToAccuracy(
            schedule=entry.label, method=entry.name, compensation=mode, target=target, budget_steps=epochs * per_epoch,
            cycles_per_minibatch=trial.cycles_per_minibatch, peak_memory_bytes=trial.peak_memory, plan=plan,
            staleness=realised_staleness(trial.result.versions), round_size=list(pattern.round_size),
            runs=cache[key]))
    return rows


def check_reached(rows: Sequence[TimeToAccuracy]) -> None:
    """Raise :class:`TargetNotReachedError` when no schedule reached the target on any seed."""
    if not rows or any(r.reached for r in rows):
        return
    if all(r.diverged == len(r.runs) for r in rows):
        raise TargetNotReachedError("training diverged for every schedule and seed; try a smaller --lr")
    best = max(rows, key=lambda r: max((acc for run in r.runs for _, acc in run.curve), default=0.0))
    top = max((acc for run in best.runs for _, acc in run.curve), default=0.0)
    raise TargetNotReachedError(f"no schedule reached {rows[0].target:.1%} test accuracy within {rows[0].budget_steps} "
                                f"minibatches (best: {top:.1%} by {best.schedule}); lower --target or raise --epochs")


__all__ = ["Entry", "SeedRun", "TimeToAccuracy", "TargetNotReachedError", "time_to_accuracy", "check_reached"]
