"""history.csv, the logger helpers and the tracking run's status, in-process with the real libraries."""

from __future__ import annotations

import contextlib
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from semiad_cli import loggers, results
from semiad_cli.errors import ConfigError
from tests.conftest import REPO


def test_history_csv_orders_columns_and_keeps_every_epoch(tmp_path: Path) -> None:
    history = [{"loss": 2.0, "rec": 1.5, "epoch": 1, "seconds": 0.1, "val_loss": 2.5, "lr": 1e-3},
               {"loss": 1.0, "rec": 0.5, "epoch": 2, "seconds": 0.2, "val_loss": 1.5, "lr": 5e-4}]
    results.write_history(tmp_path, history)
    frame = pd.read_csv(tmp_path / results.HISTORY_CSV)
    assert list(frame.columns) == ["epoch", "loss", "rec", "val_loss", "lr", "seconds"]
    assert frame.to_dict("records") == history


def _epoch(n: int, **extra: float) -> dict[str, float]:
    return {"loss": 1.0 / n, "rec": 0.5 / n, "epoch": n, "steps": 4, "lr": 1e-3, "seconds": 0.01 * n, **extra}


def test_history_file_appends_epochs_and_ends_as_the_whole_rewrite(tmp_path: Path) -> None:
    """Epoch by epoch, the appended file is byte for byte what one whole write of the history gives."""
    live, whole = tmp_path / "live", tmp_path / "whole"
    file = results.HistoryFile(live)
    history: list[dict[str, float]] = []
    for n in range(1, 6):
        history.append(_epoch(n))
        file.update(history)
        results.write_history(whole, history)
        assert (live / results.HISTORY_CSV).read_text() == (whole / results.HISTORY_CSV).read_text()
    # a column that appears late (validation from epoch 6 on) rewrites the file with the new header
    history.append(_epoch(6, val_loss=0.3))
    file.update(history)
    results.write_history(whole, history)
    assert (live / results.HISTORY_CSV).read_text() == (whole / results.HISTORY_CSV).read_text()
    assert pd.read_csv(live / results.HISTORY_CSV)["epoch"].tolist() == [1, 2, 3, 4, 5, 6]


def test_history_file_rewrites_for_a_resumed_history(tmp_path: Path) -> None:
    """A resumed run's history comes from its checkpoint (epochs 1-2) while the file may hold more
    (1-4, written before the kill): the first update rewrites it, so no epoch is repeated or kept twice."""
    results.write_history(tmp_path, [_epoch(n) for n in range(1, 5)])
    resumed = [_epoch(1), _epoch(2), _epoch(3)]  # 1-2 from the checkpoint, 3 trained again
    file = results.HistoryFile(tmp_path)
    file.update(resumed)
    assert pd.read_csv(tmp_path / results.HISTORY_CSV)["epoch"].tolist() == [1, 2, 3]
    other = [_epoch(1)]  # another list (a new fit in this process): rewritten, not appended to
    file.update(other)
    assert pd.read_csv(tmp_path / results.HISTORY_CSV)["epoch"].tolist() == [1]


def test_run_without_epochs_writes_a_header_only_history(tmp_path: Path) -> None:
    results.write_history(tmp_path, [])
    assert (tmp_path / results.HISTORY_CSV).read_text().splitlines() == ["epoch,loss,lr,seconds"]


def test_closed_form_model_run_writes_header_only_history(compose_cfg, tmp_path: Path) -> None:
    from semiad_cli.tasks import train

    train.run(compose_cfg("train", ["model=iforest"]), tmp_path)
    assert (tmp_path / "history.csv").read_text().splitlines() == ["epoch,loss,lr,seconds"]


def test_mlflow_names_and_numbers() -> None:
    assert loggers.mlflow_key("per_class.T-shirt/top (0).aupr") == "per_class.T-shirt/top _0_.aupr"
    assert loggers.mlflow_key("a:b=c") == "a_b_c"
    flat = loggers.numbers({"auroc": 0.9, "status": "completed", "objective": None, "val": {"auroc": float("nan")},
                            "per_class": {"1": {"aupr": 0.5, "known": True, "n": 3}}})
    assert flat == {"auroc": 0.9, "per_class.1.aupr": 0.5, "per_class.1.n": 3.0}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for the module: creating a store's tables takes MLflow seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def only_run(store: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return client, run


@pytest.mark.parametrize("raised, status", [
    (None, "FINISHED"), (ValueError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED"), (SystemExit(143), "KILLED"),
])
def test_mlflow_run_status_follows_how_the_run_ended(compose_cfg, tmp_path: Path, store: str, raised,
                                                     status) -> None:
    cfg = compose_cfg("train", ["logger=mlflow", f"run_root={tmp_path}"])
    experiment = f"status-{type(raised).__name__}"
    logger = loggers.MLflowLogger(tracking_uri=store, experiment_name=experiment)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.log").write_text("log\n")
    with pytest.raises(type(raised)) if raised is not None else contextlib.nullcontext():
        with loggers.tracking(logger, cfg, run_dir):
            logger.log_epoch({"epoch": 1, "loss": 1.0, "lr": 1e-3, "seconds": 0.1})
            if raised is not None:
                raise raised
    client, run = only_run(store, experiment)
    assert run.info.status == status
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["train.log"]


def test_train_task_marks_a_diverged_run_failed_in_mlflow(compose_cfg, tmp_path: Path, store: str) -> None:
    from semiad_cli.errors import TrainingError
    from semiad_cli.tasks import train

    cfg = compose_cfg("train", ["logger=mlflow", f"logger.tracking_uri={store}", "logger.experiment_name=diverged",
                                "trainer=quick", "trainer.optimizer.lr=1e30", "trainer.progress=false",
                                f"run_root={tmp_path}"])
    with pytest.raises(TrainingError, match="loss became nan"):
        train.run(cfg, tmp_path / "run")
    client, run = only_run(store, "diverged")
    assert run.info.status == "FAILED" and run.data.tags["semiad.status"] == "failed"
    assert {"config.yaml", "hydra"} - {a.path for a in client.list_artifacts(run.info.run_id)} == {"hydra"}


def test_long_param_values_are_cut_to_mlflows_limit(compose_cfg, tmp_path: Path, store: str) -> None:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    cfg = compose_cfg("train", ["logger=mlflow", f"run_root={tmp_path}", "+note=" + "x" * 7000])
    logger = loggers.MLflowLogger(tracking_uri=store, experiment_name="long")
    with loggers.tracking(logger, cfg, tmp_path):
        pass
    _, run = only_run(store, "long")
    assert run.data.params["note"] == "x" * MAX_PARAM_VAL_LENGTH


def test_parallel_jobs_start_on_a_fresh_store(compose_cfg, tmp_path: Path) -> None:
    """Two sweep jobs (joblib workers) meet a store without tables: MLflow creates them once, under the lock."""
    cfg = compose_cfg("train", ["logger=mlflow", f"run_root={tmp_path}"])
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)

    def job(i: int) -> None:
        run_dir = tmp_path / str(i)
        run_dir.mkdir()
        logger = loggers.MLflowLogger(experiment_name="parallel")
        barrier.wait()
        with loggers.tracking(logger, cfg, run_dir):
            logger.log_epoch({"epoch": 1, "loss": float(i)})

    jobs = [ctx.Process(target=job, args=(i,)) for i in range(2)]
    for p in jobs:
        p.start()
    for p in jobs:
        p.join(timeout=300)
    assert [p.exitcode for p in jobs] == [0, 0]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("parallel").experiment_id])
    assert sorted(r.data.metrics["loss"] for r in runs) == [0.0, 1.0]
    assert {r.info.status for r in runs} == {"FINISHED"}


@pytest.mark.parametrize("module, logger", [("mlflow", loggers.MLflowLogger),
                                            ("tensorboard", loggers.TensorBoardLogger)])
def test_missing_tracking_library_names_the_extra(monkeypatch, module, logger) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the extra looks like to find_spec
    with pytest.raises(ConfigError, match=rf"logger={module} needs the {module} package.*\[tracking\]"):
        logger()


def test_cli_and_loggers_import_no_tracking_library() -> None:
    code = ("import sys, semiad_cli.cli, semiad_cli.loggers; "
            "print(sorted(m for m in ('mlflow', 'tensorboard', 'torch.utils.tensorboard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
