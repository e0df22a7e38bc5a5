"""SpikePipe (Sanjeet, Sahoo & Parhi, arXiv 2406.06879): pipelined SNN training on systolic arrays.

SpikePipe applies inter-layer pipelining with delayed gradients to spiking networks and
maps the layers onto P systolic-array processors. What differs from a conventional
network is the cost structure of the tasks, which the task graph carries, not the
scheduler: the F, WG and AG1 products are batched over B*T rows (T time steps), the LIF
membrane recurrence is element-wise work that must run step by step (forward in t,
backward in reverse t), and the spikes that cross processors are binary (1 byte, or 1 bit
with ``spike_bits``). So this module is LayerPipe's machinery (partition, weight-gradient
offloading, list scheduling; ``schedules.methods.layerpipe``) with SpikePipe's delays: the layers
of a processor stage share one delay, Delay(l) = 2 S(stage) (inter-layer pipelining of
stages, as LayerPipe2 groups them), and weights are stashed (S + 1 versions).

The "standard pipelining" SpikePipe is compared with is PipeDream-style (``pipedream``)
and GPipe-style (``gpipe``) pipelining of the same SNN on the same arrays.
"""

from __future__ import annotations

from models.network.spec import NetworkSpec
from schedules.methods.layerpipe import Planned
from schedules.methods.layerpipe2 import plan_layerpipe2
from schedules.planning.partition import StagePlan
from schedules.schedule import Schedule
from simulator.hardware import Hardware


def plan_spikepipe(net: NetworkSpec, hw: Hardware, *, batch: int, word_bytes: int = 2, spike_bits: bool = False,
                   offload: bool = True, parallelism: str = "hybrid", replicate: bool | None = None,
                   ag_split: str | float = "design", plan: StagePlan | None = None) -> Planned:
    """SpikePipe's plan: LayerPipe2's with the processor stages as groups and stashed weights."""
    return plan_layerpipe2(net, hw, batch=batch, word_bytes=word_bytes, offload=offload, parallelism=parallelism,
                           plan=plan, replicate=replicate, spike_bits=spike_bits, memory="stash", name="spikepipe",
                           ag_split=ag_split)


def spikepipe(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, **options) -> Schedule:
    return plan_spikepipe(net, hw, batch=batch, **options).schedule(minibatches)


__all__ = ["spikepipe", "plan_spikepipe"]
