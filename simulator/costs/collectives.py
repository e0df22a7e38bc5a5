"""Collective communication over a link model: ring all-reduce, all-gather, reduce-scatter,
broadcast, and the redistribution of a sharded vector.

Ring algorithms, one chunk of ``bytes / P`` per round: all-reduce ``2 (P - 1)`` rounds,
all-gather and reduce-scatter ``P - 1``, broadcast = scatter + all-gather (van de Geijn).
With ``transfer_cycles(b) = latency + ceil(b / bw)`` the all-reduce costs
``2 (P - 1) (latency + ceil(bytes / P / bw))`` = the textbook
``2 (P-1)/P * bytes/bw + 2 (P-1) * latency`` up to rounding. Link contention between
concurrent collectives is not modelled (each ring has its links to itself).

>>> from simulator.costs import LinkModel
>>> allreduce_cycles(1600, 4, LinkModel(100, 16))   # 6 * (100 + 400/16)
750
>>> collective_cycles("broadcast", 1600, 4, LinkModel(100, 16))
750
"""

from __future__ import annotations

from models.errors import HardwareError

COLLECTIVES = ("allreduce", "allgather", "reduce_scatter", "broadcast")


def _chunk(nbytes: int, p: int) -> int:
    return -(-nbytes // p)


def allreduce_cycles(nbytes: int, p: int, link) -> int:
    """Ring all-reduce: 2(P-1) rounds of one chunk of bytes/P."""
    if p <= 1 or nbytes <= 0:
        return 0
    return 2 * (p - 1) * link.transfer_cycles(_chunk(nbytes, p))


def allgather_cycles(nbytes: int, p: int, link) -> int:
    """Ring all-gather (or reduce-scatter) of ``nbytes`` in total: P-1 rounds of bytes/P."""
    if p <= 1 or nbytes <= 0:
        return 0
    return (p - 1) * link.transfer_cycles(_chunk(nbytes, p))


def broadcast_cycles(nbytes: int, p: int, link) -> int:
    """Scatter + ring all-gather (van de Geijn): 2(P-1) rounds of bytes/P."""
    return 2 * allgather_cycles(nbytes, p, link)


def redistribute_cycles(nbytes: int, senders: int, receivers: int, link) -> int:
    """Move a vector sharded over ``senders`` devices to ``receivers`` devices' shards.

    Every device sends or receives at most ``bytes / min(senders, receivers)``, in
    ``ceil(max / min)`` messages.
    """
    if nbytes <= 0:
        return 0
    lo, hi = min(senders, receivers), max(senders, receivers)
    messages = -(-hi // lo)
    return messages * link.latency + link.transfer_cycles(_chunk(nbytes, lo)) - link.latency


def collective_cycles(op: str, nbytes: int, p: int, link) -> int:
    """Cycles of collective ``op`` (one of :data:`COLLECTIVES`) of ``nbytes`` over ``p`` devices."""
    if op == "allreduce":
        return allreduce_cycles(nbytes, p, link)
    if op in ("allgather", "reduce_scatter"):
        return allgather_cycles(nbytes, p, link)
    if op == "broadcast":
        return broadcast_cycles(nbytes, p, link)
    raise HardwareError(f"unknown collective {op!r} (known: {', '.join(COLLECTIVES)})")


__all__ = ["COLLECTIVES", "allreduce_cycles", "allgather_cycles", "broadcast_cycles", "redistribute_cycles",
           "collective_cycles"]
