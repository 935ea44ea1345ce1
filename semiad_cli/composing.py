"""Compose the config before Hydra runs, for the pre-flight checks of ``cli.main``.

The checks (types, the output folder) all need the composed config; composing it takes
~40 ms, so they share one composition per argument list (``cli.main`` clears the cache).
"""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import DictConfig

from semiad_cli import schemas


@functools.lru_cache(maxsize=8)
def compose_config(config_name: str, overrides: tuple[str, ...], config_dir: str) -> DictConfig:
    """The config Hydra would compose, ``hydra`` node included; raises what Hydra's compose raises.

    Callers only read the result: it is shared between them.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    schemas.register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


MULTIRUN_FLAGS = ("-m", "--multirun")


def is_multirun(args: list[str]) -> bool:
    """Whether these command-line arguments start a sweep (``-m`` / ``--multirun``)."""
    return any(a in MULTIRUN_FLAGS for a in args)


def compose_plain(config_name: str, overrides: list[str], config_dir: str) -> DictConfig:
    """``compose_config`` of the arguments without their flags and sweep values (``seed=1,2``): what every
    job of a sweep shares, and a single run's whole config. Raises what parsing or composing raises."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([a for a in overrides if not a.startswith("-")])
    return compose_config(config_name, tuple(o.input_line for o in parsed if not o.is_sweep_override()), config_dir)


def clear() -> None:
    """Forget earlier compositions (config files may have changed since)."""
    compose_config.cache_clear()
