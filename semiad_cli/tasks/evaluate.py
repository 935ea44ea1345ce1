"""``semiad evaluate run_dir=…``: rebuild a finished run from its saved config and checkpoint,
rescore its test part and compare with the metrics written at train time."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from semiad_cli import results
from semiad_cli.data.split import Split
from semiad_cli.errors import CheckpointError, ConfigError
from semiad_cli.metrics import evaluate_scores
from semiad_cli.models.base import Detector
from semiad_cli.tasks.common import build_model, load_split, seed_everything

log = logging.getLogger(__name__)


def load_run(run_dir: Path, data_root: str | None = None) -> tuple[DictConfig, Split, Detector]:
    """A finished run rebuilt from its folder: its saved config, its split (from ``data_root`` when given,
    else the run's own) and its model with the checkpoint loaded. Raises a named error for a folder that
    is not a finished run."""
    if not run_dir.is_dir():
        raise ConfigError(f"run_dir={run_dir} is not a folder")
    config_file = run_dir / results.CONFIG_YAML
    if not config_file.is_file():
        raise CheckpointError(f"{run_dir} has no {results.CONFIG_YAML}: not a semiad run folder")
    ckpt_dir = run_dir / results.CHECKPOINT_DIR
    if not ckpt_dir.is_dir() or not any(ckpt_dir.iterdir()):
        raise CheckpointError(f"{run_dir} has no checkpoint in {ckpt_dir}: the run did not finish training")
    run_cfg = OmegaConf.load(config_file)
    if data_root:
        run_cfg.data_root = data_root
    seed_everything(run_cfg.seed)
    split, _ = load_split(run_cfg)
    model = build_model(run_cfg)
    model.load(ckpt_dir)
    return run_cfg, split, model


def run(cfg: DictConfig, out_dir: Path) -> dict:
    if not cfg.get("run_dir"):
        raise ConfigError("evaluate needs run_dir=<a run folder written by semiad train>")
    run_dir = Path(cfg.run_dir).expanduser()
    run_cfg, split, model = load_run(run_dir, cfg.get("data_root"))
    scores, parts = model.score_with_parts(split.test.X)  # one pass over the test set
    metrics = evaluate_scores(split, scores, parts)
    # status as in a train run's metrics: the CLI's closing line ("run completed: …") reads it
    metrics.update({"status": "completed", "run_dir": str(run_dir), "dataset": run_cfg.dataset.name,
                    "model": type(model).__name__, "seed": int(run_cfg.seed),
                    "data_sha256": {"train": split.train.fingerprint(), "test": split.test.fingerprint()}})
    train_file = run_dir / results.METRICS_JSON
    if train_file.is_file():
        before = results.read_json(train_file)
        metrics["matches_train"] = {k: before.get(k) == metrics[k] for k in ("auroc", "aupr")}
        metrics["train_metrics"] = {k: before.get(k) for k in ("auroc", "aupr")}
        _check_same_data(run_dir, before.get("data_sha256"), metrics)
    out_dir = Path(out_dir)
    results.write_scores(out_dir / results.SCORES_CSV, split.test, scores, parts)
    results.write_metrics(out_dir, metrics)
    log.info("rescored %s: AUROC %.4f AUPR %.4f", run_dir, metrics["auroc"], metrics["aupr"])
    return metrics


def _check_same_data(run_dir: Path, trained: dict | None, metrics: dict) -> None:
    """Warn on the console when the test data differ from those the run was scored on at train time.

    The data files (or ``data_root``) may have changed since training; the new numbers are then
    not the run's, and without a word they would pass for a reproduction.
    """
    if not isinstance(trained, dict) or not trained.get("test"):
        log.info("%s records no data fingerprint (trained before semiad stored one); data not compared", run_dir)
        return
    now = metrics["data_sha256"]["test"]
    metrics["data_matches_train"] = now == trained["test"]
    if metrics["data_matches_train"]:
        return
    message = (f"the test data differ from those {run_dir} was scored on at train time (sha256 {trained['test'][:16]} "
               f"then, {now[:16]} now): the data files changed since training, so these metrics are not the run's")
    log.debug("data fingerprint mismatch: %s", message)
    print(f"semiad: warning: {message}", file=sys.stderr)
