"""Types of the ``trainer`` and ``dataset.split`` configs, so that OmegaConf refuses a value of the wrong
type while Hydra composes (``trainer.max_epochs=abc`` on the command line, ``max_epochs: abc`` in a YAML
file) instead of the run failing after the data has loaded.

The values live in the YAML files (``configs/trainer/default.yaml``, ``configs/dataset/split/default.yaml``);
these dataclasses name the same keys with a type and no value (``???``). A key added to a YAML file but not
here fails at composition (``Key 'x' not in 'TrainerSchema'``); one added here but not in the YAML file shows
as ``???`` (tests/unit/test_schemas.py checks both). Optimizer and scheduler stay ``Any``: they are
``_target_``/``_partial_`` nodes for any torch class, with that class's own arguments.

``register()`` stores the schemas in Hydra's ConfigStore under the names the YAML defaults lists extend
(``/trainer_schema@_here_``); ``cli.py`` calls it at import, so it runs before anything composes. Code that
composes the configs without importing ``semiad_cli.cli`` calls ``register()`` first.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from omegaconf import MISSING


@dataclasses.dataclass
class TrainerSchema:
    """``trainer``: the arguments of ``semiad_cli.training.loop.Trainer`` (order as in trainer/default.yaml)."""

    _target_: str = MISSING
    max_epochs: int = MISSING
    batch_size: int = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    device: str = MISSING
    num_threads: int | None = MISSING
    val_fraction: float = MISSING
    patience: int | None = MISSING
    checkpoint_every: int = MISSING
    progress: bool | None = MISSING
    log_every: int | None = MISSING
    amp: bool = MISSING
    grad_clip: float | None = MISSING
    resume: bool = MISSING
    flat_params: bool = MISSING
    compile: bool = MISSING
    balanced_batches: float | None = MISSING
    min_steps: int = MISSING
    ema_decay: float | None = MISSING


@dataclasses.dataclass
class SplitSchema:
    """``dataset.split``: the keyword arguments of ``semiad_cli.data.split.build_split`` (after ``seed``)."""

    normal_class: Any = MISSING            # a label, a list of labels or null
    known_anomaly_classes: Any = MISSING   # a list of labels or null
    n_known_anomaly_classes: int = MISSING
    ratio_known_anomaly: float = MISSING
    ratio_pollution: float = MISSING
    ratio_known_normal: float = MISSING
    test_size: float = MISSING
    protocol: str = MISSING
    scaling: str = MISSING
    gcn: bool = MISSING
    max_train_normal: int | None = MISSING
    max_test: int | None = MISSING


# Config key → its schema, and the ConfigStore name the YAML files extend.
SCHEMAS: dict[str, tuple[type, str]] = {
    "trainer": (TrainerSchema, "trainer_schema"),
    "dataset.split": (SplitSchema, "split_schema"),
}


def register() -> None:
    """Store the schemas in Hydra's ConfigStore (again is harmless: the same node replaces itself)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for schema, name in SCHEMAS.values():
        store.store(name=name, node=schema, provider="semiad_cli")


def expected_type(key: str) -> tuple[type, bool] | None:
    """``(type, null allowed)`` the schemas declare for a dotted key (``trainer.max_epochs`` → ``(int, False)``);
    None for keys no schema types (``Any`` fields, nested keys such as ``trainer.optimizer.lr``, other nodes)."""
    for prefix, (schema, _) in SCHEMAS.items():
        name = key[len(prefix) + 1:] if key.startswith(f"{prefix}.") else None
        if name is None or "." in name:
            continue
        hint = typing.get_type_hints(schema).get(name)
        if hint is None or hint is Any:
            return None
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            base = [a for a in args if a is not type(None)]
            return (base[0], True) if len(base) == 1 else None
        return hint, False
    return None


def describe(kind: type, nullable: bool = False) -> str:
    """How an error message names a type: ``an integer``, ``a number or null``, ``true or false``."""
    text = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)
    return f"{text} or null" if nullable else text
