"""Figures: speedup, utilization and memory plots of results, Gantt charts of one run, and the
attribution ladder of ``layerpipe explain``."""

from simulator.plots.figures import (
                                     BASELINES,
                                     SCHEDULE_STYLE,
                                     PlotError,
                                     ScheduleRun,
                                     filter_rows,
                                     ladder_figure,
                                     memory_figure,
                                     schedule_run,
                                     schedule_style,
                                     speedup_figure,
                                     utilization_figure,
)

__all__ = ["SCHEDULE_STYLE", "BASELINES", "PlotError", "ScheduleRun", "schedule_run", "schedule_style", "filter_rows",
           "speedup_figure", "utilization_figure", "memory_figure", "ladder_figure"]
