"""Printing results: aligned text tables for people, JSON for machines."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any


def _cell(value: Any) -> str:
    # a missing or undefined figure is a dash, never "None" or "nan" passed off as a result
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "-"
        # one format per magnitude, so a column never mixes 92374.0 with 8.415e+07: counts of cycles
        # and bytes are whole numbers with thousands separators, ratios keep three decimals
        if abs(value) >= 1e4:
            return f"{value:,.0f}"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1e4:
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
                 headers: dict[str, str] | None = None) -> str:
    """Left-align text, right-align numbers; ``headers`` renames columns for display; a missing
    (None) or non-finite value prints as ``-``; numbers of 10,000 and more print whole, with
    thousands separators, smaller ones with up to three decimals.

    >>> print(format_table([{"a": 1, "b": 0.5}, {"a": 92374.0, "b": 2 / 3}, {"a": None, "b": 84150000}]))
         a           b
         1         0.5
    92,374       0.667
         -  84,150,000
    """
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    headers = headers or {}
    text = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    def is_number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    numeric = [all(is_number(r.get(c)) or r.get(c) is None for r in rows) and any(is_number(r.get(c)) for r in rows)
               for c in columns]
    titles = [headers.get(c, c) for c in columns]
    widths = [max(len(titles[i]), *(len(t[i]) for t in text)) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(titles), *(line(t) for t in text)])


def mib(nbytes: float | None) -> float | None:
    """Bytes in MiB (2**20 bytes), the one memory unit of every table and plot (JSON and CSV keep bytes).

    >>> mib(3 * 2**20)
    3.0
    """
    return None if nbytes is None else nbytes / 2**20


def to_json(data: Any) -> str:
    """JSON with NaN/inf written as null so every consumer can parse it."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if hasattr(v, "item") and callable(v.item):  # numpy scalars
            return clean(v.item())
        return v

    return json.dumps(clean(data), indent=2)
