"""Known answers for the metrics: AUROC and AUPR of hand-made scores, per class and known/unknown."""

from __future__ import annotations

import numpy as np
import pytest

from semiad_cli.data.split import Part, Split
from semiad_cli.errors import DataError
from semiad_cli.metrics import auroc_aupr, evaluate_scores


def test_auroc_and_aupr_of_a_hand_ranked_score() -> None:
    # ranked high to low: anomaly, normal, anomaly, normal -> 3 of 4 (anomaly, normal) pairs in order;
    # precision 1 at recall 1/2 and 2/3 at recall 1 -> AP = (1 + 2/3) / 2
    m = auroc_aupr(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert m == {"auroc": pytest.approx(0.75), "aupr": pytest.approx(5 / 6)}
    flipped = auroc_aupr(np.array([0, 0, 1, 1]), -np.array([0.1, 0.4, 0.35, 0.8]))
    assert flipped["auroc"] == pytest.approx(0.25)  # anomaly = positive: a reversed score is below chance


def test_nan_scores_and_one_class_are_errors() -> None:
    with pytest.raises(DataError, match="1 anomaly scores are NaN/inf"):
        auroc_aupr(np.array([0, 1]), np.array([0.0, np.nan]))
    with pytest.raises(DataError, match="both normal and anomalous"):
        auroc_aupr(np.array([1, 1]), np.array([0.0, 1.0]))


def _part(cls: list[int], normal: int = 0) -> Part:
    cls_ = np.array(cls)
    n = len(cls_)
    return Part(X=np.zeros((n, 1), np.float32), y=(cls_ != normal).astype(int), semi=np.zeros(n, int), cls=cls_,
                index=np.arange(n))


def test_per_class_and_known_unknown_means_of_a_hand_made_split() -> None:
    """Class 1 (known) is ranked above every normal row, class 2 (unknown) below all of them."""
    test = _part([0, 0, 0, 1, 1, 2, 2])
    split = Split(train=_part([0]), test=test, normal_classes=[0], known_anomaly_classes=[1], anomaly_classes=[1, 2])
    scores = np.array([0.5, 0.6, 0.7, 0.9, 0.8, 0.1, 0.2])
    m = evaluate_scores(split, scores, parts={"neg": -scores})
    assert m["per_class"]["1"] == {"auroc": 1.0, "aupr": 1.0, "known": True, "n": 2}
    assert m["per_class"]["2"]["auroc"] == 0.0 and m["per_class"]["2"]["known"] is False
    assert m["per_class"]["2"]["aupr"] == pytest.approx((1 / 4 + 2 / 5) / 2)  # the two anomalies rank 4th and 5th
    assert (m["known_auroc"], m["unknown_auroc"]) == (1.0, 0.0)
    assert m["known_aupr"] == 1.0 and m["unknown_aupr"] == m["per_class"]["2"]["aupr"]
    assert m["auroc"] == pytest.approx(6 / 12)  # class-1 rows beat 3 normals each, class-2 rows none
    assert m["parts"]["neg"]["auroc"] == pytest.approx(1 - m["auroc"])
