"""``semiad plot <run or sweep folders…>``: PNG figures from what ``semiad train`` wrote.

- a run folder → ``plots/roc_pr.png`` (ROC and PR curves of the score and of each score
  part) and ``plots/scores_hist.png`` (normal vs known vs unknown anomaly classes), from
  ``scores.csv``;
- a sweep (several runs) → ``plots/<metric>_vs_<x>.png``: the metric against one varying
  config key (γl by default) with one line per remaining setting (usually per model),
  mean ± sample std over seeds as a band.

Matplotlib runs on the Agg backend: no display needed, safe on clusters.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve  # noqa: E402

from semiad_cli.errors import SemiadError  # noqa: E402
from semiad_cli.results import SCORES_CSV  # noqa: E402
from semiad_cli.tables.aggregate import (  # noqa: E402
    DEFAULT_METRICS,
    aggregate,
    resolve_key,
    setting_keys,
    short_names,
    sort_value,
)
from semiad_cli.tables.collect import Run, collect_runs, default_out_dir, read_run, split_list  # noqa: E402
from semiad_cli.tables.render import fmt_value  # noqa: E402

X_PREFERENCE = ("gamma_l", "gamma_p", "k", "normal_class")


def _read_scores(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / SCORES_CSV
    if not path.is_file():
        raise SemiadError(f"{run_dir} has no {SCORES_CSV}: the run did not finish (see its metrics.json)")
    frame = pd.read_csv(path)
    missing = {"label", "score"} - set(frame.columns)
    if missing:
        raise SemiadError(f"{path} lacks the column(s) {', '.join(sorted(missing))}: not a semiad scores file")
    if frame["label"].nunique() < 2:
        raise SemiadError(f"{path} holds only one label; curves need normal and anomalous rows")
    return frame


def _title(run: Run) -> str:
    m = run.metrics
    bits = [str(m.get("model") or (run.config or {}).get("model") or ""), str(m.get("dataset") or "")]
    if m.get("seed") is not None:
        bits.append(f"seed {m['seed']}")
    return " · ".join(b for b in bits if b) or run.path.name


def run_plots(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """ROC + PR curves and score histograms of one run; returns the PNG paths."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    frame = _read_scores(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    y = frame["label"].to_numpy().astype(int)
    columns = ["score"] + [c for c in frame.columns if c.startswith("score_")]

    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.5))
    for col in columns:
        s = frame[col].to_numpy(dtype=float)
        ok = np.isfinite(s)
        if ok.sum() < 2 or len(np.unique(y[ok])) < 2:
            continue
        style = {"lw": 2.0} if col == "score" else {"lw": 1.2, "ls": "--"}
        name = "score" if col == "score" else col.removeprefix("score_")
        fpr, tpr, _ = roc_curve(y[ok], s[ok])
        ax_roc.plot(fpr, tpr, label=f"{name} (AUROC {auc(fpr, tpr):.3f})", **style)
        prec, rec, _ = precision_recall_curve(y[ok], s[ok])
        ax_pr.plot(rec, prec, label=f"{name} (AP {average_precision_score(y[ok], s[ok]):.3f})", **style)
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax_pr.axhline(y.mean(), color="grey", lw=0.8, ls=":", label=f"chance ({y.mean():.2f})")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision–recall (anomaly = positive)",
              xlim=(0, 1), ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="lower right" if ax is ax_roc else "lower left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(_title(run))
    fig.tight_layout()
    roc_path = out / "roc_pr.png"
    fig.savefig(roc_path, dpi=120)
    plt.close(fig)

    known = {str(c) for c in run.metrics.get("known_anomaly_classes") or []}
    cls = frame["class"].astype(str) if "class" in frame.columns else pd.Series([""] * len(frame))
    groups = {"normal": y == 0}
    if known:
        groups["known anomaly classes"] = (y == 1) & cls.isin(known).to_numpy()
        groups["unknown anomaly classes"] = (y == 1) & ~cls.isin(known).to_numpy()
    else:
        groups["anomaly"] = y == 1
    s = frame["score"].to_numpy(dtype=float)
    finite = s[np.isfinite(s)]
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        lo, hi = finite.min() - 0.5, finite.max() + 0.5
    bins = np.linspace(lo, hi, 41)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for (name, mask), color in zip(groups.items(), ("tab:blue", "tab:red", "tab:orange"), strict=False):
        values = np.clip(s[mask & np.isfinite(s)], lo, hi)
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.45, color=color, label=f"{name} (n={len(values)})")
    ax.set(xlabel="anomaly score (higher = more anomalous; tails clipped to the 0.5–99.5% range)",
           ylabel="density", title=f"test scores · {_title(run)}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    hist_path = out / "scores_hist.png"
    fig.savefig(hist_path, dpi=120)
    plt.close(fig)
    return [roc_path, hist_path]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def choose_x(runs: list[Run], keys: list[str]) -> str:
    """γl when it varies, else γp, k, normal class, else the first numeric varying key, else the first key."""
    names = short_names(keys)
    for pref in X_PREFERENCE:
        for k in keys:
            if names[k] == pref:
                return k
    for k in keys:
        values = [r.config.get(k) for r in runs if r.config]
        if values and all(_is_number(v) for v in values):
            return k
    return keys[0]


def sweep_plots(runs: list[Run], out_dir: str | Path, metrics: list[str] | None = None,
                x: str | None = None) -> list[Path]:
    """One PNG per metric: metric vs ``x`` with a line (mean ± std band) per remaining setting."""
    keys = setting_keys(runs)
    if x:
        x_key = resolve_key(x, runs)
        keys = [x_key] + [k for k in keys if k != x_key]
    elif not keys:
        raise SemiadError("all runs share one setting: nothing to plot against (pass a run folder for its curves)")
    else:
        x_key = choose_x(runs, keys)
    metrics = list(metrics or DEFAULT_METRICS)
    table = aggregate(runs, keys, metrics)
    names = short_names(keys)
    line_keys = [k for k in keys if k != x_key]
    x_values = sorted(table[x_key].dropna().unique().tolist(), key=sort_value)
    numeric = all(_is_number(v) for v in x_values)
    positions = {v: (float(v) if numeric else i) for i, v in enumerate(x_values)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for m in metrics:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        groups = list(table.groupby(line_keys, dropna=False, sort=False)) if line_keys else [((), table)]
        n_lines, n_lines_drawn = len(groups), 0
        for ident, sub in groups:
            ident = ident if isinstance(ident, tuple) else (ident,)
            sub = sub[sub[f"{m}_n"] > 0].copy()
            if sub.empty:
                continue
            sub["_x"] = sub[x_key].map(positions)
            sub = sub.sort_values("_x")
            label = ", ".join(fmt_value(v) if k in ("model", "dataset") else f"{names[k]}={fmt_value(v)}"
                              for k, v in zip(line_keys, ident, strict=True)) or m
            xs, mean = sub["_x"].to_numpy(float), sub[f"{m}_mean"].to_numpy(float)
            std = np.nan_to_num(sub[f"{m}_std"].to_numpy(float))
            if numeric:
                (line,) = ax.plot(xs, mean, marker="o", label=label)
                ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
            else:  # categories: no connecting line; settings side by side with ± std bars
                shift = 0.08 * (n_lines_drawn - (n_lines - 1) / 2)
                ax.errorbar(xs + shift, mean, yerr=std, fmt="o", capsize=4, label=label)
            n_lines_drawn += 1
        if not numeric:
            ax.set_xticks(list(positions.values()), [fmt_value(v) for v in x_values])
            ax.set_xlim(-0.5, len(x_values) - 0.5)
        n_text = "n = " + "/".join(str(n) for n in sorted(table["n"].unique()))
        ax.set(xlabel=names[x_key], ylabel=m, title=f"{m} vs {names[x_key]} (mean ± std over seeds, {n_text})")
        ax.grid(alpha=0.3)
        if line_keys:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{m}_vs_{names[x_key]}.png".replace("/", "_")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def run(paths: list[str | Path], metrics: list[str] | None = None, x: str | None = None,
        out: str | Path | None = None, per_run: bool = False) -> list[Path]:
    """Curves for a single run; metric-vs-x plots for a sweep (plus each run's curves with ``per_run``).

    A sweep over seeds only has no x axis: each run then gets its own curves.
    """
    runs = collect_runs(paths)
    completed = [r for r in runs if r.status == "completed"]
    if not completed:
        raise SemiadError(f"no completed runs under {', '.join(map(str, paths))}; see semiad table for the failures")
    if len(completed) == 1 and not x:
        return run_plots(completed[0].path, out)
    out_dir = Path(out) if out else default_out_dir(paths) / "plots"
    written: list[Path] = []
    if x or setting_keys(runs):
        written = sweep_plots(runs, out_dir, metrics, x)
    else:  # only seeds differ: nothing to put on an x axis, so each run gets its curves
        per_run = True
    if per_run:
        for r in completed:
            written += run_plots(r.path, out_dir / r.path.name if out else None)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semiad plot",
        description="PNG plots: ROC/PR curves and score histograms of a run; for a sweep, a metric\n"
                    "against a config key (default γl) with one line per setting and mean ± std bands.",
        epilog="examples:\n"
               "  semiad plot outputs/2026-11-23/12-00-00_ab12cd          # one run: roc_pr.png, scores_hist.png\n"
               "  semiad plot outputs/multirun/2026-11-23/12-00-00_ab12cd # sweep: auroc_vs_gamma_l.png, ...\n"
               "  semiad plot SWEEP --x gamma_p --metric auroc,known_aupr --runs",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="a run folder, or sweep folders")
    parser.add_argument("--metric", "-m", action="append", help="metric(s) for sweep plots (default: auroc,aupr)")
    parser.add_argument("--x", help="x-axis config key for sweep plots (default: gamma_l, gamma_p, k, "
                                    "normal_class, else the first numeric key that varies)")
    parser.add_argument("--runs", action="store_true", help="with a sweep: also each run's curves")
    parser.add_argument("--out", help="output folder (default: <run or sweep>/plots)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    written = run(args.paths, metrics=split_list(args.metric), x=args.x, out=args.out, per_run=args.runs)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
