"""GPipe (Huang et al., 2019): micro-batches with a flush, no staleness.

A minibatch of B samples is split into m micro-batches of B/m; every stage runs all m
forwards, then all m backwards (backward as one task, B + W), and applies the update once per
step, after its last backward (the gradients of the m micro-batches accumulate). Stages come
from the same planner as PipeDream. Cycles per minibatch = the step time. :func:`synchronous`
is the builder the flush schedules on one stage per processor share (GPipe, 1F1B, ZB-H1, ZB-H2).
"""

from __future__ import annotations

from models.errors import DeadlockError, ScheduleError
from models.graph.build import training_graph
from models.network.spec import NetworkSpec
from schedules.passes import validate
from schedules.planning.candidates import candidate_plans
from schedules.planning.orders import add_round_updates, flush_orders
from schedules.planning.partition import StagePlan
from schedules.planning.stages import stage_template
from schedules.schedule import Schedule
from simulator.hardware import Hardware


def default_microbatches(batch: int, stages: int) -> int:
    """The smallest divisor of ``batch`` that is at least the number of stages (else ``batch``):
    at least one micro-batch per stage, all of the same size. Divisors come in pairs around
    sqrt(batch), so this takes O(sqrt(batch)) steps even for a huge prime batch.

    >>> default_microbatches(32, 3), default_microbatches(32, 8), default_microbatches(7, 2), default_microbatches(12, 20)
    (4, 8, 7, 12)
    """
    if stages >= batch:
        return batch
    best = batch
    d = 1
    while d * d <= batch:
        if batch % d == 0:
            for m in (d, batch // d):
                if stages <= m < best:
                    best = m
        d += 1
    return best


def micro_template(net: NetworkSpec, batch: int, microbatches: int, view: str, word_bytes: int,
                   spike_bits: bool = False):
    if microbatches < 1 or batch % microbatches:
        raise ScheduleError(f"batch {batch} cannot be split into {microbatches} equal micro-batches")
    return training_graph(net, batch // microbatches, view=view, word_bytes=word_bytes, spike_bits=spike_bits)


def synchronous(name: str, net: NetworkSpec, hw: Hardware, *, batch: int, steps: int,
                microbatches: int | None, view: str, pattern: str, split_w: bool, defer_w: bool = False,
                warm_factor: int = 1, word_bytes: int = 2, spike_bits: bool = False, parallelism: str = "hybrid",
                replicate: bool | None = None, plan: StagePlan | None = None) -> Schedule:
    """A flush schedule: ``pattern`` orders (``schedules.planning.orders``) of m micro-batches per
    step on ``plan`` (default: the first candidate plan of one micro-batch), one update per step."""
    # the stage count is not known before planning; aim for at least one micro-batch per processor
    m = microbatches or default_microbatches(batch, hw.size)
    if plan is None:
        micro = micro_template(net, batch, m, "layerpipe", word_bytes, spike_bits)
        plan = candidate_plans(micro, hw, parallelism=parallelism, replicate=replicate)[0].plan
    template = stage_template(micro_template(net, batch, m, view, word_bytes, spike_bits), plan)
    schedule = None
    for warm_up in (True, False):
        orders = flush_orders(plan, m, steps, pattern=pattern, split_w=split_w, defer_w=defer_w, warm_up=warm_up,
                              warm_factor=warm_factor)
        # a stage may lack a kind of task (in the zero-bubble view a first stage of one layer has
        # no B: layer 1 has no input gradient and its AG2 runs with layer 2), so drop those actions
        orders = add_round_updates({p: [a for a in seq if a.task in template] for p, seq in orders.items()},
                                   template, m)
        schedule = Schedule(name, template, orders, microbatches_per_step=m,
                            info={"stages": [(a, b, r) for a, b, r in plan.stages], "microbatches": m,
                                  "micro_batch_size": batch // m, "planned_bottleneck": plan.bottleneck})
        if warm_up and any(r > 1 for _, _, r in plan.stages):
            try:  # replicas of unequal shares can deadlock on a 1F1B warm-up; GPipe's order cannot
                validate(schedule)
            except DeadlockError:
                continue
        return schedule
    return schedule


def gpipe(net: NetworkSpec, hw: Hardware, *, minibatches: int, batch: int, word_bytes: int = 2,
          spike_bits: bool = False, microbatches: int | None = None, parallelism: str = "hybrid",
          replicate: bool | None = None, plan: StagePlan | None = None) -> Schedule:
    return synchronous("gpipe", net, hw, batch=batch, steps=minibatches, microbatches=microbatches,
                       view="pipedream", pattern="gpipe", split_w=False, word_bytes=word_bytes, spike_bits=spike_bits,
                       parallelism=parallelism, replicate=replicate, plan=plan)


__all__ = ["gpipe", "default_microbatches", "synchronous"]
