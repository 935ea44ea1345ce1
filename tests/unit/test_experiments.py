"""Every experiment file composes for every model and dataset of its sweep, and keeps each model's recipe.

No training here: the experiment files only choose data, models and budgets, and they must not replace
the training recipe a model brings (classifier: AdamW + early stopping + synthetic anomalies; Deep SAD /
Deep SVDD: Adam 1e-4, batch 128, milestone 50; EDE: Adam 1e-3, batch 32).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from semiad_cli.cli import CONFIG_DIR

EXPERIMENTS = sorted((Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def _choices(value) -> list[str]:
    """The values of one sweep parameter, e.g. 'ede,deepsad' -> ['ede', 'deepsad']."""
    return [v.strip() for v in str(value).split(",")]


def _cases() -> list[tuple[str, str | None, str]]:
    cases = []
    for path in EXPERIMENTS:
        params = OmegaConf.load(path).hydra.sweeper.params
        datasets = _choices(params["dataset"]) if "dataset" in params else [None]
        for model in _choices(params["model"]):
            for dataset in datasets:
                cases.append((path.stem, dataset, model))
    return cases


def test_every_experiment_has_both_profiles():
    names = {p.stem for p in EXPERIMENTS}
    tables = {n.rsplit("_", 1)[0] for n in names}
    assert {"oneclass_images", "odds", "synthetic_nslkdd", "synthetic_odds", "medical"} <= tables
    assert all({f"{t}_quick", f"{t}_paper"} <= names for t in tables)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_no_experiment_overrides_the_trainer_group(path):
    defaults = OmegaConf.to_container(OmegaConf.load(path)).get("defaults", [])
    assert not any("/trainer" in str(d) for d in defaults), "models choose their trainer; cap epochs with values"


@pytest.mark.parametrize(("experiment", "dataset", "model"), _cases())
def test_experiment_composes_and_keeps_the_model_recipe(compose_cfg, experiment, dataset, model):
    overrides = [f"experiment={experiment}", f"model={model}"] + ([f"dataset={dataset}"] if dataset else [])
    cfg = compose_cfg("train", overrides)
    tr = cfg.trainer
    assert tr.num_threads == 1
    if dataset:
        assert cfg.dataset.name == dataset
    if model == "classifier":
        assert tr.optimizer._target_ == "torch.optim.AdamW" and tr.optimizer.lr == 1e-3
        assert (tr.val_fraction, tr.patience, tr.batch_size) == (0.2, 7, 1024)
        assert cfg.synthetic.ratio == 1.0
    elif model in ("deepsad", "deepsvdd"):
        assert tr.optimizer._target_ == "torch.optim.Adam" and tr.optimizer.lr == 1e-4
        assert tr.batch_size == 128 and list(tr.scheduler.milestones) == [50]
    elif model == "ede":
        assert tr.optimizer.lr == 1e-3 and tr.batch_size == 32
    if experiment.endswith("_paper"):
        assert tr.max_epochs == {"classifier": 200, "deepsad": 150, "deepsvdd": 150, "ede": 100}.get(
            model, tr.max_epochs)
        assert cfg.dataset.split.max_train_normal is None and cfg.dataset.split.max_test is None
    else:
        assert tr.max_epochs <= 30


def test_synthetic_ratio_on_the_command_line_wins(compose_cfg):
    vanilla = compose_cfg("train", ["experiment=synthetic_nslkdd_quick", "model=classifier", "synthetic.ratio=0"])
    sa = compose_cfg("train", ["experiment=synthetic_nslkdd_quick", "model=deepsad", "synthetic.ratio=1"])
    assert vanilla.synthetic.ratio == 0 and sa.synthetic.ratio == 1
    assert list(sa.dataset.split.known_anomaly_classes) == ["R2L"] and sa.dataset.source.train_file == "20percent"
