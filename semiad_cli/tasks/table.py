"""``semiad table <sweep or run folders…>``: collect run folders, group by setting, mean ± std over seeds.

Not a Hydra app: it reads what ``semiad train`` wrote (``config.yaml``, ``metrics.json``)
and needs no config of its own. The steps live in :mod:`semiad_cli.tables`, so tests,
notebooks and ``semiad plot`` call them directly: :func:`~semiad_cli.tables.collect.collect_runs`
→ :func:`~semiad_cli.tables.aggregate.setting_keys` → :func:`~semiad_cli.tables.aggregate.aggregate`
→ :func:`~semiad_cli.tables.render.render` / :func:`~semiad_cli.tables.render.write_files`;
:func:`run` here does all of them, :func:`main` is the command line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from semiad_cli.errors import SemiadError
from semiad_cli.tables.aggregate import (
    DEFAULT_METRICS,
    aggregate,
    available_metrics,
    duplicate_seeds,
    resolve_key,
    setting_keys,
)
from semiad_cli.tables.collect import Run, collect_runs, default_out_dir, split_list
from semiad_cli.tables.render import constant_settings, problems_text, render, write_files


@dataclass
class TableResult:
    """What :func:`run` produced: the tidy table, the runs it skipped, and the files written."""

    table: pd.DataFrame
    problems: list[Run]
    keys: list[str]
    metrics: list[str]
    text: str
    files: list[Path]


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
    metrics = split_list(args.metric)
    result = run(args.paths, rows=split_list(args.rows), cols=split_list(args.cols), metrics=metrics,
                 fmt=args.format, out=args.out, save=not args.no_save, digits=args.digits, percent=args.percent)
    sys.stdout.write(result.text)
    if result.files:
        print(f"semiad table: wrote {', '.join(f.name for f in result.files)} to {result.files[0].parent}",
              file=sys.stderr)
    if args.plot:
        from semiad_cli.tasks import plot  # matplotlib only when asked for

        out = (Path(args.out) if args.out else default_out_dir(args.paths)) / "plots"
        written = plot.run(args.paths, metrics=result.metrics, x=args.x, out=out)
        for f in written:
            print(f"semiad table: wrote {f}", file=sys.stderr)
    return 0
