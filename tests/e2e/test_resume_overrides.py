"""``resume_from=<run>`` with overrides: what changes the experiment is refused before anything is written.

The killed run goes through a subprocess; the refusals and the resumes that train run in-process
(``cli_inproc``).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_reliability import KILLER, PY, RUN, env

# What a refusal must name as allowed.
ALLOWED = "trainer.max_epochs"


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    """RUN (seed 7, 4 epochs) killed with SIGKILL in epoch 3: checkpoint at epoch 2, no metrics.json."""
    out = tmp_path_factory.mktemp("killed")
    proc = subprocess.run([PY, "-c", KILLER, "train", *RUN, f"hydra.run.dir={out}"], capture_output=True,
                          text=True, env={**env(), "KILL_AT_EPOCH": "3"}, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return out


@pytest.fixture
def run(killed_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the killed run for each test."""
    copy = tmp_path / "run"
    shutil.copytree(killed_run, copy)
    return copy


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(cli_inproc, run: Path, *overrides: str) -> str:
    """The one error line of a refused resume; the run folder must be byte-identical afterwards."""
    before = snapshot(run)
    code, out, err = cli_inproc("train", f"resume_from={run}", *overrides)
    assert code == 2, (code, err[-2000:])
    assert "Traceback" not in err + out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("semiad: error:"), err
    assert snapshot(run) == before  # config.yaml, .hydra/overrides.yaml, checkpoint: untouched
    return lines[0]


@pytest.mark.parametrize("override", [
    "seed=9",
    "model=deepsad",
    "synthetic=uniform",
    "dataset.split.ratio_known_anomaly=0.1",
    "trainer.optimizer.lr=0.01",
])
def test_resume_refuses_an_override_that_changes_the_experiment(run: Path, override: str, cli_inproc) -> None:
    line = refused(cli_inproc, run, override)
    assert f"{override} would change what this run computes" in line and ALLOWED in line


def test_resume_refuses_another_dataset_and_the_plain_resume_still_works(run: Path, cli_inproc) -> None:
    line = refused(cli_inproc, run, "dataset=breast_cancer", "trainer.num_threads=1")
    assert "dataset=breast_cancer would change what this run computes" in line
    assert "trainer.num_threads=1" not in line.split(" would")[0]  # an allowed override is not named as refused
    cli_inproc("train", f"resume_from={run}", check=True)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["dataset"] == "digits" and metrics["seed"] == 7
    assert metrics["train"]["epochs"] == 4


def test_resume_refuses_fewer_epochs_than_already_trained(run: Path, cli_inproc) -> None:
    line = refused(cli_inproc, run, "trainer.max_epochs=1")
    assert "trainer.max_epochs=1" in line and "2 epochs" in line


def test_resume_accepts_more_epochs_and_the_run_s_own_values(run: Path, cli_inproc) -> None:
    # seed=7 (an override of the run) and trainer.batch_size=32 (its config's value) change nothing: they pass
    cli_inproc("train", f"resume_from={run}", "trainer.max_epochs=6", "trainer.num_threads=1",
               "trainer.progress=false", "seed=7", "trainer.batch_size=32", check=True)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["seed"] == 7
    assert metrics["train"]["epochs"] == 6
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_epochs"] == 6
