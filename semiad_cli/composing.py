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


def clear() -> None:
    """Forget earlier compositions (config files may have changed since)."""
    compose_config.cache_clear()
