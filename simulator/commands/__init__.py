"""Subcommands of the ``layerpipe`` console script (see ``simulator.cli``)."""
