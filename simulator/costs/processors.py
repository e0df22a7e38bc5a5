"""Processor cost models: how long a task runs on a processor.

Every model here is closed-form: one evaluation is a handful of integer operations, never a
per-cycle simulation, so the event engine can call it for every task of every schedule.

* :class:`MacArray` - a processor that does ``macs_per_cycle`` MACs and ``vector_lanes``
  element-wise operations per cycle.
* :class:`SystolicArray` - an R x C systolic array whose GEMM cycles equal SCALE-Sim's
  compute cycles (plus one, see :meth:`SystolicArray.gemm_cycles`).
* :class:`ScaledCost` - any cost model sped up or slowed down, for heterogeneous processors.

Anything with ``task_cycles(work) -> int`` and ``describe() -> str`` is a :class:`CostModel`,
so users can plug in their own.

>>> from models.graph.work import TaskWork
>>> SystolicArray(4, 4, "ws").task_cycles(TaskWork(macs=512, gemms=((8, 8, 8),)))
72
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol, runtime_checkable

from models.errors import HardwareError
from models.graph.work import Gemm, TaskWork
from simulator.costs.numbers import ceil_div, checked_int, decimal

DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")


def _elementwise_cycles(elementwise: int, steps: int, lanes: int) -> int:
    """Cycles for ``elementwise`` operations on ``lanes`` lanes, in ``steps`` dependent chunks.

    With ``steps`` = T > 1 (an SNN membrane recurrence over T time steps) chunk t needs
    chunk t-1's result, so the chunks cannot share a cycle: the cost is
    T * ceil(elementwise / T / lanes). Each step costs at least one cycle when there is
    any element-wise work at all. With T = 1 this is ceil(elementwise / lanes).
    ceil(ceil(E / T) / L) == ceil(E / (T * L)) for positive integers, so one division does.

    >>> _elementwise_cycles(1000, 1, 64), _elementwise_cycles(1000, 4, 64), _elementwise_cycles(0, 4, 64)
    (16, 16, 0)
    """
    if elementwise == 0:
        return 0
    return steps * ceil_div(elementwise, steps * lanes)


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class CostModel(Protocol):
    """What the simulator needs from a processor: cycles for one task and a short label.

    Any object with these two methods works (structural typing), e.g. a user's own model:

    >>> class Fixed:
    ...     def task_cycles(self, work): return 7
    ...     def describe(self): return "fixed 7"
    >>> isinstance(Fixed(), CostModel)
    True
    """

    def task_cycles(self, work: TaskWork) -> int:
        """Number of cycles the processor is busy running a task of this work."""
        ...

    def describe(self) -> str:
        """Short human-readable text, e.g. ``"systolic 32x32 ws"``."""
        ...


# --------------------------------------------------------------------------- MAC array


@dataclass(frozen=True)
class MacArray:
    """A processor doing ``macs_per_cycle`` MACs and ``vector_lanes`` element-wise ops per cycle.

    ``task_cycles = ceil(macs / macs_per_cycle) + elementwise cycles + task_overhead
    + work.fixed_cycles``. Element-wise cycles are ``ceil(elementwise / vector_lanes)``, or for
    ``work.sequential_steps = T > 1`` the serialised ``T * ceil(elementwise / T / vector_lanes)``
    (see :func:`_elementwise_cycles`). MACs and element-wise work do not overlap: a plain MAC
    array has one datapath, and a pessimistic sum keeps the model simple and monotone.
    GEMMs in ``work.gemms`` are already counted in ``work.macs``, so they are not added again.

    >>> MacArray(256).task_cycles(TaskWork(macs=1000, elementwise=300))   # 4 + 2
    6
    >>> MacArray(256, vector_lanes=64, task_overhead=10).describe()
    'mac 256/cycle, 64 lanes, overhead 10'
    """

    macs_per_cycle: int
    vector_lanes: int | None = None  # None -> macs_per_cycle
    task_overhead: int = 0

    def __post_init__(self) -> None:
        macs = checked_int("macs_per_cycle", self.macs_per_cycle, 1)
        lanes = macs if self.vector_lanes is None else checked_int("vector_lanes", self.vector_lanes, 1)
        overhead = checked_int("task_overhead", self.task_overhead, 0)
        # Store the resolved values so that MacArray(256) == MacArray(256, 256).
        object.__setattr__(self, "macs_per_cycle", macs)
        object.__setattr__(self, "vector_lanes", lanes)
        object.__setattr__(self, "task_overhead", overhead)

    def task_cycles(self, work: TaskWork) -> int:
        """Cycles for one task: MACs, then element-wise work, then fixed costs."""
        assert self.vector_lanes is not None  # resolved in __post_init__
        return (
            ceil_div(work.macs, self.macs_per_cycle)
            + _elementwise_cycles(work.elementwise, work.sequential_steps, self.vector_lanes)
            + self.task_overhead
            + work.fixed_cycles
        )

    def describe(self) -> str:
        """E.g. ``"mac 256/cycle, 256 lanes"``."""
        text = f"mac {self.macs_per_cycle}/cycle, {self.vector_lanes} lanes"
        return text + (f", overhead {self.task_overhead}" if self.task_overhead else "")


# --------------------------------------------------------------------------- systolic array


def conv_to_gemm(
    ifmap_h: int, ifmap_w: int, filt_h: int, filt_w: int, channels: int, num_filt: int, stride: int
) -> Gemm:
    """The im2col GEMM ``(M, N, K)`` of a convolution, as SCALE-Sim forms it.

    No padding, batch 1: ``M = OH * OW`` with ``OH = ceil((IH - Fh + S) / S)`` (same for W),
    ``K = Fh * Fw * channels``, ``N = num_filt``. Pad the ifmap yourself for "same" convs.

    >>> conv_to_gemm(28, 28, 5, 5, 1, 12, 1)
    (576, 12, 25)
    >>> conv_to_gemm(227, 227, 11, 11, 3, 96, 4)
    (3025, 96, 363)
    """
    ih = checked_int("ifmap_h", ifmap_h, 1)
    iw = checked_int("ifmap_w", ifmap_w, 1)
    fh = checked_int("filt_h", filt_h, 1)
    fw = checked_int("filt_w", filt_w, 1)
    ch = checked_int("channels", channels, 1)
    nf = checked_int("num_filt", num_filt, 1)
    s = checked_int("stride", stride, 1)
    if fh > ih or fw > iw:
        raise HardwareError(f"filter {fh}x{fw} is larger than the ifmap {ih}x{iw} (no padding is applied)")
    oh = ceil_div(ih - fh + s, s)
    ow = ceil_div(iw - fw + s, s)
    return oh * ow, nf, fh * fw * ch


@dataclass(frozen=True)
class GemmDetail:
    """How one GEMM runs on a systolic array (see :meth:`SystolicArray.gemm_detail`).

    * ``folds`` - ceil(Sr / R) * ceil(Sc / C) tiles, run back to back.
    * ``per_fold_cycles`` - os: R + C + T - 2; ws and is: 2R + C + T - 2.
    * ``cycles`` - folds * per_fold_cycles (SCALE-Sim's compute_cycles + 1).
    * ``mapping_efficiency`` - mean over folds of the fraction of PEs holding a mapped
      operand = Sr * Sc / (folds * R * C); equals SCALE-Sim's ``mapping_eff_pct`` / 100.
    * ``compute_utilization`` - fraction of PE-cycles doing a useful MAC,
      M * N * K / (R * C * cycles). SCALE-Sim's ``overall_util_pct`` is the same quantity over
      its one-smaller cycle count: M * N * K / (R * C * (cycles - 1)) * 100.
    * ``scalesim_compute_utilization`` - SCALE-Sim's own ``compute_util_pct`` / 100, reproduced
      in closed form: Sr * Sc * T / (folds * R * C * W) with a per-fold window
      W = R + C + T - 2 (os) or 2R + 2C + T - 3 (ws, is). It is an averaged per-fold figure with
      SCALE-Sim's window, not the fraction of PE-cycles of the whole GEMM; prefer
      ``compute_utilization`` for that.
    """

    folds: int
    per_fold_cycles: int
    cycles: int
    mapping_efficiency: float
    compute_utilization: float
    scalesim_compute_utilization: float


@dataclass(frozen=True)
class SystolicArray:
    """An R x C systolic array (SCALE-Sim's compute model) plus a vector unit.

    GEMM ``(M, N, K)`` (A = M x K, B = K x N) maps to spatial rows Sr, spatial columns Sc and
    a streamed dimension T by dataflow: os -> (M, N, K), ws -> (K, N, M), is -> (K, M, N).
    It runs in ``folds = ceil(Sr/R) * ceil(Sc/C)`` folds of ``per_fold`` cycles each, where
    per_fold is R + C + T - 2 for os (fill the skewed operands, stream T, drain) and
    2R + C + T - 2 for ws / is (an extra R cycles to preload the stationary operand).

    **Cycle convention:** we count cycles, ``folds * per_fold``. SCALE-Sim reports the index
    of the last busy cycle, ``folds * per_fold - 1``; so ``gemm_cycles`` = SCALE-Sim's
    compute_cycles + 1 (verified on the 250 cases of tests/oracles/scalesim_cases.json).

    Non-GEMM MACs (``work.macs - work.gemm_macs``) are charged at one per PE per cycle and
    element-wise work runs on ``vector_lanes`` lanes (default: one per column) as in
    :class:`MacArray`.

    >>> SystolicArray(4, 4, "ws").gemm_cycles(8, 8, 8)   # 4 folds x (8 + 4 + 8 - 2)
    72
    >>> SystolicArray(32, 32).describe()
    'systolic 32x32 ws'
    """

    rows: int
    cols: int
    dataflow: str = "ws"
    vector_lanes: int | None = None  # None -> cols
    task_overhead: int = 0

    def __post_init__(self) -> None:
        rows = checked_int("rows", self.rows, 1)
        cols = checked_int("cols", self.cols, 1)
        df = self.dataflow.lower() if isinstance(self.dataflow, str) else self.dataflow
        if df not in DATAFLOWS:
            raise HardwareError(f"unknown dataflow {self.dataflow!r}: expected one of os, ws, is")
        lanes = cols if self.vector_lanes is None else checked_int("vector_lanes", self.vector_lanes, 1)
        overhead = checked_int("task_overhead", self.task_overhead, 0)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        object.__setattr__(self, "dataflow", df)
        object.__setattr__(self, "vector_lanes", lanes)
        object.__setattr__(self, "task_overhead", overhead)

    # -- GEMM and convolution ------------------------------------------------------------

    def _fold(self, m: int, n: int, k: int) -> tuple[int, int, int, int, int]:
        """Validate a GEMM and return (Sr, Sc, T, folds, per_fold_cycles); Sr * Sc * T = M * N * K."""
        m = checked_int("GEMM M", m, 1)
        n = checked_int("GEMM N", n, 1)
        k = checked_int("GEMM K", k, 1)
        r, c = self.rows, self.cols
        if self.dataflow == "os":
            sr, sc, t = m, n, k
            per_fold = r + c + t - 2
        elif self.dataflow == "ws":
            sr, sc, t = k, n, m
            per_fold = 2 * r + c + t - 2
        else:  # "is"
            sr, sc, t = k, m, n
            per_fold = 2 * r + c + t - 2
        folds = ceil_div(sr, r) * ceil_div(sc, c)
        return sr, sc, t, folds, per_fold

    def gemm_cycles(self, M: int, N: int, K: int) -> int:
        """Compute cycles of one GEMM (A = M x K, B = K x N): SCALE-Sim's compute_cycles + 1.

        >>> SystolicArray(rows=4, cols=4, dataflow="os").gemm_cycles(8, 8, 8)   # 4 x (4+4+8-2)
        56
        """
        _, _, _, folds, per_fold = self._fold(M, N, K)
        return folds * per_fold

    def gemm_detail(self, M: int, N: int, K: int) -> GemmDetail:
        """Folds, cycles and utilisation of one GEMM (see :class:`GemmDetail`).

        >>> d = SystolicArray(4, 4, "ws").gemm_detail(8, 8, 8)
        >>> d.folds, d.per_fold_cycles, d.cycles, d.mapping_efficiency
        (4, 18, 72, 1.0)
        """
        sr, sc, t, folds, per_fold = self._fold(M, N, K)
        r, c = self.rows, self.cols
        cycles = folds * per_fold
        pes = r * c
        # SCALE-Sim's per-fold utilisation window; found to match all 250 oracle cases.
        window = r + c + t - 2 if self.dataflow == "os" else 2 * r + 2 * c + t - 3
        return GemmDetail(
            folds=folds,
            per_fold_cycles=per_fold,
            cycles=cycles,
            mapping_efficiency=sr * sc / (folds * pes),
            compute_utilization=sr * sc * t / (pes * cycles),
            scalesim_compute_utilization=sr * sc * t / (folds * pes * window),
        )

    def conv_cycles(
        self, ifmap_h: int, ifmap_w: int, filt_h: int, filt_w: int, channels: int, num_filt: int, stride: int
    ) -> int:
        """Compute cycles of a convolution through its im2col GEMM (:func:`conv_to_gemm`).

        Arguments are those of a SCALE-Sim topology row; no padding, batch 1.

        >>> SystolicArray(4, 4, "ws").conv_cycles(28, 28, 5, 5, 1, 12, 1)   # 7*3 folds x 586
        12306
        """
        return self.gemm_cycles(*conv_to_gemm(ifmap_h, ifmap_w, filt_h, filt_w, channels, num_filt, stride))

    # -- CostModel -------------------------------------------------------------------------

    def task_cycles(self, work: TaskWork) -> int:
        """GEMM cycles + leftover MACs on R*C PEs + element-wise + overheads.

        >>> SystolicArray(4, 4).task_cycles(TaskWork(macs=512 + 33, elementwise=9, gemms=((8, 8, 8),)))   # 72 + 3 + 3
        78
        """
        assert self.vector_lanes is not None  # resolved in __post_init__
        gemm = sum(self.gemm_cycles(m, n, k) for m, n, k in work.gemms)
        # MACs not given as GEMM shapes (e.g. depthwise or custom ops): assume all PEs busy,
        # the optimistic bound, since their shape is unknown.
        other_macs = max(0, work.macs - work.gemm_macs)
        return (
            gemm
            + ceil_div(other_macs, self.rows * self.cols)
            + _elementwise_cycles(work.elementwise, work.sequential_steps, self.vector_lanes)
            + self.task_overhead
            + work.fixed_cycles
        )

    def describe(self) -> str:
        """E.g. ``"systolic 32x32 ws"``."""
        text = f"systolic {self.rows}x{self.cols} {self.dataflow}"
        if self.vector_lanes != self.cols:
            text += f", {self.vector_lanes} lanes"
        return text + (f", overhead {self.task_overhead}" if self.task_overhead else "")


# --------------------------------------------------------------------------- heterogeneity


@dataclass(frozen=True)
class ScaledCost:
    """A cost model running ``speed`` times as fast: ``ceil(base.task_cycles(w) / speed)``.

    Models heterogeneous processors on one clock: speed 2 halves every task, 0.5 doubles it.
    The speed is taken as the decimal it was written as (0.3 is 3/10) so that an exact
    quotient is not pushed over an integer by binary rounding.

    >>> slow = ScaledCost(MacArray(256), 0.5)
    >>> slow.task_cycles(TaskWork(macs=1000)), slow.describe()
    (8, 'mac 256/cycle, 256 lanes, speed 0.5')
    """

    base: CostModel
    speed: float
    _rate: Fraction = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(getattr(self.base, "task_cycles", None)) or not callable(getattr(self.base, "describe", None)):
            raise HardwareError(f"ScaledCost base {self.base!r} has no task_cycles()/describe()")
        speed = self.speed
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed <= 0:
            raise HardwareError(f"processor speed must be a finite number > 0, got {speed!r}")
        object.__setattr__(self, "_rate", decimal(speed))

    def task_cycles(self, work: TaskWork) -> int:
        """Base cycles divided by the speed, rounded up."""
        return math.ceil(Fraction(self.base.task_cycles(work)) / self._rate)

    def describe(self) -> str:
        """Base description plus the speed."""
        return f"{self.base.describe()}, speed {self.speed:g}"


def scale(model: CostModel, speed: float) -> CostModel:
    """``model`` running ``speed`` times as fast; the model itself when speed is 1.

    >>> m = MacArray(8)
    >>> scale(m, 1) is m, scale(m, 2).task_cycles(TaskWork(macs=80))
    (True, 5)
    """
    if speed == 1 and not isinstance(speed, bool):
        return model
    return ScaledCost(model, speed)


# --------------------------------------------------------------------------- links


__all__ = ["DATAFLOWS", "CostModel", "GemmDetail", "MacArray", "ScaledCost", "SystolicArray", "conv_to_gemm", "scale"]
