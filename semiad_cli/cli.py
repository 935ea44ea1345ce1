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
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from semiad_cli import __version__
from semiad_cli.errors import SemiadError

log = logging.getLogger("semiad_cli.cli")

CONFIG_DIR = os.environ.get("SEMIAD_CONFIG_DIR") or str(Path(__file__).resolve().parent.parent / "configs")

# A short random id in run folder names keeps two runs started in the same second apart.
OmegaConf.register_new_resolver("semiad.uid", lambda: secrets.token_hex(3), use_cache=True, replace=True)


def _run_task(task, cfg: DictConfig):
    """Run a task in the Hydra output folder; user errors become one line and exit code 2.

    In a multirun, a failing job is recorded (``metrics.json`` status ``failed``) and the
    sweep goes on; ``semiad table`` lists such jobs.
    """
    from semiad_cli import sweeps

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    job = sweeps.start_job(cfg, hc)  # multirun only: thread budget, resume, sweep.csv row
    if job is not None and (done := job.reusable()) is not None:
        return job.finish(done, None, reused=True)
    t_start = time.perf_counter()
    try:
        metrics = task(cfg, out_dir)
    except SemiadError as err:
        _record_status(out_dir, "failed", str(err))
        if multirun:
            log.error("job failed: %s", err)
            return job.finish({"status": "failed", "error": str(err)}, time.perf_counter() - t_start)
        log.debug("failed: %s", err)
        print(f"semiad: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        _record_status(out_dir, "interrupted", "interrupted by the user (Ctrl-C)")
        if job is not None:
            job.finish({"status": "interrupted"}, time.perf_counter() - t_start)
        print(f"semiad: interrupted; partial run left in {out_dir}", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # a bug, not a user error: Hydra shows the traceback; the row says failed
        if job is not None:
            job.finish({"status": "failed", "error": f"{type(err).__name__}: {err}"}, time.perf_counter() - t_start)
        raise
    if job is not None:
        return job.finish(metrics, time.perf_counter() - t_start)
    objective = metrics.get("objective") if isinstance(metrics, dict) else None
    return objective


def _record_status(out_dir: Path, status: str, message: str) -> None:
    from semiad_cli import results

    if (out_dir / results.METRICS_JSON).exists() and task_completed(out_dir):
        return
    try:
        results.write_json(out_dir / results.METRICS_JSON, {"status": status, "error": message})
    except OSError:
        pass


def task_completed(run_dir: Path) -> bool:
    from semiad_cli import results

    try:
        return results.read_json(Path(run_dir) / results.METRICS_JSON).get("status") == "completed"
    except (OSError, ValueError):
        return False


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def train_app(cfg: DictConfig):
    from semiad_cli.tasks import train

    return _run_task(train.run, cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def evaluate_app(cfg: DictConfig):
    from semiad_cli.tasks import evaluate

    return _run_task(evaluate.run, cfg)


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


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = "\n".join(f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items())
    return USAGE.format(version=__version__, commands=lines)


def check_group_choices(overrides: list[str], config_dir: str = CONFIG_DIR) -> str | None:
    """One-line message for ``group=name`` overrides naming no file of a config group.

    Hydra reports these too, but over several lines; a typo in ``dataset=`` or ``model=``
    is the most common mistake, so it gets a short answer listing the choices.
    """
    root = Path(config_dir)
    for item in overrides:
        if item.startswith("-") or "=" not in item:
            continue
        key, _, value = item.partition("=")
        key = key.lstrip("+~")
        group = root / key
        if "." in key or not group.is_dir() or key.split("/")[0] == "hydra" or not value or "," in value:
            continue
        if value.startswith(("glob(", "choice(", "range(", "${")) or value == "null":
            continue
        if not (group / f"{value}.yaml").is_file():
            choices = sorted(p.stem for p in group.glob("*.yaml"))
            return f"unknown {key} {value!r}; choose one of: {', '.join(choices)}"
    return None


def _override_key(item: str) -> str:
    return item.partition("=")[0].lstrip("+~")


def resume_args(args: list[str]) -> list[str]:
    """Turn ``resume_from=<run_dir>`` into that run's own overrides plus ``hydra.run.dir=<run_dir>
    trainer.resume=true``, so the run continues in the same folder from ``checkpoints/last.pt``.

    Overrides given now replace the saved ones with the same key (e.g. more epochs). Raises
    ``ConfigError`` when the folder is not a resumable run.
    """
    from semiad_cli.errors import ConfigError

    given = [a for a in args if a.startswith("resume_from=")]
    if not given:
        return args
    if any(a in ("-m", "--multirun") for a in args):
        raise ConfigError("resume_from resumes one run; it cannot be combined with --multirun")
    run_dir = Path(given[-1].partition("=")[2]).expanduser().resolve()
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise ConfigError(f"resume_from={run_dir}: not a semiad run folder (no .hydra/overrides.yaml)")
    if task_completed(run_dir):
        raise ConfigError(f"resume_from={run_dir}: that run already completed; nothing to resume")
    if "'" in str(run_dir):
        raise ConfigError(f"resume_from={run_dir}: folder names with a quote cannot be resumed")
    rest = [a for a in args if not a.startswith("resume_from=")]
    mine = {"hydra.run.dir", "trainer.resume", "resume_from"} | {_override_key(a) for a in rest if "=" in a}
    old = [str(o) for o in (OmegaConf.load(saved) or []) if _override_key(str(o)) not in mine]
    return [*old, *rest, f"hydra.run.dir='{run_dir}'", "trainer.resume=true"]


def check_overrides(config_name: str, overrides: list[str], config_dir: str = CONFIG_DIR) -> str | None:
    """One-line message for an override Hydra would reject (unknown key, bad syntax) or whose
    value has the wrong type for the key's default (``trainer.max_epochs=abc``); None when fine.

    Composes the config once up front (twice when values are overridden: without them, to read
    the defaults' types). Sweeps and Hydra flags are left to Hydra, which reports them itself.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if any(a.startswith("-") for a in overrides) or not (Path(config_dir) / f"{config_name}.yaml").is_file():
        return None
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        return _one_line(err)
    if any(o.is_sweep_override() for o in parsed):
        return None
    values = [o for o in parsed if o.input_line and o.package is None and
              not (Path(config_dir) / o.key_or_group.split("/")[0]).is_dir() and not o.key_or_group.startswith(
                  "hydra") and o.is_add() is False and o.is_delete() is False]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            compose(config_name, overrides=overrides, return_hydra_config=True)
            if not values:
                return None
            value_lines = {o.input_line for o in values}
            base = compose(config_name, overrides=[a for a in overrides if a not in value_lines])
    except HydraException as err:
        return _one_line(err)
    except Exception:  # noqa: BLE001 - anything else: let Hydra itself run and report it
        return None
    finally:
        GlobalHydra.instance().clear()
    for o in values:
        default = OmegaConf.select(base, o.key_or_group, throw_on_missing=False, default=None)
        problem = _type_problem(o.key_or_group, default, o.value())
        if problem:
            return problem
    return None


def _type_problem(key: str, default, value) -> str | None:
    """A message when ``value`` cannot stand where the config has ``default`` (ints, floats, bools)."""
    if value is None or default is None or isinstance(value, (list, dict)) or str(value).startswith("${"):
        return None
    want = {bool: (bool,), int: (int,), float: (int, float)}.get(type(default))
    if want is None:
        return None
    ok = isinstance(value, want) and not (isinstance(value, bool) and type(default) is not bool)
    if ok:
        return None
    kind = {bool: "true or false", int: "an integer", float: "a number"}[type(default)]
    return f"{key}={value!r} has the wrong type: expected {kind} (default {default!r})"


def _one_line(err: Exception) -> str:
    """Hydra's multi-line composition errors, squeezed onto one line with their cause."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    cause = err.__cause__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    text = " ".join(ln for ln in lines if not ln.startswith(("full_key", "object_type", "reference_type")))
    if cause is not None and str(cause).strip():
        first = str(cause).strip().splitlines()[0]
        if first not in text:
            text += f" ({first})"
    return text


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
    from semiad_cli.sweeps import missing_plugin

    args = argv[1:]
    try:
        args = resume_args(args) if command == "train" else args
    except SemiadError as err:
        print(f"semiad: error: {err}", file=sys.stderr)
        return 2
    problem = missing_plugin(args) or check_group_choices(args) or check_overrides(command, args)
    if problem:
        print(f"semiad: error: {problem}", file=sys.stderr)
        return 2
    sys.argv = [f"semiad {command}", *args]
    try:
        app()
    except SemiadError as err:  # errors raised before a task starts (e.g. by a sweeper)
        print(f"semiad: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
