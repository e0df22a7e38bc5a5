"""ZB-H1 (Qi et al., ICLR 2024): 1F1B whose stage s defers s weight-gradient tasks.

Same forwards, backwards and memory as 1F1B; the deferred W fill the cool-down bubbles,
cutting the bubble from (p-1)(F+B+W) to (p-1)(F+B-W) under uniform costs.
"""

from __future__ import annotations

from models.network.spec import NetworkSpec
from schedules.methods.gpipe import synchronous
from schedules.planning.partition import StagePlan
from schedules.schedule import Schedule
from simulator.hardware import Hardware


def zb_h1(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, word_bytes: int = 2,
          spike_bits: bool = False, microbatches: int | None = None, parallelism: str = "hybrid",
          replicate: bool | None = None, plan: StagePlan | None = None) -> Schedule:
    return synchronous("zb-h1", net, hw, batch=batch, steps=minibatches, microbatches=microbatches,
                       view="zerobubble", pattern="1f1b", split_w=True, defer_w=True, word_bytes=word_bytes,
                       spike_bits=spike_bits, parallelism=parallelism, replicate=replicate, plan=plan)


__all__ = ["zb_h1"]
