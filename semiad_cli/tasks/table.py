"""``semiad table <sweep or run folders…>``: collect run folders, group by setting, mean ± std over seeds.

Not a Hydra app: it reads what ``semiad train`` wrote (``config.yaml``, ``metrics.json``)
and needs no config of its own. The steps are separate functions so tests and notebooks
can call them: :func:`collect_runs` → :func:`setting_keys` → :func:`aggregate` →
:func:`render` / :func:`write_files`; :func:`run` does all of them.

Grouping: every config key that varies across the collected runs (after dropping
seeds, paths, Hydra's own keys and keys implied by others) identifies a setting;
runs of one setting (usually: several seeds) are aggregated to the mean, the sample
standard deviation (``ddof=1``, as papers report; empty for one run) and their count.
Failed, interrupted or unfinished runs are never averaged: they are listed apart.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from semiad_cli.atomic import write_text_atomic
from semiad_cli.errors import SemiadError

METRICS_JSON = "metrics.json"
CONFIG_YAML = "config.yaml"
SWEEP_CSV = "sweep.csv"  # semiad_cli.sweeps.SWEEP_CSV, not imported: this module needs no Hydra

DEFAULT_METRICS = ("auroc", "aupr")

# Friendly names for the split settings the papers vary (METHODS.md: γl, γp, k).
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


@dataclass
class Run:
    """One run folder: its status, flattened config (``None`` if unknown) and metrics."""

    path: Path
    status: str  # completed | failed | interrupted | incomplete | skipped
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def seed(self) -> Any:
        if self.config and "seed" in self.config:
            return self.config["seed"]
        return self.metrics.get("seed")


@dataclass
class TableResult:
    """What :func:`run` produced: the tidy table, the runs it skipped, and the files written."""

    table: pd.DataFrame
    problems: list[Run]
    keys: list[str]
    metrics: list[str]
    text: str
    files: list[Path]


# ---------------------------------------------------------------- collecting runs


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, 2]}}`` → ``{"a.b": "[1, 2]"}``: hashable leaves for grouping."""
    flat: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            flat.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(data, (list, tuple)):
        flat[prefix[:-1]] = json.dumps(list(data))
    else:
        flat[prefix[:-1]] = data
    return flat


def _is_run_folder(path: Path) -> bool:
    if (path / METRICS_JSON).is_file() or (path / ".hydra").is_dir():
        return True
    return (path / CONFIG_YAML).is_file() and any(path.glob("*.log"))


def find_run_folders(path: Path) -> list[Path]:
    """Run folders at or below ``path`` (a run, a sweep, or a folder of sweeps); sorted, numerically."""
    path = Path(path)
    if not path.exists():
        raise SemiadError(f"{path} does not exist; pass a run folder or a multirun sweep folder")
    if path.is_file():
        if path.name == METRICS_JSON:
            return [path.parent]
        raise SemiadError(f"{path} is a file; pass a run folder or a multirun sweep folder")
    found: list[Path] = []
    for root, dirs, _files in os.walk(path):
        here = Path(root)
        if _is_run_folder(here):
            found.append(here)
            dirs[:] = []  # checkpoints/, plots/ etc. are inside the run
            continue
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(found, key=_natural_key)


def _natural_key(path: Path) -> list:
    return [int(p) if p.isdigit() else p for p in path.parts]


def _read_yaml(path: Path) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _model_name(path: Path, config: dict | None, metrics: dict) -> str | None:
    """The ``model=`` choice Hydra recorded (``ede``, ``deepsad``), else the class name."""
    hydra_cfg = _read_yaml(path / ".hydra" / "hydra.yaml") if (path / ".hydra" / "hydra.yaml").is_file() else None
    choice = (((hydra_cfg or {}).get("hydra") or {}).get("runtime") or {}).get("choices", {}).get("model")
    if choice:
        return str(choice)
    target = ((config or {}).get("model") or {}).get("_target_")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return metrics.get("model")


def _sweep_rows(sweep_dir: Path) -> dict[str, dict[str, str]]:
    """``sweep.csv`` of a sweep folder, keyed by the run folder's name (empty when there is none)."""
    try:
        with open(sweep_dir / SWEEP_CSV, newline="") as handle:
            return {Path(row.get("run_dir") or "").name: row for row in csv.DictReader(handle)}
    except (OSError, csv.Error):
        return {}


def _sweep_row(path: Path) -> dict[str, str] | None:
    """The ``sweep.csv`` row of a run folder inside a sweep folder, if any."""
    return _sweep_rows(path.parent).get(path.name)


def read_run(path: Path) -> Run:
    """Classify one run folder; never raises for a broken run (it becomes a listed problem)."""
    path = Path(path)
    config = _read_yaml(path / CONFIG_YAML)
    if config is None and (path / ".hydra" / "config.yaml").is_file():
        config = _read_yaml(path / ".hydra" / "config.yaml")
    metrics: dict = {}
    status, error = "incomplete", "no metrics.json: the job was killed or is still running"
    row = _sweep_row(path) if not (path / METRICS_JSON).is_file() else None
    if row is not None and row.get("status") in ("failed", "interrupted"):
        # metrics.json could not be written (read-only or full disk), but the sweep recorded the job
        status = row["status"]
        error = f"no metrics.json; sweep.csv says: {row.get('error') or status}"
    if (path / METRICS_JSON).is_file():
        try:
            metrics = json.loads((path / METRICS_JSON).read_text())
        except (OSError, ValueError) as err:
            metrics, status, error = {}, "failed", f"unreadable metrics.json ({err})"
        else:
            if not isinstance(metrics, dict):
                metrics, status, error = {}, "foreign", "metrics.json is not a semiad metrics file"
            elif "run_dir" in metrics and "status" not in metrics:
                status, error = "skipped", f"an evaluate rescoring of {metrics['run_dir']}"
            elif "status" not in metrics:
                status, error = "foreign", "metrics.json has no semiad 'status' field"
            else:
                status, error = str(metrics["status"]), str(metrics.get("error") or "")
                if status == "completed" and "auroc" not in metrics:
                    status, error = "failed", "metrics.json says completed but holds no auroc"
    if config is not None and config.get("task_name") not in (None, "train"):
        status, error = "skipped", f"task {config.get('task_name')!r}, not a training run"
    flat = None
    if config is not None:
        flat = flatten(config)
        flat["model"] = _model_name(path, config, metrics)
        flat["dataset"] = flat.get("dataset.name", metrics.get("dataset"))
    elif status == "completed":  # config lost: fall back to what metrics.json names
        flat = {"model": metrics.get("model"), "dataset": metrics.get("dataset"), "seed": metrics.get("seed")}
    return Run(path=path, status=status, config=flat, metrics=metrics, error=error)


def collect_runs(paths: list[str | Path]) -> list[Run]:
    """All run folders under ``paths``; a path holding no semiad run is an error naming it."""
    if not paths:
        raise SemiadError("give at least one run folder or multirun sweep folder")
    runs: list[Run] = []
    seen: set[Path] = set()
    for p in paths:
        folders = find_run_folders(Path(p))
        these = [read_run(f) for f in folders if f.resolve() not in seen]
        seen.update(f.resolve() for f in folders)
        ours = [r for r in these if r.status not in ("foreign", "skipped")]
        if not ours:
            if not folders:
                raise SemiadError(f"no run folders under {p} (looked for metrics.json or .hydra/)")
            example = next((r for r in these), None)
            raise SemiadError(f"no semiad training runs under {p}: {example.path} has {example.error}")
        runs.extend(these)
    return runs


# ---------------------------------------------------------------- which keys vary


def _ignored(key: str) -> bool:
    if key in _IGNORE_EXACT or key.startswith(_IGNORE_PREFIX):
        return True
    leaf = key.rsplit(".", 1)[-1]
    return leaf in _IGNORE_LEAF or any(w in _PATH_WORDS for w in leaf.lower().split("_"))


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


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
    varying = [k for k in varying if len({_hashable(c.get(k)) for c in configs}) > 1]
    ordered = [k for k in PRIORITY if k in varying] + [k for k in varying if k not in PRIORITY]
    kept: list[str] = []
    for key in ordered:
        mapping: dict[tuple, Any] = {}
        implied = True
        for c in configs:
            ident = tuple(_hashable(c.get(k)) for k in kept)
            value = _hashable(c.get(key))
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


# ---------------------------------------------------------------- aggregating


def metric_value(metrics: dict, name: str) -> float | None:
    """``auroc``, ``known_aupr``, ``parts.rec.auroc``, ``val.auroc``…: a number or ``None``."""
    value = flatten(metrics).get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def available_metrics(runs: list[Run]) -> list[str]:
    names: list[str] = []
    for r in runs:
        if r.status == "completed":
            for k, v in flatten(r.metrics).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in names:
                    names.append(k)
    return names


def _sort_value(v: Any) -> tuple:
    if v is None:
        return (2, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v))
    return (1, str(v))


def aggregate(runs: list[Run], keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Tidy table: one row per setting, ``<metric>_mean``, ``<metric>_std`` (ddof=1), ``<metric>_n``.

    ``n`` counts completed runs, ``n_failed`` the failed/interrupted/incomplete ones of the
    same setting, ``seeds`` the completed runs' seeds. Settings where every run failed
    appear with ``n = 0`` and empty means, so they cannot go unnoticed.
    """
    groups: dict[tuple, dict] = {}
    for r in runs:
        if r.config is None or r.status in ("foreign", "skipped"):
            continue
        ident = tuple(_hashable(r.config.get(k)) for k in keys)
        g = groups.setdefault(ident, {"runs": [], "failed": 0})
        if r.status == "completed":
            g["runs"].append(r)
        else:
            g["failed"] += 1
    rows = []
    for ident, g in sorted(groups.items(), key=lambda kv: [_sort_value(v) for v in kv[0]]):
        row: dict[str, Any] = dict(zip(keys, ident, strict=True))
        row["n"] = len(g["runs"])
        row["n_failed"] = g["failed"]
        row["seeds"] = " ".join(str(r.seed) for r in sorted(g["runs"], key=lambda r: _sort_value(r.seed)))
        for m in metrics:
            values = np.array([v for r in g["runs"] if (v := metric_value(r.metrics, m)) is not None])
            row[f"{m}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{m}_n"] = len(values)
        rows.append(row)
    columns = [*keys, "n", "n_failed", "seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")]
    return pd.DataFrame(rows, columns=columns)


def constant_settings(runs: list[Run], keys: list[str]) -> str:
    """``dataset=digits, model=ede``: the headline settings every run shares (not shown as columns)."""
    configs = [r.config for r in runs if r.config is not None and r.status not in ("foreign", "skipped")]
    parts = []
    for key in PRIORITY:
        values = {_hashable(c.get(key)) for c in configs}
        if key not in keys and len(values) == 1 and None not in values:
            parts.append(f"{ALIASES.get(key, key)}={_fmt_value(next(iter(values)))}")
    return ", ".join(parts)


def duplicate_seeds(runs: list[Run], keys: list[str]) -> list[str]:
    """Settings that hold the same seed twice (e.g. one sweep passed twice): worth a warning."""
    seen: dict[tuple, Path] = {}
    notes = []
    for r in runs:
        if r.status != "completed" or r.config is None:
            continue
        ident = (*[_hashable(r.config.get(k)) for k in keys], _hashable(r.seed))
        if ident in seen:
            notes.append(f"seed {r.seed} appears twice in one setting: {seen[ident]} and {r.path}")
        else:
            seen[ident] = r.path
    return notes


# ---------------------------------------------------------------- rendering


def _fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_cell(mean: float, std: float, n: int, digits: int, scale: float, show_n: bool, tex: bool = False) -> str:
    if n == 0 or math.isnan(mean):
        return "—"
    text = f"{mean * scale:.{digits}f}"
    if n > 1 and not math.isnan(std):
        text += (r" $\pm$ " if tex else " ± ") + f"{std * scale:.{digits}f}"
    if show_n:
        text += f" ({n})"
    return text


def display_frame(table: pd.DataFrame, keys: list[str], metrics: list[str], cols: list[str],
                  digits: int = 3, scale: float = 1.0, tex: bool = False) -> pd.DataFrame:
    """The table as strings: ``mean ± std`` cells, optionally with ``cols`` keys pivoted into columns."""
    names = short_names(keys)
    rows_keys = [k for k in keys if k not in cols]
    if not cols:
        out = pd.DataFrame({names[k]: table[k].map(_fmt_value) for k in rows_keys})
        for m in metrics:
            out[m] = [format_cell(r[f"{m}_mean"], r[f"{m}_std"], int(r[f"{m}_n"]), digits, scale,
                                  int(r[f"{m}_n"]) != int(r["n"]), tex) for _, r in table.iterrows()]
        out["n"] = table["n"].astype(int).astype(str)
        if (table["n_failed"] > 0).any():
            out["failed"] = table["n_failed"].astype(int).astype(str)
        return out
    # pivot: one column per (metric, value of the cols keys); n shown in a cell when not uniform.
    # With no row keys left, the metrics become the rows.
    uniform_n = table["n"].nunique() <= 1
    col_values = sorted({tuple(r[k] for k in cols) for _, r in table.iterrows()},
                        key=lambda t: [_sort_value(v) for v in t])
    row_values = sorted({tuple(r[k] for k in rows_keys) for _, r in table.iterrows()},
                        key=lambda t: [_sort_value(v) for v in t])
    lookup = {(tuple(r[k] for k in rows_keys), tuple(r[k] for k in cols)): r for _, r in table.iterrows()}

    def label(cv: tuple) -> str:
        return " ".join(_fmt_value(v) if k in ("model", "dataset") else f"{names[k]}={_fmt_value(v)}"
                        for k, v in zip(cols, cv, strict=True))

    def cell(r, m: str) -> str:
        if r is None:
            return "—"
        n_m = int(r[f"{m}_n"])
        return format_cell(r[f"{m}_mean"], r[f"{m}_std"], n_m, digits, scale, not uniform_n or n_m != int(r["n"]), tex)

    records = []
    if not rows_keys:
        for m in metrics:
            records.append({"metric": m, **{label(cv): cell(lookup.get(((), cv)), m) for cv in col_values}})
        return pd.DataFrame(records)
    for rv in row_values:
        rec = {names[k]: _fmt_value(v) for k, v in zip(rows_keys, rv, strict=True)}
        for m in metrics:
            for cv in col_values:
                rec[f"{m} {label(cv)}" if len(metrics) > 1 else label(cv)] = cell(lookup.get((rv, cv)), m)
        records.append(rec)
    return pd.DataFrame(records)


def to_markdown(frame: pd.DataFrame) -> str:
    header = list(frame.columns)
    cells = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, rule, *body])


_TEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "--"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in text)


def to_latex(frame: pd.DataFrame, caption: str, n_label_cols: int) -> str:
    """A booktabs tabular written by hand (``DataFrame.to_latex`` would need jinja2)."""
    cols = list(frame.columns)
    spec = "l" * n_label_cols + "r" * (len(cols) - n_label_cols)
    lines = [f"% {caption}", "% needs \\usepackage{booktabs}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(tex_escape(str(c)) for c in cols) + r" \\", "\\midrule"]
    for row in frame.itertuples(index=False):
        # cells already hold $\pm$ (tex=True); only escape the key values
        lines.append(" & ".join(v if "$\\pm$" in str(v) else tex_escape(str(v)) for v in row) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def problems_frame(problems: list[Run], keys: list[str]) -> pd.DataFrame:
    names = short_names(keys)
    rows = []
    for r in problems:
        row = {"status": r.status, "path": str(r.path)}
        for k in keys:
            row[names[k]] = _fmt_value(r.config.get(k)) if r.config else ""
        row["seed"] = _fmt_value(r.seed) if (r.config or r.metrics) else ""
        row["error"] = r.error
        rows.append(row)
    return pd.DataFrame(rows, columns=["status", "path", *[names[k] for k in keys], "seed", "error"])


def problems_text(problems: list[Run], keys: list[str]) -> str:
    if not problems:
        return ""
    frame = problems_frame(problems, keys)
    lines = [f"Failed or incomplete runs (not averaged): {len(problems)}"]
    for row in frame.to_dict("records"):
        setting = " ".join(f"{k}={row[k]}" for k in row if k not in ("status", "path", "error") and row[k] != "")
        lines.append(f"  {row['status']:<11} {row['path']}  {setting}: {row['error']}")
    return "\n".join(lines)


def caption(metrics: list[str], scale: float) -> str:
    unit = " (in %)" if scale == 100 else ""
    return (f"{', '.join(metrics)}{unit}: mean ± sample std (ddof=1) over seeds; "
            f"n = completed runs per setting, (n) in a cell when it differs.")


def render(table: pd.DataFrame, keys: list[str], metrics: list[str], cols: list[str], fmt: str = "md",
           digits: int = 3, scale: float = 1.0, constants: str = "") -> str:
    """The table as markdown, CSV or LaTeX text; ``constants`` names what all runs share."""
    if fmt == "csv":
        return table.to_csv(index=False)
    frame = display_frame(table, keys, metrics, cols, digits, scale, tex=fmt == "tex")
    text = caption(metrics, scale) + (f" All runs: {constants}." if constants else "")
    if cols and table["n"].nunique() == 1:
        text += f" n = {int(table['n'].iloc[0])} runs per cell."
    if fmt == "tex":
        return to_latex(frame, text, max(1, len([k for k in keys if k not in cols])))
    return to_markdown(frame) + "\n\n" + text + "\n"


def write_files(out_dir: Path, table: pd.DataFrame, problems: list[Run], keys: list[str], metrics: list[str],
                cols: list[str], digits: int, scale: float, constants: str = "") -> list[Path]:
    """``table.csv`` (tidy: one row per setting), ``table.md``, ``table.tex``, ``failed.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = render(table, keys, metrics, cols, "md", digits, scale, constants)
    extra = problems_text(problems, keys)
    texts = {
        "table.csv": table.to_csv(index=False),
        "table.md": md + ("\n" + extra.replace("\n  ", "\n- ") + "\n" if extra else ""),
        "table.tex": render(table, keys, metrics, cols, "tex", digits, scale, constants),
        "failed.csv": problems_frame(problems, keys).to_csv(index=False),
    }
    files = []
    for name, text in texts.items():
        write_text_atomic(out_dir / name, text)
        files.append(out_dir / name)
    return files


def default_out_dir(paths: list[str | Path]) -> Path:
    """The given folder, or the deepest folder common to several (next to the sweep)."""
    resolved = [Path(p).resolve() for p in paths]
    resolved = [p.parent if p.is_file() else p for p in resolved]
    return Path(os.path.commonpath([str(p) for p in resolved]))


def run(paths: list[str | Path], rows: list[str] | None = None, cols: list[str] | None = None,
        metrics: list[str] | None = None, fmt: str = "md", out: str | Path | None = None, save: bool = True,
        digits: int | None = None, percent: bool = False) -> TableResult:
    """Collect, aggregate, render and (unless ``save=False``) write the table files."""
    runs = collect_runs(paths)
    metrics = list(metrics or DEFAULT_METRICS)
    known_metrics = available_metrics(runs)
    for m in metrics:
        if known_metrics and m not in known_metrics:
            main = [k for k in known_metrics if "." not in k and k not in ("seed", "objective")]
            raise SemiadError(f"unknown metric {m!r}; choose from {', '.join(main)} or a dotted key "
                              f"such as parts.rec.auroc")
    cols = [resolve_key(c, runs) for c in (cols or [])]
    auto = setting_keys(runs)
    if rows:
        keys = [resolve_key(r, runs) for r in rows] + [c for c in cols if c not in rows]
        pooled = [k for k in auto if k not in keys]
        for k in pooled:
            print(f"semiad table: note: runs that differ in {k} are pooled (not in --rows/--cols)", file=sys.stderr)
    else:
        keys = auto + [c for c in cols if c not in auto]
        if not keys:
            keys = ["model"]  # one setting: still say which model it is
    if all(k in keys for k in auto):
        for note in duplicate_seeds(runs, keys):
            print(f"semiad table: warning: {note}", file=sys.stderr)
    table = aggregate(runs, keys, metrics)
    problems = [r for r in runs if r.status != "completed"]
    scale = 100.0 if percent else 1.0
    digits = digits if digits is not None else (1 if percent else 3)
    shared = constant_settings(runs, keys)
    text = render(table, keys, metrics, cols, fmt, digits, scale, shared)
    extra = problems_text(problems, keys)
    if extra:
        text = text.rstrip("\n") + "\n\n" + extra + "\n"
    files: list[Path] = []
    if save:
        out_dir = Path(out) if out else default_out_dir(paths)
        files = write_files(out_dir, table, problems, keys, metrics, cols, digits, scale, shared)
    return TableResult(table=table, problems=problems, keys=keys, metrics=metrics, text=text, files=files)


# ---------------------------------------------------------------- command line


def _split_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semiad table",
        description="Aggregate run folders into a results table: mean ± sample std (ddof=1) over seeds\n"
                    "per setting. Settings are told apart by the config keys that vary across the runs.\n"
                    "Failed or incomplete runs are listed, never averaged. Files: table.csv (one row per\n"
                    "setting: <metric>_mean/_std/_n, n, n_failed, seeds), table.md, table.tex, failed.csv.",
        epilog="examples:\n"
               "  semiad table outputs/multirun/2026-11-23/12-00-00_ab12cd\n"
               "  semiad table SWEEP --metric auroc,aupr,known_aupr,unknown_aupr --percent\n"
               "  semiad table SWEEP1 SWEEP2 --rows dataset --cols model --metric auroc\n"
               "  semiad table SWEEP --format tex --out paper/\n"
               "  semiad table SWEEP --plot                      # also metric-vs-x plots",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="run folders, multirun sweep folders, or folders holding them")
    parser.add_argument("--metric", "-m", action="append",
                        help="metric(s), comma-separated or repeated: auroc, aupr, known_aupr, unknown_aupr, "
                             "known_auroc, unknown_auroc, parts.<name>.auroc, … (default: auroc,aupr)")
    parser.add_argument("--rows", action="append", help="config keys for rows (default: all keys that vary); "
                        "names: dataset, model, normal_class, gamma_l, gamma_p, k, a full key or its last part")
    parser.add_argument("--cols", action="append", help="config keys pivoted into columns, e.g. --cols model")
    parser.add_argument("--format", "-f", choices=("md", "csv", "tex"), default="md", help="stdout format")
    parser.add_argument("--out", help="folder for table.csv/.md/.tex and failed.csv (default: the sweep folder)")
    parser.add_argument("--no-save", action="store_true", help="print only; write no files")
    parser.add_argument("--digits", type=int, help="decimals (default 3, or 1 with --percent)")
    parser.add_argument("--percent", action="store_true", help="show metrics ×100, as papers do")
    parser.add_argument("--plot", action="store_true", help="also draw metric-vs-x plots (see semiad plot)")
    parser.add_argument("--x", help="with --plot: the x-axis key (default: gamma_l or the first numeric key)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    metrics = _split_list(args.metric)
    result = run(args.paths, rows=_split_list(args.rows), cols=_split_list(args.cols), metrics=metrics,
                 fmt=args.format, out=args.out, save=not args.no_save, digits=args.digits, percent=args.percent)
    sys.stdout.write(result.text)
    if result.files:
        print(f"semiad table: wrote {', '.join(f.name for f in result.files)} to {result.files[0].parent}",
              file=sys.stderr)
    if args.plot:
        from semiad_cli.tasks import plot

        out = (Path(args.out) if args.out else default_out_dir(args.paths)) / "plots"
        written = plot.run(args.paths, metrics=result.metrics, x=args.x, out=out)
        for f in written:
            print(f"semiad table: wrote {f}", file=sys.stderr)
    return 0
