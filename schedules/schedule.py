"""A schedule is data: per-processor ordered actions over a task graph, plus delays.

A :class:`Schedule` says WHERE and WHEN, never HOW LONG: for every processor, the
ordered list of :class:`Action` it runs; for every weight layer, the gradient delay in
slots (DESIGN section 4: Delay(l) = 2*S(l)); and how many consecutive units (micro-
batches) form one optimizer step. The task graph it refers to is a template for one
unit, keyed ``(kind, layer)``; unit ``i`` instantiates it as ``(kind, layer, i)``.

Loop-carried rule (:meth:`Schedule.weight_round`; the engine, the validator, the list
scheduler and the trace checker all apply it): layer ``l`` is updated once per *round* of
``g_l`` consecutive units (``g_l = microbatches_per_step`` unless ``update_rounds`` says
otherwise: a stage replicated R ways updates once per round of R minibatches). Unit ``i``
belongs to round ``k = i // g_l``; its forward of layer ``l`` may start only after every
update of layer ``l`` from round ``k - 1 - S(l)`` has finished. With one unit per round
and S(l) = 0 this is synchronous training; PipeDream's stage s of N has S = N - 1 - s.

Text form, one line per processor (``#`` starts a comment); tasks are
``KIND LAYER . UNIT`` with an underscore after kinds that end in a digit::

    P0: F1.0 F1.1 B1.0 F1.2 B1.1
    P1: F2.0 B2.0 F2.1 B2.1 AG1_2.2

>>> orders = parse_orders("P0: F1.0 F2.0 ; P1: AG1_2.0")
>>> [str(a) for a in orders[0]], orders[1][0].kind
(['F1.0', 'F2.0'], 'AG1')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import networkx as nx

from models.errors import ScheduleError

_KIND_RE = "AG1|AG2|WG|F|B|W|U"
_ACTION_RE = re.compile(rf"^({_KIND_RE})_?(\d+)\.(\d+)$")
_PROC_RE = re.compile(r"^\s*P(\d+)\s*:(.*)$")


class Action(NamedTuple):
    """One task instance: ``kind`` of ``layer`` (or stage) for unit ``minibatch``."""

    kind: str
    layer: int
    minibatch: int

    def __str__(self) -> str:
        sep = "_" if self.kind[-1].isdigit() else ""
        return f"{self.kind}{sep}{self.layer}.{self.minibatch}"

    @property
    def task(self) -> tuple[str, int]:
        """The template task this action instantiates."""
        return (self.kind, self.layer)

    @classmethod
    def parse(cls, text: str) -> "Action":
        m = _ACTION_RE.match(text.strip())
        if not m:
            raise ScheduleError(
                f"cannot read action {text!r}: expected KIND LAYER.UNIT such as F3.0, B2.1 or AG1_3.0 "
                f"(kinds: {_KIND_RE.replace('|', ', ')})")
        return cls(m.group(1), int(m.group(2)), int(m.group(3)))


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
    graph : task template of one unit, nodes ``(kind, layer)`` with ``work`` and ``layers``;
        ``graph.graph["layers"]`` maps weight layers to :class:`models.graph.build.LayerInfo`.
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
        return 1 + max((a.minibatch for acts in self.orders.values() for a in acts), default=-1)

    @property
    def steps(self) -> int:
        return -(-self.units // self.microbatches_per_step)

    def stale_updates(self, layer: int) -> int:
        """S(l): how many updates stale layer ``layer``'s gradients are."""
        return self.delays.get(layer, 0) // 2

    def update_group(self, layer: int) -> int:
        """g_l: consecutive units whose gradients make one update of ``layer``."""
        return self.update_rounds.get(layer, self.microbatches_per_step)

    def weight_round(self, layer: int, unit: int) -> int:
        """The round of ``layer``'s updates that ``unit``'s forward must wait for (< 0: none)."""
        return unit // self.update_group(layer) - 1 - self.stale_updates(layer)

    def round_units(self, layer: int, round_: int, units: int | None = None) -> range:
        """Units whose updates of ``layer`` make round ``round_`` (clipped to ``units``)."""
        g = self.update_group(layer)
        n = self.units if units is None else units
        return range(round_ * g, min((round_ + 1) * g, n))

    def layer_delays(self) -> dict[int, int]:
        """Delay in slots of every weight layer of the network (0 when not delayed)."""
        return {l: self.delays.get(l, 0) for l in sorted(self.graph.graph.get("layers", {}))}

    def versions(self) -> dict[int, int]:
        """Weight versions kept per layer (stashing keeps S(l) + 1 unless stated otherwise)."""
        if self.weight_versions is not None:
            return dict(self.weight_versions)
        return {l: d // 2 + 1 for l, d in self.layer_delays().items()}

    def placement(self) -> dict[tuple[str, int, int], int]:
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
    return {p: [Action(*t) for t in seq] for p, seq in enumerate(sequences)}


__all__ = ["Action", "Schedule", "parse_orders", "format_orders", "orders_from_sequences"]
