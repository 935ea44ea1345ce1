"""Steps shared by the train and evaluate tasks: seeding, data, model construction."""

from __future__ import annotations

import logging
import random
import time

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from semiad_cli.data.split import Split, build_split
from semiad_cli.errors import ConfigError, SemiadError

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; the same seed gives the same run on CPU."""
    if seed is None or int(seed) < 0:
        raise ConfigError(f"seed={seed} must be a non-negative integer")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


def build(node: DictConfig, what: str, **kwargs):
    """``hydra.utils.instantiate`` that turns our own errors back into one-line messages."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, SemiadError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, SemiadError):
            raise cause from None
        if isinstance(cause, TypeError):
            raise ConfigError(f"{what}: {cause}") from None
        raise


def load_split(cfg: DictConfig) -> tuple[Split, float]:
    """Load the dataset source and apply the split protocol; returns (split, seconds)."""
    t0 = time.perf_counter()
    source = build(cfg.dataset.source, "dataset.source")
    if OmegaConf.is_missing(cfg.dataset, "name"):  # dataset=csv: the run is named after its file
        cfg.dataset.name = source.name
    split_cfg = OmegaConf.to_container(cfg.dataset.split, resolve=True)
    split = build_split(source, seed=int(cfg.seed), **split_cfg)
    seconds = time.perf_counter() - t0
    log.info("dataset %s: train %d (labeled anomalies %d), test %d, loaded in %.2fs", cfg.dataset.name,
             split.counts["n_train"], split.counts["n_train_known_anomaly"], split.counts["n_test"], seconds)
    return split, seconds


def fill_data_sizes(cfg: DictConfig, sample_shape: tuple[int, ...]) -> None:
    """Fill every ``input_shape: ???`` in the config with the data's sample shape."""

    def walk(node) -> None:
        if isinstance(node, DictConfig):
            for key in list(node.keys()):
                if key == "input_shape" and OmegaConf.is_missing(node, key):
                    with open_dict(node):
                        node[key] = list(sample_shape)
                else:
                    value = node._get_node(key)
                    if isinstance(value, DictConfig) and not value._is_interpolation():
                        walk(value)

    walk(cfg)


def build_model(cfg: DictConfig):
    return build(cfg.model, "model")
