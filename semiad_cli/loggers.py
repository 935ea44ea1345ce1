"""Experiment tracking: a run's per-epoch and final numbers sent to MLflow or TensorBoard.

Every run folder gets ``history.csv`` (one row per epoch) and ``metrics.json``/``metrics.csv``
whatever the logger; the ``logger`` config group only chooses a tracking backend on top:

* ``csv`` (default) and ``none``: nothing beyond the run folder's own files;
* ``tensorboard``: scalars in ``<run_dir>/tensorboard/`` (``tensorboard --logdir outputs``);
* ``mlflow``: one MLflow run per semiad run, in a local SQLite store by default
  (``sqlite:///<run_root>/mlflow.db``); a sweep's jobs are the runs of one experiment.

Each logger has the same five calls, made by the train task: ``start(cfg, run_dir)``,
``log_epoch(record)`` after every epoch, ``log_final(metrics)``, ``log_artifacts(run_dir)`` and
``close(status)`` with the semiad status (``completed``, ``failed``, ``interrupted``), also when
the run fails or is interrupted (:func:`tracking`). The libraries are imported only by the logger
that uses them, so the CLI starts fast and runs without the ``tracking`` extra.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from semiad_cli.errors import ConfigError
from semiad_cli.results import CHECKPOINT_DIR, flatten

log = logging.getLogger(__name__)

EXTRA_HINT = "pip install -e '.[tracking]'"
#: semiad's run status → MLflow's run status
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
RUN_DIR_TAG = "semiad.run_dir"


def _require(module: str, choice: str) -> None:
    """A one-line error naming the extra when ``logger=<choice>`` needs a library that is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"logger={choice} needs the {module} package, which is not installed; "
                          f"install the tracking extra: {EXTRA_HINT}")


def numbers(data: dict) -> dict[str, float]:
    """The finite numbers of a nested dict, flattened to ``a.b.c`` keys (no bools, strings or None)."""
    out = {}
    for key, value in flatten(data).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def status_of(err: BaseException) -> str:
    """The semiad status of a run ended by ``err``: Ctrl-C, SIGTERM and exits are interruptions."""
    return "failed" if isinstance(err, Exception) else "interrupted"


class Logger:
    """No tracking backend (``logger=none``); the interface every logger implements."""

    def start(self, cfg: DictConfig, run_dir: Path) -> None:
        """Open the tracking run for ``run_dir`` with the resolved ``cfg`` as its parameters."""

    def log_epoch(self, record: dict[str, float]) -> None:
        """One epoch's record from the trainer: ``epoch``, loss terms, ``val_loss``, ``lr``, ``seconds``."""

    def log_final(self, metrics: dict) -> None:
        """The run's final metrics (what ``metrics.json`` holds)."""

    def log_artifacts(self, run_dir: Path) -> None:
        """Copy the run folder's files to the backend, when it keeps files."""

    def close(self, status: str) -> None:
        """End the tracking run with the semiad ``status``: completed, failed or interrupted."""


class CSVLogger(Logger):
    """The default: ``history.csv`` and ``metrics.csv`` in the run folder (written in every run), nothing else."""


@contextmanager
def tracking(logger: Logger, cfg: DictConfig, run_dir: Path) -> Iterator[Logger]:
    """Start ``logger``; on leaving, log the run folder and close with the run's status.

    A failure inside is ``failed``, Ctrl-C or SIGTERM ``interrupted``; the original error is
    re-raised, and a tracking error while closing after it is only logged so it cannot hide it.
    """
    logger.start(cfg, Path(run_dir))
    try:
        yield logger
    except BaseException as err:
        try:
            logger.log_artifacts(Path(run_dir))
        except Exception as close_err:  # noqa: BLE001 - the run's own error is the one to report
            log.warning("tracking: could not log the run folder: %s", close_err)
        try:
            logger.close(status_of(err))
        except Exception as close_err:  # noqa: BLE001
            log.warning("tracking: could not close the tracking run: %s", close_err)
        raise
    try:
        logger.log_artifacts(Path(run_dir))
    finally:
        logger.close("completed")


# ---------------------------------------------------------------- TensorBoard


class TensorBoardLogger(Logger):
    """Scalars for ``tensorboard --logdir``: ``epoch/<term>`` per epoch, ``final/<metric>`` at the end.

    Args:
        log_dir: folder inside the run folder for the event files.

    A resumed run writes a new event file in the same folder starting at its first new epoch;
    TensorBoard drops the old file's events from that epoch on (``purge_step``), so no epoch
    shows twice.
    """

    def __init__(self, *, log_dir: str = "tensorboard") -> None:
        _require("tensorboard", "tensorboard")
        self.log_dir = log_dir
        self._writer = None
        self._dir: Path | None = None
        self._config = ""
        self._epochs = 0

    def start(self, cfg: DictConfig, run_dir: Path) -> None:
        self._dir = Path(run_dir) / self.log_dir
        self._config = OmegaConf.to_yaml(cfg, resolve=True)

    def _open(self, purge_step: int | None = None):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self._dir), purge_step=purge_step)
            self._writer.add_text("config", "```\n" + self._config + "```")
        return self._writer

    def log_epoch(self, record: dict[str, float]) -> None:
        step = int(record["epoch"])
        self._epochs = step
        writer = self._open(purge_step=step)
        for key, value in record.items():
            if key != "epoch" and math.isfinite(value):
                writer.add_scalar(f"epoch/{key}", value, step)
        writer.flush()

    def log_final(self, metrics: dict) -> None:
        writer = self._open()
        step = int((metrics.get("train") or {}).get("epochs") or self._epochs)
        for key, value in numbers(metrics).items():
            writer.add_scalar(f"final/{key}", value, step)

    def close(self, status: str) -> None:
        writer = self._open()
        writer.add_text("status", status)
        writer.close()
        self._writer = None


# ---------------------------------------------------------------- MLflow

_NAME_BAD = re.compile(r"[^A-Za-z0-9_\-. /]")


def mlflow_key(name: str) -> str:
    """A metric or parameter name MLflow accepts: alphanumerics and ``_ - . space /``, at most 250 characters."""
    return _NAME_BAD.sub("_", str(name))[:250]


def _shown_path(path: str | Path) -> str:
    """``path`` relative to the working folder when it lies inside, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class MLflowLogger(Logger):
    """One MLflow run per semiad run: the flattened config as params, per-epoch and final metrics, the run folder.

    Args:
        tracking_uri: MLflow tracking URI; null: ``sqlite:///<run_root>/mlflow.db`` (absolute path).
        experiment_name: null: ``semiad/<sweep dir>`` for the jobs of a sweep (one experiment per
            sweep), ``semiad-<task>`` for single runs.
        artifact_location: where a new experiment keeps run files; null: ``<run_root>/mlartifacts``
            for a local store, the server's choice for an ``http(s)`` one.
        log_checkpoint: also copy ``checkpoints/`` (the model can be large; off by default).

    The MLflow status follows the semiad one: FINISHED, FAILED, KILLED (Ctrl-C, SIGTERM). A run
    resumed with ``resume_from`` continues its MLflow run (found by the ``semiad.run_dir`` tag);
    epochs after the last checkpoint that the interruption cut off are logged again on resume,
    so MLflow may show two values for those steps (``history.csv`` has each epoch once).
    """

    def __init__(self, *, tracking_uri: str | None = None, experiment_name: str | None = None,
                 artifact_location: str | None = None, log_checkpoint: bool = False) -> None:
        _require("mlflow", "mlflow")
        self.tracking_uri = tracking_uri
        # str(): a command-line value such as logger.experiment_name=2024 arrives as a number
        self.experiment_name = None if experiment_name is None else str(experiment_name)
        self.artifact_location, self.log_checkpoint = artifact_location, log_checkpoint
        self.client = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._epochs = 0

    # -------------------------------------------------------------- naming
    @staticmethod
    def _hydra_job() -> Any | None:
        """Hydra's runtime config when running under Hydra (None when a test calls the task directly)."""
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get() if HydraConfig.initialized() else None

    def _names(self, cfg: DictConfig, run_dir: Path) -> tuple[str, str, str | None]:
        """(experiment name, run name, sweep dir): one experiment per sweep, the jobs' overrides as run names."""
        from hydra.types import RunMode

        hc = self._hydra_job()
        sweep_dir = None
        if hc is not None and hc.mode == RunMode.MULTIRUN:
            sweep_dir = str(Path(str(hc.sweep.dir)).resolve())
            experiment = "semiad/" + _shown_path(sweep_dir).lstrip("/")
            run_name = f"{hc.job.num} {hc.job.override_dirname}".strip()
        else:
            experiment = f"semiad-{cfg.get('task_name') or 'train'}"
            run_name = run_dir.name
        return self.experiment_name or experiment, run_name[:250], sweep_dir

    # -------------------------------------------------------------- calls
    def start(self, cfg: DictConfig, run_dir: Path) -> None:
        from mlflow.tracking import MlflowClient

        run_dir = Path(run_dir).resolve()
        run_root = Path(str(cfg.get("run_root") or run_dir.parent)).resolve()
        uri = self.tracking_uri or f"sqlite:///{run_root / 'mlflow.db'}"
        local = not uri.startswith(("http://", "https://", "databricks"))
        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)  # SQLite makes no folders
        artifacts = self.artifact_location or ((run_root / "mlartifacts").as_uri() if local else None)
        experiment, run_name, sweep_dir = self._names(cfg, run_dir)
        # Parallel sweep jobs share one store: creating its tables (on the client's first use) and the
        # experiment is done under a lock.
        with _store_lock(uri):
            self.client = MlflowClient(tracking_uri=uri)
            self.experiment_id = self._experiment(experiment, artifacts, sweep_dir)
            run = self._resumable(run_dir) if cfg.get("trainer", {}).get("resume") else None
            if run is None:
                run = self.client.create_run(self.experiment_id, run_name=run_name,
                                             tags={RUN_DIR_TAG: str(run_dir), "semiad.status": "running"})
        self.run_id = run.info.run_id
        self._log_params(cfg, run.data.params)
        log.info("mlflow: run %s in experiment %r (%s)", self.run_id, experiment, uri)

    def _experiment(self, name: str, artifacts: str | None, sweep_dir: str | None) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        tags = {"semiad.sweep_dir": sweep_dir} if sweep_dir else None
        try:
            return self.client.create_experiment(name, artifact_location=artifacts, tags=tags)
        except MlflowException:  # another job created it first (a store without our lock)
            return self.client.get_experiment_by_name(name).experiment_id

    def _resumable(self, run_dir: Path):
        """The unfinished MLflow run of ``run_dir`` (a resumed semiad run), reopened; None when there is none."""
        if "'" in str(run_dir):
            return None
        runs = self.client.search_runs([self.experiment_id], f"tags.`{RUN_DIR_TAG}` = '{run_dir}'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
        if not runs or runs[0].info.status == "FINISHED":
            return None
        self.client.update_run(runs[0].info.run_id, status="RUNNING")
        log.info("mlflow: continuing run %s of %s", runs[0].info.run_id, run_dir)
        return runs[0]

    def _log_params(self, cfg: DictConfig, existing: dict[str, str]) -> None:
        """The flattened resolved config; values cut to MLflow's limit, keys already logged (resume) kept."""
        from mlflow.entities import Param

        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as limit
        except ImportError:  # older MLflow: 500 characters
            limit = 500
        params = {mlflow_key(k): str(v)[:limit] for k, v in flatten(OmegaConf.to_container(cfg, resolve=True)).items()}
        changed = sorted(k for k, v in params.items() if k in existing and existing[k] != v)
        if changed:
            log.info("mlflow: params logged before keep their values (MLflow params are immutable): %s",
                     ", ".join(changed))
        items = [Param(k, v) for k, v in params.items() if k not in existing]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(mlflow_key(k), v, now, step) for k, v in values.items() if math.isfinite(v)]
        for i in range(0, len(items), 1000):  # at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def log_epoch(self, record: dict[str, float]) -> None:
        self._epochs = int(record["epoch"])
        self._log_metrics({k: float(v) for k, v in record.items() if k != "epoch"}, self._epochs)

    def log_final(self, metrics: dict) -> None:
        step = int((metrics.get("train") or {}).get("epochs") or self._epochs)
        self._log_metrics(numbers(metrics), step)

    def log_artifacts(self, run_dir: Path) -> None:
        """The run folder's files (config, metrics, scores, history, log), ``.hydra/`` as ``hydra/``,
        and ``checkpoints/`` with ``log_checkpoint``."""
        if self.run_id is None:
            return
        run_dir = Path(run_dir)
        for path in sorted(run_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                self.client.log_artifact(self.run_id, str(path))
        if (run_dir / ".hydra").is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / ".hydra"), artifact_path="hydra")
        if self.log_checkpoint and (run_dir / CHECKPOINT_DIR).is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / CHECKPOINT_DIR), artifact_path=CHECKPOINT_DIR)

    def close(self, status: str) -> None:
        if self.run_id is None:
            return
        self.client.set_tag(self.run_id, "semiad.status", status)
        self.client.set_terminated(self.run_id, MLFLOW_STATUS.get(status, "FAILED"))
        self.run_id = None


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An inter-process lock beside a local SQLite store (no lock needed for a server)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock  # a torch dependency, so always installed

    with FileLock(str(Path(uri[len("sqlite:///"):])) + ".lock", timeout=600):
        yield

