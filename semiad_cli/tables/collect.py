"""Collecting runs: walk run and sweep folders and classify each run (completed, failed, …).

Shared by ``semiad table`` and ``semiad plot``. Reads what ``semiad train`` wrote
(``config.yaml``, ``metrics.json``, ``.hydra/``, the sweep's ``sweep.csv``); never
raises for one broken run, which becomes a listed problem instead.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from semiad_cli.errors import SemiadError
from semiad_cli.results import CONFIG_YAML, METRICS_JSON, flatten

SWEEP_CSV = "sweep.csv"  # semiad_cli.sweeps.SWEEP_CSV, not imported: tables need no Hydra


@dataclass
class Run:
    """One run folder: its status, flattened config (``None`` if unknown) and metrics."""

    path: Path
    status: str  # completed | failed | interrupted | incomplete | skipped | foreign
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def seed(self) -> Any:
        if self.config and "seed" in self.config:
            return self.config["seed"]
        return self.metrics.get("seed")


def flat_config(config: dict) -> dict[str, Any]:
    """``results.flatten`` with list leaves as JSON text (``"[1, 2]"``): hashable values to group by."""
    return {k: json.dumps(v) if isinstance(v, (list, tuple)) else v for k, v in flatten(config).items()}


def _is_run_folder(path: Path) -> bool:
    if (path / METRICS_JSON).is_file() or (path / ".hydra").is_dir():
        return True
    return (path / CONFIG_YAML).is_file() and any(path.glob("*.log"))


def _natural_key(path: Path) -> list:
    return [int(p) if p.isdigit() else p for p in path.parts]


def find_run_folders(path: Path) -> list[Path]:
    """Run folders at or below ``path`` (a run, a sweep, or a folder of sweeps); sorted, numerically."""
    path = Path(path)
    if not path.exists():
        raise SemiadError(f"{path} does not exist; pass a run folder or a multirun sweep folder")
    if path.is_file():
        if path.name == METRICS_JSON:
            return [path.parent]
        raise SemiadError(f"{path} is a file; pass a run folder or a multirun sweep folder")
    found: list[Path] = []
    for root, dirs, _files in os.walk(path):
        here = Path(root)
        if _is_run_folder(here):
            found.append(here)
            dirs[:] = []  # checkpoints/, plots/ etc. are inside the run
            continue
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(found, key=_natural_key)


def _read_yaml(path: Path) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _model_name(path: Path, config: dict | None, metrics: dict) -> str | None:
    """The ``model=`` choice Hydra recorded (``ede``, ``deepsad``), else the class name."""
    hydra_cfg = _read_yaml(path / ".hydra" / "hydra.yaml") if (path / ".hydra" / "hydra.yaml").is_file() else None
    choice = (((hydra_cfg or {}).get("hydra") or {}).get("runtime") or {}).get("choices", {}).get("model")
    if choice:
        return str(choice)
    target = ((config or {}).get("model") or {}).get("_target_")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return metrics.get("model")


def _sweep_row(path: Path) -> dict[str, str] | None:
    """The ``sweep.csv`` row of a run folder inside a sweep folder, if any."""
    try:
        with open(path.parent / SWEEP_CSV, newline="") as handle:
            rows = {Path(row.get("run_dir") or "").name: row for row in csv.DictReader(handle)}
    except (OSError, csv.Error):
        return None
    return rows.get(path.name)


def read_run(path: Path) -> Run:
    """Classify one run folder; never raises for a broken run (it becomes a listed problem)."""
    path = Path(path)
    config = _read_yaml(path / CONFIG_YAML)
    if config is None and (path / ".hydra" / "config.yaml").is_file():
        config = _read_yaml(path / ".hydra" / "config.yaml")
    metrics: dict = {}
    status, error = "incomplete", "no metrics.json: the job was killed or is still running"
    row = _sweep_row(path) if not (path / METRICS_JSON).is_file() else None
    if row is not None and row.get("status") in ("failed", "interrupted"):
        # metrics.json could not be written (read-only or full disk), but the sweep recorded the job
        status = row["status"]
        error = f"no metrics.json; sweep.csv says: {row.get('error') or status}"
    if (path / METRICS_JSON).is_file():
        try:
            metrics = json.loads((path / METRICS_JSON).read_text())
        except (OSError, ValueError) as err:
            metrics, status, error = {}, "failed", f"unreadable metrics.json ({err})"
        else:
            if not isinstance(metrics, dict):
                metrics, status, error = {}, "foreign", "metrics.json is not a semiad metrics file"
            elif "run_dir" in metrics and "status" not in metrics:
                status, error = "skipped", f"an evaluate rescoring of {metrics['run_dir']}"
            elif "status" not in metrics:
                status, error = "foreign", "metrics.json has no semiad 'status' field"
            else:
                status, error = str(metrics["status"]), str(metrics.get("error") or "")
                if status == "completed" and "auroc" not in metrics:
                    status, error = "failed", "metrics.json says completed but holds no auroc"
    if config is not None and config.get("task_name") not in (None, "train"):
        status, error = "skipped", f"task {config.get('task_name')!r}, not a training run"
    flat = None
    if config is not None:
        flat = flat_config(config)
        flat["model"] = _model_name(path, config, metrics)
        flat["dataset"] = flat.get("dataset.name", metrics.get("dataset"))
    elif status == "completed":  # config lost: fall back to what metrics.json names
        flat = {"model": metrics.get("model"), "dataset": metrics.get("dataset"), "seed": metrics.get("seed")}
    return Run(path=path, status=status, config=flat, metrics=metrics, error=error)


def collect_runs(paths: list[str | Path]) -> list[Run]:
    """All run folders under ``paths``; a path holding no semiad run is an error naming it."""
    if not paths:
        raise SemiadError("give at least one run folder or multirun sweep folder")
    runs: list[Run] = []
    seen: set[Path] = set()
    for p in paths:
        folders = find_run_folders(Path(p))
        these = [read_run(f) for f in folders if f.resolve() not in seen]
        seen.update(f.resolve() for f in folders)
        ours = [r for r in these if r.status not in ("foreign", "skipped")]
        if not ours:
            if not folders:
                raise SemiadError(f"no run folders under {p} (looked for metrics.json or .hydra/)")
            example = next((r for r in these), None)
            raise SemiadError(f"no semiad training runs under {p}: {example.path} has {example.error}")
        runs.extend(these)
    return runs


def default_out_dir(paths: list[str | Path]) -> Path:
    """The given folder, or the deepest folder common to several (next to the sweep)."""
    resolved = [Path(p).resolve() for p in paths]
    resolved = [p.parent if p.is_file() else p for p in resolved]
    return Path(os.path.commonpath([str(p) for p in resolved]))


def split_list(values: list[str] | None) -> list[str] | None:
    """``--metric a,b --metric c`` → ``["a", "b", "c"]``; ``None`` when none was given."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]
