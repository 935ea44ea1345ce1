"""Multirun support on top of Hydra's own launcher and sweeper plugins.

Hydra launches the jobs (basic, joblib, submitit local/SLURM) and the Optuna sweeper
picks trial parameters; this module only does what those plugins leave to the app.
``SweepBook``, a Hydra ``Callback`` registered in ``configs/hydra/default.yaml``, keeps the
books around every job (``on_job_start`` / ``on_job_end``, in the job's own process):

* resumable sweeps: with ``+resume=true`` a job whose ``metrics.json`` is complete and
  whose overrides match the recorded ones returns its stored result without training;
* ``sweep.csv`` in the sweep dir, one row per finished job, rebuilt under a file lock
  from per-job row files as jobs finish (safe with parallel workers).

The task itself (``cli._run_task``) asks ``current_job()`` for what only it can apply,
because Hydra hands the task a copy of the config made before ``on_job_start``:

* a thread budget per job, so parallel jobs do not oversubscribe the cores
  (2 torch threads on 2 busy cores ran the Deep SAD reference 10-20x slower);
* SLURM requeues (``hydra/launcher=slurm``: preemption, time limit, ``scontrol requeue``): the
  requeued job runs again in its own run folder and continues from its checkpoint
  (``trainer.resume=true``) instead of starting over;
* skipping a reused job, and the value handed back to the sweeper: the objective, None for a
  failed job, which the Optuna sweeper records as a failed trial before going on with the search.

A one-line message names the ``sweeps`` extra when a plugin is not installed.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from semiad_cli import results
from semiad_cli.atomic import atomic_write
from semiad_cli.errors import ConfigError
from semiad_cli.threads import available_cores

log = logging.getLogger(__name__)

SWEEP_CSV = "sweep.csv"
STATE_DIR = ".semiad_sweep"  # per-job row files and the lock, inside the sweep dir
COLUMNS = ["job", "overrides", "status", "reused", "auroc", "aupr", "objective", "wall_s", "run_dir", "error"]
RESUME_KEY = "resume"
EXTRA_HINT = "pip install -e '.[sweeps]'"

# Command-line choices that need an optional plugin: (plugin module, PyPI name, library it drives).
_LAUNCHERS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "joblib"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "submitit"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "submitit"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "submitit"),
}
_OPTUNA = ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper", "optuna")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package raises instead of returning None
        return False


def missing_plugin(overrides: list[str]) -> str | None:
    """One-line message when an override needs a sweep plugin that is not installed, else None.

    Checked before Hydra starts: Hydra's own error for an uninstalled launcher is a
    multi-line "Could not find 'hydra/launcher/joblib'" that does not say what to install.
    """
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if not sep:
            continue
        need = None
        if key == "hydra/launcher":
            need = _LAUNCHERS.get(value)
        elif (key == "hydra/sweeper" and value == "optuna") or (key == "hparams_search" and value != "null"):
            need = _OPTUNA
        if need is None:
            continue
        module, dist, library = need
        for name in (module, library):
            if not _importable(name):
                return f"{item} needs the {dist} plugin, which is not installed; install the sweeps extra: {EXTRA_HINT}"
    return None


def thread_budget(launcher: DictConfig) -> int | None:
    """Torch threads per job for a parallel launcher; None for the sequential basic launcher.

    joblib: the cores divided by ``n_jobs`` (at least 1). submitit: ``cpus_per_task`` when set
    (what SLURM allocates to the job), else 1 since submitit_local runs all jobs at once.
    """
    target = str(launcher.get("_target_", ""))
    cores = available_cores()
    if "joblib" in target:
        n_jobs = int(launcher.get("n_jobs") or 1)
        if n_jobs < 0:  # joblib's convention: -1 = all cores, -2 = all but one, ...
            n_jobs = max(1, cores + 1 + n_jobs)
        return max(1, cores // n_jobs)
    if "submitit" in target:
        cpus = launcher.get("cpus_per_task")
        return int(cpus) if cpus else 1
    return None


def needs_objective(hydra_cfg: DictConfig) -> bool:
    """True when the sweeper optimises the value the job returns (Optuna)."""
    return "optuna" in str(hydra_cfg.sweeper.get("_target_", "")).lower()


def slurm_restarts() -> int:
    """How often SLURM has requeued this submitit job (``SLURM_RESTART_COUNT``); 0 outside one."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return 0
    try:
        return max(0, int(os.environ.get("SLURM_RESTART_COUNT") or 0))
    except ValueError:
        return 0


def _task_overrides(overrides: list[str]) -> list[str]:
    """The job's overrides without ``resume``: a resumed job is the same job."""
    return [o for o in overrides if o.lstrip("+~").partition("=")[0] != RESUME_KEY]


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialise ``sweep.csv`` updates of parallel jobs (filelock: also on non-POSIX systems)."""
    from filelock import FileLock

    state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(state_dir / "lock")):
        yield


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class SweepJob:
    """One job of a multirun: resume check, what the task must apply, and its ``sweep.csv`` row."""

    def __init__(self, hydra_cfg: DictConfig, resume: bool = False) -> None:
        self.sweep_dir = Path(str(hydra_cfg.sweep.dir))
        self.num = int(hydra_cfg.job.num)
        self.out_dir = Path(hydra_cfg.runtime.output_dir)
        self.overrides = _task_overrides(list(hydra_cfg.overrides.task))
        self.resume = resume
        self.optuna = needs_objective(hydra_cfg)
        self.threads = thread_budget(hydra_cfg.launcher)
        # A requeued SLURM job runs again with the same overrides in the same run folder: it continues
        # from that folder's checkpoint (none yet: the trainer starts afresh) and reuses a finished result.
        self.requeued = slurm_restarts() > 0
        self.started = time.perf_counter()
        self.reused: dict | None = None  # the stored metrics when this job is not trained again
        self.outcome: dict | None = None  # what the task ended with (set by the task)
        self.recorded = False

    def configure(self, cfg: DictConfig) -> None:
        """Apply to the task's config what a sweep job needs: checks, requeue resume, thread budget."""
        if self.optuna and not cfg.trainer.get("val_fraction"):
            raise ConfigError("the Optuna sweeper optimises the validation metric, but trainer.val_fraction is 0; "
                              "set trainer.val_fraction=0.2 (the hparams_search configs do)")
        if self.requeued and "trainer" in cfg:
            with open_dict(cfg):
                cfg.trainer.resume = True
            log.info("SLURM requeued this job (restart %d): continuing from %s", slurm_restarts(),
                     self.out_dir / results.CHECKPOINT_DIR)
        if self.threads is not None and "trainer" in cfg and cfg.trainer.get("num_threads") is None:
            with open_dict(cfg):
                cfg.trainer.num_threads = self.threads
            log.info("parallel launcher: trainer.num_threads=%d for this job", self.threads)

    @property
    def state_dir(self) -> Path:
        return self.sweep_dir / STATE_DIR

    def _row_path(self) -> Path:
        return self.state_dir / "jobs" / f"{self.num}.json"

    def reusable(self) -> dict | None:
        """Stored metrics of this job when resuming (or requeued) and it completed with the same overrides."""
        if not (self.resume or self.requeued):
            return None
        try:
            metrics = results.read_json(self.out_dir / results.METRICS_JSON)
            row = results.read_json(self._row_path())
        except (OSError, ValueError):
            return None
        if metrics.get("status") != "completed":
            return None
        if row.get("overrides") != " ".join(self.overrides):
            log.warning("resume: job %d was run with other overrides (%s); not reusing its result",
                        self.num, row.get("overrides"))
            return None
        log.info("resume: job %d already completed in %s; not training it again", self.num, self.out_dir)
        return metrics

    def refused(self) -> bool:
        """The job was refused because its folder holds a completed run (the sweep was started again
        without ``+resume=true``): say how to continue the sweep, and keep the row the sweep's books hold
        for the job (the job did nothing; its run is still there). False when there is no such row: the
        refusal is then recorded as a failed job."""
        if not self._row_path().is_file():
            return False
        log.error("job %d: %s holds this sweep's completed run; add +resume=true to continue the sweep (finished "
                  "jobs are kept), or overwrite=true to train them again", self.num, self.out_dir)
        self.recorded = True  # its sweep.csv row stays as it was
        return True

    def ended(self, error: BaseException | None = None) -> dict:
        """The job's outcome: what the task set, else its ``metrics.json``, else a failure record."""
        if self.reused is not None:
            return self.reused
        if self.outcome is not None:
            return self.outcome
        try:
            return results.read_json(self.out_dir / results.METRICS_JSON)
        except (OSError, ValueError):
            what = f"{type(error).__name__}: {error}" if error is not None else "the job wrote no metrics.json"
            return {"status": "failed", "error": what}

    def record(self, error: BaseException | None = None) -> None:
        """Write this job's ``sweep.csv`` row once (``on_job_end``, or the task itself before it exits)."""
        if self.recorded:
            return
        self.recorded = True
        self.finish(self.ended(error), time.perf_counter() - self.started, reused=self.reused is not None)

    def finish(self, metrics: dict, wall_s: float | None, reused: bool = False) -> float | None:
        """Record this job's row, rebuild ``sweep.csv``; returns what the sweeper gets back."""
        wall = metrics.get("wall_time", {}).get("total_s") if reused else wall_s
        row = {
            "job": self.num,
            "overrides": " ".join(self.overrides),
            "status": metrics.get("status", "failed"),
            "reused": reused,
            "auroc": _number(metrics.get("auroc")),
            "aupr": _number(metrics.get("aupr")),
            "objective": _number(metrics.get("objective")),
            "wall_s": None if wall is None else round(float(wall), 3),
            "run_dir": str(self.out_dir),
            "error": (f"{metrics['error_type']}: {metrics.get('error')}" if metrics.get("error_type")
                      else metrics.get("error")),
        }
        try:
            with _locked(self.state_dir):
                results.write_json(self._row_path(), row)
                write_sweep_csv(self.sweep_dir)
        except OSError as err:  # a summary problem must not fail a finished job
            log.warning("could not update %s: %s", self.sweep_dir / SWEEP_CSV, err)
        return row["objective"]


def finished_sweep_problem(config_name: str, overrides: list[str], config_dir: str) -> str | None:
    """One line when a ``--multirun`` would start again in a sweep folder that holds a completed job, without
    ``+resume=true`` or ``overwrite=true``; else None.

    Such a job would be refused (one run per folder), but only after Hydra has written the job's ``.hydra/``
    record into the completed run's folder, where ``semiad table`` reads the model's name. Checked up
    front, nothing is written. Only with the default ``hydra.sweep.subdir`` (``${hydra.job.num}``): the job
    folders are then the numbered ones, whatever the sweep's overrides.
    """
    from omegaconf import OmegaConf

    from semiad_cli.composing import compose_plain, is_multirun

    if config_name != "train" or not is_multirun(overrides):
        return None
    try:
        cfg = compose_plain(config_name, overrides, config_dir)
        sweep_dir = OmegaConf.select(cfg, "hydra.sweep.dir")
        subdir = OmegaConf.to_container(cfg.hydra.sweep)["subdir"]  # unresolved: there is no job number yet
    except Exception:  # noqa: BLE001 - composition problems are reported elsewhere
        return None
    if cfg.get(RESUME_KEY) or cfg.get("overwrite") is True or not sweep_dir or subdir != "${hydra.job.num}":
        return None
    root = Path(str(sweep_dir))
    try:
        done = sorted(int(d.name) for d in root.iterdir()
                      if d.name.isdigit() and d.is_dir() and results.task_completed(d)) if root.is_dir() else []
    except OSError:  # an unreadable sweep folder is reported where the jobs use it
        return None
    if not done:
        return None
    jobs = ", ".join(str(n) for n in done[:5]) + (", …" if len(done) > 5 else "")
    return (f"hydra.sweep.dir={sweep_dir} holds a sweep with completed jobs ({jobs}): add +resume=true to "
            "continue it (completed jobs are kept), overwrite=true to train every job again, or choose another "
            "hydra.sweep.dir")


def objective(metrics: dict | None) -> float | None:
    """What the sweeper gets back: the objective, None for a failed job.

    hydra-optuna-sweeper 1.3 records a None trial as failed and goes on (NaN would crash it:
    it re-tells the failed trial with the NaN value).
    """
    if not metrics or metrics.get("status") != "completed":
        return None
    return _number(metrics.get("objective"))


_current: SweepJob | None = None  # the job this process is running (set by SweepBook.on_job_start)


def current_job() -> SweepJob | None:
    """The running multirun job's book, or None (a single run, or SweepBook not registered)."""
    return _current


class SweepBook(Callback):
    """``--multirun`` bookkeeping around each job: resume check at the start, ``sweep.csv`` row at the end.

    Hydra calls it in the job's process, for every launcher (basic, joblib workers, submitit and
    SLURM jobs). A job that exits (Ctrl-C, SIGTERM) skips ``on_job_end``; the task records its row
    before exiting (``SweepJob.record``).
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _current
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            _current = None
            return
        _current = SweepJob(hc, resume=bool(config.get(RESUME_KEY, False)))
        _current.reused = _current.reusable()

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        global _current
        job, _current = _current, None
        if job is None:
            return
        value = getattr(job_return, "return_value", None)
        job.record(value if isinstance(value, BaseException) else None)


def write_sweep_csv(sweep_dir: Path) -> Path:
    """Rebuild ``sweep.csv`` from every job's row file (call under the sweep lock)."""
    sweep_dir = Path(sweep_dir)
    rows = []
    for path in (sweep_dir / STATE_DIR / "jobs").glob("*.json"):
        try:
            rows.append(results.read_json(path))
        except (OSError, ValueError):
            continue
    rows.sort(key=lambda r: int(r.get("job", 0)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    text = buffer.getvalue()
    atomic_write(sweep_dir / SWEEP_CSV, lambda tmp: tmp.write_text(text))
    return sweep_dir / SWEEP_CSV
