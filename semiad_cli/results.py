"""The run folder: resolved config, metrics (JSON + CSV), scores, status. Every write is atomic."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from semiad_cli.atomic import atomic_write

if TYPE_CHECKING:  # a type only: reading results (semiad table) needs no sklearn
    from semiad_cli.data.split import Part

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
SCORES_CSV = "scores.csv"
CONFIG_YAML = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
HISTORY_CSV = "history.csv"
# history.csv columns: epoch first, then the model's loss terms in the trainer's order, then these.
HISTORY_LAST = ("steps", "val_loss", "lr", "seconds")
# The header of a run without epochs (closed-form models, max_epochs=0): the columns every epoch has.
HISTORY_EMPTY = ("epoch", "loss", "lr", "seconds")


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, data: dict) -> None:
    text = json.dumps(_clean(data), indent=2, sort_keys=False) + "\n"
    atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` for the one-row CSV."""
    flat: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def write_metrics(run_dir: Path, metrics: dict) -> None:
    """``metrics.json`` and a one-row ``metrics.csv`` with the same (flattened) keys."""
    run_dir = Path(run_dir)
    write_json(run_dir / METRICS_JSON, metrics)
    frame = pd.DataFrame([flatten(_clean(metrics))])
    atomic_write(run_dir / METRICS_CSV, lambda tmp: frame.to_csv(tmp, index=False))


def write_scores(path: Path, test: Part, scores: np.ndarray, parts: dict[str, np.ndarray]) -> None:
    frame = pd.DataFrame({"index": test.index, "label": test.y.astype(int), "class": test.cls, "score": scores})
    for name, values in parts.items():
        frame[f"score_{name}"] = values
    atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=False))


def write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    """``history.csv``: one row per epoch (epoch, loss terms, val_loss, lr, seconds), header only without epochs.

    Rewritten whole (atomically) from the trainer's history after every epoch: an interrupted run
    keeps every finished epoch, and a resumed one, whose history comes from its checkpoint, never
    repeats an epoch.
    """
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    middle = [k for k in keys if k != "epoch" and k not in HISTORY_LAST]
    columns = ["epoch", *middle, *(k for k in HISTORY_LAST if k in keys)] if keys else list(HISTORY_EMPTY)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)

    atomic_write(Path(run_dir) / HISTORY_CSV, write)


def write_config(run_dir: Path, cfg: DictConfig) -> None:
    """The resolved config with data-derived sizes filled: ``evaluate`` rebuilds the model from it."""
    text = OmegaConf.to_yaml(cfg, resolve=True)
    atomic_write(Path(run_dir) / CONFIG_YAML, lambda tmp: tmp.write_text(text))


def task_completed(run_dir: Path) -> bool:
    """True when ``run_dir/metrics.json`` exists and says ``status: completed``."""
    try:
        return read_json(Path(run_dir) / METRICS_JSON).get("status") == "completed"
    except (OSError, ValueError):
        return False
