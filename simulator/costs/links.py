"""Link cost model: how long a transfer takes between two neighbouring processors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from models.errors import HardwareError
from simulator.costs.numbers import ceil_div, checked_int, decimal

MIN_BYTES_PER_CYCLE = 1e-12


@dataclass(frozen=True)
class LinkModel:
    """A point-to-point link: ``transfer_cycles(n) = latency + ceil(n / bytes_per_cycle)``.

    Zero bytes cost nothing (no message is sent). ``LinkModel(0, math.inf)`` is a free link.

    >>> LinkModel(latency=100, bytes_per_cycle=16).transfer_cycles(1000)
    163
    >>> LinkModel(0, math.inf).transfer_cycles(10**9), LinkModel(5, 2.0).words_to_bytes(3)
    (0, 6)
    """

    latency: int
    bytes_per_cycle: float
    word_bytes: int = 2
    _rate: Fraction | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        latency = checked_int("link latency", self.latency, 0)
        word = checked_int("word_bytes", self.word_bytes, 1)
        bpc = self.bytes_per_cycle
        if isinstance(bpc, bool) or not isinstance(bpc, (int, float)) or math.isnan(bpc) or bpc <= 0:
            raise HardwareError(f"link bytes_per_cycle must be a number > 0 (or inf), got {bpc!r}")
        if bpc < MIN_BYTES_PER_CYCLE:  # a byte per 10^12 cycles: below, cycle counts leave exact integers
            raise HardwareError(f"link bytes_per_cycle must be at least {MIN_BYTES_PER_CYCLE:g}, got {bpc!r}")
        object.__setattr__(self, "latency", latency)
        object.__setattr__(self, "word_bytes", word)
        object.__setattr__(self, "bytes_per_cycle", float(bpc))
        # None marks infinite bandwidth: the payload then takes 0 cycles.
        object.__setattr__(self, "_rate", None if math.isinf(bpc) else decimal(bpc))

    @property
    def is_free(self) -> bool:
        """True when every transfer takes 0 cycles."""
        return self.latency == 0 and self._rate is None

    def transfer_cycles(self, nbytes: int) -> int:
        """Cycles to move ``nbytes`` bytes over this link (0 for 0 bytes)."""
        n = checked_int("transfer size in bytes", nbytes, 0)
        if n == 0:
            return 0
        if self._rate is None:
            return self.latency
        if self._rate.denominator == 1:  # the common case: integer integer division
            return self.latency + ceil_div(n, self._rate.numerator)
        return self.latency + math.ceil(n / self._rate)

    def words_to_bytes(self, n: int) -> int:
        """Bytes of ``n`` words of ``word_bytes`` each."""
        return checked_int("word count", n, 0) * self.word_bytes

    def describe(self) -> str:
        """E.g. ``"link latency 100, 16 B/cycle"``."""
        if self.is_free:
            return "free link"
        return f"link latency {self.latency}, {self.bytes_per_cycle:g} B/cycle"


FREE_LINK = LinkModel(latency=0, bytes_per_cycle=math.inf)


__all__ = ["LinkModel", "FREE_LINK"]
