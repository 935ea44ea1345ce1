"""Errors users can act on.

Every error a user can cause (bad config, missing file, bad checkpoint) is a
``SemiadError``: the CLI prints its message on one line and exits with code 2,
so the message itself must name the problem and the fix.
"""

from __future__ import annotations

import numbers


class SemiadError(Exception):
    """Base class: a one-line, actionable message; never shown with a traceback."""


class ConfigError(SemiadError, ValueError):
    """A config value is out of its allowed range or inconsistent with the data."""


class DataError(SemiadError):
    """A dataset file is missing, corrupt, or its content cannot be used."""


class CheckpointError(SemiadError):
    """A run folder has no usable checkpoint, or it belongs to another model/shape."""


class TrainingError(SemiadError):
    """Training diverged (NaN/inf loss) or otherwise could not finish."""


class RunFolderError(SemiadError):
    """The run folder is in use by another run, or holds a completed run that would be overwritten."""


class CompletedRunError(RunFolderError):
    """The run folder holds a completed run that would be overwritten (``overwrite=true`` replaces it)."""


def check_range(name: str, value: float, low: float | None = None, high: float | None = None) -> None:
    """Raise ``ConfigError`` naming the key when ``value`` is outside ``[low, high]``."""
    if value is None:
        raise ConfigError(f"{name} must be set (got null)")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name}={value!r} has the wrong type: expected a number")
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    if value != value:  # NaN fails every comparison, so the bounds below would let it through
        raise ConfigError(f"{name}={value} is not a number: it must be finite, within [{lo}, {hi}]")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}={value} is out of range: allowed [{lo}, {hi}]")


def check_positive_int(name: str, value: object, meaning: str) -> int:
    """``value`` as an ``int`` ≥ 1, else a ``ConfigError`` naming the key and what 1 means."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer (1: {meaning})")
    return int(value)
