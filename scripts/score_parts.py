"""How much each part of a model's score ranks on its own, next to a linear reconstruction baseline.

For issue 14's "take the method apart": a run's ``scores.csv`` holds the score and every part a model
reports (EDE: ``score_rec`` and ``score_znorm``). This script reads every completed run of a sweep
folder and computes the test AUROC of the score and of each part alone, averaged over the runs of each
dataset and normal class. Beside them it fits PCA on the same training rows the run used (its own
resolved ``config.yaml`` through ``load_split``; normal and unlabeled rows, not the labeled anomalies),
keeping the components that explain ``--pca-variance`` of their variance, and scores each test row by
its squared reconstruction error: where a model's reconstruction part ranks no better than PCA's, its
decoder adds nothing on that set that a linear reconstruction does not have.

    python scripts/score_parts.py outputs/multiruns/odds_paper --model EDE
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from semiad_cli.data.split import KNOWN_ANOMALY
from semiad_cli.tasks.common import load_split


def pca_reconstruction_error(train_X: np.ndarray, test_X: np.ndarray, variance: float) -> tuple[np.ndarray, int]:
    """Squared reconstruction error of each test row under PCA fitted on ``train_X``; and the components kept."""
    train_X, test_X = train_X.reshape(len(train_X), -1), test_X.reshape(len(test_X), -1)
    pca = PCA(variance, svd_solver="full").fit(train_X)
    recon = pca.inverse_transform(pca.transform(test_X))
    return ((test_X - recon) ** 2).sum(axis=1), int(pca.n_components_)


def run_row(run: Path, variance: float) -> dict[str, float]:
    """AUROC % of the score, of each score part and of the PCA baseline, for one run folder."""
    scores = pd.read_csv(run / "scores.csv")
    split, _ = load_split(OmegaConf.load(run / "config.yaml"))
    if len(split.test) != len(scores) or not np.array_equal(split.test.y, scores["label"].to_numpy()):
        raise SystemExit(f"{run}: the split loaded now is not the one the run scored (data or code changed)")
    train = split.train.X[split.train.semi != KNOWN_ANOMALY]
    error, n_components = pca_reconstruction_error(train, split.test.X, variance)
    row = {col: 100 * roc_auc_score(scores["label"], scores[col]) for col in scores.columns
           if col == "score" or col.startswith("score_")}
    row["pca_rec"] = 100 * roc_auc_score(split.test.y, error)
    row["pca_components"] = n_components
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path, help="a sweep folder (its run folders hold config.yaml and scores.csv)")
    ap.add_argument("--model", default="EDE", help="the model's class, as metrics.json names it")
    ap.add_argument("--pca-variance", type=float, default=0.9, help="variance PCA keeps (0-1)")
    args = ap.parse_args()
    rows: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for path in sorted(args.sweep.glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        if metrics.get("model") != args.model or metrics.get("status") != "completed":
            continue
        normal = ",".join(str(c) for c in metrics.get("normal_classes") or [])
        rows[(str(metrics["dataset"]), normal)].append(run_row(path.parent, args.pca_variance))
    if not rows:
        raise SystemExit(f"no completed {args.model} run with scores.csv under {args.sweep}")
    keys = sorted(rows)
    table = pd.DataFrame([pd.DataFrame(rows[key]).mean() for key in keys],
                         index=pd.MultiIndex.from_tuples(keys, names=["dataset", "normal"]))
    table.insert(0, "runs", [len(rows[key]) for key in keys])
    print(table.round(1).to_markdown())
    if len({d for d, _ in keys}) < len(keys):  # several normal classes per dataset: their mean too
        means = table.groupby(level="dataset").mean()
        means["runs"] = table.groupby(level="dataset")["runs"].sum()
        print(means.round(1).to_markdown())


if __name__ == "__main__":
    main()
