"""A projection of the DHO2 study to models and device counts NumPy cannot train here.

This is a **projection**, not a measurement. Time to target is steps x cycles per step
(:mod:`simulator.studies.dho2`); the projection keeps the two factors' sources apart:

* **cycles per step** are measured: the engine runs every design's task graphs for the named
  network (a ResNet, say) on P devices, exactly as the study does for its workloads;
* **steps** are borrowed: each optimizer's median steps to the target *on a workload of the study*
  (:class:`MeasuredSteps`, from ``docs/results/dho2_steps.json``), and for DHO2 FOSI's steps with
  eigenvectors as stale as the split's refresh makes them, read off the study's staleness sweep at
  the measured staleness at or above it (never below, so the rounding can only make DHO2 look
  slower; a staleness beyond the sweep has no projection).

So a row says: *if the network needed the steps (and the step ratios between optimizers) that this
workload needed, with the same refresh period T in steps*, this is how long each design would take.
Whether a ResNet's ratios look like an autoencoder's on digits is the assumption the projection
cannot check; what it shows without that assumption is the per-step price of each design
(:attr:`ProjectedDesign.cycles_per_step`): DHO2 beats the best first-order design only where its
optimizer cuts the steps by more than ``dho2 cycles / first-order cycles``.

>>> from models.network.zoo import mlp
>>> from simulator.costs import MacArray, LinkModel
>>> from simulator.platform import Platform
>>> from simulator.studies.dho2 import DesignConfig
>>> steps = MeasuredSteps("toy", {"sgd": 200, "adam": 150, "kfac": 100, "fosi": 80, "fosi-release": 90},
...                       ((0, 80.0), (64, 120.0), (256, 190.0)))
>>> steps.fosi_at(10), steps.fosi_at(64), steps.fosi_at(300)
(120.0, 120.0, None)
>>> plat = Platform.homogeneous(4, MacArray(256), LinkModel(100, 16))
>>> rows = project(design_costs(mlp(), 4, plat, DesignConfig(batch=128, refresh=90)), steps)
>>> [r.design for r in rows][:3], rows[0].time_to_target == 200 * rows[0].cycles_per_step
(['dp-sgd', 'dp-adam', 'dp-kfac'], True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.errors import LayerPipeError
from models.network.spec import NetworkSpec
from simulator.studies.dho2 import (
    DESIGNS,
    FIRST_ORDER,
    METHOD_OF,
    SECOND_ORDER,
    DesignConfig,
    DesignCost,
    design_cost,
    dho2_candidates,
)


@dataclass(frozen=True)
class MeasuredSteps:
    """Steps to the target of each optimizer on one workload of the study (inf: never reached),
    and FOSI's steps as a function of the eigenvectors' staleness (sorted ``(staleness, steps)``)."""

    workload: str
    steps: Mapping[str, float]
    fosi_by_staleness: tuple[tuple[int, float], ...]
    params: int = 0
    refresh: int = 0  # the workload's T in steps (0: not stated)

    def __post_init__(self) -> None:
        missing = sorted(set(METHOD_OF.values()) - set(self.steps))
        if missing:
            raise LayerPipeError(f"workload {self.workload!r} has no steps for {', '.join(missing)}")
        points = [s for s, _ in self.fosi_by_staleness]
        if not points or points != sorted(set(points)) or points[0] != 0:
            raise LayerPipeError(f"workload {self.workload!r}: the staleness sweep must start at 0 and increase, "
                                 f"got {points}")
        for value in [*self.steps.values(), *(v for _, v in self.fosi_by_staleness)]:
            if not (value == math.inf or (math.isfinite(value) and value > 0)):
                raise LayerPipeError(f"workload {self.workload!r}: steps must be positive (or never), got {value!r}")

    def fosi_at(self, staleness: int) -> float | None:
        """FOSI's steps with eigenvectors ``staleness`` steps old: the sweep's point at or above it
        (None beyond the sweep: nothing measured says how FOSI fares there)."""
        for s, steps in self.fosi_by_staleness:
            if s >= staleness:
                return steps
        return None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> list[MeasuredSteps]:
        """The workloads of ``docs/results/dho2_steps.json`` (``null`` steps: never reached)."""
        def steps(v):
            return math.inf if v is None else float(v)

        try:
            return [cls(w["network"], {"sgd": steps(w["sgd_steps"]), "adam": steps(w["adam_steps"]),
                                       "kfac": steps(w["kfac_steps"]), "fosi": steps(w["fosi_steps"]),
                                       "fosi-release": steps(w["release_steps"])},
                        tuple((int(p["staleness"]), steps(p["steps"])) for p in w["fosi_by_staleness"]),
                        int(w.get("params", 0)), int(w.get("refresh_steps", 0)))
                    for w in doc["workloads"]]
        except (KeyError, TypeError, ValueError) as e:
            raise LayerPipeError(f"the measured steps are malformed: {type(e).__name__}: {e}") from None


@dataclass
class ProjectedDesign:
    """One design of the projection: measured cycles per step x borrowed steps."""

    design: str
    devices: int
    cost: DesignCost
    steps: float | None  # None: DHO2's staleness is beyond the sweep
    #: other splits DHO2 was priced at (curvature devices, staleness, cycles per step, projected time)
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cycles_per_step(self) -> float:
        return self.cost.cycles_per_step

    @property
    def time_to_target(self) -> float | None:
        return None if self.steps is None else self.steps * self.cost.cycles_per_step


def design_costs(net: NetworkSpec, devices: int, platform, cfg: DesignConfig, designs: Sequence[str] = DESIGNS,
                 max_staleness: int | None = None) -> dict[str, Any]:
    """Every design's engine costs for ``net`` on ``devices`` devices (``"dho2"``: the list of its
    splits, those at most ``max_staleness`` stale): computed once, combined with every workload."""
    return {d: (dho2_candidates(net, devices, platform, cfg, max_staleness=max_staleness) if d == "dho2"
                else design_cost(d, net, devices, platform, cfg)) for d in designs}


def _dho2(costs: Sequence[DesignCost], measured: MeasuredSteps) -> ProjectedDesign:
    priced = []
    for c in costs:
        steps = measured.fosi_at(c.staleness) if c.devices >= 2 else measured.steps["fosi"]
        priced.append((None if steps is None else steps * c.cycles_per_step, c, steps))
    known = [t for t in priced if t[0] is not None]
    # the fastest split whose staleness the sweep covers; if none, the least stale (no projection)
    best = (min(known, key=lambda t: (t[0], t[1].curvature_devices)) if known
            else min(priced, key=lambda t: (t[1].staleness, t[1].curvature_devices)))
    cands = [{"curvature_devices": c.curvature_devices, "staleness": c.staleness, "cycles_per_step": c.cycles_per_step,
              "steps": s, "time_to_target": t} for t, c, s in priced]
    return ProjectedDesign("dho2", best[1].devices, best[1], best[2], cands)


def project(costs: Mapping[str, Any], measured: MeasuredSteps) -> list[ProjectedDesign]:
    """Each design of ``costs`` (from :func:`design_costs`): its cycles per step x ``measured``'s steps
    for its optimizer (DHO2: the fastest split, FOSI's steps at its staleness)."""
    return [_dho2(c, measured) if design == "dho2" else ProjectedDesign(design, c.devices, c, measured.steps[METHOD_OF[design]])
            for design, c in costs.items()]


def speedups(rows: Sequence[ProjectedDesign], design: str = "dho2",
             fewer: Sequence[ProjectedDesign] = ()) -> dict[str, float | None]:
    """``design``'s projected speedup over the best first-order and the best second-order design
    (None where a time is not projected or never ends), and its per-step price over the best
    first-order design's (the step cut its optimizer must beat).

    ``fewer``: the baselines projected on fewer devices. DHO2 may leave most devices to the curvature
    (one update device: no all-reduce at all), so a baseline gets the same freedom - the best of it on
    at most P devices - as the study's ``<= P`` columns.
    """
    by = {r.design: r for r in rows}
    me = by[design]
    pool = [*rows, *fewer]

    def best(names):
        times = [r.time_to_target for r in pool if r.design in names and r.time_to_target is not None]
        return min(times, default=None)

    def ratio(a, b):
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
            return None
        return a / b

    first_cycles = min(r.cycles_per_step for r in pool if r.design in FIRST_ORDER)
    return {"vs_first_order": ratio(best(FIRST_ORDER), me.time_to_target),
            "vs_second_order": ratio(best(SECOND_ORDER), me.time_to_target),
            "step_price": me.cycles_per_step / first_cycles}


__all__ = ["MeasuredSteps", "ProjectedDesign", "design_costs", "project", "speedups"]
