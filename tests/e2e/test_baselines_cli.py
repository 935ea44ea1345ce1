"""Every baseline through the CLI as a user runs it: same run folder, same metrics.json keys as EDE,
and evaluating the run folder reproduces the train-time metrics from the checkpoint.

The sweep runs in a subprocess; the evaluation and the pre-training run in-process (``cli_inproc``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from semiad_cli.tasks import evaluate

REPO = Path(__file__).resolve().parents[2]
BASELINES = ["deepsad", "deepsvdd", "ocsvm", "iforest", "gbt", "logreg"]


def semiad(*args: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SEMIAD_CONFIG_DIR": str(REPO / "configs"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "semiad_cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"semiad {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


def read(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def keys(d: dict, prefix: str = "") -> set[str]:
    """Nested key paths, leaving out dictionaries whose keys depend on model or data (parts, classes)."""
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k not in ("parts", "per_class", "train_known_anomaly_per_class",
                                             "train_polluted_per_class", "test_per_class"):
            out |= keys(v, prefix + k + ".")
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One multirun over EDE and every baseline (one process keeps this quick): model name → run folder."""
    root = tmp_path_factory.mktemp("sweep")
    semiad("train", "--multirun", "dataset=digits", f"model=ede,{','.join(BASELINES)}", "trainer.max_epochs=2",
           "trainer.num_threads=1", f"hydra.sweep.dir={root}")
    found = {}
    for job in root.iterdir():
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml") if (job / ".hydra").is_dir() else []
        for o in overrides:
            if o.startswith("model="):
                found[o.split("=", 1)[1]] = job
    assert set(found) == {"ede", *BASELINES}
    return found


@pytest.mark.parametrize("model", BASELINES)
def test_baseline_writes_ede_metrics_keys_and_evaluates_identically(model, runs, tmp_path):
    run = runs[model]
    m = read(run)
    assert m["status"] == "completed" and 0.5 < m["auroc"] <= 1.0
    assert keys(m) == keys(read(runs["ede"]))
    assert any((run / "checkpoints").iterdir()) and (run / "config.yaml").is_file()
    after = evaluate.run(OmegaConf.create({"run_dir": str(run), "data_root": None}), tmp_path)
    assert after["matches_train"] == {"auroc": True, "aupr": True}
    assert pd.read_csv(tmp_path / "scores.csv")["score"].equals(pd.read_csv(run / "scores.csv")["score"])


def test_cli_evaluate_reloads_a_classical_checkpoint(runs, tmp_path, cli_inproc):
    cli_inproc("evaluate", f"run_dir={runs['ocsvm']}", f"hydra.run.dir={tmp_path}", check=True)
    assert read(tmp_path)["matches_train"] == {"auroc": True, "aupr": True}
    assert {p.name for p in (runs["ocsvm"] / "checkpoints").iterdir()} == {"model.joblib", "model.json"}


def test_deepsad_with_pretraining_and_paper_trainer_runs(tmp_path, cli_inproc):
    run = tmp_path / "run"
    cli_inproc("train", "dataset=digits", "model=deepsad", "trainer=deepsad", "trainer.max_epochs=2",
               "trainer.num_threads=1", "model.pretrain_epochs=2", f"hydra.run.dir={run}", check=True)
    m = read(run)
    assert m["status"] == "completed" and m["train"]["epochs"] == 2
    assert "autoencoder pre-training: 2 epochs" in (run / "train.log").read_text()
