"""Every shipped config composes, and every model runs through the train task on digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from semiad_cli.cli import CONFIG_DIR
from semiad_cli.tasks import train

CONFIGS = Path(CONFIG_DIR)
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
DATASETS = sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONFIGS / "trainer").glob("*.yaml"))


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("model", MODELS)
def test_every_dataset_model_pair_composes(compose_cfg, dataset, model):
    cfg = compose_cfg("train", [f"dataset={dataset}", f"model={model}"])
    if dataset == "csv":  # named after its file once loaded (tasks/common.py::load_split)
        assert OmegaConf.is_missing(cfg.dataset, "name")
    else:
        assert cfg.dataset.name == dataset
    assert "_target_" in cfg.model and "_target_" in cfg.trainer and "_target_" in cfg.dataset.source


@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_composes(compose_cfg, trainer):
    cfg = compose_cfg("train", [f"trainer={trainer}"])
    assert cfg.trainer.max_epochs >= 0


def test_overrides_apply(compose_cfg):
    cfg = compose_cfg("train", ["model=ede", "trainer.max_epochs=5", "seed=3", "model.shared_encoder=true"])
    assert (cfg.trainer.max_epochs, cfg.seed, cfg.model.shared_encoder) == (5, 3, True)
    assert OmegaConf.is_missing(cfg.dataset.net, "input_shape")  # filled from data at run time


def test_evaluate_config_composes(compose_cfg):
    cfg = compose_cfg("evaluate", ["run_dir=/tmp/x"])
    assert cfg.run_dir == "/tmp/x"


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_and_scores_on_digits(compose_cfg, tmp_path, model):
    cfg = compose_cfg("train", [f"model={model}", "dataset=digits", "trainer=quick", "trainer.num_threads=1"])
    metrics = train.run(cfg, tmp_path)
    assert metrics["status"] == "completed"
    assert 0.0 <= metrics["auroc"] <= 1.0 and 0.0 <= metrics["aupr"] <= 1.0
    scores = np.loadtxt(tmp_path / "scores.csv", delimiter=",", skiprows=1, usecols=3)
    assert scores.shape == (metrics["split"]["n_test"],) and np.isfinite(scores).all()
    assert (tmp_path / "config.yaml").is_file() and any((tmp_path / "checkpoints").iterdir())
