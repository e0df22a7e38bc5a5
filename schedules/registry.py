"""Schedules by name: what each method is, what it accepts, and one door to build it.

:data:`METHODS` is the one list of methods. Each :class:`Method` says how to build it (every
builder has the signature ``build(network, hw, *, minibatches, batch, word_bytes, spike_bits,
**options)``), which :data:`OPTIONS` it accepts, whether a step is a synchronous flush of
micro-batches, and what the limits guard (``simulator.limits``) needs to estimate its cost.
``compare``, sweeps, the limits guard and the command line read this table instead of
keeping lists of their own.

>>> from models.network.zoo import get_network
>>> from simulator.platform import Platform
>>> from simulator.costs import MacArray
>>> two = Platform.homogeneous(2, MacArray(256))
>>> s = build_schedule("pipedream", get_network("mlp"), two, minibatches=4, batch=8, parallelism="pipeline")
>>> s.processors, s.delays, s.info["stages"]
(2, {1: 2, 2: 0, 3: 0}, [(1, 1, 1), (2, 3, 1)])
>>> build_schedule("pipedream", get_network("mlp"), two, minibatches=4, batch=8).info["stages"]  # free links: replicate
[(1, 3, 2)]
>>> METHODS["layerpipe2"].accepts("groups"), METHODS["pipedream"].accepts("groups")
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.errors import ScheduleError
from models.graph.build import training_graph
from models.network.spec import NetworkSpec, weight_layers
from models.network.spiking import is_spiking
from schedules.methods.chunked import interleaved_microbatches
from schedules.methods.gpipe import default_microbatches, gpipe
from schedules.methods.interleaved import DEFAULT_VIRTUAL_STAGES, interleaved_1f1b
from schedules.methods.layerpipe import layerpipe, plan_layerpipe
from schedules.methods.layerpipe2 import layerpipe2, plan_layerpipe2
from schedules.methods.onefoneb import one_f_one_b
from schedules.methods.optimal import VIEWS, OptimalPlan, plan_optimal, view_for
from schedules.methods.pipedream import pipedream
from schedules.methods.sequential import sequential_method
from schedules.methods.spikepipe import plan_spikepipe, spikepipe
from schedules.methods.zbv import zb_v
from schedules.methods.zerobubble import zb_h1, zb_h2
from schedules.planning.candidates import PARALLELISM, Candidate, candidate_plans, check_parallelism
from schedules.planning.modulo import DEFAULT_TIME_LIMIT
from schedules.planning.partition import StagePlan
from schedules.schedule import Schedule
from simulator.hardware import Hardware

# --------------------------------------------------------------------------- options


def _positive_int(name: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ScheduleError(f"{name} must be a positive integer, got {value!r}")
        return value
    return parse


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ScheduleError(f"expected true or false, got {value!r}")


def _ag_split(value: Any) -> str | float:
    if value in ("design", "balanced"):
        return value
    try:
        rho = float(value)
    except (TypeError, ValueError):
        rho = -1.0
    if isinstance(value, bool) or not 0 <= rho <= 1:
        raise ScheduleError(f"--ag-split must be design, balanced or a fraction in [0, 1], got {value!r}")
    return rho


def _memory(value: Any) -> str:
    if value not in ("ema", "stash"):
        raise ScheduleError(f"memory model must be 'ema' or 'stash', got {value!r}")
    return value


def _parallelism(value: Any) -> str:
    return check_parallelism(value)


def _groups(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ScheduleError(f"layer groups must be text such as 1-3,4-6 or a count, got {value!r}")
    return value


#: the methods an optimal schedule can be the reference of: one update per minibatch (asynchronous)
OPTIMAL_OF = ("pipedream", "layerpipe", "layerpipe2", "spikepipe")


def _reference_method(value: Any) -> str:
    if value not in OPTIMAL_OF:
        raise ScheduleError(f"--of must name an asynchronous method ({', '.join(OPTIMAL_OF)}), got {value!r}")
    return value


#: the task granularities an optimal schedule can be taken over: the method's own, or a view of the network
GRANULARITIES = ("own", *VIEWS)


def _granularity(value: Any) -> str:
    if value not in GRANULARITIES:
        raise ScheduleError(f"--granularity must be one of {', '.join(GRANULARITIES)}, got {value!r}")
    return value


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0 or seconds > 86_400:
        raise ScheduleError(f"--time-limit must be a positive number of seconds (at most a day), got {value!r}")
    return seconds


def _unroll(value: Any) -> int:
    k = _positive_int("--unroll")(value)
    if k > 8:
        raise ScheduleError(f"--unroll must be at most 8 minibatches per period, got {k}")
    return k


@dataclass(frozen=True)
class Option:
    """A schedule option: its keyword, what it means, and how a value is checked."""

    name: str
    help: str
    parse: Callable[[Any], Any]
    flag: bool = False  # a yes/no switch
    default: Any = None  # the builders' default (for a switch: what it is when not given)
    metavar: str | None = None
    choices: tuple[str, ...] | None = None


OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("microbatches", "micro-batches per step (default: the smallest divisor of the batch >= P)",
           _positive_int("--microbatches"), metavar="M"),
    Option("parallelism", "pipeline (no stage replication for any method) or hybrid (replication allowed for "
           "every method, PipeDream's default; the default)", _parallelism, choices=PARALLELISM),
    Option("replicate", "consider only the plans of a planner that may replicate stages", _flag, flag=True,
           default=False),
    Option("offload", "move weight-gradient tasks off their layer's processor when it shortens the period",
           _flag, flag=True, default=True),
    Option("groups", "layers sharing a delay, '1-3,4-6' or a count (default: the processor stages)",
           _groups, metavar="GROUPS"),
    Option("memory", "weight memory model: ema (rebuild past weights) or stash (default ema)",
           _memory, choices=("ema", "stash")),
    Option("ag_split", "the activation-gradient split: design (AG1 on layer l, element-wise AG2 on l-1; default), "
           "balanced (a fraction of AG1's product moves to l-1 to equalise the two layers' work) or a fraction RHO",
           _ag_split, metavar="design|balanced|RHO"),
    Option("virtual_stages", "chunks per processor (Megatron's virtual pipeline stages; default 2)",
           _positive_int("--virtual-stages"), metavar="V"),
    Option("spike_bits", "spiking networks: count binary spike tensors as 1 bit per element (default 1 byte)",
           _flag, flag=True, default=False),
    Option("of", "the method whose task graph and delays the optimal schedule keeps: "
           + ", ".join(OPTIMAL_OF) + " (default layerpipe2)", _reference_method, metavar="METHOD"),
    Option("time_limit", f"the solver's limit, in CP-SAT's deterministic seconds (default {DEFAULT_TIME_LIMIT:g})",
           _seconds, metavar="SECONDS"),
    Option("unroll", "minibatches per period of the optimal schedule (default 1; at most 8)",
           _unroll, metavar="K"),
    Option("granularity", "the tasks the optimal schedule places: own (the method's; default), layerpipe (F, "
           "WG, AG1, AG2, U per layer), pipedream (F, B, U) or zerobubble (F, B, W, U), with the method's delays",
           _granularity, choices=GRANULARITIES),
)}


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One scheduling method (see the module docstring).

    ``tasks_per_stage``: task instances per stage and unit (at most) when the method works on stage
    templates (PipeDream, GPipe and 1F1B F, B, U; the zero-bubble schedules F, B, W, U); None when
    it schedules the fine graph. ``planner``: the planning the builder does besides ordering
    ("pipedream": the stage DP; "layerpipe": the DP, list-scheduled candidates and the offloading
    search). ``chunked``: several stages (chunks) per processor, up to one per layer.
    ``microbatch_rule(batch, processors)``: the default micro-batches per step of a flush method.
    """

    name: str
    build: Callable[..., Schedule]
    options: frozenset[str]
    summary: str
    synchronous: bool = False
    tasks_per_stage: int | None = None
    planner: str | None = None
    spiking_only: bool = False  # in the default list for spiking networks only
    reference: bool = False  # the speedup reference, not a method to compare
    on_request: bool = False  # run only when named (a solver's reference, not in the default comparison)
    chunked: bool = False
    virtual: int | None = None  # chunks per processor of a chunked method (None: its virtual_stages option)
    microbatch_rule: Callable[[int, int], int] = default_microbatches
    #: the part of ``build`` that does not depend on the run length, for a method whose planning is
    #: costly: ``prepare(network, hw, batch=..., **options)`` returns an object whose
    #: ``schedule(minibatches)`` orders it (None: ``build`` is cheap, call it for every length)
    prepare: Callable[..., Any] | None = None

    @property
    def plans(self) -> bool:
        """The method plans pipeline stages (and so takes a plan and the parallelism mode)."""
        return "parallelism" in self.options

    def accepts(self, option: str) -> bool:
        return option in self.options or option == "spike_bits"

    def not_applicable(self, network: NetworkSpec, processors: int, options: dict[str, Any] | None = None,
                       batch: int | None = None) -> str | None:
        """Why this method cannot run ``network`` on ``processors`` processors (with ``batch``
        samples per step, when given), or None when it can: a chunked method needs a weight layer
        per chunk at least, and a flush method a default number of micro-batches for the batch."""
        options = options or {}
        if self.chunked:
            given = options.get("virtual_stages")
            v = self.virtual or (OPTIONS["virtual_stages"].parse(given) if given is not None else DEFAULT_VIRTUAL_STAGES)
            layers = len(weight_layers(network))
            if layers < v * processors:
                return f"{v} chunks on each of {processors} processors need {v * processors} weight layers; " \
                       f"{network.name} has {layers}"
        if self.synchronous and batch is not None and options.get("microbatches") is None:
            try:
                self.microbatch_rule(batch, processors)
            except ScheduleError as exc:
                return str(exc)
        return None

    def units_per_step(self, batch: int, processors: int, microbatches: int | None = None) -> int:
        """Units (micro-batches) per optimizer step: m for the flush schedules, else 1."""
        if not self.synchronous:
            return 1
        return microbatches if microbatches is not None else self.microbatch_rule(batch, processors)


_PLANNED = frozenset({"parallelism", "replicate"})
_LAYERPIPE_OPTIONS = _PLANNED | {"offload", "ag_split"}
_FLUSH = dict(synchronous=True, planner="pipedream", options=_PLANNED | {"microbatches"})


def plan_optimal_reference(network: NetworkSpec, hw: Hardware, *, batch: int, word_bytes: int = 2,
                           spike_bits: bool = False, of: str = "layerpipe2", time_limit: float = DEFAULT_TIME_LIMIT,
                           unroll: int = 1, granularity: str = "own", **reference_options) -> OptimalPlan:
    """The optimal schedule of method ``of``'s task graph and delays (:mod:`schedules.methods.optimal`):
    ``of`` planned in the pipeline mode (one update per minibatch: the model's), with the
    options it accepts among ``reference_options``; ``granularity``: the tasks placed, the method's
    own or a view of the network (:data:`GRANULARITIES`), under the method's delays."""
    ref = METHODS[_reference_method(of)]
    opts = {k: v for k, v in reference_options.items() if ref.accepts(k)}
    if ref.plans:
        opts["parallelism"] = "pipeline"

    def build(minibatches: int) -> Schedule:
        return ref.build(network, hw, minibatches=minibatches, batch=batch, word_bytes=word_bytes,
                         spike_bits=spike_bits, **opts)

    own = view_for(ref.tasks_per_stage)
    view = own if granularity in ("own", own or "layerpipe") else _granularity(granularity)
    return plan_optimal(build(max(8, 2 * hw.size)), network, hw, batch=batch, word_bytes=word_bytes,
                        spike_bits=spike_bits, view=view, unroll=unroll,
                        time_limit=time_limit, fallback=build)


def optimal_reference(network: NetworkSpec, hw: Hardware, *, minibatches: int, **options) -> Schedule:
    """The optimal schedule's orders for ``minibatches`` minibatches (:func:`plan_optimal_reference`)."""
    return plan_optimal_reference(network, hw, **options).schedule(minibatches)


#: every method, the reference and the baselines first
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("sequential", sequential_method, frozenset(), "one processor, every task in order (the reference)",
           reference=True),
    Method("pipedream", pipedream, _PLANNED,
           "PipeDream: planned stages, asynchronous 1F1B, weight stashing", tasks_per_stage=3, planner="pipedream"),
    Method("gpipe", gpipe, summary="GPipe: micro-batches with a flush", tasks_per_stage=3, **_FLUSH),
    Method("1f1b", one_f_one_b, summary="1F1B with a flush (Megatron's), backward as one task", tasks_per_stage=3,
           **_FLUSH),
    Method("interleaved-1f1b", interleaved_1f1b, frozenset({"microbatches", "virtual_stages"}),
           "interleaved 1F1B: v chunks per processor (Megatron's virtual stages), straight pipeline",
           synchronous=True, tasks_per_stage=3, planner="pipedream", chunked=True,
           microbatch_rule=interleaved_microbatches),
    Method("zb-h1", zb_h1, summary="zero-bubble ZB-H1: deferred weight gradients fill the cool-down",
           tasks_per_stage=4, **_FLUSH),
    Method("zb-h2", zb_h2,
           summary="zero-bubble ZB-H2: twice the warm-up, W trailing B by 2s (2P-1 micro-batches in flight)",
           tasks_per_stage=4, **_FLUSH),
    Method("zb-v", zb_v, frozenset({"microbatches"}),
           "zero-bubble ZB-V: two chunks per processor in a V, 1F1B's memory, straight pipeline",
           synchronous=True, tasks_per_stage=4, planner="pipedream", chunked=True, virtual=2),
    Method("layerpipe", layerpipe, _LAYERPIPE_OPTIONS,
           "LayerPipe: fine tasks, partition + weight-gradient offloading + list scheduling", planner="layerpipe",
           prepare=plan_layerpipe),
    Method("layerpipe2", layerpipe2, _LAYERPIPE_OPTIONS | {"groups", "memory"},
           "LayerPipe2: grouped delays, EMA weight reconstruction", planner="layerpipe", prepare=plan_layerpipe2),
    Method("spikepipe", spikepipe, _LAYERPIPE_OPTIONS,
           "SpikePipe: LayerPipe's machinery on spiking networks, stage-grouped delays", planner="layerpipe",
           spiking_only=True, prepare=plan_spikepipe),
    Method("optimal", optimal_reference, frozenset({"of", "time_limit", "unroll", "granularity", "offload",
                                                    "ag_split", "groups", "memory"}),
           "the best modulo schedule of another method's task graph and delays (CP-SAT; run when named)",
           on_request=True, prepare=plan_optimal_reference),
)}
SCHEDULES = tuple(METHODS)
SYNCHRONOUS = tuple(name for name, m in METHODS.items() if m.synchronous)


def method(name: str) -> Method:
    """The :class:`Method` called ``name``; :class:`ScheduleError` naming the known ones otherwise."""
    found = METHODS.get(name)
    if found is None:
        raise ScheduleError(f"unknown schedule {name!r} (known: {', '.join(METHODS)})")
    return found


def default_schedules(network: NetworkSpec | None = None, processors: int | None = None,
                      options: dict[str, Any] | None = None, batch: int | None = None) -> tuple[str, ...]:
    """The methods a comparison runs by default: all but the reference, the spiking-only ones only
    for a spiking network (elsewhere they add nothing), and with ``processors`` only those that
    apply (:meth:`Method.not_applicable`). With no network, every one."""
    spiking = network is None or any(is_spiking(n.layer) for n in network.nodes)
    return tuple(m.name for m in METHODS.values() if not m.reference and not m.on_request
                 and (spiking or not m.spiking_only)
                 and (network is None or processors is None
                      or m.not_applicable(network, processors, options, batch) is None))


def applicable(name: str, network: NetworkSpec, processors: int, batch: int | None = None, **options) -> bool:
    """Whether method ``name`` can run ``network`` on ``processors`` processors (:meth:`Method.not_applicable`)."""
    return method(name).not_applicable(network, processors, options, batch) is None


def training_compensation(name: str, options: dict[str, Any] | None = None) -> str:
    """How a method's schedule deals with the staleness it creates, as the training core names it
    (``models.training.COMPENSATIONS``): LayerPipe2 rebuilds past weights from an EMA of the
    updates unless its ``memory`` option says ``stash``; every other method stashes weights
    (PipeDream, LayerPipe, SpikePipe; a synchronous schedule has nothing stale to stash).

    >>> training_compensation("layerpipe2"), training_compensation("layerpipe2", {"memory": "stash"})
    ('ema', 'stash')
    """
    method(name)
    if name == "layerpipe2":
        return (options or {}).get("memory") or "ema"
    return "stash"


def schedule_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of ``options`` that method ``name`` accepts, checked (None values dropped)."""
    m = method(name)
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ScheduleError(f"unknown schedule option(s): {', '.join(sorted(unknown))}")
    return {k: OPTIONS[k].parse(v) for k, v in options.items() if v is not None and m.accepts(k)}


def schedule_builder(name: str, network: NetworkSpec, platform, *, batch: int = 32, word_bytes: int = 2,
                     plan: StagePlan | None = None, **options) -> Callable[[int], Schedule]:
    """``minibatches -> Schedule``: :func:`build_schedule` with everything but the run length fixed,
    planning done once (the first call) for a method with a ``prepare`` step, so a run lengthened
    until it converges does not plan again for every length it tries.

    >>> from models.network.zoo import get_network
    >>> from simulator.platform import PlatformSpec
    >>> make = schedule_builder("layerpipe", get_network("mlp"), PlatformSpec(2).build(), batch=8)
    >>> make(4).orders == build_schedule("layerpipe", get_network("mlp"), PlatformSpec(2).build(), minibatches=4,
    ...                                  batch=8).orders
    True
    """
    m = method(name)
    if m.prepare is None:
        return lambda n: build_schedule(name, network, platform, minibatches=n, batch=batch, word_bytes=word_bytes,
                                        plan=plan, **options)
    opts = _builder_options(m, plan, options)
    planned: list = []

    def make(minibatches: int) -> Schedule:
        _check_minibatches(minibatches)
        if not planned:
            planned.append(m.prepare(network, Hardware.of(platform), batch=batch, word_bytes=word_bytes, **opts))
        return planned[0].schedule(minibatches)

    return make


def _check_minibatches(minibatches: Any) -> None:
    if not isinstance(minibatches, int) or isinstance(minibatches, bool) or minibatches < 1:
        raise ScheduleError(f"number of minibatches must be a positive integer, got {minibatches!r}")


def _builder_options(m: Method, plan: StagePlan | None, options: dict[str, Any]) -> dict[str, Any]:
    opts = schedule_options(m.name, options)
    opts["spike_bits"] = bool(opts.pop("spike_bits", False))
    if plan is not None:
        if not m.plans:
            raise ScheduleError(f"{m.name} plans no stages: it takes no plan")
        opts["plan"] = plan
    return opts


def build_schedule(name: str, network: NetworkSpec, platform, *, minibatches: int = 16, batch: int = 32,
                   word_bytes: int = 2, plan: StagePlan | None = None, **options) -> Schedule:
    """Build method ``name`` for ``minibatches`` optimizer steps of ``batch`` samples on every
    processor of ``platform``; ``options`` a method does not accept are ignored (see
    :data:`OPTIONS`; an unknown option name is an error). ``plan`` fixes the stage plan of a
    method that plans stages (:attr:`Method.plans`); without it the method's own planner picks
    one of the candidates (``schedules.planning.candidates``)."""
    m = method(name)
    _check_minibatches(minibatches)
    opts = _builder_options(m, plan, options)
    return m.build(network, Hardware.of(platform), minibatches=minibatches, batch=batch, word_bytes=word_bytes, **opts)


def plan_candidates(name: str, network: NetworkSpec, platform, *, batch: int = 32, word_bytes: int = 2,
                    **options) -> list[Candidate]:
    """The candidate stage plans method ``name`` may run on (``schedules.planning.candidates``),
    for the unit it schedules (a micro-batch of the flush methods); empty for a method that plans
    no stages."""
    m = method(name)
    if not m.plans:
        return []
    opts = schedule_options(name, options)
    units = m.units_per_step(batch, platform.size, opts.get("microbatches"))
    if batch % units:
        raise ScheduleError(f"batch {batch} cannot be split into {units} equal micro-batches")
    fine = training_graph(network, batch // units, word_bytes=word_bytes, spike_bits=bool(opts.get("spike_bits")),
                          ag_split=opts.get("ag_split", "design"))
    return candidate_plans(fine, Hardware.of(platform), parallelism=opts.get("parallelism", "hybrid"),
                           replicate=opts.get("replicate"))


__all__ = ["Option", "OPTIONS", "Method", "METHODS", "SCHEDULES", "SYNCHRONOUS", "method", "default_schedules", "applicable",
           "training_compensation", "schedule_options", "build_schedule", "schedule_builder", "plan_candidates"]
