"""Every shipped config composes, and every model runs through the train task on digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf
from sklearn.metrics import average_precision_score, roc_auc_score

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
    own = yaml.safe_load((CONFIGS / "trainer" / f"{trainer}.yaml").read_text())
    own.pop("defaults", None)
    assert own  # every trainer file sets something of its own, and composing keeps each of its values
    _assert_holds(OmegaConf.to_container(cfg.trainer), own, "trainer")


def _assert_holds(composed: dict, own: dict, where: str) -> None:
    """Each value ``own`` sets is in ``composed`` (nested mappings merge with the defaults')."""
    for key, value in own.items():
        assert key in composed, f"{where}.{key}"
        if isinstance(value, dict):
            _assert_holds(composed[key], value, f"{where}.{key}")
        else:
            assert composed[key] == value, f"{where}.{key}"


def test_overrides_apply(compose_cfg):
    cfg = compose_cfg("train", ["model=ede", "trainer.max_epochs=5", "seed=3", "model.shared_encoder=true"])
    assert (cfg.trainer.max_epochs, cfg.seed, cfg.model.shared_encoder) == (5, 3, True)
    assert OmegaConf.is_missing(cfg.dataset.net, "input_shape")  # filled from data at run time


SPECIALIZATIONS = sorted(p.stem for p in (CONFIGS / "dataset_model").glob("*.yaml"))


@pytest.mark.parametrize("name", SPECIALIZATIONS)
def test_every_dataset_model_specialization_names_a_real_pair_and_applies_to_it_only(compose_cfg, name):
    """``dataset_model/<dataset>_<model>.yaml`` reaches that pair's config and no other pair's."""
    dataset, model = next((d, m) for d in DATASETS for m in MODELS if name == f"{d}_{m}")
    own = yaml.safe_load((CONFIGS / "dataset_model" / f"{name}.yaml").read_text())
    cfg = compose_cfg("train", [f"dataset={dataset}", f"model={model}"])
    _assert_holds(OmegaConf.to_container(cfg), own, name)
    other = next(d for d in DATASETS if f"{d}_{model}" not in SPECIALIZATIONS)
    plain = compose_cfg("train", [f"dataset={other}", f"model={model}"])
    settings = [(group, key, value) for group in ("model", "trainer") for key, value in _leaves(own.get(group, {}))]
    assert settings and set(own) <= {"model", "trainer"}, f"{name}: only model and trainer keys are checked here"
    for group, key, value in settings:
        assert OmegaConf.select(plain[group], key) != value, f"{group}.{key} leaked to dataset={other}"
    # the command line still wins (0.5: a value every key here takes, an integer width or a decay in (0, 1);
    # 1: an integer width or a part's weight)
    again = compose_cfg("train", [f"dataset={dataset}", f"model={model}",
                                  *(f"{group}.{key}=0.5" if group == "trainer" else f"{group}.{key}=1"
                                    for group, key, _ in settings)])
    assert all(OmegaConf.select(again[group], key) == (0.5 if group == "trainer" else 1)
               for group, key, _ in settings)


def _leaves(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted key, value)`` of every non-mapping value in ``tree``."""
    out = []
    for key, value in tree.items():
        out += _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [(f"{prefix}{key}", value)]
    return out


def test_ede_net_width_is_two_on_mnist_and_fashion_mnist_only(compose_cfg):
    widths = {d: compose_cfg("train", [f"dataset={d}", "model=ede"]).model.net_width
              for d in ("mnist", "fashion_mnist", "cifar10", "pneumoniamnist", "cardio", "digits")}
    assert widths == {"mnist": 2, "fashion_mnist": 2, "cifar10": 1, "pneumoniamnist": 1, "cardio": 1, "digits": 1}
    swept = compose_cfg("train", ["experiment=oneclass_images_paper", "model=ede", "dataset=fashion_mnist"])
    assert swept.model.net_width == 2


def test_ede_weighs_the_code_norm_twice_where_validation_chose_it_only(compose_cfg):
    """``model.part_weights.znorm`` 2 for EDE where validation chose it (docs/ede.md); 1 elsewhere, MNIST and
    cardio included; the paper sweeps keep it."""
    twice = ("fashion_mnist", "pneumoniamnist", "satellite", "thyroid")
    weights = {d: dict(compose_cfg("train", [f"dataset={d}", "model=ede"]).model.part_weights)
               for d in ("mnist", "cifar10", "arrhythmia", "cardio", "satimage-2", "shuttle", "breast_cancer",
                         "digits", *twice)}
    assert weights == {d: {"rec": 1.0, "rec_rel": 1.0, "znorm": 2.0 if d in twice else 1.0} for d in weights}
    swept = compose_cfg("train", ["experiment=oneclass_images_paper", "model=ede", "dataset=fashion_mnist"])
    assert swept.model.part_weights.znorm == 2.0
    swept = compose_cfg("train", ["experiment=odds_paper", "model=ede", "dataset=thyroid"])
    assert swept.model.part_weights.znorm == 2.0
    assert compose_cfg("train", ["dataset=thyroid", "model=deepsad"]).model.get("part_weights") is None


def test_ede_averages_its_weights_on_mnist_and_fashion_mnist_only(compose_cfg):
    """``trainer.ema_decay`` 0.99 for EDE on the two image sets where validation chose it (docs/ede.md),
    the last step's weights for every other pair; the paper sweep keeps it."""
    decays = {(d, m): compose_cfg("train", [f"dataset={d}", f"model={m}"]).trainer.ema_decay
              for d in ("mnist", "fashion_mnist", "cifar10", "cardio", "digits") for m in ("ede", "deepsad")}
    assert decays == {(d, m): 0.99 if m == "ede" and d in ("mnist", "fashion_mnist") else None
                      for d, m in decays}
    swept = compose_cfg("train", ["experiment=oneclass_images_paper", "model=ede", "dataset=mnist"])
    assert swept.trainer.ema_decay == 0.99


def test_evaluate_config_composes(compose_cfg):
    cfg = compose_cfg("evaluate", ["run_dir=/tmp/x"])
    assert cfg.run_dir == "/tmp/x"


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_and_scores_on_digits(compose_cfg, tmp_path, model):
    cfg = compose_cfg("train", [f"model={model}", "dataset=digits", "trainer=quick", "trainer.num_threads=1"])
    metrics = train.run(cfg, tmp_path)
    assert metrics["status"] == "completed"
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == metrics["split"]["n_test"] and np.isfinite(scores["score"]).all()
    # the reported metrics are those of the scores written (label = anomaly), and better than chance on digits
    assert metrics["auroc"] == pytest.approx(roc_auc_score(scores["label"], scores["score"]))
    assert metrics["aupr"] == pytest.approx(average_precision_score(scores["label"], scores["score"]))
    assert metrics["auroc"] > 0.6
    assert (tmp_path / "config.yaml").is_file() and any((tmp_path / "checkpoints").iterdir())
