"""Uniform-stage networks for schedule studies: ``uniform:p=P,f=F,b=B,w=W,comm=C``.

The zero-bubble paper (Qi et al., ICLR 2024) states its schedules' costs in four profiled
numbers per stage: T_F, T_B (input gradient), T_W (weight gradient) and T_comm (every
cross-stage hop). A uniform network is ``p`` :class:`FixedStage` weight layers whose tasks take
exactly those cycles **per sample**, so a micro-batch of one sample costs ``f``, ``b`` and ``w``
(``--batch m --microbatches m``) and a PipeDream or LayerPipe minibatch of ``m`` samples costs
``m`` times as much: every method is charged the same work. Each stage has an input gradient,
its first included (it stands for a group of layers), and no weights to update.

``comm=C`` is a fixed cost on every cross-stage edge. It is a property of the link, so it is
realised there: a platform built for a uniform network by the command line or a sweep gets
links of latency ``C`` and unlimited bandwidth (:func:`uniform_link`); giving a different link
as well is an error. Without ``comm`` the platform's link applies as for any network. From
Python, build the platform with ``LinkModel(C, math.inf)``.

>>> spec = parse_uniform("uniform:p=4,f=3,b=3,w=2,comm=1")
>>> spec.stages, spec.comm, uniform_network(spec).name
(4, 1, 'uniform:p=4,f=3,b=3,w=2,comm=1')
>>> uniform_link("uniform:p=4,f=3,b=3,w=2,comm=1"), uniform_link("mlp") is None
('1,inf', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.errors import NetworkError, UnknownNetworkError
from models.network.layers import LayerSpec, Shape
from models.network.spec import NetworkSpec, chain
from models.userfiles import is_plain_int

PREFIX = "uniform:"
MAX_STAGES = 4096  # more stages than any machine this simulator builds
MAX_CYCLES = 10**15  # per sample; beyond this a run's cycle counts leave exact float range
_KEYS = ("p", "f", "b", "w", "comm")


@dataclass(frozen=True)
class FixedStage(LayerSpec):
    """A pipeline stage of stated durations per sample: ``forward`` (F), ``backward`` (B, the input
    gradient) and ``weight`` (W) cycles. A 1-element tensor goes to the next stage."""

    forward: int
    backward: int
    weight: int

    kind: ClassVar[str] = "stage"
    has_weights: ClassVar[bool] = True  # a stage is a unit of the task model (F, AG1, WG)

    def __post_init__(self) -> None:
        for what in ("forward", "backward", "weight"):
            v = getattr(self, what)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_CYCLES:
                raise NetworkError(f"stage {what} cycles must be an integer in [0, {MAX_CYCLES:.0e}], got {v!r}")

    @property
    def task_cycles(self) -> dict[str, int]:
        """Cycles per sample of each fine task (read by ``models.graph.build``)."""
        return {"F": self.forward, "AG1": self.backward, "WG": self.weight}

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._one(inputs)
        return (1,)


@dataclass(frozen=True)
class UniformSpec:
    """The parsed ``uniform:`` text: ``stages`` stages of ``f``, ``b``, ``w`` cycles, ``comm`` per hop."""

    stages: int
    f: int
    b: int
    w: int
    comm: int | None = None  # None: not stated, the platform's link applies

    @property
    def name(self) -> str:
        comm = "" if self.comm is None else f",comm={self.comm}"
        return f"{PREFIX}p={self.stages},f={self.f},b={self.b},w={self.w}{comm}"


def is_uniform(name: object) -> bool:
    return isinstance(name, str) and name.strip().lower().startswith(PREFIX)


def _number(key: str, text: str, minimum: int, maximum: int) -> int:
    # isascii: str.isdigit() also accepts superscripts and other digits int() refuses
    if not is_plain_int(text, 16):
        raise UnknownNetworkError(f"uniform spec: {key} must be a non-negative integer of at most 16 digits, got {text[:20]!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise UnknownNetworkError(f"uniform spec: {key} must be in [{minimum}, {maximum}], got {value}")
    return value


def parse_uniform(text: str) -> UniformSpec:
    """Read ``uniform:p=P,f=F,b=B,w=W[,comm=C]`` (module docstring); a one-line error otherwise."""
    if not is_uniform(text):
        raise UnknownNetworkError(f"not a uniform spec: {str(text)[:40]!r}")
    body = text.strip()[len(PREFIX):]
    values: dict[str, int] = {}
    for item in body.split(","):
        key, sep, value = item.strip().partition("=")
        key = key.strip().lower()
        if not sep or key not in _KEYS:
            raise UnknownNetworkError(f"uniform spec {text[:60]!r}: expected KEY=VALUE with keys {', '.join(_KEYS)}, "
                                      f"got {item.strip()[:20]!r}")
        if key in values:
            raise UnknownNetworkError(f"uniform spec {text[:60]!r}: {key} is given twice")
        values[key] = _number(key, value.strip(), 1 if key == "p" else 0, MAX_STAGES if key == "p" else MAX_CYCLES)
    missing = [k for k in ("p", "f", "b", "w") if k not in values]
    if missing:
        raise UnknownNetworkError(f"uniform spec {text[:60]!r} needs {', '.join(missing)} "
                                  "(e.g. uniform:p=4,f=10,b=10,w=5,comm=1)")
    if values["f"] + values["b"] + values["w"] == 0:
        raise UnknownNetworkError(f"uniform spec {text[:60]!r}: a stage must take some cycles (f + b + w > 0)")
    return UniformSpec(values["p"], values["f"], values["b"], values["w"], values.get("comm"))


def uniform_network(spec: UniformSpec | str) -> NetworkSpec:
    """The network of ``spec``: one :class:`FixedStage` per stage, named by the canonical text."""
    if isinstance(spec, str):
        spec = parse_uniform(spec)
    stages = [FixedStage(spec.f, spec.b, spec.w) for _ in range(spec.stages)]
    return chain(spec.name, (1,), stages, names=[f"stage{i}" for i in range(1, spec.stages + 1)],
                 description=f"{spec.stages} uniform stages: F {spec.f}, B {spec.b}, W {spec.w} cycles per sample"
                             + ("" if spec.comm is None else f", {spec.comm} per cross-stage hop"))


def uniform_link(name: object) -> str | None:
    """The link text (``LAT,inf``) a ``uniform:`` network's ``comm`` asks for; None for any other
    network and for a uniform one that states no ``comm``."""
    if not is_uniform(name):
        return None
    comm = parse_uniform(str(name)).comm
    return None if comm is None else f"{comm},inf"


__all__ = ["FixedStage", "UniformSpec", "PREFIX", "is_uniform", "parse_uniform", "uniform_network", "uniform_link"]
