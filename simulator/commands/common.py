"""Options shared by the subcommands that build and run schedules (simulate, compare, trace, gantt, ...).

:func:`add_run_arguments` adds the network and the common options to a parser;
:func:`add_schedule_options` adds one flag per schedule option of the method registry
(``schedules.registry.OPTIONS``); :func:`resolve` turns parsed arguments into
``(network, platform, schedule)``:

=====================  ================================================================
option                 meaning (default)
=====================  ================================================================
NETWORK                zoo name, ``mlp:784-256-10``, or a .yaml/.json/.csv network file
--schedule NAME        schedule builder of ``schedules.registry`` (required)
--processors P         processors to run on (4)
--hardware TEXT        processor cost model, ``mac:256`` or ``systolic:32x32:ws`` (mac:256)
--link LAT,BW          link latency and bytes per cycle, or ``none`` (100,16)
--topology NAME        full, ring or mesh (full)
--minibatches N        optimizer steps to simulate at least (auto: as short as the exact steady state allows;
                       trace and gantt: max(32, 4 (L + 1)) for L weight layers)
--batch B              samples per minibatch (32)
--microbatches M       micro-batches per step of the flush schedules (the builder's)
--input CxHxW          input shape per sample (the network's)
--no-overlap           a processor cannot compute while it sends (overlap on)
--memory-capacity SIZE memory per processor, e.g. 8GiB; plans that need more are not run (unlimited)
--parallelism MODE     pipeline (no stage replication for any method) or hybrid (replication
                       allowed for every method, PipeDream's default) (hybrid)
--no-limits            run even when ``simulator.limits`` estimates that the run would
                       exhaust memory or take hours (it refuses such runs by default)
=====================  ================================================================

The platform options make a :class:`simulator.platform.PlatformSpec`, the same object the
library, sweeps and plots use. Every bad value ends as a
:class:`models.errors.LayerPipeError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import math

from models.errors import LayerPipeError

DEFAULTS = {"processors": 4, "hardware": "mac:256", "link": "100,16", "topology": "full", "minibatches": None,
            "batch": 32}


def schedule_names() -> tuple[str, ...]:
    from schedules.registry import SCHEDULES

    return SCHEDULES


def bounded_int(low: int, high: int):
    """An argparse type: a plain decimal integer in [low, high] (beyond ``high`` a run would take
    days or the memory of a cluster; the message says so in one line).

    >>> bounded_int(1, 10)("3"), bounded_int(1, 10).__name__
    (3, 'integer in [1, 10]')
    """
    def parse(text: str) -> int:
        from models.userfiles import is_plain_int

        t = text.strip()
        if not is_plain_int(t.lstrip("-")) or not low <= int(t) <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low:,} to {high:,}, got {text[:30]!r}")
        return int(t)
    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def finite_float(low: float, strict: bool = False):
    """An argparse type: a finite number at least ``low`` (above it when ``strict``).

    >>> finite_float(0.0)("0.5"), finite_float(0.0, strict=True).__name__
    (0.5, 'number above 0')
    """
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:30]!r}") from None
        if not math.isfinite(v) or v < low or (strict and v == low):
            raise argparse.ArgumentTypeError(f"expected a finite number {'above' if strict else 'at least'} {low:g}, "
                                             f"got {text[:30]!r}")
        return v
    parse.__name__ = f"number {'above' if strict else 'at least'} {low:g}"
    return parse


def add_platform_arguments(parser: argparse.ArgumentParser, *, processors: int | None = DEFAULTS["processors"],
                           processors_help: str | None = None) -> None:
    """--processors, --hardware, --link, --topology, --no-overlap, --memory-capacity."""
    from simulator.platform import TOPOLOGIES

    parser.add_argument("--processors", "-p", type=int, default=processors, metavar="P",
                        help=processors_help or f"number of processors (default {processors})")
    parser.add_argument("--hardware", default=DEFAULTS["hardware"], metavar="TEXT",
                        help="processor cost model: mac:MACS[:lanes=N][:overhead=N] or "
                             f"systolic:RxC[:os|ws|is] (dataflow default ws; default {DEFAULTS['hardware']})")
    parser.add_argument("--link", default=None, metavar="LAT,BW",
                        help="link latency in cycles and bandwidth in bytes per cycle, e.g. 100,16; "
                             f"'none' for free communication (default {DEFAULTS['link']}; a uniform: network "
                             "with comm=C: C,inf)")
    parser.add_argument("--topology", default=DEFAULTS["topology"], choices=TOPOLOGIES,
                        help=f"processor interconnect (default {DEFAULTS['topology']})")
    parser.add_argument("--no-overlap", dest="overlap", action="store_false",
                        help="a processor cannot compute while its outgoing transfers are sent")
    parser.add_argument("--memory-capacity", dest="memory_capacity", metavar="SIZE", default=None,
                        help="memory per processor, e.g. 8GiB or 512MB; a plan that needs more on some processor "
                             "is not chosen (default: unlimited)")


def add_run_arguments(parser: argparse.ArgumentParser, *, network: bool = True, schedule: bool = True) -> None:
    """The network argument and every common option (see the module docstring)."""
    if network:
        parser.add_argument("network", help="zoo name (see `layerpipe networks`), mlp:N0-N1-..., or a "
                                            ".yaml/.json/.csv network file")
    if schedule:
        parser.add_argument("--schedule", "-s", required=True, metavar="NAME",
                            help="schedule to build: " + ", ".join(schedule_names()))
    add_platform_arguments(parser)
    parser.add_argument("--minibatches", "-n", type=int, default=DEFAULTS["minibatches"], metavar="N",
                        help="optimizer steps to simulate at least; a run is lengthened until its steady "
                             "state is known (default: each run as short as its exact steady state allows; "
                             "trace and gantt: max(32, 4 x (weight layers + 1)))")
    parser.add_argument("--batch", "-b", type=int, default=DEFAULTS["batch"], metavar="B",
                        help=f"samples per minibatch (default {DEFAULTS['batch']})")
    parser.add_argument("--microbatches", "-m", type=int, default=None, metavar="M",
                        help="micro-batches per step of the flush schedules (gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-h2, "
                             "zb-v; default: the builder's)")
    parser.add_argument("--input", metavar="CxHxW", default=None,
                        help="input shape per sample, e.g. 3x32x32 (default: the network's)")
    parser.add_argument("--parallelism", choices=("pipeline", "hybrid"), default=None,
                        help="pipeline: no stage replication for any method; hybrid: replication allowed for every "
                             "method, PipeDream's default (default hybrid)")
    parser.add_argument("--no-limits", dest="no_limits", action="store_true",
                        help="run even if the estimate says the run would exhaust memory (4 GB) or take "
                             "hours (1 h); see simulator/limits.py")


def add_schedule_options(parser: argparse.ArgumentParser) -> None:
    """One flag per option of the method registry (micro-batches come with the run arguments)."""
    from schedules.registry import METHODS, OPTIONS

    for opt in OPTIONS.values():
        if opt.name in ("microbatches", "parallelism"):  # they come with the run arguments
            continue
        dash = opt.name.replace("_", "-")
        who = ", ".join(m.name for m in METHODS.values() if opt.name in m.options) or "every schedule"
        text = f"{who}: {opt.help}"
        if opt.flag and opt.default:
            parser.add_argument(f"--no-{dash}", dest=opt.name, action="store_false", default=None,
                                help=f"{who}: do not {opt.help}")
        elif opt.flag:
            parser.add_argument(f"--{dash}", dest=opt.name, action="store_true", default=None, help=text)
        else:
            parser.add_argument(f"--{dash}", dest=opt.name, default=None, metavar=opt.metavar, choices=opt.choices,
                                help=text)


def platform_spec_from_args(args: argparse.Namespace):
    """The :class:`simulator.platform.PlatformSpec` the options describe."""
    from simulator.platform import PlatformSpec, network_link, parse_bytes

    capacity = getattr(args, "memory_capacity", None)
    link = network_link(getattr(args, "network", None), args.link)
    return PlatformSpec(args.processors, args.hardware, link, args.topology, getattr(args, "overlap", True),
                        parse_bytes(capacity) if capacity is not None else None)


def platform_from_args(args: argparse.Namespace):
    """The :class:`simulator.platform.Platform` the options describe (a huge one is refused
    before it is built unless --no-limits)."""
    from simulator.limits import guarded_platform

    spec = platform_spec_from_args(args)
    if getattr(args, "no_limits", False):
        return spec.build()
    return guarded_platform(spec, override="--no-limits" if hasattr(args, "no_limits") else None)


def network_from_args(args: argparse.Namespace):
    from models.network.zoo import load_network, parse_input_shape

    return load_network(args.network, parse_input_shape(getattr(args, "input", None)))


def schedule_options(args: argparse.Namespace) -> dict:
    """The schedule options given on the command line (only those set)."""
    from schedules.registry import OPTIONS

    return {name: getattr(args, name) for name in OPTIONS if getattr(args, name, None) is not None}


def check_sizes(args: argparse.Namespace) -> None:
    for flag, value in (("--minibatches", args.minibatches), ("--batch", args.batch), ("--processors", args.processors)):
        if value is not None and value < 1:
            raise LayerPipeError(f"{flag} must be a positive integer, got {value}")


def minibatches_from_args(args: argparse.Namespace, network) -> int:
    from simulator.runs import auto_minibatches

    return args.minibatches if args.minibatches is not None else auto_minibatches(network)


def run_length(args: argparse.Namespace) -> str:
    """How long the runs of a table were, for its title."""
    if args.minibatches is None:
        return "each run as long as its exact steady state needs"
    return f"at least {args.minibatches} minibatches"


def resolve(args: argparse.Namespace, schedule_name: str | None = None, *, trace: bool = True):
    """``(network, platform, schedule)`` from parsed arguments.

    ``schedule_name`` overrides ``args.schedule`` (for commands that build several). A run
    that :mod:`simulator.limits` estimates too large is refused unless --no-limits; ``trace``
    says the caller keeps the run's trace in memory (``trace`` and ``gantt`` do).
    """
    from schedules.registry import build_schedule, method
    from simulator.limits import check, estimate_run
    from simulator.selection import choose

    name = schedule_name or args.schedule
    method(name)
    check_sizes(args)
    network = network_from_args(args)
    platform = platform_from_args(args)
    options, n = schedule_options(args), minibatches_from_args(args, network)
    if not args.no_limits:
        check([estimate_run(network, name, platform.size, minibatches=n, batch=args.batch,
                            microbatches=options.get("microbatches"), trace=trace)])
    # the plan compare would run (simulator.selection), built for the minibatches asked for
    choice = choose(name, network, platform, minibatches=n, batch=args.batch, **options)
    if choice.chosen is None:
        raise LayerPipeError(choice.why_not() + ": give the processors more memory (--memory-capacity) or add processors")
    plan = {"plan": choice.chosen.candidate.plan} if choice.chosen.candidate is not None else {}
    schedule = build_schedule(name, network, platform, minibatches=n, batch=args.batch, **options, **plan)
    return network, platform, schedule


__all__ = ["bounded_int", "finite_float", "DEFAULTS", "check_sizes", "minibatches_from_args", "run_length", "add_run_arguments", "add_platform_arguments",
           "add_schedule_options", "resolve", "platform_spec_from_args", "platform_from_args", "network_from_args",
           "schedule_options", "schedule_names"]
