"""The simulated machine: processors with cost models, links and a topology.

Links are directed: every edge of the topology is two independent channels, each
moving one transfer at a time (DESIGN section 5). A transfer between processors that
are not neighbours follows the shortest path hop by hop (store and forward: each hop
costs latency + bytes / bandwidth and holds only its own channel).

>>> from simulator.costs import MacArray, LinkModel
>>> plat = Platform.homogeneous(4, MacArray(macs_per_cycle=64), LinkModel(10, 8.0), topology="ring")
>>> plat.route(0, 2)
((0, 1), (1, 2))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from models.errors import HardwareError

from simulator.costs import FREE_LINK, CostModel, LinkModel, ScaledCost

TOPOLOGIES = ("full", "ring", "mesh")


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
    """

    processors: tuple[CostModel, ...]
    link: LinkModel = FREE_LINK
    topology: str | nx.Graph = "full"
    overlap_comm: bool = True
    name: str = ""
    _graph: nx.Graph = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "processors", tuple(self.processors))
        if not self.processors:
            raise HardwareError("a platform needs at least one processor")
        object.__setattr__(self, "_graph", topology_graph(self.topology, len(self.processors)))

    @classmethod
    def homogeneous(cls, p: int, cost: CostModel, link: LinkModel = FREE_LINK, *, topology: str | nx.Graph = "full",
                    speeds: list[float] | None = None, overlap_comm: bool = True, name: str = "") -> "Platform":
        """``p`` copies of ``cost``; ``speeds`` makes them heterogeneous (1.0 = as ``cost``)."""
        if not isinstance(p, int) or isinstance(p, bool) or p <= 0:
            raise HardwareError(f"number of processors must be a positive integer, got {p!r}")
        if speeds is not None and len(speeds) != p:
            raise HardwareError(f"{len(speeds)} speeds given for {p} processors")
        procs = tuple(cost if speeds is None or speeds[i] == 1 else ScaledCost(cost, speeds[i]) for i in range(p))
        return cls(procs, link, topology, overlap_comm, name or cost.describe())

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
        return f"{self.size} x {kind}, {self.link.describe()}, {self.topology if isinstance(self.topology, str) else 'custom'}"


__all__ = ["Platform", "TOPOLOGIES", "FREE_LINK", "topology_graph", "mesh_shape"]
