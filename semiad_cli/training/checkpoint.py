"""Checkpoints written atomically: a killed process never leaves a half-written file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semiad_cli.atomic import atomic_write
from semiad_cli.errors import CheckpointError


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` the payload atomically (temp file + ``os.replace``)."""
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True``; missing or unreadable files become a one-line ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: is this a finished semiad run folder?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CheckpointError(f"checkpoint {path} is corrupt or not a semiad checkpoint "
                              f"({type(err).__name__}); re-run training to recreate it") from None
