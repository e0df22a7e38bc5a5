"""Cycle cost models: processors (MAC arrays, systolic arrays), links and their text forms.

See :mod:`simulator.costs.processors`.
"""

from simulator.costs.processors import *  # noqa: F401,F403
from simulator.costs.processors import __all__ as _all

__all__ = list(_all)
