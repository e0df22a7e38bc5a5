"""The builder the schedules with several chunks per processor share (interleaved 1F1B, ZB-V).

Like :func:`schedules.methods.gpipe.synchronous`, a step is m micro-batches with a flush and one
update per chunk and step; the chunks come from :func:`schedules.planning.chunks.chunk_plan`
(the stage DP on exactly v p chunks) and run where the schedule's placement puts them.
"""

from __future__ import annotations

from models.errors import ScheduleError
from models.network.spec import NetworkSpec
from schedules.methods.gpipe import default_microbatches, micro_template
from schedules.planning.chunks import ORDERS, chunk_plan
from schedules.planning.orders import add_round_updates
from schedules.planning.stages import stage_template
from schedules.schedule import Schedule
from simulator.hardware import Hardware


def interleaved_microbatches(batch: int, processors: int) -> int:
    """The smallest divisor of ``batch`` that is a multiple of ``processors`` (Megatron's rule for
    interleaving), or :class:`ScheduleError` when the batch has none.

    >>> interleaved_microbatches(32, 4), interleaved_microbatches(48, 6)
    (4, 6)
    """
    m = processors
    while m <= batch:
        if batch % m == 0:
            return m
        m += processors
    raise ScheduleError(f"interleaved 1F1B needs a number of micro-batches that is a multiple of the {processors} "
                        f"processors and divides the batch {batch}; there is none (pick another --batch)")


def chunked(name: str, net: NetworkSpec, hw: Hardware, *, batch: int, steps: int, microbatches: int | None,
            layout: str, virtual: int, view: str, word_bytes: int = 2, spike_bits: bool = False) -> Schedule:
    """A flush schedule of ``virtual`` chunks per processor in ``layout`` (``schedules.planning.chunks.ORDERS``)."""
    P = hw.size
    if layout == "interleaved":
        m = microbatches or interleaved_microbatches(batch, P)
    else:
        m = microbatches or default_microbatches(batch, P)
    placement, order = ORDERS[layout]
    plan = chunk_plan(micro_template(net, batch, m, "layerpipe", word_bytes, spike_bits), hw, P * virtual)
    template = stage_template(micro_template(net, batch, m, view, word_bytes, spike_bits), plan)
    orders = order(P, virtual, m, steps)
    # a chunk may lack a kind of task (a first chunk of one layer has no input gradient): drop those
    orders = add_round_updates({p: [a for a in seq if a.task in template] for p, seq in orders.items()},
                               template, m)
    chunk_processor = placement(P, virtual)
    return Schedule(name, template, orders, microbatches_per_step=m,
                    info={"stages": [(a, b, 1) for a, b, _ in plan.stages], "microbatches": m,
                          "micro_batch_size": batch // m, "planned_bottleneck": plan.bottleneck,
                          "virtual_stages": virtual, "chunk_processors": chunk_processor})


__all__ = ["chunked", "interleaved_microbatches"]
