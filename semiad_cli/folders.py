"""Tell the user where results go: one line when a run or a sweep starts, one when it ends.

``semiad table``, ``semiad plot`` and ``semiad evaluate`` take these folders. The lines go to
stdout, with the console log; stderr keeps the one-line errors. A sweep's jobs print nothing
of their own: ``SweepFolder``, a Hydra callback registered in ``configs/hydra/default.yaml``,
prints the sweep folder once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def shown(path: str | Path) -> str:
    """``path`` relative to the current folder when it lies inside it (``outputs/…``), else absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def say(message: str) -> None:
    print(f"semiad: {message}", flush=True)


def run_status(run_dir: Path) -> str:
    """The ``status`` the run's ``metrics.json`` records (``failed`` when there is none)."""
    from semiad_cli import results

    try:
        return str(results.read_json(Path(run_dir) / results.METRICS_JSON).get("status", "failed"))
    except (OSError, ValueError):
        return "failed"


@contextlib.contextmanager
def announced_run(run_dir: Path) -> Iterator[None]:
    """Print the run folder before the body runs and, with the run's status, after it ends (also on errors)."""
    say(f"run folder {shown(run_dir)}")
    try:
        yield
    finally:
        say(f"run {run_status(run_dir)}: {shown(run_dir)}")


class SweepFolder(Callback):
    """``--multirun``: the sweep folder when the sweep starts and when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        say(f"sweep folder {shown(config.hydra.sweep.dir)}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = shown(config.hydra.sweep.dir)
        say(f"sweep done: {folder}  (results: semiad table {folder})")

