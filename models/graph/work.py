"""The work of one training task, independent of any hardware.

A :class:`TaskWork` is what a cost model turns into cycles. Matrix products are listed
as GEMM shapes ``(M, N, K)`` with A = M x K and B = K x N (SCALE-Sim's convention) so a
systolic-array model can fold each one; ``macs`` is their total (M*N*K summed) plus any
MACs not expressed as a GEMM. ``fixed_cycles`` is added as-is by every cost model: it is
how synthetic task graphs (the golden tests) state a task's duration directly.

>>> a = TaskWork(macs=6, gemms=((1, 2, 3),))
>>> (a + TaskWork(elementwise=4)).elementwise
4
"""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import LayerPipeError

Gemm = tuple[int, int, int]


@dataclass(frozen=True)
class TaskWork:
    macs: int = 0
    elementwise: int = 0
    gemms: tuple[Gemm, ...] = ()
    bytes_read: int = 0
    bytes_written: int = 0
    fixed_cycles: int = 0
    #: element-wise work that must run step by step (SNN membrane recurrence over T steps);
    #: cost models serialise it as ``sequential_steps`` dependent chunks.
    sequential_steps: int = 1

    def __post_init__(self) -> None:
        for name in ("macs", "elementwise", "bytes_read", "bytes_written", "fixed_cycles"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise LayerPipeError(f"task work field {name} must be a non-negative integer, got {value!r}")
        if self.sequential_steps < 1:
            raise LayerPipeError(f"sequential_steps must be >= 1, got {self.sequential_steps}")
        for g in self.gemms:
            if len(g) != 3 or any(not isinstance(d, int) or d <= 0 for d in g):
                raise LayerPipeError(f"GEMM shape must be three positive integers (M, N, K), got {g!r}")

    def __add__(self, other: "TaskWork") -> "TaskWork":
        return TaskWork(
            macs=self.macs + other.macs,
            elementwise=self.elementwise + other.elementwise,
            gemms=self.gemms + other.gemms,
            bytes_read=self.bytes_read + other.bytes_read,
            bytes_written=self.bytes_written + other.bytes_written,
            fixed_cycles=self.fixed_cycles + other.fixed_cycles,
            sequential_steps=max(self.sequential_steps, other.sequential_steps),
        )

    @property
    def gemm_macs(self) -> int:
        return sum(m * n * k for m, n, k in self.gemms)


ZERO_WORK = TaskWork()

__all__ = ["Gemm", "TaskWork", "ZERO_WORK"]
