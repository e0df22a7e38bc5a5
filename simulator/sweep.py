"""Sweeps: run a grid of configurations and keep one CSV row per run, resumably.

An :class:`Experiment` is a grid (networks x hardware x links x topologies x memory capacities
x parallelism modes x processors x schedules) plus settings shared by every run (batch, minibatches, micro-batches, compute/
communication overlap, input shape). :meth:`Experiment.runs` expands it, in that nesting
order (networks outermost, schedules innermost), into :class:`RunConfig` objects; each run
is one call of :func:`simulator.evaluate.compare` for one schedule, so each row carries
every metric of ``layerpipe simulate --json`` (speedups against the sequential reference
and PipeDream on the same network, processor count and platform) plus the configuration.

Experiment files are YAML (``.yaml``/``.yml``, read with PyYAML) or TOML (``.toml``,
read with :mod:`tomllib`) mappings with these keys (see ``examples/experiment.yaml``):

==============  ========================================================  ============
key             meaning                                                    default
==============  ========================================================  ============
networks        zoo names, ``mlp:64-128-10`` or network files (list)       (required)
schedules       schedule names of ``schedules.registry`` (list)            all but sequential
processors      processor counts: list of ints, ``"2-9"`` or ``"2,4,8"``  [2, 4, 8]
hardware        cost models, ``mac:256``, ``systolic:32x32:ws`` (list)     [mac:256]
links           ``LATENCY,BYTES_PER_CYCLE`` or ``none`` (list)             ["100,16"] [#]_
topologies      full, ring, mesh (list)                                    [full]
memory_capacities  memory per processor, ``8GiB`` or ``none`` (list)       [none]
parallelism     ``pipeline`` or ``hybrid`` (list)                          [hybrid]
replicate       schedule option axes (lists), as ``simulate`` takes them:  [builder's]
offload         ``replicate``/``offload``/``spike_bits`` true or false,
groups          ``groups`` ``1-3,4-6`` or a count, ``memory`` ema or
memory          stash (the weight-memory model; capacities are
ag_split        ``memory_capacities``), ``ag_split`` design, balanced or a
virtual_stages  fraction, ``virtual_stages`` a count; a schedule that does
spike_bits      not take an option runs once, with the cell empty
batch           samples per minibatch                                      32
minibatches     optimizer steps simulated, or ``auto``                     auto
microbatches    micro-batches per step of the flush schedules, or null     null (builder's)
overlap         a processor computes while it sends                        true
input           input shape per sample, ``3x32x32`` (null: network's)      null
output          CSV file the rows go to                                    sweep.csv
plots           folder for speedup/utilization/memory plots (null: none)   null
==============  ========================================================  ============

.. [#] A ``uniform:`` network that states ``comm=C`` runs on links ``C,inf`` (a different link
   listed is an error; :func:`simulator.platform.network_link`).

Any axis also takes a single value instead of a list; the singular forms ``network``,
``schedule``, ``link``, ``topology`` and ``memory_capacity`` are accepted as aliases. Unknown keys are errors.
A schedule option left out (or ``null``) is the builder's default, and its column is empty.

**The CSV.** The configuration columns (:data:`CONFIG_COLUMNS`) come first and identify
a run; then the metric columns (:func:`metric_columns`, the fields of the simulate JSON,
with the JSON's ``network`` - the network's own name - renamed ``network_name`` and its
``minibatches`` - the steps actually simulated - renamed ``minibatches_simulated``), then
``error``: empty, or the one-line message of a run that failed with a
:class:`~models.errors.LayerPipeError` (its metric cells are empty). Lists and mappings
(per-processor utilization and memory, per-layer delays and weight versions, the
builder's ``info``) are compact JSON; floats are written with ``repr`` so they read back
exactly.

**Incremental and resumable.** Each finished row is appended to the CSV and flushed to
disk at once, so an interrupted sweep loses only the runs in progress. Running the same
sweep again reads the CSV, skips every run whose configuration columns are already there
(failed runs included; use ``overwrite=True`` to start over) and computes the rest. Rows
are appended in completion order; when the sweep ends the file is rewritten (atomically)
in grid order, so the same inputs always give a byte-identical CSV, however the work was
spread or interrupted. Rows of other configurations already in the file are kept, after
the grid's rows.

**Where runs execute.** ``jobs=1`` runs in this process; ``jobs > 1`` (default: the
number of cores) on a :class:`concurrent.futures.ProcessPoolExecutor`; with
``dask_scheduler="tcp://HOST:PORT"`` on an existing Dask distributed cluster through
:class:`dask.distributed.Client` (the workers need layerpipe-sim installed).

>>> exp = experiment_from_mapping({"networks": ["mlp"], "schedules": ["pipedream", "layerpipe"],
...                                "processors": "2-3"})
>>> [(r.network, r.processors, r.schedule) for r in exp.runs()]
[('mlp', 2, 'pipedream'), ('mlp', 2, 'layerpipe'), ('mlp', 3, 'pipedream'), ('mlp', 3, 'layerpipe')]
>>> result = run_sweep(exp, jobs=1)
>>> [round(r["speedup_vs_pipedream"], 3) for r in result.rows][:2]
[1.0, 1.037]
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.errors import LayerPipeError
from models.userfiles import excerpt, is_plain_int

if TYPE_CHECKING:
    from simulator.platform import PlatformSpec

# --------------------------------------------------------------------------- errors


class SweepError(LayerPipeError):
    """A bad grid, experiment file or results file (one line; the CLI exits with 2)."""


# --------------------------------------------------------------------------- configuration

#: the schedule options of ``schedules.registry.OPTIONS`` that are grid axes (micro-batches and
#: parallelism have their own keys)
OPTION_AXES = ("replicate", "offload", "groups", "memory", "ag_split", "virtual_stages", "spike_bits")
#: columns that identify a run, in CSV order
CONFIG_COLUMNS = ("network", "network_digest", "schedule", "processors", "hardware", "link", "topology", "memory_capacity",
                  "parallelism", *OPTION_AXES, "batch", "minibatches",
                  "microbatches", "overlap", "input")
#: simulate-JSON field -> CSV column, where they differ
RENAMED = {"network": "network_name", "minibatches": "minibatches_simulated"}
#: configuration columns written as text whatever they look like
_TEXT_COLUMNS = ("network", "network_digest", "schedule", "hardware", "link", "topology", "memory_capacity", "parallelism",
                 "groups", "memory", "ag_split", "input",
                 "network_name", "platform", "error")


@functools.lru_cache(maxsize=None)
def metric_columns() -> tuple[str, ...]:
    """The metric columns, in CSV order: the fields of a :func:`simulator.evaluate.compare` row
    (the simulate JSON), less ``schedule`` and ``processors`` (configuration columns), two of
    them renamed (:data:`RENAMED`). Read off one tiny run, so the CSV follows the simulate
    JSON whatever fields it gains."""
    from models.network.zoo import get_network
    from simulator.costs import MacArray
    from simulator.evaluate import compare
    from simulator.platform import Platform

    (row,) = compare(get_network("mlp:2-2"), ["pipedream"], Platform.homogeneous(1, MacArray(1)),
                     minibatches=1, batch=1)
    return tuple(RENAMED.get(k, k) for k in row if k not in ("schedule", "processors"))


def columns() -> tuple[str, ...]:
    """Every column of a results CSV: configuration, metrics, ``error``."""
    return CONFIG_COLUMNS + metric_columns() + ("error",)


#: grid axes, outermost first, and the RunConfig field each one sets
AXES = ("networks", "hardware", "links", "topologies", "memory_capacities", "parallelism", *OPTION_AXES, "processors",
        "schedules")
_AXIS_FIELD = {"networks": "network", "hardware": "hardware", "links": "link", "topologies": "topology",
               "memory_capacities": "memory_capacity", "parallelism": "parallelism",
               "processors": "processors", "schedules": "schedule", **{o: o for o in OPTION_AXES}}
_ALIASES = {"network": "networks", "schedule": "schedules", "link": "links", "topology": "topologies",
            "memory_capacity": "memory_capacities"}
SETTINGS = ("batch", "minibatches", "microbatches", "overlap", "input")
FILE_KEYS = AXES + SETTINGS + ("output", "plots")


@dataclass(frozen=True)
class RunConfig:
    """One point of the grid: everything :func:`run_one` needs (``minibatches=None``: auto)."""

    network: str
    schedule: str
    processors: int
    hardware: str = "mac:256"
    link: str = "100,16"
    topology: str = "full"
    batch: int = 32
    minibatches: int | None = None
    microbatches: int | None = None
    overlap: bool = True
    input: str | None = None
    memory_capacity: str | None = None  # text form (8GiB); None: unlimited
    parallelism: str = "hybrid"
    network_digest: str = ""  # of the network's content (network_digest()): an edited file is another run
    #: schedule options set for this run, (name, value) pairs in OPTION_AXES order; the others are the builder's
    options: tuple[tuple[str, Any], ...] = ()

    def cells(self) -> dict[str, str]:
        """The configuration columns as the CSV writes them."""
        opts = dict(self.options)
        return {"network": self.network, "network_digest": self.network_digest, "schedule": self.schedule, "processors": str(self.processors),
                "hardware": self.hardware, "link": self.link, "topology": self.topology,
                "memory_capacity": self.memory_capacity or "none", "parallelism": self.parallelism,
                **{o: _option_cell(opts.get(o)) for o in OPTION_AXES},
                "batch": str(self.batch),
                "minibatches": "auto" if self.minibatches is None else str(self.minibatches),
                "microbatches": "" if self.microbatches is None else str(self.microbatches),
                "overlap": "true" if self.overlap else "false", "input": self.input or ""}

    def platform(self) -> "PlatformSpec":
        """The machine of this run."""
        from simulator.platform import PlatformSpec, parse_bytes

        capacity = parse_bytes(self.memory_capacity) if self.memory_capacity is not None else None
        return PlatformSpec(self.processors, self.hardware, self.link, self.topology, self.overlap, capacity)

    def key(self) -> tuple[str, ...]:
        """What identifies the run in a results file (the configuration cells, in order)."""
        cells = self.cells()
        return tuple(cells[c] for c in CONFIG_COLUMNS)


def labelled(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each schedule named with the options it ran with (``layerpipe2 groups=2``),
    so the variants of one schedule are told apart in tables and plots.

    >>> [r["schedule"] for r in labelled([{"schedule": "layerpipe"}, {"schedule": "layerpipe", "offload": False}])]
    ['layerpipe', 'layerpipe offload=false']
    """
    return [{**r, "schedule": " ".join([r["schedule"], *(f"{o}={_option_cell(r[o])}" for o in OPTION_AXES
                                                           if r.get(o) is not None)])} for r in rows]


def _option_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _option_values(name: str, value: Any) -> tuple:
    """The values of schedule option axis ``name``, checked by the registry's own parser (so a
    sweep accepts exactly what ``simulate`` does); flags also take true/false text."""
    from schedules.registry import OPTIONS

    opt = OPTIONS[name]
    out = []
    for item in _as_list(name, value):
        if item is None or (isinstance(item, str) and item.strip().lower() in ("", "default", "null", "none")):
            out.append(None)
            continue
        if opt.flag:
            item = _bool(name, item)
        elif isinstance(item, str):
            item = item.strip()
        try:
            parsed = opt.parse(item)
        except LayerPipeError as exc:
            hint = (" (memory per processor is the memory_capacities key)" if name == "memory" else "")
            raise SweepError(f"{name}: {exc}{hint}") from None
        out.append(parsed)
    return tuple(dict.fromkeys(out))


def _as_list(name: str, value: Any) -> list:
    if value is None:
        raise SweepError(f"{name}: no value given")
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise SweepError(f"{name}: the list is empty")
    return items


MAX_PROCESSOR_COUNTS = 1_000


def network_digest(name: str, input_shape: str | None = None) -> str:
    """16 hex digits of SHA-256 over the network's description as read (a file's layers as parsed,
    a zoo builder's output), so that a results file never takes an edited network for the one it
    ran; "" when the network cannot be read (the run reports that error itself).

    >>> network_digest("mlp") == network_digest("mlp") != network_digest("mlp:64-128-10")
    True
    """
    import hashlib

    from models.network.files import network_to_dict
    from models.network.zoo import load_network, parse_input_shape

    try:
        net = load_network(name, parse_input_shape(input_shape))
    except LayerPipeError:
        return ""
    text = json.dumps(network_to_dict(net), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_processors(value: Any) -> tuple[int, ...]:
    """Processor counts from ``4``, ``[2, 4]``, ``"2,4,8"``, ``"2-9"`` or a mix (duplicates dropped).

    >>> parse_processors("2-4,8")
    (2, 3, 4, 8)
    >>> parse_processors([1, "3-4"])
    (1, 3, 4)
    """
    out: dict[int, None] = {}  # insertion-ordered set: de-duplication in linear time
    for item in _as_list("processors", value):
        if isinstance(item, bool):
            raise SweepError(f"processors: expected positive integers, got {item!r}")
        if isinstance(item, int):
            parts = [item]
        elif isinstance(item, str):
            parts = []
            for piece in item.replace(" ", "").split(","):
                if not piece:
                    continue
                lo, dash, hi = piece.partition("-")
                if not all(is_plain_int(t) for t in ((lo, hi) if dash else (piece,))):
                    raise SweepError(f"processors: expected integers or ranges like 2-9, got {item[:40]!r}")
                if dash:
                    a, b = int(lo), int(hi)
                    if b < a:
                        raise SweepError(f"processors: empty range {piece!r}")
                    if b - a >= MAX_PROCESSOR_COUNTS:
                        raise SweepError(f"processors: range {piece[:30]!r} has {b - a + 1:,} counts; a sweep takes "
                                         f"at most {MAX_PROCESSOR_COUNTS:,}")
                    parts.extend(range(a, b + 1))
                else:
                    parts.append(int(piece))
        else:
            raise SweepError(f"processors: expected positive integers, got {item!r}")
        for p in parts:
            if p < 1:
                raise SweepError(f"processors must be positive integers, got {p}")
            out[p] = None
        if len(out) > MAX_PROCESSOR_COUNTS:
            raise SweepError(f"processors: more than {MAX_PROCESSOR_COUNTS:,} counts in one sweep")
    if not out:
        raise SweepError("processors: no processor count given")
    return tuple(out)


def _strings(name: str, value: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in _as_list(name, value):
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise SweepError(f"{name}: expected text values, got {item!r}")
        text = str(item).strip()
        if not text:
            raise SweepError(f"{name}: empty value")
        if text not in out:
            out.append(text)
    return tuple(out)


def _positive(name: str, value: Any, *, optional: bool = False, auto: bool = False) -> int | None:
    if value is None and (optional or auto):
        return None
    if auto and isinstance(value, str) and value.strip().lower() == "auto":
        return None
    if isinstance(value, str) and is_plain_int(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        hint = " or auto" if auto else (" or null" if optional else "")
        raise SweepError(f"{name} must be a positive integer{hint}, got {value!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "false", "no", "off"):
        return value.strip().lower() in ("true", "yes", "on")
    raise SweepError(f"{name} must be true or false, got {value!r}")


def default_schedules() -> tuple[str, ...]:
    """Every method but the reference (a grid may mix spiking and other networks)."""
    from schedules.registry import default_schedules as every_method

    return every_method()


@dataclass
class Experiment:
    """A grid of runs and the settings they share (see the module docstring)."""

    networks: tuple[str, ...]
    schedules: tuple[str, ...] = field(default_factory=default_schedules)
    processors: tuple[int, ...] = (2, 4, 8)
    hardware: tuple[str, ...] = ("mac:256",)
    links: tuple[str, ...] | None = None  # None: 100,16 (a uniform: network with comm: its own)
    topologies: tuple[str, ...] = ("full",)
    memory_capacities: tuple[str | None, ...] = (None,)
    parallelism: tuple[str, ...] = ("hybrid",)
    replicate: tuple = (None,)
    offload: tuple = (None,)
    groups: tuple = (None,)
    memory: tuple = (None,)  # the weight-memory model (ema|stash), as simulate's --memory
    ag_split: tuple = (None,)
    virtual_stages: tuple = (None,)
    spike_bits: tuple = (None,)
    batch: int = 32
    minibatches: int | None = None
    microbatches: int | None = None
    overlap: bool = True
    input: str | None = None
    output: str | None = None
    plots: str | None = None

    def __post_init__(self) -> None:
        self.networks = _strings("networks", self.networks)
        self.schedules = tuple(s.lower() for s in _strings("schedules", self.schedules))
        self.processors = parse_processors(self.processors)
        self.hardware = _strings("hardware", self.hardware)
        self.links = None if self.links is None else _strings("links", self.links)
        self.topologies = tuple(t.lower() for t in _strings("topologies", self.topologies))
        caps = _as_list("memory_capacities", self.memory_capacities)
        self.memory_capacities = tuple(None if str(m).lower() in ("none", "unlimited") else m for m in _strings(
            "memory_capacities", tuple("none" if m is None else m for m in caps)))
        for name in OPTION_AXES:
            setattr(self, name, _option_values(name, getattr(self, name)))
        self.parallelism = tuple(m.lower() for m in _strings("parallelism", self.parallelism))
        self.batch = _positive("batch", self.batch)
        self.minibatches = _positive("minibatches", self.minibatches, auto=True)
        self.microbatches = _positive("microbatches", self.microbatches, optional=True)
        self.overlap = _bool("overlap", self.overlap)
        if self.input is not None:
            self.input = str(self.input).strip() or None

    def runs(self) -> list[RunConfig]:
        """Every run of the grid, networks outermost and schedules innermost."""
        from simulator.platform import network_link

        out = []
        for net in self.networks:
            digest = network_digest(net, self.input)
            # a uniform network stating comm=C runs on links of latency C (simulator.platform.network_link)
            links = dict.fromkeys(network_link(net, link) for link in (self.links or (None,)))
            for hw in self.hardware:
                for link in links:
                    for topo in self.topologies:
                        for mem in self.memory_capacities:
                            for mode in self.parallelism:
                                for variant in self.option_sets():
                                    for p in self.processors:
                                        for s in self.schedules:
                                            out.append(RunConfig(net, s, p, hw, link, topo, self.batch,
                                                                 self.minibatches, self.microbatches, self.overlap,
                                                                 self.input, mem, mode, digest,
                                                                 _accepted(s, variant)))
        # a schedule that takes none of a variant's options runs once, not once per variant
        return list(dict.fromkeys(out))

    def option_sets(self) -> list[tuple[tuple[str, Any], ...]]:
        """Every combination of the schedule option axes (outermost first), as (name, value)
        pairs of the options set."""
        sets: list[tuple[tuple[str, Any], ...]] = [()]
        for name in OPTION_AXES:
            sets = [s + (((name, v),) if v is not None else ()) for s in sets for v in getattr(self, name)]
        return sets

    def validate(self) -> None:
        """Check every axis value once (before any run starts); raises :class:`SweepError`."""
        from models.network.zoo import load_network, parse_input_shape
        from schedules.planning.candidates import check_parallelism
        from schedules.registry import SCHEDULES
        from simulator.costs import parse_hardware, parse_link
        from simulator.platform import TOPOLOGIES, network_link, parse_bytes

        unknown = [s for s in self.schedules if s not in SCHEDULES]
        if unknown:
            raise SweepError(f"unknown schedule(s) {', '.join(unknown)} (known: {', '.join(SCHEDULES)})")
        bad = [t for t in self.topologies if t not in TOPOLOGIES]
        if bad:
            raise SweepError(f"unknown topology {bad[0]!r} (known: {', '.join(TOPOLOGIES)})")
        try:
            shape = parse_input_shape(self.input)
            for net in self.networks:
                load_network(net, shape)
            for hw in self.hardware:
                parse_hardware(hw)
            for link in self.links or ():
                parse_link(link)
            for net in self.networks:
                for link in self.links or (None,):
                    network_link(net, link)
            for mem in self.memory_capacities:
                if mem is not None:
                    parse_bytes(mem)
            for mode in self.parallelism:
                check_parallelism(mode)
        except SweepError:
            raise
        except LayerPipeError as exc:
            raise SweepError(str(exc).replace("\n", " ")) from exc

    def to_dict(self) -> dict:
        """The experiment as a mapping an experiment file could hold."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        d["minibatches"] = "auto" if self.minibatches is None else self.minibatches
        return d


def _accepted(schedule: str, variant: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """The options of ``variant`` that ``schedule`` takes (none for a name validate() will refuse)."""
    from schedules.registry import METHODS

    m = METHODS.get(schedule)
    return tuple((k, v) for k, v in variant if m is not None and m.accepts(k))


def experiment_from_mapping(data: Mapping[str, Any], source: str = "experiment") -> Experiment:
    """An :class:`Experiment` from a parsed experiment file (or any mapping); checks the keys."""
    if not isinstance(data, Mapping):
        raise SweepError(f"{source}: expected a mapping of keys ({', '.join(FILE_KEYS)}), got {type(data).__name__}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = _ALIASES.get(str(key), str(key))
        if name not in FILE_KEYS:
            raise SweepError(f"{source}: unknown key {key!r} (known: {', '.join(FILE_KEYS)})")
        if name in values:
            raise SweepError(f"{source}: {name!r} given twice (as {key!r} and its alias)")
        values[name] = value
    if "networks" not in values:
        raise SweepError(f"{source}: no networks given (key 'networks')")
    for key in ("output", "plots"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise SweepError(f"{source}: {key} must be a path, got {values[key]!r}")
    try:
        return Experiment(**{k: v for k, v in values.items() if not (v is None and k in AXES)})
    except SweepError as exc:
        raise SweepError(f"{source}: {exc}") from None


def read_experiment(path: str | os.PathLike) -> Experiment:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) experiment file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise SweepError(f"{path}: experiment files are .yaml, .yml or .toml")
    from models.userfiles import StrictError, read_bounded, strict_yaml

    try:
        text = read_bounded(path).decode("utf-8")
    except OSError as exc:
        raise SweepError(f"cannot read experiment file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SweepError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except ValueError as exc:  # a FIFO, a device, a directory, or too large
        raise SweepError(f"cannot read experiment file {str(path)!r}: it {exc}") from None

    if suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"{path}: malformed TOML: {exc}") from None
    else:
        import yaml

        try:
            data = strict_yaml(text)
        except StrictError as exc:
            raise SweepError(f"{path}: malformed YAML: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SweepError(f"{path}:{where}: malformed YAML: {problem}") from None
    return experiment_from_mapping(data if data is not None else {}, source=str(path))


# --------------------------------------------------------------------------- one run


def run_one(config: RunConfig) -> dict[str, Any]:
    """Simulate one configuration; a typed row (``error`` set when it failed on bad input).

    Runs in worker processes and on Dask workers, so it imports what it needs itself.
    """
    from models.network.zoo import load_network, parse_input_shape
    from simulator.evaluate import compare
    from simulator.limits import guarded_platform
    row: dict[str, Any] = {**asdict(config)}
    options_set = dict(row.pop("options"))
    row.update({o: options_set.get(o) for o in OPTION_AXES})
    try:
        net = load_network(config.network, parse_input_shape(config.input))
        platform = guarded_platform(config.platform(), override=None)
        options = {"microbatches": config.microbatches} if config.microbatches is not None else {}
        options.update(config.options)
        (result,) = compare(net, [config.schedule], platform, minibatches=config.minibatches, batch=config.batch,
                            parallelism=config.parallelism, **options)
    except LayerPipeError as exc:
        row["error"] = str(exc).replace("\n", " ") or type(exc).__name__
        return row
    for key, value in result.items():
        if key in ("schedule", "processors"):
            continue
        row[RENAMED.get(key, key)] = value
    row["error"] = None
    return row


# --------------------------------------------------------------------------- CSV


def _plain(value: Any) -> Any:
    """Numpy scalars to Python, NaN/inf to None (for JSON), recursively."""
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, tuple, dict)):
        value = value.item()  # numpy scalars
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(_plain(value), separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_row(row: Mapping[str, Any]) -> list[str]:
    """A typed row (as :func:`run_one` returns) as the CSV's cells, in :func:`columns` order."""
    given = {f.name: row[f.name] for f in fields(RunConfig) if f.name != "options"}
    options = tuple((o, row[o]) for o in OPTION_AXES if row.get(o) is not None)
    cfg = RunConfig(**given, options=options).cells()
    return [cfg[c] for c in CONFIG_COLUMNS] + [_cell(row.get(c)) for c in metric_columns() + ("error",)]


def _csv_line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def decode_row(cells: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row (strings) back to typed values, keyed by column.

    Empty cells become None; ``minibatches`` None for auto; ``true``/``false`` booleans;
    cells holding JSON (``[...]``, ``{...}``: per-processor utilization and memory,
    per-layer delays and versions, ``info``) lists and dicts; numbers int or float
    (floats were written with ``repr``, so they read back exactly); text stays text.
    """
    out: dict[str, Any] = {}
    for column, text in cells.items():
        if column is None:
            continue
        if text is None or text == "":
            out[column] = None
        elif column in _TEXT_COLUMNS:
            out[column] = text
        elif column == "minibatches" and text == "auto":
            out[column] = None
        elif text in ("true", "false"):
            out[column] = text == "true"
        elif text[0] in "[{":
            out[column] = json.loads(text)
        else:
            try:
                out[column] = int(text)
            except ValueError:
                try:
                    out[column] = float(text)
                except ValueError:
                    out[column] = text
    return out


#: columns that hold a number (or nothing, in a row whose run failed)
_NUMERIC_COLUMNS = ("processors", "batch", "processors_used", "cycles_per_minibatch", "total_cycles",
                    "minibatches_simulated", "speedup_vs_sequential", "speedup_vs_pipedream", "utilization_mean",
                    "bubble_rate", "comm_bytes_per_minibatch", "comm_overhead", "link_busy_cycles_per_minibatch",
                    "transfer_wait_fraction", "lower_bound_cycles", "efficiency", "steady_period_minibatches")


def checked_row(cells: Mapping[str, str], where: str) -> dict[str, Any]:
    """:func:`decode_row`, or :class:`SweepError` naming ``where`` (file and row) when a cell is not
    what a sweep writes: broken JSON, text where a number goes."""
    try:
        row = decode_row(cells)
    except (ValueError, RecursionError) as exc:
        raise SweepError(f"{where} is corrupt: a JSON cell does not parse ({str(exc)[:60]}); "
                         "fix or delete the row, or use --overwrite") from None
    for column in _NUMERIC_COLUMNS:
        value = row.get(column)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise SweepError(f"{where} is corrupt: {column} is {excerpt(value)}, not a number; "
                             "fix or delete the row, or use --overwrite")
    return row


def _is_sweep_header(header: Sequence[str] | None) -> bool:
    """A header this version's sweep wrote (configuration first, ``error`` last): a file it resumes."""
    return (header is not None and tuple(header[: len(CONFIG_COLUMNS)]) == CONFIG_COLUMNS
            and header[-1] == "error")


#: the configuration columns every version's sweep wrote (later ones added schedule options)
_READABLE_COLUMNS = ("network", "schedule", "processors", "hardware", "link", "topology")


def _is_readable_header(header: Sequence[str] | None) -> bool:
    """A header any version's sweep wrote: its rows can be read and plotted, if not resumed."""
    return (header is not None and bool(header) and header[-1] == "error"
            and all(c in header for c in _READABLE_COLUMNS))


def _header_line() -> str:
    return _csv_line(columns())


def _read_existing(path: Path) -> list[list[str]]:
    """Rows of an existing results file (cells); repairs a last line cut by a kill."""
    raw = path.read_bytes()
    if not raw:
        return []
    # a last line without its newline was cut by a kill; check the file is ours before repairing it
    cut = raw.rfind(b"\n") + 1
    if cut == 0 and not _header_line().encode("utf-8").startswith(raw):
        raise SweepError(f"{path} is not a results file of a sweep (its first line is not the sweep's header); "
                         "use another output file or --overwrite")
    try:
        text = raw[:cut].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SweepError(f"{path} is not a results file of a sweep (byte 0x{raw[exc.start]:02x} at offset "
                         f"{exc.start} is not UTF-8 text); use another output file or --overwrite") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is not None and tuple(header) != columns():
        if _is_sweep_header(header):
            missing = [c for c in columns() if c not in header]
            extra = [c for c in header if c not in columns()]
            what = ", ".join([f"lacks {c}" for c in missing] + [f"has {c}" for c in extra])
            raise SweepError(f"{path} was written by another version of the sweep ({what}); "
                             "use another output file or --overwrite")
        raise SweepError(f"{path} holds other columns than a sweep writes (first: {', '.join(header[:4])}, ...); "
                         "use another output file or --overwrite")
    if cut < len(raw):  # the process died while writing a row: drop the partial line (the run is redone)
        with open(path, "r+b") as fh:
            fh.truncate(cut)
    if header is None:
        return []
    rows = []
    n = len(header)
    line = 1  # the header's
    try:
        for cells in reader:
            line += 1
            if len(cells) == n:
                checked_row(dict(zip(header, cells)), f"{path} row {line}")
                rows.append(cells)
    except csv.Error as exc:  # e.g. a cell beyond the csv module's field limit
        raise SweepError(f"{path} row {line + 1} is corrupt ({exc}); fix or delete the row, "
                         "or use --overwrite") from None
    return rows


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a results CSV written by a sweep, decoded (see :func:`decode_row`)."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"no such results file: {str(path)!r}")
    line = 1
    out = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not _is_readable_header(reader.fieldnames):
                raise SweepError(f"{path} is not a results file written by `layerpipe sweep` (its columns differ)")
            missing = [c for c in CONFIG_COLUMNS if c not in reader.fieldnames]  # an older sweep's file
            for r in reader:
                line += 1
                out.append({**dict.fromkeys(missing), **checked_row(r, f"{path} row {line}")})
    except csv.Error as exc:
        raise SweepError(f"{path} row {line + 1} is corrupt ({exc})") from None
    except UnicodeDecodeError as exc:
        raise SweepError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    return out


def is_results_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a CSV whose header is a sweep's (this version's or an earlier one's)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return _is_readable_header(header)


class _ResultsFile:
    """Appends rows (flushed and fsynced one by one) and finally rewrites in grid order."""

    def __init__(self, path: Path, overwrite: bool):
        self.path = path
        if path.exists() and path.is_dir():
            raise SweepError(f"output {str(path)!r} is a directory")
        if path.exists() and not path.is_file():  # /dev/full, a FIFO: reading it back never ends
            raise SweepError(f"output {str(path)!r} is not a regular file (a device or a FIFO)")
        if not path.parent.exists():
            raise SweepError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
        self.rows: dict[tuple[str, ...], list[str]] = {}
        if path.exists() and not overwrite:
            for cells in _read_existing(path):
                self.rows.setdefault(tuple(cells[: len(CONFIG_COLUMNS)]), cells)
        try:
            if overwrite or not path.exists() or path.stat().st_size == 0:
                with open(path, "w", encoding="utf-8", newline="") as fh:
                    fh.write(_header_line())
            self.fh = open(path, "a", encoding="utf-8", newline="")
        except OSError as exc:  # unwritable place: permissions, a read-only or special file system
            raise SweepError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None

    def add(self, cells: list[str]) -> None:
        self.rows[tuple(cells[: len(CONFIG_COLUMNS)])] = cells
        self.fh.write(_csv_line(cells))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()

    def finish(self, order: Sequence[tuple[str, ...]]) -> None:
        """Rewrite the file: the grid's rows in grid order, then any others as they were."""
        self.close()
        in_grid = set(order)
        lines = [_header_line()]
        lines += [_csv_line(self.rows[k]) for k in order if k in self.rows]
        lines += [_csv_line(cells) for k, cells in self.rows.items() if k not in in_grid]
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- executors


#: how often (seconds) a waiting sweep looks at its workers, and so how soon Ctrl-C is seen
POLL_SECONDS = 0.5


def _worker_init(parent: int) -> None:  # pragma: no cover - runs in worker processes
    """Ctrl-C goes to the parent, which stops the pool; and a worker whose parent is gone
    (killed with SIGKILL, where no clean-up runs) exits instead of finishing its run alone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # the pid was reused by another user's process: the parent is gone
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _mp_context():
    """Workers start from a fork server that has imported the simulator (fast, and safe in
    threaded parents such as Jupyter kernels); plain ``spawn`` where there is no fork server."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["simulator.sweep", "simulator.evaluate", "models.network.zoo"])
        return ctx
    return multiprocessing.get_context("spawn")


def _local(todo: list[RunConfig], jobs: int):
    """Yield rows as runs finish, on ``jobs`` local processes (in this one when jobs == 1)."""
    if jobs <= 1 or len(todo) <= 1:
        for config in todo:
            yield run_one(config)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=_mp_context(),
                               initializer=_worker_init, initargs=(os.getpid(),))
    try:
        pending = {pool.submit(run_one, c) for c in todo}
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    row = fut.result()
                except BrokenProcessPool:
                    raise SweepError("a worker process died during a run (killed, or out of memory); the "
                                     "finished runs are kept: run the same command again to resume") from None
                yield row
    finally:
        # workers still running are stopped, not left to finish runs nobody will read
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()


def cluster_loggers() -> list[logging.Logger]:
    """The loggers of distributed, of asyncio (whose tasks distributed's client runs) and of tornado
    (its event loop's callbacks, which log a closed stream when the scheduler dies mid-gather), as
    they exist now: distributed makes its own when it is imported."""
    prefixes = ("distributed", "asyncio", "tornado")
    names = (*prefixes, *logging.root.manager.loggerDict)
    return [logging.getLogger(n) for n in dict.fromkeys(names) if n.startswith(prefixes)]


def _dask(todo: list[RunConfig], address: str, timeout: float):
    """Yield rows as runs finish on the Dask cluster whose scheduler listens at ``address``."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise SweepError("--dask-scheduler needs dask[distributed]: pip install 'dask[distributed]'") from None
    # distributed (and asyncio, for its background gathers) log a lost scheduler as multi-page
    # tracebacks; the sweep says it in one line
    logs = cluster_loggers()
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.CRITICAL + 1)
    try:
        try:
            client = Client(address, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {address!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        try:
            yield from _dask_rows(client, todo, address, timeout)
        finally:
            try:
                client.close(timeout=timeout)
            except Exception:  # noqa: BLE001 - the scheduler may already be gone; nothing is left to close
                pass
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


def _dask_rows(client, todo: list[RunConfig], address: str, timeout: float):
    """Rows as the cluster finishes them. Never blocks for longer than a short poll (so Ctrl-C is
    seen at once), and gives up with one line when the scheduler goes away, a worker dies under a
    run, or the cluster has had no worker for ``timeout`` seconds (it would otherwise wait for ever:
    a result lost with its worker goes back to waiting for a worker)."""
    from distributed import as_completed

    kept = "the finished runs are kept: run the same command again to resume"
    idle_since: float | None = None

    def check_cluster(waiting: int) -> None:
        nonlocal idle_since
        if client.status != "running":
            raise SweepError(f"lost the Dask scheduler at {address!r}; {kept}")
        if client.scheduler_info(n_workers=-1).get("workers"):
            idle_since = None
            return
        if idle_since is None:
            idle_since = time.monotonic()
        if time.monotonic() - idle_since > timeout:
            raise SweepError(f"the Dask cluster at {address!r} has had no worker for {timeout:g} s "
                             f"({waiting} runs waiting): start workers, or raise --dask-timeout")

    futures = client.map(run_one, todo, pure=False)
    # results are gathered in the background (with_results): a foreground wait for a result whose
    # worker just died would wait for a recomputation, and so for a worker, for ever
    ac = as_completed(futures, with_results=True, raise_errors=False)
    try:
        while not ac.is_empty():
            batch = ac.next_batch(block=False)
            for fut, row in batch:
                if fut.status == "error" or isinstance(row, BaseException):
                    if type(row).__name__ == "KilledWorker":
                        raise SweepError(f"a Dask worker died during a run ({fut.key}); {kept}")
                    raise row if isinstance(row, BaseException) else fut.exception()
                yield row
            if not batch:
                time.sleep(POLL_SECONDS)
                check_cluster(ac.count())
    except SweepError:
        raise
    except Exception as exc:  # noqa: BLE001 - the scheduler went away (OSError, CommClosedError, CancelledError ...)
        if isinstance(exc, (OSError, TimeoutError, EOFError)) or type(exc).__module__.startswith(
                ("distributed", "concurrent", "asyncio", "tornado")):
            raise SweepError(f"lost the Dask scheduler at {address!r} ({type(exc).__name__}); {kept}") from None
        raise
    finally:
        if client.status == "running":  # an interrupted sweep leaves no work queued on the cluster
            client.cancel(futures)


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    """What :func:`run_sweep` did; ``rows`` are the grid's rows, decoded, in grid order."""

    rows: list[dict[str, Any]]
    runs: int
    computed: int
    skipped: int
    failed: int
    seconds: float
    path: Path | None = None

    def summary(self) -> dict[str, Any]:
        return {"csv": str(self.path) if self.path else None, "runs": self.runs, "computed": self.computed,
                "skipped": self.skipped, "failed": self.failed, "seconds": round(self.seconds, 3)}


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, initial=initial, desc="sweep", unit="run", file=sys.stderr, leave=False,
                dynamic_ncols=True)


def run_sweep(experiment: Experiment | Iterable[RunConfig], path: str | os.PathLike | None = None, *,
              jobs: int | None = None, dask_scheduler: str | None = None, dask_timeout: float = 10.0,
              progress: bool = False,
              overwrite: bool = False, validate: bool = True,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run every configuration of ``experiment`` (see the module docstring).

    ``path``: the results CSV (appended to and resumed from; ``None`` keeps the rows in
    memory only). ``jobs``: local processes (default ``os.cpu_count()``); ``dask_scheduler``:
    the address of a Dask scheduler to run on instead (``dask_timeout``: seconds to wait for
    it to answer). ``progress``: a tqdm bar on stderr.
    ``on_row`` is called with each newly computed (typed) row as it is written.
    Raises :class:`SweepError` for a bad grid before anything runs.
    """
    t0 = time.perf_counter()
    if isinstance(experiment, Experiment):
        if validate:
            experiment.validate()
        runs = experiment.runs()
    else:
        runs = list(experiment)
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SweepError(f"jobs must be a positive integer, got {jobs!r}")
    # the same configuration twice in one grid is one run
    order, seen = [], set()
    unique: list[RunConfig] = []
    for r in runs:
        k = r.key()
        if k not in seen:
            seen.add(k)
            order.append(k)
            unique.append(r)
    store = _ResultsFile(Path(path), overwrite) if path is not None else None
    memory: dict[tuple[str, ...], list[str]] = {}
    have = store.rows if store is not None else memory
    todo = [r for r in unique if r.key() not in have]
    skipped = len(unique) - len(todo)
    bar = _progress_bar(len(unique), skipped, progress)
    computed = 0
    rows = _dask(todo, dask_scheduler, dask_timeout) if dask_scheduler else _local(todo, jobs)
    try:
        for row in rows:
            cells = format_row(row)
            if store is not None:
                store.add(cells)
            else:
                memory[tuple(cells[: len(CONFIG_COLUMNS)])] = cells
            computed += 1
            if on_row is not None:
                on_row(row)
            if bar is not None:
                bar.update(1)
    finally:
        rows.close()  # stops the pool or the Dask client at once, also on an interrupt
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    if store is not None:
        store.finish(order)
    names = columns()
    final = [decode_row(dict(zip(names, have[k]))) for k in order]
    failed = sum(1 for r in final if r.get("error"))
    return SweepResult(final, len(unique), computed, skipped, failed, time.perf_counter() - t0,
                       Path(path) if path is not None else None)


__all__ = ["SweepError", "RunConfig", "Experiment", "SweepResult", "CONFIG_COLUMNS", "RENAMED", "columns", "metric_columns",
           "AXES", "SETTINGS", "FILE_KEYS", "parse_processors", "experiment_from_mapping", "read_experiment",
           "run_one", "run_sweep", "read_rows", "decode_row", "format_row", "is_results_file", "default_schedules"]
