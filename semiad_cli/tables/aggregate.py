"""Aggregation: which config keys tell settings apart, and mean ± std over the runs of each setting.

Every config key that varies across the collected runs (after dropping seeds, paths,
Hydra's own keys and keys implied by others) identifies a setting; runs of one setting
(usually: several seeds) are aggregated to the mean, the sample standard deviation
(``ddof=1``, as papers report; empty for one run) and their count. Failed, interrupted
or unfinished runs are never averaged: they are counted apart.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from semiad_cli.errors import SemiadError
from semiad_cli.results import flatten
from semiad_cli.tables.collect import Run

DEFAULT_METRICS = ("auroc", "aupr")

# Friendly names for the split settings the papers vary (docs/methods.md: γl, γp, k).
ALIASES = {
    "dataset.name": "dataset",
    "dataset.split.normal_class": "normal_class",
    "dataset.split.ratio_known_anomaly": "gamma_l",
    "dataset.split.ratio_pollution": "gamma_p",
    "dataset.split.ratio_known_normal": "gamma_n",
    "dataset.split.n_known_anomaly_classes": "k",
    "dataset.split.known_anomaly_classes": "known_classes",
}
# Shown first, in this order, when they vary; the rest follow in config order.
PRIORITY = ("dataset", "model", *list(ALIASES)[1:])

# Keys that never identify a setting: seeds, paths, run bookkeeping, Hydra's own.
_IGNORE_EXACT = {"seed", "data_root", "run_root", "run_dir", "task_name", "overwrite", "model._target_",
                 "dataset.name"}
_IGNORE_PREFIX = ("hydra.", "model.net.")
_IGNORE_LEAF = {"device", "num_threads", "progress", "log_every", "resume", "checkpoint_every", "download"}
_PATH_WORDS = {"root", "path", "dir", "cache", "file", "folder"}  # words of a leaf name


def counted(run: Run) -> bool:
    """A run that belongs in a table (completed or not): ours, with a known config."""
    return run.config is not None and run.status not in ("foreign", "skipped")


def _ignored(key: str) -> bool:
    if key in _IGNORE_EXACT or key.startswith(_IGNORE_PREFIX):
        return True
    leaf = key.rsplit(".", 1)[-1]
    return leaf in _IGNORE_LEAF or any(w in _PATH_WORDS for w in leaf.lower().split("_"))


def hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def sort_value(v: Any) -> tuple:
    """Numbers first (by value), then text, then missing: a stable order for mixed columns.

    NaN counts as missing: pandas reads a key that only some runs have back as NaN, and NaN,
    which compares false to everything, would land anywhere.
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return (2, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v))
    return (1, str(v))


def setting_keys(runs: list[Run]) -> list[str]:
    """Config keys that tell settings apart, in display order.

    A key is kept when it varies across runs and is not already implied by the keys
    kept before it (e.g. the encoder sizes that follow the dataset); dropping implied
    keys never changes the groups, only the columns shown.
    """
    configs = [r.config for r in runs if r.config is not None]
    if not configs:
        return []
    all_keys: list[str] = []
    for c in configs:
        all_keys.extend(k for k in c if k not in all_keys)
    varying = [k for k in all_keys if not _ignored(k) or k in ("model", "dataset")]
    varying = [k for k in varying if len({hashable(c.get(k)) for c in configs}) > 1]
    ordered = [k for k in PRIORITY if k in varying] + [k for k in varying if k not in PRIORITY]
    kept: list[str] = []
    for key in ordered:
        mapping: dict[tuple, Any] = {}
        implied = True
        for c in configs:
            ident = tuple(hashable(c.get(k)) for k in kept)
            value = hashable(c.get(key))
            if mapping.setdefault(ident, value) != value:
                implied = False
                break
        if not implied or not kept:
            kept.append(key)
    return kept


def short_names(keys: list[str]) -> dict[str, str]:
    """Column names: aliases for the split settings, else the shortest unique dotted suffix."""
    names: dict[str, str] = {}
    for key in keys:
        if key in ALIASES:
            names[key] = ALIASES[key]
            continue
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            cand = ".".join(parts[-n:])
            clash = any(o != key and (o.endswith("." + cand) or o == cand or ALIASES.get(o) == cand) for o in keys)
            if not clash:
                names[key] = cand
                break
        else:
            names[key] = key
    return names


def resolve_key(name: str, runs: list[Run]) -> str:
    """A ``--rows``/``--cols`` name (full key, alias or unique suffix) → the flattened config key."""
    known: list[str] = []
    for r in runs:
        if r.config:
            known.extend(k for k in r.config if k not in known)
    if name in known:
        return name
    for key, alias in ALIASES.items():
        if alias == name and key in known:
            return key
    matches = [k for k in known if k.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SemiadError(f"{name!r} is ambiguous: {', '.join(matches)}; give the full key")
    varying = ", ".join(short_names(setting_keys(runs)).values()) or "none"
    raise SemiadError(f"unknown config key {name!r}; keys that vary here: {varying}")


def metric_value(metrics: dict, name: str) -> float | None:
    """``auroc``, ``known_aupr``, ``parts.rec.auroc``, ``val.auroc``…: a number or ``None``."""
    value = flatten(metrics).get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def available_metrics(runs: list[Run]) -> list[str]:
    """Numeric metric keys of the completed runs, in first-seen order."""
    names: list[str] = []
    for r in runs:
        if r.status == "completed":
            for k, v in flatten(r.metrics).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in names:
                    names.append(k)
    return names


def runs_frame(runs: list[Run], keys: list[str], metrics: list[str]) -> tuple[pd.DataFrame, list[tuple]]:
    """One row per counted run: ``setting`` (an index into the returned settings), ``completed``, ``seed``
    and the metric values; plus the settings, each the tuple of its ``keys`` values.

    Metrics of runs that did not complete are NaN, so they never enter a mean.
    """
    ids: dict[tuple, int] = {}
    records = []
    for r in runs:
        if not counted(r):
            continue
        done = r.status == "completed"
        ident = tuple(hashable(r.config.get(k)) for k in keys)
        record: dict[str, Any] = {"setting": ids.setdefault(ident, len(ids)), "completed": done, "seed": r.seed}
        for m in metrics:
            value = metric_value(r.metrics, m) if done else None
            record[m] = math.nan if value is None else value
        records.append(record)
    return pd.DataFrame(records, columns=["setting", "completed", "seed", *metrics]), list(ids)


def aggregate(runs: list[Run], keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Tidy table: one row per setting, ``<metric>_mean``, ``<metric>_std`` (ddof=1), ``<metric>_n``.

    ``n`` counts completed runs, ``n_failed`` the failed/interrupted/incomplete ones of the
    same setting, ``seeds`` the completed runs' seeds. Settings where every run failed
    appear with ``n = 0`` and empty means, so they cannot go unnoticed.
    """
    columns = [*keys, "n", "n_failed", "seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")]
    frame, settings = runs_frame(runs, keys, metrics)
    if not settings:
        return pd.DataFrame([], columns=columns)
    done = frame[frame["completed"]]
    stats = done.groupby("setting").agg(
        n=("completed", "size"),
        seeds=("seed", lambda s: " ".join(str(v) for v in sorted(s, key=sort_value))),
        **{f"{m}_{s}": (m, a) for m in metrics for s, a in (("mean", "mean"), ("std", "std"), ("n", "count"))},
    )
    # settings where every run failed have no completed row: n = 0, empty means
    stats = stats.reindex(range(len(settings))).fillna({"n": 0, "seeds": "", **{f"{m}_n": 0 for m in metrics}})
    stats["n_failed"] = (~frame["completed"]).groupby(frame["setting"]).sum().reindex(stats.index, fill_value=0)
    rows = []
    for i in sorted(range(len(settings)), key=lambda i: [sort_value(v) for v in settings[i]]):
        got = stats.loc[i]
        row: dict[str, Any] = dict(zip(keys, settings[i], strict=True))
        row.update(n=int(got["n"]), n_failed=int(got["n_failed"]), seeds=got["seeds"])
        for m in metrics:
            row.update({f"{m}_mean": float(got[f"{m}_mean"]), f"{m}_std": float(got[f"{m}_std"]),
                        f"{m}_n": int(got[f"{m}_n"])})
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def duplicate_seeds(runs: list[Run], keys: list[str]) -> list[str]:
    """Settings that hold the same seed twice (e.g. one sweep passed twice): worth a warning."""
    seen: dict[tuple, Path] = {}
    notes = []
    for r in runs:
        if r.status != "completed" or r.config is None:
            continue
        ident = (*[hashable(r.config.get(k)) for k in keys], hashable(r.seed))
        if ident in seen:
            notes.append(f"seed {r.seed} appears twice in one setting: {seen[ident]} and {r.path}")
        else:
            seen[ident] = r.path
    return notes
