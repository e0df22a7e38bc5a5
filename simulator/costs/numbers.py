"""Exact integer arithmetic shared by the cost models (cycle counts must never be off by one)."""

from __future__ import annotations

import operator
from fractions import Fraction

from models.errors import HardwareError


def checked_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise :class:`HardwareError` naming it.

    ``operator.index`` accepts Python and NumPy integers but refuses floats such as 2.5,
    which would otherwise slip through and make cycle counts non-integral. Booleans are
    refused too: ``rows=True`` is always a mistake.

    >>> checked_int("rows", 4, 1)
    4
    """
    if isinstance(value, bool):
        raise HardwareError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        as_int = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise HardwareError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if as_int < minimum:
        raise HardwareError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return as_int


def ceil_div(a: int, b: int) -> int:
    """Exact integer ceiling of a / b for a >= 0, b > 0 (floats would round large counts)."""
    return -(-a // b)


def decimal(x: float) -> Fraction:
    """The decimal number a float was written as (``0.3`` -> 3/10, not 0.29999...).

    Dividing by the exact binary value of a float like 0.3 can land just above an integer
    and make ``ceil`` add a spurious cycle; the shortest round-trip repr is what the user
    typed, so it is the right rate to divide by.

    >>> decimal(0.3)
    Fraction(3, 10)
    """
    return Fraction(repr(float(x)))


__all__ = ["checked_int", "ceil_div", "decimal"]
