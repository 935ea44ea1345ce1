"""``semiad train``: split → fit → score the test part → write the run folder."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from semiad_cli import loggers, results
from semiad_cli.data.split import Part, Split
from semiad_cli.metrics import auroc_aupr, evaluate_scores
from semiad_cli.models.base import Detector
from semiad_cli.tasks.common import build, build_model, fill_data_sizes, load_split, seed_everything
from semiad_cli.training.loop import Trainer

log = logging.getLogger(__name__)


def run(cfg: DictConfig, out_dir: Path, *, prefitted: bool = False) -> dict:
    """Train the configured model and write ``out_dir``; returns the metrics dict.

    Test metrics go to files only; ``metrics["objective"]`` (validation AUROC,
    else minus the validation loss) is what sweepers optimise. ``prefitted``: the final weights
    are already in ``out_dir/checkpoints`` (``hydra/launcher=stacked`` trained this seed together
    with others, ``semiad_cli/stacking.py``); the trainer picks them up like a finished resume.
    """
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    seed_everything(cfg.seed)
    # the logger first: a missing tracking library is reported before the data loads
    tracker = build(cfg.logger, "logger") if cfg.get("logger") is not None else loggers.Logger()
    split, load_seconds = load_split(cfg)
    fill_data_sizes(cfg, split.sample_shape)
    results.write_config(out_dir, cfg)
    with loggers.tracking(tracker, cfg, out_dir):  # closes the tracking run as completed, failed or interrupted
        return _fit_and_score(cfg, out_dir, split, load_seconds, t_start, tracker, prefitted)


@dataclass
class Prepared:
    """What ``Trainer.fit`` gets for one seed: the trainer, the model and the parts it trains on."""

    trainer: Trainer
    model: Detector
    train: Part
    val: Part | None
    n_synthetic: dict[str, int]


def prepare_fit(cfg: DictConfig, split: Split) -> Prepared:
    """Trainer, validation hold-out, synthetic anomalies and the model, in the order a run draws its
    random numbers (the stacked launcher prepares each seed through here, as a separate run would)."""
    trainer = build(cfg.trainer, "trainer")
    train, val = trainer.hold_out(split.train, int(cfg.seed))
    # synthetic anomalies (any model, "+SA"): added to train and val as labeled anomalies, never to test
    synthetic = build(cfg.synthetic, "synthetic") if cfg.get("synthetic") is not None else None
    n_synthetic = {"n_synthetic_train": 0, "n_synthetic_val": 0}
    if synthetic is not None:
        train, val, n_synthetic = synthetic.augment(train, val, split.features, int(cfg.seed))
    return Prepared(trainer, build_model(cfg), train, val, n_synthetic)


def prepare_seed(cfg: DictConfig) -> Prepared:
    """``run`` up to the fit, writing nothing: seeding, data, sizes, trainer and model of ``cfg``."""
    seed_everything(cfg.seed)
    split, _ = load_split(cfg)
    fill_data_sizes(cfg, split.sample_shape)
    return prepare_fit(cfg, split)


def _fit_and_score(cfg: DictConfig, out_dir: Path, split: Split, load_seconds: float, t_start: float,
                   tracker: loggers.Logger, prefitted: bool = False) -> dict:
    prepared = prepare_fit(cfg, split)
    trainer, model, train, val, n_synthetic = (prepared.trainer, prepared.model, prepared.train, prepared.val,
                                               prepared.n_synthetic)

    history_file = results.HistoryFile(out_dir)

    def on_epoch_end(record: dict[str, float]) -> None:
        history_file.update(trainer.history)
        tracker.log_epoch(record)

    trainer.on_epoch_end = on_epoch_end
    trainer.resume = trainer.resume or prefitted
    t_fit = time.perf_counter()
    trainer.fit(model, train, val, out_dir / results.CHECKPOINT_DIR, seed=int(cfg.seed))
    if prefitted:  # the epochs ran in the stacked group: the tracking logger gets them now
        for record in trainer.history:
            tracker.log_epoch(dict(record))
    fit_seconds = time.perf_counter() - t_fit
    wall = {"load_s": load_seconds, "fit_s": fit_seconds}
    if prefitted:  # trained in a stacked group: fit_s is the group's training time, shared by its seeds
        wall.update(fit_s=float(sum(r.get("seconds", 0.0) for r in trainer.history)), fit_stacked=True)
    results.write_history(out_dir, trainer.history)  # also header-only for closed-form models

    scores, parts = model.score_with_parts(split.test.X)  # one pass over the test set
    metrics = evaluate_scores(split, scores, parts)
    objective = None
    real_val = val.take(np.flatnonzero(val.index >= 0)) if val is not None else None  # synthetic rows: index −1
    if real_val is not None and len(real_val) and 0 < real_val.y.sum() < len(real_val):
        metrics["val"] = auroc_aupr(real_val.y, model.score(real_val.X))
        objective = metrics["val"]["auroc"]
    elif trainer.summary().get("final_val_loss") is not None:
        objective = -trainer.summary()["final_val_loss"]
    metrics.update({
        "status": "completed",
        "objective": objective,
        "dataset": cfg.dataset.name,
        "model": type(model).__name__,
        "seed": int(cfg.seed),
        "normal_classes": [str(c) for c in split.normal_classes],
        "known_anomaly_classes": [str(c) for c in split.known_anomaly_classes],
        "data_sha256": {"train": split.train.fingerprint(), "test": split.test.fingerprint()},  # for evaluate
        "split": {**split.counts, "n_train_fit": len(train), "n_val": len(val) if val is not None else 0,
                  **n_synthetic},
        "train": trainer.summary(),
        "wall_time": {**wall, "total_s": time.perf_counter() - t_start},
    })
    results.write_scores(out_dir / results.SCORES_CSV, split.test, scores, parts)
    results.write_metrics(out_dir, metrics)
    tracker.log_final(metrics)
    log.info("test AUROC %.4f  AUPR %.4f  (%s on %s, seed %d)", metrics["auroc"], metrics["aupr"],
             metrics["model"], metrics["dataset"], metrics["seed"])
    return metrics
