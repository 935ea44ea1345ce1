"""Rescore finished EDE runs with every ``model.score`` from the same trained weights.

A score is a function of the trained model and of its training normals' statistics (``after_fit``),
so changing ``model.score`` needs no retraining: this script loads each run's config and checkpoint,
recomputes the training statistics exactly as training does at its end, and writes the test AUROC and
AUPR of every score and part, one row per run. ``matches_train`` says whether the run's own score
reproduces the AUROC it wrote at train time (it should, to the last digit):

    python scripts/ede_rescore.py --out rescored.csv outputs/multiruns/2026-12-01/00-00-00/*/
    python scripts/ede_rescore.py --part-weights znorm=1 --out unit.csv SWEEP/*/   # other part weights

``--part-weights`` rescores with other weights of the z-scored parts (``model.part_weights``; a part not
named gets 1); ``matches_train`` still checks the run's own weights.

Runs of other models, and runs that did not complete, are skipped. docs/ede.md and RESULTS.md use it
to put numbers of a new default beside the runs that were trained before it.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from semiad_cli import results
from semiad_cli.errors import ConfigError
from semiad_cli.models.ede import PARTS, SCORES, check_part_weights
from semiad_cli.tasks.evaluate import load_run

log = logging.getLogger("ede_rescore")


def rescore(run_dir: Path, data_root: str | None = None, part_weights: dict[str, float] | None = None) -> dict | None:
    """Every score's test AUROC/AUPR for one completed EDE run (with ``part_weights`` instead of the run's
    own when given), or None for any other run."""
    metrics_file = run_dir / results.METRICS_JSON
    if not metrics_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    if metrics.get("model") != "EDE" or metrics.get("status") != "completed":
        return None
    # a run from before standardized_rel has another score in its config, so its checkpoint loads
    cfg, split, model = load_run(run_dir, data_root)
    trained_score = cfg.model.score
    model.after_fit(torch.as_tensor(split.train.X), torch.as_tensor(split.train.semi))
    parts = {k: torch.as_tensor(v) for k, v in model.score_parts(split.test.X).items()}
    y = split.test.y
    matches_train = abs(roc_auc_score(y, model.combine(parts).numpy()) - metrics["auroc"]) < 1e-9
    if part_weights is not None:
        model.part_weights = check_part_weights(part_weights, "standardized_rel")
    row = {"run_dir": str(run_dir), "dataset": metrics["dataset"],
           "normal_class": cfg.dataset.split.get("normal_class"), "seed": cfg.seed, "trained_score": trained_score,
           "part_weights": " ".join(f"{k}={v:g}" for k, v in model.part_weights.items())}
    for kind in SCORES:
        scores = model.combine(parts, kind).numpy()
        row[f"auroc_{kind}"] = roc_auc_score(y, scores)
        row[f"aupr_{kind}"] = average_precision_score(y, scores)
    for name in PARTS:
        row[f"auroc_{name}"] = roc_auc_score(y, parts[name].numpy())
    row["matches_train"] = matches_train
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="CSV, one row per rescored run (overwritten)")
    ap.add_argument("--data-root", default=None, help="instead of the data root the runs were trained with")
    ap.add_argument("--part-weights", nargs="+", default=None, metavar="PART=W",
                    help=f"weights of the z-scored parts instead of each run's own ({', '.join(PARTS)}; others 1)")
    args = ap.parse_args()
    weights = None
    if args.part_weights is not None:
        try:
            weights = {k: float(v) for k, v in (item.split("=", 1) for item in args.part_weights)}
        except ValueError:
            raise SystemExit(f"--part-weights takes PART=NUMBER items, got {args.part_weights}") from None
        try:
            check_part_weights(weights, "standardized_rel")
        except ConfigError as err:
            raise SystemExit(f"--part-weights: {err}") from None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    rows = []
    for run_dir in args.run_dirs:
        row = rescore(run_dir, args.data_root, weights)
        if row is None:
            continue
        rows.append(row)
        log.info("%s %s class %s seed %s: %s", run_dir, row["dataset"], row["normal_class"], row["seed"],
                 " ".join(f"{k}={row[f'auroc_{k}']:.4f}" for k in SCORES))
    if not rows:
        raise SystemExit("no completed EDE run among the folders given")
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    mismatched = [r["run_dir"] for r in rows if not r["matches_train"]]
    if mismatched:
        log.warning("%d run(s) do not reproduce their train-time AUROC (data or code changed?): %s",
                    len(mismatched), ", ".join(mismatched))


if __name__ == "__main__":
    main()
