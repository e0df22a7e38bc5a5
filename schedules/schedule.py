"""A schedule is data: per-processor ordered actions over a task graph, plus delays.

A :class:`Schedule` says WHERE and WHEN, never HOW LONG: for every processor, the
ordered list of :class:`Action` it runs; for every weight layer, the gradient delay in
slots (Delay(l) = 2*S(l)) and the units per update round; and how many consecutive units
(micro-batches) form one optimizer step. Delays and rounds make the schedule's
:class:`~schedules.delays.DelayRule` (:attr:`Schedule.rule`), which says which weight
version each forward may use. The task graph it refers to is a template for one unit,
keyed ``Task(kind, layer)``; unit ``i`` instantiates it as ``Action(kind, layer, i)``.

Text form, one line per processor (``#`` starts a comment); tasks are
``KIND LAYER . UNIT`` with an underscore after kinds that end in a digit::

    P0: F1.0 F1.1 B1.0 F1.2 B1.1
    P1: F2.0 B2.0 F2.1 B2.1 AG1_2.2

>>> orders = parse_orders("P0: F1.0 F2.0 ; P1: AG1_2.0")
>>> [str(a) for a in orders[0]], orders[1][0].kind == "AG1"
(['F1.0', 'F2.0'], True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import networkx as nx

from models.errors import ScheduleError
from models.graph.tasks import Task, TaskKind, layer_infos
from schedules.delays import DelayRule

#: every kind's name, longest first so that "AG1" is not read as "A"...
_KIND_RE = "|".join(sorted((k.value for k in TaskKind), key=len, reverse=True))
_ACTION_RE = re.compile(rf"^({_KIND_RE})_?(\d+)\.(\d+)$")
_PROC_RE = re.compile(r"^\s*P(\d+)\s*:(.*)$")


class Action(NamedTuple):
    """One task instance: ``kind`` of ``layer`` (or stage) for ``unit`` (a minibatch or micro-batch)."""

    kind: TaskKind
    layer: int
    unit: int

    def __str__(self) -> str:
        sep = "_" if self.kind[-1].isdigit() else ""
        return f"{self.kind}{sep}{self.layer}.{self.unit}"

    @property
    def task(self) -> Task:
        """The template task this action instantiates."""
        return Task(self.kind, self.layer)

    @classmethod
    def parse(cls, text: str) -> "Action":
        m = _ACTION_RE.match(text.strip())
        if not m:
            raise ScheduleError(
                f"cannot read action {text!r}: expected KIND LAYER.UNIT such as F3.0, B2.1 or AG1_3.0 "
                f"(kinds: {_KIND_RE.replace('|', ', ')})")
        return cls(TaskKind(m.group(1)), int(m.group(2)), int(m.group(3)))


def parse_orders(text: str) -> dict[int, list[Action]]:
    """Read ``P<n>: actions`` lines (newlines or ``;`` separate processors)."""
    orders: dict[int, list[Action]] = {}
    for lineno, raw in enumerate(re.split(r"[;\n]", text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _PROC_RE.match(line)
        if not m:
            raise ScheduleError(f"schedule line {lineno}: expected 'P<n>: actions', got {line!r}")
        p = int(m.group(1))
        if p in orders:
            raise ScheduleError(f"schedule line {lineno}: processor P{p} is listed twice")
        orders[p] = [Action.parse(tok) for tok in m.group(2).split()]
    return orders


def format_orders(orders: Mapping[int, Sequence[Action]]) -> str:
    return "\n".join(f"P{p}: " + " ".join(map(str, orders[p])) for p in sorted(orders))


@dataclass
class Schedule:
    """Compute-only schedule of ``units`` minibatches (or micro-batches) on processors.

    Attributes
    ----------
    name : the method that made it (``"pipedream"``, ``"layerpipe"``, ...).
    graph : task template of one unit (:mod:`models.graph.tasks`).
    orders : processor -> ordered actions. Processors are numbered 0..P-1.
    delays : weight layer -> delay in slots (2*S(l)); missing layers have delay 0.
    microbatches_per_step : units per optimizer step (GPipe/1F1B: m; PipeDream: 1).
    weight_versions : weight layer -> versions stored (stashing: S(l)+1; EMA: 2).
    info : free-form facts the method wants reported (stages, planner choices, ...).
    update_rounds : weight layer -> units per update of that layer, where it differs from
        ``microbatches_per_step`` (replicated stages: the number of replicas).
    """

    name: str
    graph: nx.DiGraph
    orders: dict[int, list[Action]]
    delays: dict[int, int] = field(default_factory=dict)
    microbatches_per_step: int = 1
    weight_versions: dict[int, int] | None = None
    info: dict = field(default_factory=dict)
    update_rounds: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.orders:
            raise ScheduleError("a schedule needs at least one processor")
        if sorted(self.orders) != list(range(len(self.orders))):
            raise ScheduleError(f"processors must be numbered 0..P-1, got {sorted(self.orders)}")
        if self.microbatches_per_step < 1:
            raise ScheduleError(f"microbatches_per_step must be >= 1, got {self.microbatches_per_step}")
        for l, d in self.delays.items():
            if d < 0 or d % 2:
                raise ScheduleError(f"delay of layer {l} must be an even number of slots >= 0, got {d}")
        for l, g in self.update_rounds.items():
            if g < 1:
                raise ScheduleError(f"update round of layer {l} must be >= 1 unit, got {g}")

    # -- derived views -------------------------------------------------------------
    @property
    def processors(self) -> int:
        return len(self.orders)

    @property
    def units(self) -> int:
        """Number of units (minibatches or micro-batches) the orders cover."""
        return 1 + max((a.unit for acts in self.orders.values() for a in acts), default=-1)

    @property
    def steps(self) -> int:
        return -(-self.units // self.microbatches_per_step)

    @property
    def rule(self) -> DelayRule:
        """The delay rule of this schedule's delays and update rounds."""
        return DelayRule.from_delays(self.delays, self.update_rounds, self.microbatches_per_step)

    def layer_delays(self) -> dict[int, int]:
        """Delay in slots of every weight layer of the network (0 when not delayed)."""
        return {l: self.delays.get(l, 0) for l in sorted(layer_infos(self.graph))}

    def layer_staleness(self) -> list[int]:
        """S(l) in weight updates for every weight layer l = 1..L: what the training core trains with."""
        rule = self.rule
        return [rule.staleness(l) for l in sorted(layer_infos(self.graph))]

    def versions(self) -> dict[int, int]:
        """Weight versions kept per layer (stashing keeps S(l) + 1 unless stated otherwise)."""
        if self.weight_versions is not None:
            return dict(self.weight_versions)
        return {l: d // 2 + 1 for l, d in self.layer_delays().items()}

    def placement(self) -> dict[Action, int]:
        """Processor of every action (built on demand; size grows with the units)."""
        return {a: p for p, acts in self.orders.items() for a in acts}

    def to_text(self) -> str:
        """The text form: a header of ``# key: value`` lines, then one line per processor."""
        head = [f"# schedule: {self.name}", f"# microbatches_per_step: {self.microbatches_per_step}"]
        if self.delays:
            head.append("# delays: " + " ".join(f"{l}:{d}" for l, d in sorted(self.delays.items())))
        if self.update_rounds:
            head.append("# update_rounds: " + " ".join(f"{l}:{g}" for l, g in sorted(self.update_rounds.items())))
        return "\n".join(head) + "\n" + format_orders(self.orders) + "\n"

    @classmethod
    def from_text(cls, text: str, graph: nx.DiGraph, name: str | None = None) -> "Schedule":
        """Read the text form back against the task ``graph`` it was made for."""
        header: dict[str, str] = {}
        for line in text.splitlines():
            m = re.match(r"^\s*#\s*(\w+)\s*:\s*(.*)$", line)
            if m:
                header[m.group(1)] = m.group(2).strip()
        def pairs(key: str, what: str) -> dict[int, int]:
            out: dict[int, int] = {}
            for tok in header.get(key, "").split():
                try:
                    l, d = tok.split(":")
                    out[int(l)] = int(d)
                except ValueError:
                    raise ScheduleError(f"cannot read {key} entry {tok!r}: expected LAYER:{what} such as 3:4") from None
            return out

        delays = pairs("delays", "SLOTS")
        rounds = pairs("update_rounds", "UNITS")
        try:
            m = int(header.get("microbatches_per_step", "1"))
        except ValueError:
            raise ScheduleError("microbatches_per_step must be an integer") from None
        return cls(name or header.get("schedule", "custom"), graph, parse_orders(text), delays, m,
                   update_rounds=rounds)


def orders_from_sequences(sequences: Iterable[Iterable[tuple[str, int, int]]]) -> dict[int, list[Action]]:
    """Build orders from per-processor sequences of ``(kind, layer, unit)`` tuples."""
    return {p: [Action(TaskKind(k), l, u) for k, l, u in seq] for p, seq in enumerate(sequences)}


__all__ = ["Action", "Schedule", "parse_orders", "format_orders", "orders_from_sequences"]
