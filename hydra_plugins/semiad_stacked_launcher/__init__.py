"""Hydra finds launchers only inside the ``hydra_plugins`` namespace package: this names semiad's
stacked launcher there (``hydra/launcher=stacked``, ``configs/hydra/launcher/stacked.yaml``).
The implementation is ``semiad_cli/stacking.py``; importing it costs no torch import (Hydra imports
every plugin module at start-up)."""

from semiad_cli.stacking import StackedLauncher as _Base


class StackedLauncher(_Base):
    """``semiad_cli.stacking.StackedLauncher`` under the module name Hydra accepts for a plugin."""
