"""Command-line overrides checked before Hydra runs: one-line errors for the common mistakes
(unknown group choice, unknown key, wrong type, an ``evaluate`` override it would ignore) and
``resume_from=<run>`` translated into that run's own overrides, refusing any that would change
what the run computes. Kept out of ``cli.py`` so the dispatcher stays thin."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from semiad_cli import schemas
from semiad_cli.composing import is_multirun
from semiad_cli.failures import config_error_line
from semiad_cli.results import task_completed


def check_group_choices(overrides: list[str], config_dir: str) -> str | None:
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


# Overrides a resumed run accepts: they change how it runs, never what it computes. trainer.max_epochs
# is checked on its own (not below the epochs already trained); anything else must keep the run's value.
RESUME_SAFE = ("trainer.num_threads", "trainer.progress", "trainer.device", "trainer.checkpoint_every",
               "hydra.verbose", "hydra.job_logging", "hydra.hydra_logging", "hydra/job_logging", "hydra/hydra_logging")
EPOCHS = "trainer.max_epochs"
_RESUME_ALLOWED = ("a resume accepts only trainer.max_epochs (not below the epochs already trained), "
                   "trainer.num_threads, trainer.progress, trainer.device, trainer.checkpoint_every and logging "
                   "(hydra.verbose, hydra/job_logging); start a new run for other settings")


def resume_args(args: list[str], config_dir: str) -> list[str]:
    """Turn ``resume_from=<run_dir>`` into that run's own overrides plus ``hydra.run.dir=<run_dir>
    trainer.resume=true``, so the run continues in the same folder from ``checkpoints/last.pt``.

    Overrides given now may only change how the run goes on (``RESUME_SAFE``, more epochs) or
    repeat the run's own values; the rest would put another experiment's name on its weights.
    Raises ``ConfigError`` when the folder is not a resumable run or an override is refused,
    before anything in the folder is written.
    """
    from semiad_cli.errors import ConfigError

    given = [a for a in args if a.startswith("resume_from=")]
    if not given:
        return args
    if is_multirun(args):
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
    saved_overrides = [str(o) for o in (OmegaConf.load(saved) or [])]
    _check_resume_overrides(run_dir, rest, saved_overrides, config_dir)
    mine = {"hydra.run.dir", "trainer.resume", "resume_from"} | {_override_key(a) for a in rest if "=" in a}
    old = [o for o in saved_overrides if _override_key(o) not in mine]
    return [*old, *rest, f"hydra.run.dir='{run_dir}'", "trainer.resume=true"]


def _check_resume_overrides(run_dir: Path, overrides: list[str], saved: list[str], config_dir: str) -> None:
    """Raise ``ConfigError`` naming every override that would change what the resumed run computes."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from semiad_cli.errors import ConfigError

    items = [a for a in overrides if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    try:
        parsed = OverridesParser.create().parse_overrides(items)
    except HydraException:
        return  # bad syntax: check_overrides reports it before Hydra runs
    run_cfg, choices = _saved_run(run_dir)
    changed, epochs = [], None
    for o in parsed:
        key = o.key_or_group
        if o.input_line in saved or _keeps_value(o, run_cfg, choices, config_dir):
            continue
        if key == EPOCHS and not o.is_delete() and not o.is_sweep_override() and o.package is None:
            epochs = o
            continue
        if o.package is None and not o.is_delete() and any(key == s or key.startswith(f"{s}.") for s in RESUME_SAFE):
            continue
        changed.append(o.input_line)
    if changed:
        raise ConfigError(f"resume_from={run_dir}: {', '.join(changed)} would change what this run computes "
                          f"(its data, split, model, training, synthetic anomalies or seed); {_RESUME_ALLOWED}")
    if epochs is not None:
        _check_more_epochs(run_dir, epochs.input_line, epochs.value())


def _saved_run(run_dir: Path):
    """The run's resolved ``config.yaml`` and its config-group choices from ``.hydra/hydra.yaml``."""
    config = run_dir / "config.yaml"
    run_cfg = OmegaConf.load(config) if config.is_file() else OmegaConf.create()
    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    choices = {}
    if hydra_file.is_file():
        node = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.choices", default=None)
        choices = OmegaConf.to_container(node) if node is not None else {}
    return run_cfg, choices


def _keeps_value(o, run_cfg, choices: dict, config_dir: str) -> bool:
    """True when the override sets what the run already has (a group's choice, a key's value)."""
    if o.is_delete() or o.is_sweep_override() or o.package is not None:
        return False
    key, value = o.key_or_group, o.value()
    if key in choices or (Path(config_dir) / key).is_dir():
        return choices.get(key) == (None if value is None else str(value))
    missing = object()
    old = OmegaConf.select(run_cfg, key, default=missing, throw_on_missing=False)
    if old is missing:
        return False
    if OmegaConf.is_config(old):
        old = OmegaConf.to_container(old, resolve=True)
    if isinstance(old, bool) or isinstance(value, bool):
        return old is value  # True == 1 in Python, not in a config
    return old == value


def _check_more_epochs(run_dir: Path, line: str, value) -> None:
    """``trainer.max_epochs`` on a resume: not below the epochs in the checkpoint, and not once training finished."""
    from semiad_cli.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int):
        return  # the wrong type: check_overrides reports it
    from semiad_cli import results
    from semiad_cli.models.base import STATE_FILE
    from semiad_cli.training.checkpoint import load_checkpoint

    path = run_dir / results.CHECKPOINT_DIR / STATE_FILE
    state = load_checkpoint(path).get("trainer") if path.is_file() else None
    if not isinstance(state, dict):
        return  # nothing trained yet (or a closed-form model): the new budget applies from the start
    trained = int(state.get("epoch", 0))
    if state.get("finished"):
        raise ConfigError(f"resume_from={run_dir}: {line} cannot change this run: its training already ended after "
                          f"{trained} epochs and only scoring is left; resume without {EPOCHS}")
    if value < trained:
        raise ConfigError(f"resume_from={run_dir}: {line} is below the {trained} epochs this run already trained; "
                          f"give {EPOCHS}={trained} or more")


def check_evaluate_overrides(overrides: list[str], config_dir: str) -> str | None:
    """One-line message for an ``evaluate`` override it would ignore (``+dataset=…``, ``seed=…``).

    ``evaluate`` rebuilds data, split, model and seed from the run's ``config.yaml``; Hydra
    would add such keys to the evaluate config and nothing would read them.
    """
    declared = OmegaConf.load(Path(config_dir) / "evaluate.yaml")
    accepted = [str(k) for k in declared if k not in ("defaults", "hydra", "task_name")]
    bad = []
    for item in overrides:
        if item.startswith("-") or ("=" not in item and not item.startswith("~")):
            continue
        key = _override_key(item)
        if key.split(".")[0].split("/")[0] == "hydra" or key in accepted:
            continue
        bad.append(item)
    if not bad:
        return None
    return (f"semiad evaluate does not take {', '.join(bad)}: it rebuilds data, split, model and seed from the run's "
            f"config.yaml; it accepts only {', '.join(f'{k}=' for k in accepted)} and hydra.* overrides "
            f"(to score other settings, train a run with them)")


def check_overrides(config_name: str, overrides: list[str], config_dir: str) -> str | None:
    """One-line message for an override Hydra would reject (unknown key, bad syntax) or whose
    value has the wrong type (``trainer.max_epochs=abc``); None when fine.

    Composes the config once up front. ``trainer`` and ``dataset.split`` have schemas
    (``semiad_cli/schemas.py``), so OmegaConf reports their wrong types, in YAML files too; values
    it converts silently (``trainer.amp=3`` → true) are refused against the schema's type. Other
    keys (``seed``, ``trainer.optimizer.lr``, ``model.*``) have no schema: for those the config is
    composed a second time, without them, to read the defaults' types. Sweeps and Hydra flags are
    left to Hydra, which reports them itself.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from semiad_cli.composing import compose_config

    if any(a.startswith("-") for a in overrides) or not (Path(config_dir) / f"{config_name}.yaml").is_file():
        return None
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        return config_error_line(err)
    if any(o.is_sweep_override() for o in parsed):
        return None
    values = [o for o in parsed if o.input_line and o.package is None and
              not (Path(config_dir) / o.key_or_group.split("/")[0]).is_dir() and not o.key_or_group.startswith(
                  "hydra") and o.is_add() is False and o.is_delete() is False]
    typed = {o.input_line: schemas.expected_type(o.key_or_group) for o in values}
    untyped = [o for o in values if typed[o.input_line] is None]
    try:
        compose_config(config_name, tuple(overrides), config_dir)  # shared with output_folder_problem
        base = None
        if untyped:
            lines = {o.input_line for o in untyped}
            base = compose_config(config_name, tuple(a for a in overrides if a not in lines), config_dir)
    except HydraException as err:
        return _wrong_type(err) or config_error_line(err)
    except Exception:  # noqa: BLE001 - anything else: let Hydra itself run and report it
        return None
    for o in values:
        key, want = o.key_or_group, typed[o.input_line]
        if want is not None:
            problem = _type_problem(key, o.value(), *want)
        else:
            default = OmegaConf.select(base, key, throw_on_missing=False, default=None)
            problem = None if default is None else _type_problem(key, o.value(), type(default),
                                                                 note=f" (default {default!r})")
        if problem:
            return problem
    return None


def _type_problem(key: str, value, kind: type, nullable: bool = False, note: str = "") -> str | None:
    """A message when ``value`` cannot stand where the config wants a ``kind`` (ints, floats, bools).

    Stricter than OmegaConf, which turns ``3`` or ``yes`` into true and ``'5'`` into 5.
    """
    if value is None or isinstance(value, (list, dict)) or str(value).startswith("${"):
        return None
    want = {bool: (bool,), int: (int,), float: (int, float)}.get(kind)
    if want is None:
        return None
    if isinstance(value, want) and not (isinstance(value, bool) and kind is not bool):
        return None
    return f"{key}={value!r} has the wrong type: expected {schemas.describe(kind, nullable)}{note}"


def _wrong_type(err: Exception) -> str | None:
    """OmegaConf's refusal of a value against a schema (``trainer.max_epochs=abc``), as one line."""
    from omegaconf.errors import ValidationError

    cause = err.__cause__
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__
    want = schemas.expected_type(cause.full_key) if cause is not None and cause.full_key else None
    if want is None:
        return None
    shown = "null" if cause.value is None else repr(cause.value)
    return f"{cause.full_key}={shown} has the wrong type: expected {schemas.describe(*want)}"
