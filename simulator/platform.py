"""The simulated machine: processors with cost models, links and a topology.

Links are directed: every edge of the topology is two independent channels, each
moving one transfer at a time (docs/design.md, "Cost models"). A transfer between
processors that are not neighbours follows the shortest path hop by hop (store and
forward: each hop costs latency + bytes / bandwidth and holds only its own channel).

A :class:`PlatformSpec` is the description a user gives (processors, hardware and link
text, topology, overlap, memory capacity), with a text form; :meth:`PlatformSpec.build`
makes the :class:`Platform` the engine runs on.

>>> from simulator.costs import MacArray, LinkModel
>>> plat = Platform.homogeneous(4, MacArray(macs_per_cycle=64), LinkModel(10, 8.0), topology="ring")
>>> plat.route(0, 2)
((0, 1), (1, 2))
>>> spec = PlatformSpec.from_text("8 x systolic:32x32:ws link 100,16 ring memory 8GiB")
>>> spec.processors, spec.topology, spec.memory_capacity, spec.to_text()
(8, 'ring', 8589934592, '8 x systolic:32x32:ws link 100,16 ring memory 8GiB')
>>> spec.build().size
8
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import networkx as nx

from models.errors import HardwareError
from simulator.costs import FREE_LINK, CostModel, LinkModel, ScaledCost, parse_hardware, parse_link

TOPOLOGIES = ("full", "ring", "mesh")


def check_processor_count(p) -> int:
    """``p`` if it is a positive integer number of processors, else :class:`HardwareError`."""
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise HardwareError(f"number of processors must be a positive integer, got {p!r}")
    return p


def mesh_shape(p: int) -> tuple[int, int]:
    """Rows x cols of the squarest 2-D mesh with ``p`` nodes (rows <= cols)."""
    rows = max(r for r in range(1, int(math.isqrt(p)) + 1) if p % r == 0)
    return rows, p // rows


def topology_graph(kind: str | nx.Graph, p: int) -> nx.Graph:
    """An undirected graph on processors ``0..p-1``: ``full``, ``ring``, ``mesh`` or your own."""
    if isinstance(kind, nx.Graph):
        if sorted(kind.nodes) != list(range(p)):
            raise HardwareError(f"topology graph must have nodes 0..{p - 1}, got {sorted(kind.nodes)[:8]}")
        if p > 1 and not nx.is_connected(kind):
            raise HardwareError("topology graph is not connected: some processors cannot talk")
        return nx.Graph(kind)
    if kind == "full":
        return nx.complete_graph(p)
    if kind == "ring":
        return nx.cycle_graph(p) if p > 2 else nx.complete_graph(p)
    if kind == "mesh":
        rows, cols = mesh_shape(p)
        grid = nx.grid_2d_graph(rows, cols)
        return nx.relabel_nodes(grid, {(r, c): r * cols + c for r, c in grid.nodes})
    raise HardwareError(f"unknown topology {kind!r} (known: {', '.join(TOPOLOGIES)})")


@dataclass(frozen=True)
class Platform:
    """Processors (one cost model each), a link model shared by all links, a topology.

    ``overlap_comm``: True when a processor's DMA engine sends while it computes; False
    when the sender is busy until its outgoing transfers of a task have left.
    ``memory_capacity``: bytes of memory per processor (None: unlimited); a plan that needs
    more on some processor is infeasible (``simulator.selection``).
    """

    processors: tuple[CostModel, ...]
    link: LinkModel = FREE_LINK
    topology: str | nx.Graph = "full"
    overlap_comm: bool = True
    name: str = ""
    memory_capacity: int | None = None
    _graph: nx.Graph = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "processors", tuple(self.processors))
        if not self.processors:
            raise HardwareError("a platform needs at least one processor")
        object.__setattr__(self, "_graph", topology_graph(self.topology, len(self.processors)))

    @classmethod
    def homogeneous(cls, p: int, cost: CostModel, link: LinkModel = FREE_LINK, *, topology: str | nx.Graph = "full",
                    speeds: list[float] | None = None, overlap_comm: bool = True, name: str = "",
                    memory_capacity: int | None = None) -> "Platform":
        """``p`` copies of ``cost``; ``speeds`` makes them heterogeneous (1.0 = as ``cost``)."""
        check_processor_count(p)
        if speeds is not None and len(speeds) != p:
            raise HardwareError(f"{len(speeds)} speeds given for {p} processors")
        procs = tuple(cost if speeds is None or speeds[i] == 1 else ScaledCost(cost, speeds[i]) for i in range(p))
        if memory_capacity is not None and (isinstance(memory_capacity, bool) or not isinstance(memory_capacity, int)
                                            or memory_capacity < 1):
            raise HardwareError(f"memory capacity must be a positive number of bytes, got {memory_capacity!r}")
        return cls(procs, link, topology, overlap_comm, name or cost.describe(), memory_capacity)

    @property
    def size(self) -> int:
        return len(self.processors)

    @property
    def graph(self) -> nx.Graph:
        return self._graph

    @cached_property
    def _routes(self) -> dict[tuple[int, int], tuple[tuple[int, int], ...]]:
        paths = dict(nx.all_pairs_shortest_path(self._graph))
        return {(s, d): tuple(zip(path[:-1], path[1:])) for s, row in paths.items() for d, path in row.items() if s != d}

    def route(self, src: int, dst: int) -> tuple[tuple[int, int], ...]:
        """Directed hops from ``src`` to ``dst`` (empty when they are the same processor)."""
        return () if src == dst else self._routes[src, dst]

    def describe(self) -> str:
        procs = {p.describe() for p in self.processors}
        kind = procs.pop() if len(procs) == 1 else "heterogeneous"
        text = f"{self.size} x {kind}, {self.link.describe()}, {self.topology if isinstance(self.topology, str) else 'custom'}"
        return text + (f", {format_bytes(self.memory_capacity)} per processor" if self.memory_capacity else "")


_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """``"8GiB"`` -> 8589934592: a whole number of bytes with an optional unit (B, kB, MB, GB, TB
    in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024).

    >>> parse_bytes("8GiB"), parse_bytes("512 MB"), parse_bytes("1.5KiB"), parse_bytes("4096")
    (8589934592, 512000000, 1536, 4096)
    """
    if not isinstance(text, str):
        raise HardwareError(f"a memory size must be text such as 8GiB, got {text!r}")
    cleaned = text.strip().replace(" ", "").lower()
    number = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = cleaned[len(number):] or "b"
    try:
        value = float(number) if number and len(number) <= 30 else math.nan
    except ValueError:
        value = math.nan
    if unit not in _SIZE_UNITS or not math.isfinite(value) or value <= 0:
        raise HardwareError(f"memory size must be a positive number of bytes with a unit such as 8GiB or 512MB, "
                            f"got {text[:40]!r}")
    total = value * _SIZE_UNITS[unit]
    if total < 1 or total > 2**80:
        raise HardwareError(f"memory size {text[:40]!r} is out of range (1 byte to 1 YiB)")
    return int(total)


def format_bytes(n: int) -> str:
    """The shortest exact text :func:`parse_bytes` reads back: ``8589934592`` -> ``'8GiB'``.

    >>> format_bytes(8 * 2**30), format_bytes(4 * 10**9), format_bytes(1536)
    ('8GiB', '4GB', '1536B')
    """
    exact = [f"{n // scale}{unit}" for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10),
                                                         ("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3))
             if n % scale == 0]
    return min(exact, key=len, default=f"{n}B")


@dataclass(frozen=True)
class PlatformSpec:
    """What a user says about the machine; :meth:`build` makes the :class:`Platform`.

    ``processors`` homogeneous processors of cost model ``hardware`` (text form of
    :func:`simulator.costs.parse_hardware`), links ``link`` (:func:`simulator.costs.parse_link`)
    in ``topology``, ``overlap`` (a processor sends while it computes), and
    ``memory_capacity`` in bytes per processor (None: unlimited). Everything is checked
    here, once. Text form (:meth:`to_text`, :meth:`from_text`)::

        P x HARDWARE [link LAT,BW|none] [full|ring|mesh] [no-overlap] [memory SIZE]
    """

    processors: int = 4
    hardware: str = "mac:256"
    link: str = "100,16"
    topology: str = "full"
    overlap: bool = True
    memory_capacity: int | None = None

    def __post_init__(self) -> None:
        check_processor_count(self.processors)
        parse_hardware(self.hardware)
        parse_link(self.link)
        if self.topology not in TOPOLOGIES:
            raise HardwareError(f"unknown topology {self.topology!r} (known: {', '.join(TOPOLOGIES)})")
        if not isinstance(self.overlap, bool):
            raise HardwareError(f"overlap must be true or false, got {self.overlap!r}")
        cap = self.memory_capacity
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise HardwareError(f"memory capacity must be a positive number of bytes, got {cap!r}")

    def build(self) -> "Platform":
        """The platform (:func:`simulator.limits.guarded_platform` first refuses one too large to build)."""
        return Platform.homogeneous(self.processors, parse_hardware(self.hardware), parse_link(self.link),
                                    topology=self.topology, overlap_comm=self.overlap,
                                    memory_capacity=self.memory_capacity)

    def with_processors(self, processors: int) -> "PlatformSpec":
        return replace(self, processors=processors)

    def to_text(self) -> str:
        parts = [f"{self.processors} x {self.hardware}", f"link {self.link}", self.topology]
        if not self.overlap:
            parts.append("no-overlap")
        if self.memory_capacity is not None:
            parts.append(f"memory {format_bytes(self.memory_capacity)}")
        return " ".join(parts)

    @classmethod
    def from_text(cls, text: str) -> "PlatformSpec":
        words = text.split() if isinstance(text, str) else []
        if len(words) < 3 or words[1] != "x" or not words[0].isascii() or not words[0].isdigit():
            raise HardwareError(f"cannot read platform {str(text)[:60]!r}: expected 'P x HARDWARE [link LAT,BW] "
                                f"[full|ring|mesh] [no-overlap] [memory SIZE]'")
        fields: dict = {"processors": int(words[0]), "hardware": words[2]}
        rest = iter(words[3:])
        for word in rest:
            if word in ("link", "memory"):
                value = next(rest, None)
                if value is None:
                    raise HardwareError(f"platform {text[:60]!r}: {word} needs a value")
                if word == "link":
                    fields["link"] = value
                else:
                    fields["memory_capacity"] = parse_bytes(value)
            elif word in TOPOLOGIES:
                fields["topology"] = word
            elif word == "no-overlap":
                fields["overlap"] = False
            else:
                raise HardwareError(f"platform {text[:60]!r}: unexpected word {word[:20]!r}")
        return cls(**fields)


DEFAULT_LINK = "100,16"


def network_link(network: object, link: str | None) -> str:
    """The link a run of ``network`` uses: ``link`` (None: :data:`DEFAULT_LINK`), except for a
    ``uniform:`` network stating ``comm=C``, whose every hop costs C (``models.network.uniform``):
    its link is ``C,inf`` and another one given is an error.

    >>> network_link("mlp", None), network_link("uniform:p=2,f=1,b=1,w=1,comm=5", None)
    ('100,16', '5,inf')
    """
    from models.network.uniform import uniform_link

    stated = uniform_link(network)
    if stated is None:
        return DEFAULT_LINK if link is None else link
    if link is not None and link.strip().lower() != stated:
        raise HardwareError(f"network {str(network)[:60]!r} states its hops' cost (link {stated}); "
                            f"drop the link {str(link)[:30]!r} or the spec's comm")
    return stated


__all__ = ["Platform", "PlatformSpec", "DEFAULT_LINK", "network_link", "TOPOLOGIES", "check_processor_count", "FREE_LINK", "topology_graph", "mesh_shape", "parse_bytes",
           "format_bytes"]
