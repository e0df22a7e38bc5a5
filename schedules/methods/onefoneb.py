"""1F1B with a flush (Narayanan et al.'s PipeDream-flush; Megatron-LM's default schedule).

Stage s (0-based, of n) admits n - 1 - s warm-up forwards, then alternates one forward and
one backward of a micro-batch, one update per step. The backward is one task (input and
weight gradient together, as Megatron and PyTorch's ``Schedule1F1B`` run it), so a stage sends
its input gradient when the whole backward ends: the baseline the zero-bubble paper's bubble
table computes (bubble (n-1)(F+B+W) with uniform costs). Splitting the backward is what
ZB-H1 and ZB-H2 (``schedules.methods.zerobubble``) add.
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
                       view="pipedream", pattern="1f1b", split_w=False, word_bytes=word_bytes,
                       spike_bits=spike_bits, parallelism=parallelism, replicate=replicate, plan=plan)


__all__ = ["one_f_one_b"]
