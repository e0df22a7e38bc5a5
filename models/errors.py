"""Typed exceptions shared by every part of layerpipe-sim.

Every error a user can cause derives from :class:`LayerPipeError`; the command line
catches exactly that class, prints its one-line message and exits with code 2.
Anything else escaping is a bug in the simulator, not in the user's input.
"""

from __future__ import annotations


class LayerPipeError(ValueError):
    """Base class of every error caused by bad input."""


class NetworkError(LayerPipeError):
    """A network description is inconsistent (shapes, unknown inputs, cycles, sizes)."""


class NetworkFileError(NetworkError):
    """A network file cannot be read; names the file, and the line and field when known."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class UnknownNetworkError(NetworkError):
    """A network name is neither in the zoo nor a readable file."""


class HardwareError(LayerPipeError):
    """A hardware or platform description is invalid (zero processors, bad dataflow, ...)."""


class ScheduleError(LayerPipeError):
    """A schedule is malformed or cannot be executed."""


class DeadlockError(ScheduleError):
    """A schedule can never finish; the message names the blocked task and what it waits for."""

    def __init__(self, message: str, task=None, waits_for=None):
        self.task, self.waits_for = task, waits_for
        super().__init__(message)


class TrainingError(LayerPipeError):
    """A training configuration is invalid."""
