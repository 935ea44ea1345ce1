"""The shared split defaults (configs/dataset/split/default.yaml) and the trainer / split schemas
(semiad_cli/schemas.py): every dataset composes the same split as when each file spelled it out,
the schemas name exactly the YAML keys, and wrong types are one-line errors before anything runs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import hydra
import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from semiad_cli import cli
from semiad_cli.cli import CONFIG_DIR
from semiad_cli.overrides import check_overrides
from semiad_cli.schemas import SplitSchema, TrainerSchema

CONFIGS = Path(CONFIG_DIR)
DATASETS = sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONFIGS / "trainer").glob("*.yaml"))

# dataset.split of every dataset as composed before the shared defaults file existed (each file held
# all 12 keys). Types count: 0.0 is not 0, false is not 0.
SPLIT_DEFAULTS = {"normal_class": 0, "known_anomaly_classes": None, "n_known_anomaly_classes": 1,
                  "ratio_known_anomaly": 0.05, "ratio_pollution": 0.0, "ratio_known_normal": 0.0, "test_size": 0.4,
                  "protocol": "clean", "scaling": "standard_minmax", "gcn": False, "max_train_normal": None,
                  "max_test": None}
ODDS = {"ratio_known_anomaly": 0.01}
PIXELS = {"scaling": "pixel"}
EXPECTED_SPLIT = {name: {**SPLIT_DEFAULTS, **delta} for name, delta in {
    "adbench": {}, "arrhythmia": ODDS, "breast_cancer": {"normal_class": "benign"}, "cardio": ODDS,
    "cifar10": PIXELS, "csv": {"normal_class": None, "scaling": "minmax"}, "digits": {"scaling": "minmax"},
    "fashion_mnist": PIXELS, "mnist": PIXELS,
    "nsl_kdd": {"normal_class": "normal", "known_anomaly_classes": ["DoS"], "scaling": "minmax"},
    "pneumoniamnist": PIXELS, "satellite": ODDS, "satimage-2": ODDS, "shuttle": ODDS, "thyroid": ODDS}.items()}


def _keys(path: Path) -> list[str]:
    return [k for k in (yaml.safe_load(path.read_text()) or {}) if k != "defaults"]


def _fields(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


# ---------------------------------------------------------------------------- (a) shared split defaults
def test_the_dataset_group_holds_the_datasets_only():
    assert DATASETS == sorted(EXPECTED_SPLIT)  # a new dataset: add its split to EXPECTED_SPLIT


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_composes_the_same_split_as_before(compose_cfg, dataset):
    split = compose_cfg("train", [f"dataset={dataset}"]).dataset.split
    assert json.dumps(OmegaConf.to_container(split), sort_keys=True) == json.dumps(EXPECTED_SPLIT[dataset],
                                                                                   sort_keys=True)
    assert OmegaConf.get_type(split) is SplitSchema


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_extends_the_shared_split_and_lists_only_changes(dataset):
    config = yaml.safe_load((CONFIGS / "dataset" / f"{dataset}.yaml").read_text())
    assert config["defaults"] == [{"split": "default"}, "_self_"]
    own = config.get("split") or {}
    assert set(own) <= set(SPLIT_DEFAULTS)
    assert not [k for k, v in own.items() if json.dumps(v) == json.dumps(SPLIT_DEFAULTS[k])], "repeats a default"


def test_help_lists_the_same_dataset_choices(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["semiad"])  # cli.main sets it for Hydra; restored afterwards
    with pytest.raises(SystemExit) as done:  # Hydra exits after printing the help
        cli.main(["train", "--help"])
    GlobalHydra.instance().clear()
    assert done.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"dataset: {', '.join(sorted(EXPECTED_SPLIT))}" in lines


# ---------------------------------------------------------------------------- (b) schemas name the YAML keys
def test_split_schema_names_the_shared_split_keys():
    assert _keys(CONFIGS / "dataset" / "split" / "default.yaml") == _fields(SplitSchema) == list(SPLIT_DEFAULTS)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trainer_keys_are_schema_fields(trainer):
    """A key added to a trainer file must be added to TrainerSchema too (and default.yaml holds them all)."""
    keys = _keys(CONFIGS / "trainer" / f"{trainer}.yaml")
    assert set(keys) <= set(_fields(TrainerSchema)), set(keys) - set(_fields(TrainerSchema))
    if trainer == "default":
        assert keys == _fields(TrainerSchema)


@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize("model", ["ede", "classifier", "deepsad"])
def test_every_trainer_composes_typed_and_complete(compose_cfg, trainer, model):
    cfg = compose_cfg("train", [f"model={model}", f"trainer={trainer}"])
    assert OmegaConf.get_type(cfg.trainer) is TrainerSchema
    assert not OmegaConf.missing_keys(cfg.trainer)
    assert OmegaConf.get_type(cfg.trainer.optimizer) is dict  # optimizer/scheduler: Any, any torch class


# ---------------------------------------------------------------------------- (b) wrong types, one line
@pytest.mark.parametrize(("overrides", "expected"), [
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' has the wrong type: expected an integer"),
    (["trainer.max_epochs=null"], "trainer.max_epochs=null has the wrong type: expected an integer"),
    (["trainer.max_epochs=[1,2]"], "trainer.max_epochs=[1, 2] has the wrong type: expected an integer"),
    (["trainer.amp=3"], "trainer.amp=3 has the wrong type: expected true or false"),
    (["trainer.progress=3"], "trainer.progress=3 has the wrong type: expected true or false or null"),
    (["trainer.patience=abc"], "trainer.patience='abc' has the wrong type: expected an integer or null"),
    (["dataset=cardio", "dataset.split.max_test=1.5"],
     "dataset.split.max_test=1.5 has the wrong type: expected an integer or null"),
    (["dataset.split.gcn=yes"], "dataset.split.gcn='yes' has the wrong type: expected true or false"),
    (["trainer.optimizer.lr=fast"],
     "trainer.optimizer.lr='fast' has the wrong type: expected a number (default 0.001)"),
    (["seed=abc"], "seed='abc' has the wrong type: expected an integer (default 1)"),
    (["trainer.foo=1"], "Could not override 'trainer.foo'. To append to your config use +trainer.foo=1"),
])
def test_wrong_type_is_one_line(overrides, expected):
    problem = check_overrides("train", overrides, CONFIG_DIR)
    assert problem is not None and problem.startswith(expected) and "\n" not in problem


@pytest.mark.parametrize("overrides", [
    ["trainer.max_epochs=5", "trainer.optimizer.lr=0.01", "seed=3"],
    ["dataset.split.test_size=1", "dataset.split.ratio_known_anomaly=0.1", "trainer.patience=null"],
    ["dataset.split.normal_class=[1,2]", "dataset.split.known_anomaly_classes=[3]", "trainer.grad_clip=1"],
    ["model=classifier", "trainer.progress=true", "trainer.device=cpu", "dataset.split.max_test=100"],
])
def test_right_types_pass(overrides):
    assert check_overrides("train", overrides, CONFIG_DIR) is None


@pytest.mark.parametrize(("overrides", "composes"), [
    (["trainer.max_epochs=5", "dataset.split.test_size=0.3"], 1),  # schema keys: OmegaConf checks them
    (["trainer.max_epochs=abc"], 1),
    (["seed=3"], 2),  # no schema: a second compose reads the default's type
])
def test_schema_keys_need_one_compose(overrides, composes, monkeypatch):
    calls = []
    real = hydra.compose

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(hydra, "compose", counting)
    check_overrides("train", overrides, CONFIG_DIR)
    assert len(calls) == composes


@pytest.mark.parametrize(("text", "expected"), [
    ("defaults:\n  - default\nmax_epochs: abc\n",
     "In 'trainer/bad': ValidationError raised while composing config: Value 'abc' of type 'str' could not be "
     "converted to Integer (at trainer.max_epochs)"),
    ("defaults:\n  - default\nlog_evry: 5\n",
     "In 'trainer/bad': ConfigKeyError raised while composing config: Key 'log_evry' not in 'TrainerSchema' "
     "(at trainer.log_evry)"),
])
def test_wrong_key_or_type_in_a_yaml_file_is_one_line(tmp_path, text, expected):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    (configs / "trainer" / "bad.yaml").write_text(text)
    assert check_overrides("train", ["trainer=bad"], str(configs)) == expected
