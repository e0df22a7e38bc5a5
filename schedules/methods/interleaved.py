"""Interleaved 1F1B (Narayanan et al., SC 2021): Megatron-LM's virtual pipeline stages.

Each processor holds ``virtual_stages`` = v chunks of the network, chunk s on processor s mod p,
and runs Megatron's order (``schedules.planning.chunks``): the warm-up and cool-down shrink by
v, so the bubble is (p-1)(t_f + t_b)/v for v times the cross-processor hops. The backward
is one task per chunk, as in 1F1B. The number of micro-batches per step must be a multiple of
p (default: the smallest such divisor of the batch).
"""

from __future__ import annotations

from models.network.spec import NetworkSpec
from schedules.methods.chunked import chunked
from schedules.schedule import Schedule
from simulator.hardware import Hardware

DEFAULT_VIRTUAL_STAGES = 2


def interleaved_1f1b(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, word_bytes: int = 2,
                     spike_bits: bool = False, microbatches: int | None = None,
                     virtual_stages: int = DEFAULT_VIRTUAL_STAGES) -> Schedule:
    return chunked("interleaved-1f1b", net, hw, batch=batch, steps=minibatches, microbatches=microbatches,
                   layout="interleaved", virtual=virtual_stages, view="pipedream", word_bytes=word_bytes,
                   spike_bits=spike_bits)


__all__ = ["interleaved_1f1b", "DEFAULT_VIRTUAL_STAGES"]
