"""The SimPy engine: assigns times to a validated schedule on a platform (see :mod:`simulator.engine.run`)."""

from simulator.engine.run import (SimResult, SimStats, schedule_period, schedule_window, simulate, steady_window,
                                  window_midpoint)

__all__ = ["SimResult", "SimStats", "simulate", "schedule_period", "schedule_window", "steady_window",
           "window_midpoint"]
