"""Rendering: the aggregated table as ``mean ± std`` text, markdown (``DataFrame.to_markdown``),
LaTeX (``Styler.to_latex``) and CSV, plus the list of runs that were not averaged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from semiad_cli.atomic import write_text_atomic
from semiad_cli.tables.aggregate import ALIASES, PRIORITY, counted, hashable, short_names, sort_value
from semiad_cli.tables.collect import Run


def fmt_value(v: Any) -> str:
    """A key value as shown in a cell: ``—`` for missing, ``0.05`` not ``0.05000``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_cell(mean: float, std: float, n: int, digits: int, scale: float, show_n: bool) -> str:
    """``0.900 ± 0.100``, ``± std`` only with two runs or more, ``(n)`` when asked."""
    if n == 0 or math.isnan(mean):
        return "—"
    text = f"{mean * scale:.{digits}f}"
    if n > 1 and not math.isnan(std):
        text += f" ± {std * scale:.{digits}f}"
    if show_n:
        text += f" ({n})"
    return text


def constant_settings(runs: list[Run], keys: list[str]) -> str:
    """``dataset=digits, model=ede``: the headline settings every run shares (not shown as columns)."""
    configs = [r.config for r in runs if counted(r)]
    parts = []
    for key in PRIORITY:
        values = {hashable(c.get(key)) for c in configs}
        if key not in keys and len(values) == 1 and None not in values:
            parts.append(f"{ALIASES.get(key, key)}={fmt_value(next(iter(values)))}")
    return ", ".join(parts)


def display_frame(table: pd.DataFrame, keys: list[str], metrics: list[str], cols: list[str],
                  digits: int = 3, scale: float = 1.0) -> pd.DataFrame:
    """The table as strings: ``mean ± std`` cells, optionally with ``cols`` keys pivoted into columns."""
    names = short_names(keys)
    rows_keys = [k for k in keys if k not in cols]
    if not cols:
        out = pd.DataFrame({names[k]: table[k].map(fmt_value) for k in rows_keys})
        for m in metrics:
            out[m] = [format_cell(r[f"{m}_mean"], r[f"{m}_std"], int(r[f"{m}_n"]), digits, scale,
                                  int(r[f"{m}_n"]) != int(r["n"])) for _, r in table.iterrows()]
        out["n"] = table["n"].astype(int).astype(str)
        if (table["n_failed"] > 0).any():
            out["failed"] = table["n_failed"].astype(int).astype(str)
        return out
    # pivot: one column per (metric, value of the cols keys); n shown in a cell when not uniform.
    # With no row keys left, the metrics become the rows.
    uniform_n = table["n"].nunique() <= 1

    def ident(r, ks: list[str]) -> tuple:  # NaN (a key some runs lack) as None: NaN != NaN breaks lookups
        return tuple(None if isinstance(r[k], float) and math.isnan(r[k]) else r[k] for k in ks)

    col_values = sorted({ident(r, cols) for _, r in table.iterrows()}, key=lambda t: [sort_value(v) for v in t])
    row_values = sorted({ident(r, rows_keys) for _, r in table.iterrows()}, key=lambda t: [sort_value(v) for v in t])
    lookup = {(ident(r, rows_keys), ident(r, cols)): r for _, r in table.iterrows()}

    def label(cv: tuple) -> str:
        return " ".join(fmt_value(v) if k in ("model", "dataset") else f"{names[k]}={fmt_value(v)}"
                        for k, v in zip(cols, cv, strict=True))

    def cell(r, m: str) -> str:
        if r is None:
            return "—"
        n_m = int(r[f"{m}_n"])
        return format_cell(r[f"{m}_mean"], r[f"{m}_std"], n_m, digits, scale, not uniform_n or n_m != int(r["n"]))

    records = []
    if not rows_keys:
        for m in metrics:
            records.append({"metric": m, **{label(cv): cell(lookup.get(((), cv)), m) for cv in col_values}})
        return pd.DataFrame(records)
    for rv in row_values:
        rec = {names[k]: fmt_value(v) for k, v in zip(rows_keys, rv, strict=True)}
        for m in metrics:
            for cv in col_values:
                rec[f"{m} {label(cv)}" if len(metrics) > 1 else label(cv)] = cell(lookup.get((rv, cv)), m)
        records.append(rec)
    return pd.DataFrame(records)


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub markdown table; cells are already text (no number parsing, left aligned)."""
    return frame.to_markdown(index=False, tablefmt="github", disable_numparse=True)


def _tex_cell(text: str) -> str:
    """After LaTeX escaping: ``±`` and the missing-value dash as LaTeX writes them."""
    return text.replace(" ± ", r" $\pm$ ").replace("—", "--")


def to_latex(frame: pd.DataFrame, caption: str, n_label_cols: int) -> str:
    """A booktabs tabular: label columns left, metric columns right, every cell and header escaped."""
    spec = "l" * n_label_cols + "r" * (len(frame.columns) - n_label_cols)
    styler = (frame.style.hide(axis="index").format(_tex_cell, escape="latex")
              .format_index(_tex_cell, escape="latex", axis="columns"))
    body = styler.to_latex(column_format=spec, hrules=True)
    return f"% {caption}\n% needs \\usepackage{{booktabs}}\n{body}"


def problems_frame(problems: list[Run], keys: list[str]) -> pd.DataFrame:
    """``failed.csv``: one row per run that was not averaged, with its setting, seed and error."""
    names = short_names(keys)
    rows = []
    for r in problems:
        row = {"status": r.status, "path": str(r.path)}
        for k in keys:
            row[names[k]] = fmt_value(r.config.get(k)) if r.config else ""
        row["seed"] = fmt_value(r.seed) if (r.config or r.metrics) else ""
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
    frame = display_frame(table, keys, metrics, cols, digits, scale)
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
