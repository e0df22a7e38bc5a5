"""Realised staleness: what the engine's record of weight versions says, per layer and per minibatch.

From a run simulated with ``record_versions=True`` (:mod:`simulator.engine.versions`):

* :func:`realised_staleness` summarises, per weight layer, the nominal S(l) and the realised
  lags over the steady-state window: how many of the layer's updates the version a forward
  (and a backward) used is behind the update round its gradient joins. The ``staleness`` field
  of every ``compare``/``simulate`` row.
* :func:`replay_pattern` turns the record into the :class:`models.training.StalenessPattern`
  the trainer replays: minibatch by minibatch over the simulated run, then periodically from
  its steady state.

Units and steps: a flush schedule runs m micro-batches per step; the trainer's minibatch is the
step, so its micro-batches must all have used the same versions (they do: the flush holds the
update back until the step ends). An update round of g_l units is g_l / m minibatches.

>>> from models.network.zoo import get_network
>>> from simulator.platform import PlatformSpec
>>> from simulator.runs import run_until_converged
>>> plat = PlatformSpec(3).build()
>>> _, result = run_until_converged("pipedream", get_network("mlp"), plat, minibatches=32, batch=32,
...                                 parallelism="pipeline", record_versions=True)
>>> [(s.layer, s.nominal, s.forward_min, s.forward_max) for s in realised_staleness(result.versions)]
[(1, 2, 2, 2), (2, 1, 1, 1), (3, 0, 0, 0)]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from models.errors import LayerPipeError
from models.training.staleness import StalenessPattern
from simulator.engine.versions import RealisedVersions


class ReplayError(LayerPipeError):
    """A run's weight versions cannot be replayed by the trainer (see the message)."""


@dataclass(frozen=True)
class LayerStaleness:
    """Nominal and realised staleness of one weight layer, in updates, over the steady state."""

    layer: int
    nominal: int
    round_minibatches: float
    forward_min: int
    forward_max: int
    forward_mean: float
    backward_min: int
    backward_max: int
    backward_mean: float

    def to_dict(self) -> dict:
        return asdict(self)


def step_lags(v: RealisedVersions) -> tuple[tuple[int, ...], list[tuple[int, ...]], list[tuple[int, ...]]]:
    """``(round size in minibatches per layer, forward lags, backward lags)``, one row per step."""
    m = v.units_per_step
    rounds = []
    for l, g in zip(v.layers, v.groups):
        if g % m:
            raise ReplayError(f"layer {l} updates every {g} units, not a whole number of {m}-unit steps")
        rounds.append(g // m)
    steps = v.units // m
    fwd, bwd = [], []
    for k in range(steps):
        units = range(k * m, (k + 1) * m)
        rows_f = {v.forward[i] for i in units}
        rows_b = {v.backward[i] for i in units}
        if len(rows_f) != 1 or len(rows_b) != 1:
            raise ReplayError(f"the micro-batches of step {k} used different weight versions; a step cannot be "
                              "replayed as one minibatch")
        (f,), (b,) = rows_f, rows_b
        if min(f) < 0:
            missing = v.layers[f.index(min(f))]
            raise ReplayError(f"no forward of layer {missing} was recorded for step {k}")
        fwd.append(tuple(k // r - x for r, x in zip(rounds, f)))
        bwd.append(tuple(k // r - x for r, x in zip(rounds, b)))
    return tuple(rounds), fwd, bwd


def _window(v: RealisedVersions, steps: int) -> range:
    first, last = v.window
    return range(first, last) if first >= 0 and last > first else range(steps)


def realised_staleness(v: RealisedVersions) -> list[LayerStaleness]:
    """Per weight layer: nominal S(l) and the realised forward/backward lags over the units of
    the steady-state window (``round_minibatches``: minibatches per update, g_l / m)."""
    m = v.units_per_step
    window = _window(v, v.units // m)
    units = range(window.start * m, min(window.stop * m, v.units))
    out = []
    for k, l in enumerate(v.layers):
        g = v.groups[k]
        f = [i // g - v.forward[i][k] for i in units]
        b = [i // g - v.backward[i][k] for i in units]
        rounds = g // m if g % m == 0 else g / m
        out.append(LayerStaleness(l, v.staleness[k], rounds, min(f), max(f), sum(f) / len(f), min(b), max(b),
                                  sum(b) / len(b)))
    return out


def replay_pattern(v: RealisedVersions) -> StalenessPattern:
    """The pattern the trainer replays: the run's lags step by step up to the end of one period of
    its steady state, then that period repeating.

    The period is the shortest whole number of update rounds (of every layer) over which the lags
    of the steady-state window repeat; it must repeat at least twice inside the window, or the run
    is too short to say (:class:`ReplayError`: simulate more minibatches).
    """
    rounds, fwd, bwd = step_lags(v)
    base = math.lcm(*rounds)
    window = _window(v, len(fwd))
    start = -(-window.start // base) * base  # the first whole round of every layer in the window
    end = window.stop
    rows = list(zip(fwd, bwd))
    for q in range(base, (end - start) // 2 + 1, base):
        if all(rows[t] == rows[t + q] for t in range(start, end - q)):
            n = start + q
            return StalenessPattern(nominal=v.staleness, round_size=rounds, forward_lag=fwd[:n], backward_lag=bwd[:n],
                                    period=q, source="replay")
    raise ReplayError(f"the weight versions of the steady state (steps {window.start}-{end - 1}) do not repeat within "
                      "the run; simulate more minibatches")


#: how far :func:`schedule_staleness` lengthens a run to see its steady state repeat
MAX_REPLAY_LENGTHENING = 16


def schedule_staleness(name: str, network, platform, *, batch: int, minibatches: int | None = None, **options):
    """Method ``name`` on ``platform`` as ``compare`` runs it (the same plan, chosen by
    :func:`simulator.selection.choose`), with the pattern of weight versions it realises.

    Returns ``(trial, pattern)``; the run is lengthened (doubling, up to
    :data:`MAX_REPLAY_LENGTHENING` times) until its steady state repeats within it. Raises
    :class:`ReplayError` if it never does and :class:`simulator.evaluate.NothingFitsError`
    when no plan fits the platform's memory.
    """
    from simulator.evaluate import NothingFitsError
    from simulator.runs import auto_minibatches
    from simulator.selection import choose

    start = minibatches or auto_minibatches(network)
    n = minibatches  # None: the run compare makes (as short as the exact steady state allows)
    while True:
        choice = choose(name, network, platform, minibatches=n, batch=batch, **options)
        if choice.chosen is None:
            raise NothingFitsError(choice.why_not())
        try:
            return choice.chosen, replay_pattern(choice.chosen.result.versions)
        except ReplayError:
            ran = choice.chosen.schedule.steps
            if ran >= MAX_REPLAY_LENGTHENING * start:
                raise
            n = 2 * ran


__all__ = ["ReplayError", "LayerStaleness", "step_lags", "realised_staleness", "replay_pattern", "schedule_staleness",
           "MAX_REPLAY_LENGTHENING"]
