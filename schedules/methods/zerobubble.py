"""The zero-bubble hand schedules (Qi et al., ICLR 2024): 1F1B with the backward split into
B (input gradient) and W (weight gradient), and W moved to fill bubbles.

* ZB-H1: same warm-up as 1F1B; on stage s each W trails its B by s micro-batches, so the
  deferred W fill the cool-down: bubble (p-1)(F+B-W) under uniform costs, 1F1B's memory
  (p micro-batches in flight on the first stage).
* ZB-H2: 2 (p-1-s) warm-up forwards on stage s and W trailing B by 2s: bubble (p-1)(F+B-2W)
  (zero when F + B = 2W), for 2p - 1 micro-batches in flight on the first stage.

Both orders are the authors' ``get_hand_schedule`` (``schedules.planning.orders``).
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


def zb_h2(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, word_bytes: int = 2,
          spike_bits: bool = False, microbatches: int | None = None, parallelism: str = "hybrid",
          replicate: bool | None = None, plan: StagePlan | None = None) -> Schedule:
    return synchronous("zb-h2", net, hw, batch=batch, steps=minibatches, microbatches=microbatches,
                       view="zerobubble", pattern="1f1b", split_w=True, defer_w=True, warm_factor=2,
                       word_bytes=word_bytes, spike_bits=spike_bits, parallelism=parallelism, replicate=replicate,
                       plan=plan)


__all__ = ["zb_h1", "zb_h2"]
