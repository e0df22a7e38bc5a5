"""1F1B with a flush (the synchronous form the zero-bubble paper compares against).

The backward is split into B (input gradient) and W (weight gradient) as in Qi et al.
(2024), with W run right after its B; stage s admits p - 1 - s warm-up forwards.
"""

from __future__ import annotations

from models.network.spec import NetworkSpec
from schedules.methods.gpipe import synchronous
from schedules.planning.partition import StagePlan
from schedules.schedule import Schedule
from simulator.hardware import Hardware


def one_f_one_b(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, word_bytes: int = 2,
                spike_bits: bool = False, microbatches: int | None = None, parallelism: str = "hybrid",
          replicate: bool | None = None, plan: StagePlan | None = None) -> Schedule:
    return synchronous("1f1b", net, hw, batch=batch, steps=minibatches, microbatches=microbatches,
                       view="zerobubble", pattern="1f1b", split_w=True, word_bytes=word_bytes,
                       spike_bits=spike_bits, parallelism=parallelism, replicate=replicate, plan=plan)


__all__ = ["one_f_one_b"]
