"""Traces: what ran where and when, kept in memory, streamed to a file, or not at all.

A trace sink receives ``task(kind, layer, unit, proc, start, end)`` for every task and
``transfer(key, hop, bytes, start, end, unit)`` for every hop of every transfer, as they
end. :class:`MemoryTrace` keeps them as lists of records; :class:`JsonlTrace` writes one
JSON object per line so a long run streams to disk; ``None`` turns tracing off.

>>> t = MemoryTrace()
>>> t.task("F", 1, 0, 0, 0, 5)
>>> t.tasks[0].end
5
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, NamedTuple, Protocol

from models.graph.tasks import TaskKind


class TaskRecord(NamedTuple):
    kind: str
    layer: int
    unit: int
    proc: int
    start: float
    end: float

    @property
    def label(self) -> str:
        sep = "_" if self.kind[-1].isdigit() else ""
        return f"{self.kind}{sep}{self.layer}.{self.unit}"


class TransferRecord(NamedTuple):
    what: str  # "activation", "gradient" or "weights"
    tensor: str  # readable id of the data moved
    producer: str  # label of the task that produced it ("F3.0"), or the updated layer for weights
    src: int  # hop source processor
    dst: int  # hop destination processor
    unit: int
    bytes: int
    start: float
    end: float
    to: int = -1  # the transfer's final destination (-1: not recorded, traces written before it was)


def tensor_name(tensor: Hashable) -> str:
    """A template tensor id as text: ``("a", 1)`` -> ``a1`` (layer 1's output), ``("g", 3, 2)`` ->
    ``g3_2`` (the gradient layer 3 sends layer 2); several merged into one edge joined by ``+``.

    >>> tensor_name(("a", 1)), tensor_name(("g", 3, 2)), tensor_name((("d", 2), ("in", 2)))
    ('a1', 'g3_2', 'd2+in2')
    """
    if isinstance(tensor, tuple) and tensor and isinstance(tensor[0], str):
        return tensor[0] + "_".join(str(part) for part in tensor[1:])
    if isinstance(tensor, tuple):
        return "+".join(tensor_name(t) for t in tensor)
    return str(tensor)


def _describe_transfer(key: Hashable, unit: int) -> tuple[str, str, str, int]:
    if key[0] == "x":
        _, task, tensor, dst, _unit = key
        sep = "_" if task[0][-1].isdigit() else ""
        what = TaskKind(task[0]).output_kind
        return what, tensor_name(tensor), f"{task[0]}{sep}{task[1]}.{unit}", dst
    _, layer, step, dst = key
    return "weights", f"w{layer}@step{step}", f"U{layer}.step{step}", dst


class TraceSink(Protocol):
    def task(self, kind: str, layer: int, unit: int, proc: int, start: float, end: float) -> None: ...

    def transfer(self, key: Hashable, hop: tuple[int, int], nbytes: int, start: float, end: float, unit: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class MemoryTrace:
    """All records in memory (``tasks`` and ``transfers`` lists)."""

    tasks: list[TaskRecord]
    transfers: list[TransferRecord]

    def __init__(self) -> None:
        self.tasks, self.transfers = [], []

    def task(self, kind, layer, unit, proc, start, end) -> None:
        self.tasks.append(TaskRecord(kind, layer, unit, proc, start, end))

    def transfer(self, key, hop, nbytes, start, end, unit) -> None:
        what, tensor, producer, to = _describe_transfer(key, unit)
        self.transfers.append(TransferRecord(what, tensor, producer, hop[0], hop[1], unit, nbytes, start, end, to))

    def close(self) -> None:
        pass

    @property
    def processors(self) -> int:
        return 1 + max((t.proc for t in self.tasks), default=-1)


class JsonlTrace:
    """Streams records as JSON lines (``{"type": "task", ...}``) to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self._file = open(path, "w", encoding="utf-8")

    def task(self, kind, layer, unit, proc, start, end) -> None:
        rec = TaskRecord(kind, layer, unit, proc, start, end)
        self._file.write(json.dumps({"type": "task", **rec._asdict()}) + "\n")

    def transfer(self, key, hop, nbytes, start, end, unit) -> None:
        what, tensor, producer, to = _describe_transfer(key, unit)
        rec = TransferRecord(what, tensor, producer, hop[0], hop[1], unit, nbytes, start, end, to)
        self._file.write(json.dumps({"type": "transfer", **rec._asdict()}) + "\n")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_jsonl(path: str | Path) -> MemoryTrace:
    """Load a trace written by :class:`JsonlTrace`."""
    trace = MemoryTrace()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            kind = rec.pop("type")
            if kind == "task":
                trace.tasks.append(TaskRecord(**rec))
            else:
                trace.transfers.append(TransferRecord(**rec))
    return trace


def _consumers(graph, trace: MemoryTrace, producers: dict[str, TaskRecord]) -> dict[tuple[str, int, str], list[TaskRecord]]:
    """(producer label, destination, tensor name) -> the traced tasks there that read that tensor
    (``producers``: every traced task by label)."""
    from models.graph.tasks import edge_tensor

    by_label = {(t.label, t.proc): t for t in trace.tasks}
    out: dict[tuple[str, int, str], list[TaskRecord]] = {}
    for x in trace.transfers:
        key = (x.producer, x.to, x.tensor)
        if key in out or x.to < 0 or x.producer not in producers:
            continue
        p = producers[x.producer]
        task = (p.kind, p.layer)
        readers = []
        for s in (graph.successors(task) if task in graph else ()):
            if tensor_name(edge_tensor(graph, task, s)) == x.tensor:
                sep = "_" if s[0][-1].isdigit() else ""
                rec = by_label.get((f"{s[0]}{sep}{s[1]}.{x.unit}", x.to))
                if rec is not None:
                    readers.append(rec)
        out[key] = readers
    return out


def to_chrome(trace: MemoryTrace, name: str = "layerpipe", cycles_per_us: float = 1.0, graph=None) -> dict:
    """Chrome trace event format (Perfetto, chrome://tracing): one thread per processor,
    one per link channel, and flow arrows from each transfer's producer to its first hop and,
    given the schedule's task ``graph``, from its last hop to every task that reads what it
    brought (weight transfers have no task as producer, so no arrows)."""
    events: list[dict] = [{"ph": "M", "pid": 0, "name": "process_name", "args": {"name": name}}]
    procs = sorted({t.proc for t in trace.tasks})
    for p in procs:
        events.append({"ph": "M", "pid": 0, "tid": p, "name": "thread_name", "args": {"name": f"P{p}"}})
    links = sorted({(x.src, x.dst) for x in trace.transfers})
    link_tid = {hop: 1000 + i for i, hop in enumerate(links)}
    for hop, tid in link_tid.items():
        events.append({"ph": "M", "pid": 0, "tid": tid, "name": "thread_name", "args": {"name": f"link P{hop[0]}->P{hop[1]}"}})
    ends = {}
    for t in trace.tasks:
        ends[t.label] = t
        events.append({"ph": "X", "pid": 0, "tid": t.proc, "name": t.label, "cat": t.kind,
                       "ts": t.start / cycles_per_us, "dur": (t.end - t.start) / cycles_per_us,
                       "args": {"kind": t.kind, "layer": t.layer, "unit": t.unit}})
    readers = _consumers(graph, trace, ends) if graph is not None else {}
    flow = 0
    for x in trace.transfers:
        tid = link_tid[(x.src, x.dst)]
        events.append({"ph": "X", "pid": 0, "tid": tid, "name": f"{x.what} {x.tensor}", "cat": "transfer",
                       "ts": x.start / cycles_per_us, "dur": (x.end - x.start) / cycles_per_us,
                       "args": {**{k: v for k, v in x._asdict().items() if k not in ("start", "end")}}})
        producer = ends.get(x.producer)
        if producer is not None and producer.proc == x.src:  # the first hop
            events.append({"ph": "s", "id": flow, "pid": 0, "tid": producer.proc, "name": "send", "cat": "flow",
                           "ts": producer.end / cycles_per_us})
            events.append({"ph": "f", "bp": "e", "id": flow, "pid": 0, "tid": tid, "name": "send", "cat": "flow",
                           "ts": x.start / cycles_per_us})
            flow += 1
        if x.dst == x.to:  # the last hop: on to the tasks that read it
            for reader in readers.get((x.producer, x.to, x.tensor), ()):
                events.append({"ph": "s", "id": flow, "pid": 0, "tid": tid, "name": "receive", "cat": "flow",
                               "ts": x.end / cycles_per_us})
                events.append({"ph": "f", "bp": "e", "id": flow, "pid": 0, "tid": reader.proc, "name": "receive",
                               "cat": "flow", "ts": reader.start / cycles_per_us})
                flow += 1
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"time_unit": "cycles", "cycles_per_us": cycles_per_us}}


__all__ = ["tensor_name", "TaskRecord", "TransferRecord", "TraceSink", "MemoryTrace", "JsonlTrace", "read_jsonl", "to_chrome"]

