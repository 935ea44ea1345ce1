"""Sweeps through Hydra's plugins, as a user runs them: joblib, submitit_local, Optuna, resume.

Every job is digits with one epoch. The parallel launchers and the killed sweep run in subprocesses; the
Optuna searches and the resumes run in-process (``cli_inproc``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
QUICK = ("trainer.max_epochs=1",)
# A subprocess that imports torch costs ~4 s of CPU before its run starts; the parallel launchers start
# several. Deselect with -m 'not slow'.
pytestmark = pytest.mark.slow


ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "SEMIAD_CONFIG_DIR": str(REPO / "configs")}


def semiad(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "semiad_cli", *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"semiad {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def only_sweep_dir(run_root: Path) -> Path:
    """The sweep dir under ``run_root/multirun/<date>/``: exactly one for one sweep."""
    dirs = sorted(run_root.glob("multirun/*/*"))
    assert len(dirs) == 1, dirs
    return dirs[0]


def check_parallel_sweep(run_root: Path) -> None:
    sweep = only_sweep_dir(run_root)  # the uid resolver gave every worker the same sweep dir
    table = pd.read_csv(sweep / "sweep.csv")
    assert table["job"].tolist() == [0, 1]
    assert table["status"].tolist() == ["completed", "completed"]
    assert (table["wall_s"] > 0).all()
    for num, seed in [(0, 1), (1, 2)]:
        m = metrics(sweep / str(num))
        assert m["status"] == "completed" and m["seed"] == seed
        assert table["auroc"][num] == m["auroc"]
        assert f"seed={seed}" in table["overrides"][num].split()
        cfg = yaml.safe_load((sweep / str(num) / "config.yaml").read_text())
        assert cfg["trainer"]["num_threads"] >= 1  # set for each parallel job, never the all-cores default


def test_joblib_two_parallel_jobs(tmp_path):
    semiad("train", "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2", *QUICK,
           f"run_root={tmp_path}")
    check_parallel_sweep(tmp_path)
    cores = len(os.sched_getaffinity(0))
    cfg = yaml.safe_load((only_sweep_dir(tmp_path) / "0" / "config.yaml").read_text())
    assert cfg["trainer"]["num_threads"] == max(1, cores // 2)


def test_submitit_local_two_jobs(tmp_path):
    semiad("train", "--multirun", "hydra/launcher=submitit_local", "seed=1,2", *QUICK, f"run_root={tmp_path}")
    check_parallel_sweep(tmp_path)
    assert (only_sweep_dir(tmp_path) / ".submitit").is_dir()


def test_optuna_three_trials_on_the_validation_metric(tmp_path, cli_inproc):
    sweep = tmp_path / "search"
    cli_inproc("train", "--multirun", "hparams_search=ede_optuna", "hydra.sweeper.n_trials=3", *QUICK,
               f"hydra.sweep.dir={sweep}", check=True)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    table = pd.read_csv(sweep / "sweep.csv")
    assert len(table) == 3 and (table["status"] == "completed").all()
    objectives = [metrics(sweep / str(n))["objective"] for n in range(3)]
    for n, value in enumerate(objectives):  # the objective is the validation AUROC, not the test one
        assert value == metrics(sweep / str(n))["val"]["auroc"]
        assert table["objective"][n] == value
    assert best["best_value"] == max(objectives)
    assert set(best["best_params"]) >= {"trainer.optimizer.lr", "model.lambda_ent"}


def test_optuna_refuses_a_search_without_validation_split(tmp_path, cli_inproc):
    proc = cli_inproc("train", "--multirun", "hparams_search=ede_optuna", "hydra.sweeper.n_trials=2", *QUICK,
                      "trainer.val_fraction=0", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode != 0
    assert "trainer.val_fraction is 0" in proc.stderr
    assert not (tmp_path / "0" / "checkpoints").exists()  # refused before training
    assert metrics(tmp_path / "0")["status"] == "failed"  # and recorded as such


def test_resume_reruns_only_the_unfinished_jobs(tmp_path, cli_inproc):
    sweep = tmp_path / "sweep"
    # Job 1 cannot write its scores: a directory stands where scores.csv goes. It fails; 0 and 2 finish.
    (sweep / "1" / "scores.csv").mkdir(parents=True)
    args = ("train", "--multirun", "seed=1,2,3", *QUICK, "trainer.num_threads=1", f"hydra.sweep.dir={sweep}")
    cli_inproc(*args, check=True)  # a failed job is recorded and the sweep goes on
    first = pd.read_csv(sweep / "sweep.csv")
    assert first["status"].tolist() == ["completed", "failed", "completed"]
    failed = metrics(sweep / "1")  # a failed job's metrics.json holds its status and error, no metrics
    assert failed["status"] == "failed" and failed["error_type"] == "IsADirectoryError" and "auroc" not in failed
    stamps = {n: (sweep / str(n) / "metrics.json").stat().st_mtime_ns for n in (0, 2)}

    (sweep / "1" / "scores.csv").rmdir()
    cli_inproc(*args, "+resume=true", check=True)
    table = pd.read_csv(sweep / "sweep.csv")
    assert table["status"].tolist() == ["completed"] * 3
    assert table["reused"].tolist() == [True, False, True]
    for n in (0, 2):  # not retrained: metrics.json untouched, same numbers in the summary
        assert (sweep / str(n) / "metrics.json").stat().st_mtime_ns == stamps[n]
        assert table["auroc"][n] == first["auroc"][n]
    assert metrics(sweep / "1")["seed"] == 2 and metrics(sweep / "1")["status"] == "completed"



def test_sweep_killed_mid_job_resumes_from_the_finished_jobs(tmp_path, cli_inproc):
    sweep = tmp_path / "sweep"
    # Job 1 trains 150 epochs: the sweep is killed (SIGKILL, as a lost node or scancel) while it trains.
    args = ("train", "--multirun", "trainer.max_epochs=1,150,1", "trainer.num_threads=1", f"hydra.sweep.dir={sweep}")
    proc = subprocess.Popen([sys.executable, "-m", "semiad_cli", *args], cwd=REPO, env=ENV, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (sweep / "1" / "train.log").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (sweep / "0" / "metrics.json").is_file()
    assert not (sweep / "1" / "metrics.json").exists()  # killed mid-training: no metrics, complete or partial
    assert not list((sweep / "1").glob(".metrics.json.*"))  # nor a stray temp file in its place
    assert pd.read_csv(sweep / "sweep.csv")["job"].tolist() == [0]
    stamp = (sweep / "0" / "metrics.json").stat().st_mtime_ns

    cli_inproc(*args, "+resume=true", check=True)
    table = pd.read_csv(sweep / "sweep.csv")
    assert table["status"].tolist() == ["completed"] * 3 and table["reused"].tolist() == [True, False, False]
    assert (sweep / "0" / "metrics.json").stat().st_mtime_ns == stamp
    assert metrics(sweep / "1")["train"]["epochs"] == 150
