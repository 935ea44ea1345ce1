"""Metrics: AUROC and AUPR (anomaly = positive), overall, per score part and per anomaly class."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from semiad_cli.data.split import Split
from semiad_cli.errors import DataError


def auroc_aupr(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and AUPR of ``scores`` against ``y`` (1 = anomaly); NaN scores are an error, not a number."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise DataError(f"{int((~np.isfinite(scores)).sum())} anomaly scores are NaN/inf; the model diverged")
    if y.min() == y.max():
        raise DataError("metrics need both normal and anomalous test rows")
    return {"auroc": float(roc_auc_score(y, scores)), "aupr": float(average_precision_score(y, scores))}


def evaluate_scores(split: Split, scores: np.ndarray, parts: dict[str, np.ndarray] | None = None) -> dict:
    """All test metrics of one run.

    Per anomaly class ``c``: AUROC/AUPR on normal test rows plus class-``c`` rows, with
    ``known`` telling whether ``c`` had labeled anomalies in training (Lau et al.'s split).
    ``known_aupr``/``unknown_aupr`` average the per-class AUPR over known/unknown classes.
    """
    test = split.test
    out: dict = auroc_aupr(test.y, scores)
    out["parts"] = {name: auroc_aupr(test.y, s) for name, s in (parts or {}).items()}
    normal = test.y == 0
    known = {str(c) for c in split.known_anomaly_classes}
    per_class = {}
    for c in split.anomaly_classes:
        rows = normal | (test.cls == c)
        if not (test.cls == c).any():
            continue
        m = auroc_aupr(test.y[rows], scores[rows])
        m.update(known=str(c) in known, n=int((test.cls == c).sum()))
        if split.class_names and c in split.class_names:
            m["name"] = str(split.class_names[c])
        per_class[str(c)] = m
    out["per_class"] = per_class
    for flag, key in ((True, "known"), (False, "unknown")):
        vals = [m for m in per_class.values() if m["known"] is flag]
        out[f"{key}_aupr"] = float(np.mean([m["aupr"] for m in vals])) if vals else None
        out[f"{key}_auroc"] = float(np.mean([m["auroc"] for m in vals])) if vals else None
    return out
