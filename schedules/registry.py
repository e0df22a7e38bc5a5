"""Schedules by name: one entry point for the command line, sweeps and notebooks.

>>> from models.network.zoo import get_network
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> plat = Platform.homogeneous(2, MacArray(256))
>>> s = build_schedule("pipedream", get_network("mlp"), 2, platform=plat, minibatches=4, batch=8)
>>> s.processors, s.delays
(2, {1: 2, 2: 0, 3: 0})
"""

from __future__ import annotations

from models.errors import ScheduleError
from models.network.spec import NetworkSpec

from schedules.methods.gpipe import gpipe
from schedules.methods.layerpipe import layerpipe
from schedules.methods.layerpipe2 import layerpipe2
from schedules.methods.onefoneb import one_f_one_b
from schedules.methods.pipedream import pipedream
from schedules.schedule import Schedule
from models.graph.build import training_graph
from schedules.methods.sequential import sequential
from schedules.methods.spikepipe import spikepipe
from simulator.hardware import Hardware
from schedules.methods.zerobubble import zb_h1

#: every schedule name, baselines first
SCHEDULES = ("sequential", "pipedream", "gpipe", "1f1b", "zb-h1", "layerpipe", "layerpipe2", "spikepipe")
#: schedules whose unit is a micro-batch and whose step is a flush of several of them
SYNCHRONOUS = ("gpipe", "1f1b", "zb-h1")


def build_schedule(name: str, network: NetworkSpec, processors: int, *, platform, minibatches: int = 16,
                   batch: int = 32, word_bytes: int = 2, **options) -> Schedule:
    """Build schedule ``name`` for ``minibatches`` optimizer steps of ``batch`` samples.

    Options: ``microbatches`` (gpipe, 1f1b, zb-h1), ``replicate`` (pipedream, layerpipe, layerpipe2,
    spikepipe), ``offload`` (layerpipe, layerpipe2, spikepipe), ``groups`` and ``memory`` (layerpipe2),
    ``spike_bits`` (every schedule: count binary spike tensors as 1 bit per element, not 1 byte),
    ``ag_split`` (layerpipe, layerpipe2, spikepipe: "design", "balanced" or a fraction in [0, 1]).
    """
    if name not in SCHEDULES:
        raise ScheduleError(f"unknown schedule {name!r} (known: {', '.join(SCHEDULES)})")
    if not isinstance(processors, int) or isinstance(processors, bool) or processors < 1:
        raise ScheduleError(f"number of processors must be a positive integer, got {processors!r}")
    if processors > platform.size:
        raise ScheduleError(f"{processors} processors asked for, but the platform has {platform.size}")
    if not isinstance(minibatches, int) or minibatches < 1:
        raise ScheduleError(f"number of minibatches must be a positive integer, got {minibatches!r}")
    hw = Hardware(tuple(platform.processors[:processors]), platform.link, platform.route)
    known = {"microbatches", "replicate", "offload", "groups", "memory", "spike_bits", "ag_split"}
    unknown = set(options) - known
    if unknown:
        raise ScheduleError(f"unknown schedule option(s): {', '.join(sorted(unknown))}")
    opts = {k: v for k, v in options.items() if v is not None}
    bits = bool(opts.pop("spike_bits", False))
    common = dict(batch=batch, word_bytes=word_bytes, spike_bits=bits)
    if name == "sequential":
        return sequential(training_graph(network, batch, word_bytes=word_bytes, spike_bits=bits), minibatches)
    if name == "pipedream":
        return pipedream(network, processors, hw, units=minibatches, **common, **_only(opts, "replicate"))
    if name in SYNCHRONOUS:
        fn = {"gpipe": gpipe, "1f1b": one_f_one_b, "zb-h1": zb_h1}[name]
        return fn(network, processors, hw, steps=minibatches, **common, **_only(opts, "microbatches"))
    if name == "layerpipe":
        return layerpipe(network, processors, hw, units=minibatches, **common,
                         **_only(opts, "offload", "replicate", "ag_split"))
    if name == "spikepipe":
        return spikepipe(network, processors, hw, units=minibatches, **common,
                         **_only(opts, "offload", "replicate", "ag_split"))
    return layerpipe2(network, processors, hw, units=minibatches, **common,
                      **_only(opts, "offload", "groups", "memory", "replicate", "ag_split"))


def _only(opts: dict, *names: str) -> dict:
    return {k: v for k, v in opts.items() if k in names}


__all__ = ["SCHEDULES", "SYNCHRONOUS", "build_schedule"]
