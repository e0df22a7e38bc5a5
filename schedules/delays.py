"""The delay rule: which weight version a forward may use (docs/design.md, "Delay rule").

Layer ``l`` is updated once per *round* of ``g_l`` consecutive units (``g_l`` is the
number of micro-batches per optimizer step, or R for a stage replicated R ways whose
replicas apply one update per round of R minibatches). Unit ``i`` belongs to round
``i // g_l``; its forward of layer ``l`` may start only after every update of layer ``l``
from round ``i // g_l - 1 - S(l)`` has finished, where S(l) is the number of updates the
layer's gradients are stale (Delay(l) = 2 S(l) slots). S(l) = 0 with one unit per round
is synchronous training; PipeDream's stage s of N has S = N - 1 - s.

One :class:`DelayRule` object answers every question about that rule; the schedule
validator, the list scheduler, the engine and the bounds all ask it. Only the trace
checker (``simulator.checker``) states the rule again, on purpose, to check the engine.

>>> rule = DelayRule(stale={1: 2, 2: 0}, groups={2: 3})
>>> rule.awaited_round(1, 5), rule.awaited_round(2, 2), list(rule.round_units(2, 1, units=5))
(2, -1, [3, 4])
>>> rule.loop_units(1), rule.loop_units(2), rule.depth_units()
(3, 3, 3)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from models.errors import ScheduleError


@dataclass(frozen=True)
class DelayRule:
    """Per weight layer: the staleness S(l) in updates and the update round g_l in units.

    ``stale`` maps layers to S(l) (missing: 0); ``groups`` maps layers to g_l where it differs
    from ``default_group`` (the units per optimizer step).
    """

    stale: Mapping[int, int] = field(default_factory=dict)
    groups: Mapping[int, int] = field(default_factory=dict)
    default_group: int = 1

    def __post_init__(self) -> None:
        # read-only views for callers; plain dicts for the lookups, which run once per task instance
        object.__setattr__(self, "_s", {l: int(s) for l, s in self.stale.items() if s})
        object.__setattr__(self, "_g", {l: int(g) for l, g in self.groups.items()})
        object.__setattr__(self, "stale", MappingProxyType(dict(self.stale)))
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))
        if self.default_group < 1:
            raise ScheduleError(f"units per optimizer step must be >= 1, got {self.default_group}")
        for l, s in self.stale.items():
            if s < 0:
                raise ScheduleError(f"staleness of layer {l} must be >= 0 updates, got {s}")
        for l, g in self.groups.items():
            if g < 1:
                raise ScheduleError(f"update round of layer {l} must be >= 1 unit, got {g}")

    @classmethod
    def from_delays(cls, delays: Mapping[int, int], rounds: Mapping[int, int] | None = None,
                    units_per_step: int = 1) -> "DelayRule":
        """The rule of per-layer delays in slots (Delay(l) = 2 S(l))."""
        return cls({l: d // 2 for l, d in delays.items()}, rounds or {}, units_per_step)

    def staleness(self, layer: int) -> int:
        """S(l): how many updates stale layer ``layer``'s gradients are."""
        return self._s.get(layer, 0)

    def group(self, layer: int) -> int:
        """g_l: consecutive units whose gradients make one update of ``layer``."""
        return self._g.get(layer, self.default_group)

    def round_of(self, layer: int, unit: int) -> int:
        """The update round of ``layer`` that ``unit``'s gradient belongs to."""
        return unit // self._g.get(layer, self.default_group)

    def awaited_round(self, layer: int, unit: int) -> int:
        """The round of ``layer``'s updates that ``unit``'s forward must wait for (< 0: none)."""
        return unit // self._g.get(layer, self.default_group) - 1 - self._s.get(layer, 0)

    def round_units(self, layer: int, round_: int, units: int) -> range:
        """Units whose updates of ``layer`` make round ``round_``, clipped to a run of ``units``."""
        g = self._g.get(layer, self.default_group)
        return range(round_ * g, min((round_ + 1) * g, units))

    def loop_units(self, layer: int) -> int:
        """Units spanned by the layer's loop, forward -> update -> the forward that waits for it:
        g_l (1 + S(l)) (the delay of the loop-carried edge, in units)."""
        return self.group(layer) * (1 + self.staleness(layer))

    def depth_units(self, layers: Iterable[int] | None = None) -> int:
        """Units a schedule keeps in flight: max over layers of g_l (S(l) + 1)."""
        chosen = set(self.stale) | set(self.groups) if layers is None else set(layers)
        return max((self.loop_units(l) for l in chosen), default=self.default_group)


__all__ = ["DelayRule"]
