"""history.csv and the tracking loggers end to end, read back with the real libraries (no mocks):
TensorBoard's ``EventAccumulator``, MLflow's ``MlflowClient`` and the ``mlflow server`` REST API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import KILLER, REPO, read_metrics

EDE_COLUMNS = ["epoch", "loss", "rec", "ent", "con", "steps", "lr", "seconds"]



def client(store: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{store}")


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables made: making them takes MLflow seconds, copying it none."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    client(path).search_experiments()
    return path


@pytest.fixture
def run_root(tmp_path: Path, empty_store: Path) -> Path:
    """``run_root`` for one test, holding a copy of the empty store where the logger looks by default."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return tmp_path


def test_tensorboard_event_file_holds_every_epoch_and_the_final_metrics(tmp_path: Path, cli_inproc) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    cli_inproc("train", "logger=tensorboard", "trainer.max_epochs=3", "trainer.progress=false",
               f"run_root={tmp_path}", f"hydra.run.dir={run}", check=True)
    metrics = read_metrics(run)
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns) == EDE_COLUMNS and history["epoch"].tolist() == [1, 2, 3]

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    loss = events.Scalars("epoch/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx(history["loss"].tolist(), rel=1e-6)  # stored as float32
    assert [e.value for e in events.Scalars("epoch/lr")] == pytest.approx([1e-3] * 3)
    assert events.Scalars("final/auroc")[-1].value == pytest.approx(metrics["auroc"], rel=1e-6)
    assert events.Scalars("final/known_aupr")[-1].value == pytest.approx(metrics["known_aupr"], rel=1e-6)


def test_mlflow_run_has_config_params_epoch_and_final_metrics_and_the_run_files(run_root: Path,
                                                                              cli_inproc) -> None:
    run = run_root / "run"
    cli_inproc("train", "logger=mlflow", "trainer.max_epochs=3", "trainer.progress=false", f"run_root={run_root}",
               f"hydra.run.dir={run}", check=True)
    metrics = read_metrics(run)
    mlflow = client(run_root / "mlflow.db")  # the default store: sqlite:///<run_root>/mlflow.db
    experiment = mlflow.get_experiment_by_name("semiad-train")
    (found,) = mlflow.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED" and found.data.tags["semiad.run_dir"] == str(run.resolve())
    params = found.data.params
    assert params["model._target_"] == "semiad_cli.models.ede.EDE" and params["trainer.max_epochs"] == "3"
    assert params["logger._target_"] == "semiad_cli.loggers.MLflowLogger"
    history = mlflow.get_metric_history(found.info.run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pd.read_csv(run / "history.csv")[
        "loss"].tolist()
    final = found.data.metrics
    assert final["auroc"] == metrics["auroc"] and final["aupr"] == metrics["aupr"]
    assert final["known_aupr"] == metrics["known_aupr"] and final["unknown_aupr"] == metrics["unknown_aupr"]
    for cls, m in metrics["per_class"].items():
        assert final[f"per_class.{cls}.aupr"] == m["aupr"]
    files = {a.path for a in mlflow.list_artifacts(found.info.run_id)}
    assert {"metrics.json", "metrics.csv", "config.yaml", "scores.csv", "history.csv", "train.log"} <= files
    assert not (REPO / "mlruns").exists()  # nothing written into the working folder


def test_resumed_run_has_each_epoch_once_in_history_and_continues_its_mlflow_run(run_root: Path,
                                                                                cli_inproc) -> None:
    run = run_root / "run"
    args = ["train", "logger=mlflow", "trainer.max_epochs=5", "trainer.checkpoint_every=2", "trainer.val_fraction=0.2",
            "trainer.progress=false", "trainer.num_threads=1", f"run_root={run_root}", f"hydra.run.dir={run}"]
    # killed in epoch 4: epochs 1-3 are in history.csv, the checkpoint holds epoch 2
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "KILL_AT_EPOCH": "4"}, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1, 2, 3]

    cli_inproc("train", f"resume_from={run}", check=True)
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]  # epoch 3 trained twice, recorded once
    assert list(history.columns) == ["epoch", "loss", "rec", "ent", "con", "steps", "val_loss", "lr", "seconds"]
    assert read_metrics(run)["train"]["epochs"] == 5

    mlflow = client(run_root / "mlflow.db")
    (found,) = mlflow.search_runs([mlflow.get_experiment_by_name("semiad-train").experiment_id])
    assert found.info.status == "FINISHED"
    assert {m.step for m in mlflow.get_metric_history(found.info.run_id, "val_loss")} == {1, 2, 3, 4, 5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group ``proc`` leads (the server and the workers it started), SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.stderr.close()


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_sweep_is_one_mlflow_experiment_served_by_the_mlflow_server(run_root: Path, cli_inproc) -> None:
    sweep = run_root / "sweep"
    cli_inproc("train", "--multirun", "seed=1,2", "logger=mlflow", "trainer=quick", "trainer.progress=false",
               f"run_root={run_root}", f"hydra.sweep.dir={sweep}", check=True)
    store = run_root / "mlflow.db"
    name = "semiad/" + str(sweep.resolve()).lstrip("/")  # the sweep dir (outside the working folder: absolute)
    experiment_id = client(store).get_experiment_by_name(name).experiment_id

    port = _free_port()
    # One worker and no job runner: the server starts faster and leaves no helper processes behind.
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store}",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              cwd=run_root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                              start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"mlflow server exited: {server.stderr.read()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "mlflow server did not answer within 120 s"
            time.sleep(0.5)
        runs = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    finally:
        _stop_group(server)
    assert len(runs) == 2 and {r["info"]["status"] for r in runs} == {"FINISHED"}
    params = [{p["key"]: p["value"] for p in r["data"]["params"]} for r in runs]
    assert sorted(p["seed"] for p in params) == ["1", "2"]
    by_seed = {p["seed"]: {m["key"]: m["value"] for m in r["data"]["metrics"]} for p, r in zip(params, runs,
                                                                                                  strict=True)}
    for job, seed in ((0, "1"), (1, "2")):
        assert by_seed[seed]["auroc"] == read_metrics(sweep / str(job))["auroc"]
