"""Which weight versions each minibatch of a training stream uses, layer by layer.

A :class:`StalenessPattern` is what the trainer (:mod:`models.training.trainer`) replays. For
minibatch ``t`` (the t-th to enter the pipeline) and weight layer ``l`` (0-based):

* its gradient joins update round ``r = t // R_l`` of the layer (``R_l`` = ``round_size[l]``
  minibatches per update: R for a stage replicated R ways, 1 otherwise); the round's gradients
  are averaged into one update, ``W^l_{r+1} = opt(W^l_r, mean g)``;
* its forward uses ``W^l_v`` with ``v = max(0, r - forward_lag)``, its backward ``W^l_u`` with
  ``u = max(0, r - backward_lag)``: the lags are how many of the layer's updates the version is
  behind the round the gradient goes into.

Lags are listed for the first ``len(forward_lag)`` minibatches; after that the last ``period``
entries repeat (the steady state of the schedule). The nominal pattern of per-layer delays
``d_l`` is one entry with forward lag ``d_l`` and backward lag 0, repeating: minibatch t's
forward uses ``W_{t-d}`` and its backward the current weights, as PipeDream's 1F1B does.
The patterns the engine measures come from ``simulator.staleness.replay_pattern``.

>>> p = StalenessPattern.from_delays([2, 0])
>>> p.lags(5), p.forward_version(5, 0), p.forward_version(1, 0)
(((2, 0), (0, 0)), 3, 0)
>>> q = StalenessPattern(nominal=(1,), round_size=(2,), forward_lag=((0,), (0,), (1,), (1,)),
...                      backward_lag=((0,), (0,), (0,), (0,)), period=2, source="replay")
>>> [q.forward_version(t, 0) for t in range(8)], q.round_of(7, 0)
([0, 0, 0, 0, 1, 1, 2, 2], 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.errors import TrainingError


@dataclass(frozen=True)
class StalenessPattern:
    """Per weight layer: the nominal staleness S(l), the update round in minibatches, and the
    forward and backward lags of every minibatch (module docstring)."""

    nominal: tuple[int, ...]
    round_size: tuple[int, ...]
    forward_lag: tuple[tuple[int, ...], ...]
    backward_lag: tuple[tuple[int, ...], ...]
    period: int
    source: str = "nominal"

    def __post_init__(self) -> None:
        for name in ("nominal", "round_size"):
            object.__setattr__(self, name, tuple(int(x) for x in getattr(self, name)))
        for name in ("forward_lag", "backward_lag"):
            object.__setattr__(self, name, tuple(tuple(int(x) for x in row) for row in getattr(self, name)))
        L, n = len(self.nominal), len(self.forward_lag)
        if len(self.round_size) != L or len(self.backward_lag) != n or n == 0:
            raise TrainingError("a staleness pattern needs one round size per layer and forward and backward lags "
                                "for the same minibatches")
        if any(len(row) != L for row in self.forward_lag + self.backward_lag):
            raise TrainingError(f"every minibatch of a staleness pattern needs a lag for each of the {L} layers")
        if any(r < 1 for r in self.round_size) or any(s < 0 for s in self.nominal):
            raise TrainingError("round sizes must be >= 1 minibatch and nominal staleness >= 0")
        if not 1 <= self.period <= n:
            raise TrainingError(f"the repeating period ({self.period}) must be between 1 and the {n} minibatches listed")
        start = n - self.period
        for l, r in enumerate(self.round_size):
            if self.period % r or start % r:
                raise TrainingError(f"the repeating part of the pattern must hold whole update rounds of layer {l + 1} "
                                    f"({r} minibatches)")
        for f_row, b_row in zip(self.forward_lag, self.backward_lag):
            if any(b < 0 or f < b for f, b in zip(f_row, b_row)):
                raise TrainingError("lags must satisfy 0 <= backward lag <= forward lag (a backward runs after its "
                                    "forward)")

    @classmethod
    def from_delays(cls, delays: Sequence[int]) -> "StalenessPattern":
        """The nominal pattern: forward ``d_l`` updates behind, backward through the current weights."""
        delays = tuple(int(d) for d in delays)
        return cls(delays, (1,) * len(delays), (delays,), ((0,) * len(delays),), 1, "nominal")

    @property
    def num_layers(self) -> int:
        return len(self.nominal)

    def _row(self, t: int) -> int:
        n = len(self.forward_lag)
        if t < n:
            return t
        start = n - self.period
        return start + (t - start) % self.period

    def lags(self, t: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(forward lags, backward lags)`` of minibatch ``t``, one per layer."""
        k = self._row(t)
        return self.forward_lag[k], self.backward_lag[k]

    def round_of(self, t: int, layer: int) -> int:
        return t // self.round_size[layer]

    def forward_version(self, t: int, layer: int) -> int:
        return max(0, self.round_of(t, layer) - self.lags(t)[0][layer])

    def backward_version(self, t: int, layer: int) -> int:
        return max(0, self.round_of(t, layer) - self.lags(t)[1][layer])

    def max_forward_lag(self, layer: int) -> int:
        """The largest forward lag of ``layer``: how many past versions a replay must keep."""
        return max(row[layer] for row in self.forward_lag)


__all__ = ["StalenessPattern"]
