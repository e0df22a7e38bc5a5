"""What every task and transfer of a run waited for: the run's timed event graph.

The engine is a max-plus system: each event (a task instance, one hop of a transfer, the
release of a layer's update round) starts at the latest end among the events it waits for -
the previous event on its processor or link channel, the producers of its inputs, the update
round its forward's weights come from - and lasts a fixed number of cycles. :class:`EventLog`
records, for the units of a slice of the run, each event with its start, end and the events
it waited for, so that :mod:`simulator.engine.steady` can fold one period of the run into
its periodic event graph and compute the steady-state rate exactly.

Event ids are tuples ``(tag, a, b, index, hop)``:

* ``("t", task code, 0, unit, 0)``: a task instance;
* ``("x", transfer code, 0, unit, hop)``: hop ``hop`` of a transfer of ``unit``;
* ``("r", layer, 0, round, 0)``: the last update of ``layer``'s ``round`` ended (no duration);
* ``("w", layer, receiver, round, hop)``: hop ``hop`` of the round's new weights to ``receiver``.

``index`` is a unit for tasks and transfers and an update round (units ``round * g_l`` ..) for
the others; :func:`first_unit` converts. Only events whose first unit falls in
``[lo, hi)`` are kept, so the log's size depends on the slice, not on the run's length.
"""

from __future__ import annotations

from dataclasses import dataclass

EventId = tuple


@dataclass(frozen=True)
class Event:
    """One recorded event: where it ran (``"P3"``, or a link ``"1->2"``), when, what it waited for,
    and the event before it on the same resource (``after``; None for the first and for releases)."""

    id: EventId
    resource: str
    start: float
    end: float
    preds: tuple[EventId, ...]
    after: EventId | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


def first_unit(eid: EventId, group) -> int:
    """The first unit of event ``eid``: its unit, or the first unit of its update round
    (``group(layer)`` units per round)."""
    tag, a, _, index, _ = eid
    return index * group(a) if tag in ("r", "w") else index


class EventLog:
    """Events of the units ``[lo, hi)`` of one run, with what each waited for.

    ``group``: units per update round of a layer (``DelayRule.group``).
    """

    def __init__(self, lo: int, hi: int, group):
        self.lo, self.hi, self.group = lo, hi, group
        self.events: dict[EventId, Event] = {}

    def add(self, eid: EventId, resource: str, start: float, end: float, preds, after: EventId | None = None) -> None:
        if self.lo <= first_unit(eid, self.group) < self.hi:
            self.events[eid] = Event(eid, resource, start, end, tuple(p for p in preds if p is not None), after)


__all__ = ["Event", "EventId", "EventLog", "first_unit"]
