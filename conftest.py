"""Examples in docstrings that need an optional extra are skipped, saying so, when it is missing
(the doctests also run where only the base install is, and the extra is not a dependency)."""

from __future__ import annotations

import pytest

#: modules whose examples run the CP-SAT solver (the optional extra "optimal")
NEEDS_CP_SAT = ("schedules/planning/modulo.py", "schedules/methods/optimal.py", "simulator/studies/optimal_gap.py")


def _has_cp_sat() -> bool:
    try:
        from ortools.sat.python import cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    if _has_cp_sat():
        return
    skip = pytest.mark.skip(reason='needs OR-Tools\' CP-SAT: pip install -e ".[optimal]"')
    for item in items:
        if isinstance(item, pytest.DoctestItem) and str(item.path).replace("\\", "/").endswith(NEEDS_CP_SAT):
            item.add_marker(skip)
