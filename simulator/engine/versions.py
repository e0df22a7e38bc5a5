"""Which weight version every task really used: the engine's record of realised staleness.

The delay rule (``schedules.delays``) says the *oldest* weights a forward may use: it waits for
the update of round ``i // g_l - 1 - S(l)``. A processor that is behind may find later updates
already there and run with fresher weights, and a replicated stage's replicas see different
ones. With ``simulate(..., record_versions=True)`` the engine notes, for every unit and weight
layer:

* **forward**: the version the forward of that layer used, the number of the layer's update
  rounds whose weights were on the forward's processor when it started (finished there, or
  arrived from the replica that finished the round);
* **backward**: the same count when the task that propagates the error through the layer's
  weights (the one holding its AG1, ``W_l^T delta_l``) started. Weight stashing makes that
  backward use the forward's version anyway; a backward through the current weights uses this.
  A layer whose error is not propagated (the first) records the forward's version.

On a processor that holds no copy of the layer's weights the count is of the rounds finished
anywhere.

It also measures what weight stashing costs: a forward's version must be kept on its processor
until the last task of the unit that uses the layer's weights or its stashed activations (its
AG1, WG, AG2 or merged backward) has finished. ``kept[(l, p)]`` is the most distinct versions of
layer l that processor p held at once: those of its minibatches in flight and the current one.
For PipeDream's stage s of N that is N - s, the nominal S(l) + 1; a schedule that realises less
staleness than its delay rule allows keeps fewer.

The record is one integer per unit and layer for each of forward and backward, so it is meant
for runs of hundreds or thousands of units (the plan selection, the training replay), not for
the streaming million-unit runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RealisedVersions:
    """The engine's record (module docstring) of one run.

    ``forward[i][k]`` and ``backward[i][k]`` are unit ``i``'s versions of weight layer
    ``layers[k]``; ``groups[k]`` is that layer's update round g_l in units, ``staleness[k]`` its
    nominal S(l); ``units_per_step`` is m; ``window`` the steps ``[first, last)`` of the run's
    steady-state window (``(-1, 0)``: none); ``kept`` maps ``(layer, processor)`` to the most
    versions of the layer's weights the processor held at once.
    """

    layers: tuple[int, ...]
    groups: tuple[int, ...]
    staleness: tuple[int, ...]
    units_per_step: int
    forward: tuple[tuple[int, ...], ...]
    backward: tuple[tuple[int, ...], ...]
    window: tuple[int, int]
    kept: dict[tuple[int, int], int]

    @property
    def units(self) -> int:
        return len(self.forward)

    def versions_kept(self, layer: int) -> int:
        """The most versions of ``layer`` any processor held at once (1 if it has no forward)."""
        return max((n for (l, _), n in self.kept.items() if l == layer), default=1)


class VersionLog:
    """The recorder the engine state fills while it runs (see :class:`RealisedVersions`)."""

    def __init__(self, layers, units: int, weight_readers: dict[int, tuple[int, tuple[int, ...]]],
                 users: dict[int, int]):
        self.layers = tuple(layers)
        self.index = {l: k for k, l in enumerate(self.layers)}
        self.forward = [[-1] * len(self.layers) for _ in range(units)]
        self.backward = [[-1] * len(self.layers) for _ in range(units)]
        # processors that keep a copy of a layer's weights (they run its forwards)
        self.holders = {l: frozenset(procs) for l, (_, procs) in weight_readers.items()}
        self.held: dict[tuple[int, int], int] = {}
        self.done: dict[int, int] = {}
        # weight stashing: per layer, the tasks of a unit that use its weights or stash after the forward
        self.users = users
        self.open: dict[tuple[int, int], list] = {}  # (layer, unit) -> [processor, version, users left]
        self.in_flight: dict[tuple[int, int], dict[int, int]] = {}  # (layer, processor) -> version -> units
        self.kept: dict[tuple[int, int], int] = {}

    def finished(self, layer: int, round_: int) -> None:
        """The update of ``round_`` of ``layer`` finished (somewhere)."""
        if round_ + 1 > self.done.get(layer, 0):
            self.done[layer] = round_ + 1

    def arrived(self, layer: int, round_: int, p: int) -> None:
        """The weights of ``layer`` after ``round_`` are on processor ``p``."""
        key = (layer, p)
        if round_ + 1 > self.held.get(key, 0):
            self.held[key] = round_ + 1
            self._measure(key)

    def _measure(self, key: tuple[int, int]) -> None:
        versions = self.in_flight.get(key)
        n = len(versions) + (self.held.get(key, 0) not in versions) if versions else 1
        if n > self.kept.get(key, 0):
            self.kept[key] = n

    def version(self, layer: int, p: int) -> int:
        if p in self.holders.get(layer, ()):
            return self.held.get((layer, p), 0)
        return self.done.get(layer, 0)

    def started(self, reads: tuple[tuple[int, bool], ...], unit: int, p: int) -> None:
        """A task of ``unit`` that reads the weights ``reads`` (layer, is-backward) starts on ``p``."""
        for layer, backward in reads:
            k = self.index.get(layer)
            if k is None:
                continue
            v = self.version(layer, p)
            (self.backward if backward else self.forward)[unit][k] = v
            if not backward and self.users.get(layer):
                self.open[(layer, unit)] = [p, v, self.users[layer]]
                versions = self.in_flight.setdefault((layer, p), {})
                versions[v] = versions.get(v, 0) + 1
                self._measure((layer, p))

    def used(self, layers: tuple[int, ...], unit: int) -> None:
        """A task of ``unit`` that uses ``layers``' weights or stash after the forward finished."""
        for layer in layers:
            entry = self.open.get((layer, unit))
            if entry is None:
                continue
            entry[2] -= 1
            if entry[2] == 0:
                del self.open[(layer, unit)]
                versions = self.in_flight[(layer, entry[0])]
                versions[entry[1]] -= 1
                if not versions[entry[1]]:
                    del versions[entry[1]]

    def close(self, rule, units_per_step: int, window: tuple[int, int]) -> RealisedVersions:
        forward = tuple(tuple(row) for row in self.forward)
        # a layer whose error is never propagated through its weights: its forward's version
        backward = tuple(tuple(f if b < 0 else b for f, b in zip(fr, br)) for fr, br in zip(self.forward, self.backward))
        return RealisedVersions(
            layers=self.layers, groups=tuple(rule.group(l) for l in self.layers),
            staleness=tuple(rule.staleness(l) for l in self.layers), units_per_step=units_per_step,
            forward=forward, backward=backward, window=window, kept=dict(sorted(self.kept.items())))


__all__ = ["RealisedVersions", "VersionLog"]
