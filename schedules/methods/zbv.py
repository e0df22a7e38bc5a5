"""ZB-V (Qi et al., 2024, "Pipeline parallelism with controllable memory"): two chunks per
processor in a V, the backward split into B (input gradient) and W (weight gradient).

Chunk s runs on processor s for s < p and on 2p - 1 - s after, so the first processor holds
the first and the last chunk. The order is PyTorch's ``ScheduleZBVZeroBubble``
(``schedules.planning.chunks``): with uniform costs and m >= 2p - 1 micro-batches no processor
idles inside a step, at 1F1B's peak activation memory (p micro-batches' worth of chunks).
"""

from __future__ import annotations

from models.network.spec import NetworkSpec
from schedules.methods.chunked import chunked
from schedules.schedule import Schedule
from simulator.hardware import Hardware


def zb_v(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, word_bytes: int = 2,
         spike_bits: bool = False, microbatches: int | None = None) -> Schedule:
    return chunked("zb-v", net, hw, batch=batch, steps=minibatches, microbatches=microbatches, layout="v",
                   virtual=2, view="zerobubble", word_bytes=word_bytes, spike_bits=spike_bits)


__all__ = ["zb_v"]
