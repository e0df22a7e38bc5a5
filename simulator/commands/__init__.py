"""Subcommands of the ``layerpipe`` console script (see ``simulator.cli``).

Each ``<name>.py`` here registers one subcommand. :data:`SUMMARIES` is their one-line help, in the
order ``layerpipe --help`` lists them; it lives here, apart from the modules, so that the CLI can
list every subcommand without importing what each one runs.
"""

#: subcommand -> its one-line help
SUMMARIES = {
    "networks": "list the built-in networks (zoo)",
    "describe": "per-layer shapes, work, GEMM shapes and cycles of one training step",
    "simulate": "run one schedule on a network and print every metric",
    "compare": "compare schedules on one network (one row per schedule)",
    "explain": "attribute a method's speedup over PipeDream, rung by rung",
    "trace": "simulate one schedule and write its trace (Chrome trace JSON or JSON lines)",
    "gantt": "simulate one schedule and draw its Gantt chart (PNG or SVG)",
    "sweep": "run a grid of configurations (networks x schedules x processors x hardware x links) into a CSV, "
             "resumably",
    "plot": "draw speedup, utilization, memory or Gantt charts (PNG/SVG)",
    "train": "train a network on digits with pipeline-delayed gradients (NumPy)",
    "tta": "time to accuracy: train each schedule with the staleness its simulation realises",
    "dho2": "time-to-accuracy and per-device memory of distributed FOSI (DHO2) and its baselines",
}
