"""``semiad <command> [hydra overrides]``: a thin dispatcher onto Hydra apps.

The subcommand is taken off ``argv`` and the matching ``@hydra.main`` function
runs with the rest, so every Hydra flag (``--multirun``, ``--cfg job``,
``--help``, overrides) works as Hydra users expect (cf. Hydra issue #2404).
Tasks read no Hydra runtime state; this module hands them the output folder.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from semiad_cli import __version__, schemas
from semiad_cli.errors import CompletedRunError, SemiadError

log = logging.getLogger("semiad_cli.cli")


def find_config_dir() -> str:
    """``$SEMIAD_CONFIG_DIR``, else the configs shipped inside the package (a wheel install),
    else the checkout's top-level ``configs/`` (an editable install; setup.py copies it into wheels)."""
    if os.environ.get("SEMIAD_CONFIG_DIR"):
        return os.environ["SEMIAD_CONFIG_DIR"]
    package = Path(__file__).resolve().parent
    candidates = (package / "configs", package.parent / "configs")
    return str(next((c for c in candidates if (c / "train.yaml").is_file()), candidates[0]))


CONFIG_DIR = find_config_dir()

# A short random id in run folder names keeps two runs started in the same second apart.
OmegaConf.register_new_resolver("semiad.uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)
# Types of trainer and dataset.split, extended by the YAML files' defaults lists (semiad_cli/schemas.py).
schemas.register()


def _run_task(task, cfg: DictConfig):
    """Run a task in the Hydra output folder; every way it can end leaves a status.

    A failure writes ``metrics.json`` with ``status: failed``, the error type and message, logs the
    traceback to the run's log file and prints one line: exit code 2 for the user's mistakes
    (``SemiadError``, config errors), 1 for the rest. Ctrl-C and SIGTERM leave ``status:
    interrupted`` (exit 130 and 143). In a multirun, a failed job is recorded (``metrics.json`` and
    its ``sweep.csv`` row) and the sweep goes on; ``semiad table`` lists such jobs.
    """
    from semiad_cli import runlock, signals, sweeps

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    job = sweeps.current_job() if multirun else None  # sweeps.SweepBook, the hydra callback, keeps the books
    if multirun and job is None:
        log.warning("semiad_cli.sweeps.SweepBook is not in hydra.callbacks: no sweep.csv, no resume, no thread budget")
    try:
        if job is not None:
            try:
                job.configure(cfg)  # thread budget, SLURM requeue -> trainer.resume
            except SemiadError as err:  # a mistake in the sweep itself: every job would fail; stop with one line
                from semiad_cli import failures

                job.outcome = failures.describe(err).record()
                job.record()
                _failed(err, out_dir, None, multirun=False)
            if job.reused is not None:
                return sweeps.objective(job.reused)
        try:  # one run per folder; a completed one only with overwrite=true (single runs: claimed in main already)
            runlock.claim(out_dir, overwrite=cfg.get("overwrite") is True)
        except SemiadError as err:  # another run's folder: say so, but write nothing into it
            if multirun:
                log.error("job failed: %s", err)
                if job is not None and not (isinstance(err, CompletedRunError) and job.refused()):
                    job.outcome = {"status": "failed", "error": str(err)}
                return None
            print(f"semiad: error: {err}", file=sys.stderr)
            sys.exit(2)
        try:
            with signals.terminate_as_interrupt():
                metrics = task(cfg, out_dir)
        finally:
            runlock.release(out_dir)
    except KeyboardInterrupt as err:  # Ctrl-C, and SIGTERM as signals.Terminated
        resumable = not multirun and hc.job.name == "train"
        _interrupted(err, out_dir, job, resumable)
    except Exception as err:  # noqa: BLE001 - every failure gets a status, a log entry and one line
        return _failed(err, out_dir, job, multirun)
    if job is not None:
        job.outcome = metrics if isinstance(metrics, dict) else None
        return sweeps.objective(job.outcome)
    objective = metrics.get("objective") if isinstance(metrics, dict) else None
    return objective


def _interrupted(err: KeyboardInterrupt, out_dir: Path, job, resumable: bool) -> None:
    """Record ``status: interrupted``, print one line and exit (130 for Ctrl-C, 128 + signal number)."""
    from semiad_cli import results
    from semiad_cli.signals import Terminated, interruption

    term = err if isinstance(err, Terminated) else None
    what, exit_code = interruption(err)
    log.debug("%s", what)
    _record_status(out_dir, {"status": "interrupted", "error": what})
    if job is not None:  # the process exits: Hydra's on_job_end will not run, so record the row now
        job.outcome = {"status": "interrupted", "error": what}
        job.record()
    line = f"semiad: {what}; partial run left in {out_dir}"
    if term is not None and term.checkpoint_epoch is not None:
        line = f"semiad: {what}; checkpoint of epoch {term.checkpoint_epoch} written in {out_dir}"
    if resumable and (out_dir / results.CHECKPOINT_DIR / "last.pt").is_file():
        line += f"; continue with: semiad train resume_from={out_dir}"
    print(line, file=sys.stderr)
    if term is not None and term.requeue is not None:
        term.requeue()  # submitit's handler: its checkpoint of the job, scontrol requeue, exit
    sys.exit(exit_code)


def _failed(err: Exception, out_dir: Path, job, multirun: bool):
    """Record ``status: failed`` with the error, log the traceback; one line and exit, or the sweep goes on."""
    from semiad_cli import failures, results

    failure = failures.describe(err)
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, False  # a full disk: no logging noise
    try:
        log.debug("failed: %s: %s", failure.error_type, failure.message, exc_info=err)  # train.log only
    finally:
        logging.raiseExceptions = raise_exceptions
    unwritten = _record_status(out_dir, failure.record())
    if multirun:
        log.error("job failed: %s: %s", failure.error_type, failure.message)
        if job is not None:
            job.outcome = failure.record()  # SweepBook.on_job_end writes the sweep.csv row
        return None
    if failure.user_error and isinstance(err, SemiadError):
        line = f"semiad: error: {failure.message}"
    else:
        log_file = _log_file()
        where = f"traceback in {log_file}" if log_file else "no log file"
        line = f"semiad: error: {failure.error_type}: {failure.message} ({where})"
    if unwritten:
        line += f"; {results.METRICS_JSON} could not be written either ({unwritten})"
    print(line, file=sys.stderr)
    sys.exit(failure.exit_code)


def _log_file() -> str | None:
    """The file Hydra's job logging writes to (``<run>/train.log``), if any."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def _record_status(out_dir: Path, record: dict) -> str | None:
    """Write ``metrics.json`` for a run that did not complete; returns why it could not, else None."""
    from semiad_cli import failures, results

    if results.task_completed(out_dir):
        return None
    try:
        results.write_json(out_dir / results.METRICS_JSON, record)
    except OSError as err:
        return failures.describe(err).message
    return None


def _run_shown(task, cfg: DictConfig):
    """``_run_task`` with the run folder printed at the start and the end; a sweep's jobs stay quiet
    (``folders.SweepFolder`` prints the sweep folder once)."""
    from semiad_cli import folders

    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        return _run_task(task, cfg)
    with folders.announced_run(Path(hc.runtime.output_dir)):
        return _run_task(task, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def train_app(cfg: DictConfig):
    from semiad_cli.tasks import train

    return _run_shown(train.run, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def evaluate_app(cfg: DictConfig):
    from semiad_cli.tasks import evaluate

    return _run_shown(evaluate.run, cfg)


def table_cmd(argv: list[str]) -> int:
    from semiad_cli.tasks import table

    return table.main(argv)


def plot_cmd(argv: list[str]) -> int:
    from semiad_cli.tasks import plot

    return plot.main(argv)


COMMANDS = {
    "train": (train_app, "train a detector and write a run folder (Hydra overrides, --multirun)"),
    "evaluate": (evaluate_app, "rescore a finished run: semiad evaluate run_dir=<folder>"),
    "table": (table_cmd, "mean ± std over seeds per setting from run/sweep folders (semiad table --help)"),
    "plot": (plot_cmd, "ROC/PR curves, score histograms, metric-vs-x plots (semiad plot --help)"),
}
# Commands with their own argparse options instead of Hydra overrides.
PLAIN_COMMANDS = {"table", "plot"}

USAGE = """usage: semiad <command> [overrides...] [--multirun] [--help]

Semi-supervised anomaly detection experiments (semiad {version}).

commands:
{commands}

Examples:
  semiad train                                   # EDE on the bundled digits set
  semiad train model=ede dataset=cardio seed=3 trainer.max_epochs=20
  semiad train --multirun seed=1,2,3
  semiad train resume_from=outputs/2026-11-23/12-00-00_ab12cd   # continue a killed run in its folder
  semiad evaluate run_dir=outputs/2026-11-23/12-00-00_ab12cd
  semiad table outputs/multirun/2026-11-23/12-00-00_ab12cd --metric auroc,aupr
  semiad plot outputs/multirun/2026-11-23/12-00-00_ab12cd
  semiad train --help                            # config groups and options
  semiad train --cfg job                         # print the composed config
"""


def register_own_plugins() -> None:
    """Hand semiad's own Hydra plugin (``hydra/launcher=stacked``) to Hydra's registry.

    Hydra finds plugins by walking the folders of the ``hydra_plugins`` namespace package. An editable
    install (``pip install -e``, what ``make`` does) serves ours through an import hook that this walk does
    not see, so outside the checkout the launcher was an "Unknown plugin class". Registering the class is
    Hydra's public way round that, and a no-op where the walk found it (a wheel install).
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.semiad_stacked_launcher import StackedLauncher

    Plugins.instance().register(StackedLauncher)


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = "\n".join(f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items())
    return USAGE.format(version=__version__, commands=lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"semiad {__version__}")
        return 0
    command = argv[0]
    if command not in COMMANDS:
        print(f"semiad: error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    app = COMMANDS[command][0]
    if command in PLAIN_COMMANDS:
        try:
            return app(argv[1:])
        except SemiadError as err:
            print(f"semiad: error: {err}", file=sys.stderr)
            return 2
    from semiad_cli import composing, runlock
    from semiad_cli.failures import output_folder_problem
    from semiad_cli.overrides import check_evaluate_overrides, check_group_choices, check_overrides, resume_args
    from semiad_cli.stacking import launcher_problem
    from semiad_cli.sweeps import finished_sweep_problem, missing_plugin

    args = argv[1:]
    composing.clear()  # the pre-flight checks below share one composition of these arguments
    try:
        args = resume_args(args, CONFIG_DIR) if command == "train" else args
    except SemiadError as err:
        print(f"semiad: error: {err}", file=sys.stderr)
        return 2
    problem = ((check_evaluate_overrides(args, CONFIG_DIR) if command == "evaluate" else None)
               or missing_plugin(args) or check_group_choices(args, CONFIG_DIR)
               or check_overrides(command, args, CONFIG_DIR) or output_folder_problem(command, args, CONFIG_DIR)
               or launcher_problem(command, args, CONFIG_DIR) or finished_sweep_problem(command, args, CONFIG_DIR))
    if problem:
        print(f"semiad: error: {problem}", file=sys.stderr)
        return 2
    sys.argv = [f"semiad {command}", *args]
    register_own_plugins()
    try:
        runlock.claim_named_run_dir(args)  # before Hydra writes its .hydra/ record into the folder
        app()
    except SemiadError as err:  # errors raised before a task starts (e.g. by a sweeper, a busy run folder)
        print(f"semiad: error: {err}", file=sys.stderr)
        return 2
    finally:
        runlock.release_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
