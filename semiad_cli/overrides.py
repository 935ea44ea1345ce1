"""Command-line overrides checked before Hydra runs: one-line errors for the common mistakes
(unknown group choice, unknown key, wrong type) and ``resume_from=<run>`` translated into that
run's own overrides. Kept out of ``cli.py`` so the dispatcher stays thin."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

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


def check_overrides(config_name: str, overrides: list[str], config_dir: str) -> str | None:
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
