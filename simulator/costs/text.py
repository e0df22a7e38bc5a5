"""The text forms of processors and links: ``mac:256``, ``systolic:32x32:ws``, ``100,16``.

>>> from models.graph.work import TaskWork
>>> parse_hardware("systolic:4x4:ws").task_cycles(TaskWork(macs=512, gemms=((8, 8, 8),)))
72
>>> parse_link("100,16").transfer_cycles(64)
104
"""

from __future__ import annotations

import math

from models.errors import HardwareError
from models.userfiles import is_plain_int
from simulator.costs.links import FREE_LINK, LinkModel
from simulator.costs.processors import DATAFLOWS, CostModel, MacArray, SystolicArray

HARDWARE_FORMS = (
    "mac:MACS_PER_CYCLE[:lanes=N][:overhead=N] or "
    "systolic:ROWSxCOLS[:os|ws|is][:lanes=N][:overhead=N] (e.g. mac:256, systolic:32x32:ws)"
)
LINK_FORMS = "LATENCY,BYTES_PER_CYCLE (e.g. 100,16), 'none' or '0,inf' for free communication"


def _parse_options(text: str, parts: list[str], allowed: tuple[str, ...]) -> dict[str, int]:
    """Parse ``key=value`` tokens into ints, rejecting unknown/duplicate keys and bad values."""
    options: dict[str, int] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq:
            raise HardwareError(f"hardware {text!r}: unexpected field {part!r}; accepted forms: {HARDWARE_FORMS}")
        if key not in allowed:
            raise HardwareError(
                f"hardware {text!r}: unknown option {key!r} (allowed: {', '.join(allowed)}); accepted forms: {HARDWARE_FORMS}"
            )
        if key in options:
            raise HardwareError(f"hardware {text!r}: option {key!r} given twice; accepted forms: {HARDWARE_FORMS}")
        value = value.strip()
        if not is_plain_int(value):
            raise HardwareError(
                f"hardware {text!r}: option {key} must be a non-negative integer, got {value!r}; accepted forms: {HARDWARE_FORMS}"
            )
        options[key] = int(value)
    return options


def parse_hardware(text: str) -> CostModel:
    """Build a cost model from its command-line form.

    Forms: ``mac:MACS[:lanes=N][:overhead=N]`` and
    ``systolic:ROWSxCOLS[:os|ws|is][:lanes=N][:overhead=N]`` (dataflow defaults to ws).
    Case and surrounding spaces are ignored. Bad text raises :class:`HardwareError`.

    >>> parse_hardware("mac:256:lanes=64:overhead=10")
    MacArray(macs_per_cycle=256, vector_lanes=64, task_overhead=10)
    >>> parse_hardware("systolic:32x32:os:overhead=5").describe()
    'systolic 32x32 os, overhead 5'
    """
    if not isinstance(text, str) or not text.strip():
        raise HardwareError(f"empty hardware description; accepted forms: {HARDWARE_FORMS}")
    parts = [p.strip() for p in text.strip().lower().split(":")]
    kind = parts[0]
    if kind == "mac":
        if len(parts) < 2 or not is_plain_int(parts[1]):
            got = parts[1] if len(parts) > 1 else "nothing"
            raise HardwareError(
                f"hardware {text!r}: MACs per cycle must be a positive integer, got {got!r}; accepted forms: {HARDWARE_FORMS}"
            )
        options = _parse_options(text, parts[2:], ("lanes", "overhead"))
        try:
            return MacArray(int(parts[1]), vector_lanes=options.get("lanes"), task_overhead=options.get("overhead", 0))
        except HardwareError as exc:
            raise HardwareError(f"hardware {text!r}: {exc}; accepted forms: {HARDWARE_FORMS}") from None
    if kind == "systolic":
        dims = parts[1].split("x") if len(parts) > 1 else []
        if len(dims) != 2 or not all(is_plain_int(d.strip()) for d in dims):
            got = parts[1] if len(parts) > 1 else "nothing"
            raise HardwareError(
                f"hardware {text!r}: systolic size must be ROWSxCOLS like 32x32, got {got!r}; accepted forms: {HARDWARE_FORMS}"
            )
        rest = parts[2:]
        dataflow = "ws"
        if rest and "=" not in rest[0]:
            dataflow = rest.pop(0)
            if dataflow not in DATAFLOWS:
                raise HardwareError(
                    f"hardware {text!r}: unknown dataflow {dataflow!r} (expected os, ws or is); accepted forms: {HARDWARE_FORMS}"
                )
        options = _parse_options(text, rest, ("lanes", "overhead"))
        try:
            return SystolicArray(
                int(dims[0]),
                int(dims[1]),
                dataflow,
                vector_lanes=options.get("lanes"),
                task_overhead=options.get("overhead", 0),
            )
        except HardwareError as exc:
            raise HardwareError(f"hardware {text!r}: {exc}; accepted forms: {HARDWARE_FORMS}") from None
    raise HardwareError(f"hardware {text!r}: unknown processor kind {kind!r}; accepted forms: {HARDWARE_FORMS}")


def parse_link(text: str) -> LinkModel:
    """Build a link from ``LATENCY,BYTES_PER_CYCLE``; ``none`` or ``0,inf`` is a free link.

    >>> parse_link("100,16")
    LinkModel(latency=100, bytes_per_cycle=16.0, word_bytes=2)
    >>> parse_link("none").transfer_cycles(10**6)
    0
    """
    if not isinstance(text, str) or not text.strip():
        raise HardwareError(f"empty link description; accepted forms: {LINK_FORMS}")
    cleaned = text.strip().lower()
    if cleaned in ("none", "free"):
        return FREE_LINK
    fields = [f.strip() for f in cleaned.split(",")]
    if len(fields) != 2:
        raise HardwareError(f"link {text!r}: expected two comma-separated numbers; accepted forms: {LINK_FORMS}")
    latency_text, bandwidth_text = fields
    if not is_plain_int(latency_text):
        raise HardwareError(
            f"link {text!r}: latency must be a non-negative integer of cycles, got {latency_text!r}; accepted forms: {LINK_FORMS}"
        )
    try:
        bandwidth = float(bandwidth_text)
    except ValueError:
        bandwidth = math.nan
    if math.isnan(bandwidth) or bandwidth <= 0:
        raise HardwareError(
            f"link {text!r}: bytes per cycle must be a number > 0 or inf, got {bandwidth_text!r}; accepted forms: {LINK_FORMS}"
        )
    return LinkModel(latency=int(latency_text), bytes_per_cycle=bandwidth)


__all__ = ["HARDWARE_FORMS", "LINK_FORMS", "parse_hardware", "parse_link"]
