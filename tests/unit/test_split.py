"""The split protocol on a small fake dataset with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from semiad_cli.data.source import Source
from semiad_cli.data.split import build_split, hold_out_validation, sample_counts
from semiad_cli.errors import ConfigError, DataError


def fake_source(official_test: bool = True) -> Source:
    """Class 0: 100 train + 10 test rows; classes 1, 2, 3: 20 train + 10 test rows each.

    Feature 0 encodes the row number, so leaks are visible; test rows get huge values.
    """
    labels, is_test = [], []
    for c, n_train in ((0, 100), (1, 20), (2, 20), (3, 20)):
        labels += [c] * (n_train + 10)
        is_test += [False] * n_train + [True] * 10
    labels, is_test = np.array(labels), np.array(is_test)
    X = np.stack([np.arange(len(labels), dtype=np.float32), labels.astype(np.float32)], axis=1)
    X[is_test, 0] += 1000.0
    return Source(name="fake", X=X, labels=labels, is_test=is_test if official_test else None)


@pytest.mark.parametrize("gl, gp, gn, expected", [
    (0.05, 0.0, 0.0, (0, 100, 0, 5)),      # int(0.05*100/0.95) = int(5.26)
    (0.05, 0.1, 0.0, (0, 100, 11, 5)),     # 11.1 polluted, 5.85 labeled
    (0.05, 0.0, 0.1, (10, 89, 0, 5)),      # 10.5 known normals, 89.5 unlabeled
    (0.0, 0.0, 0.0, (0, 100, 0, 0)),
    (0.2, 0.0, 0.0, (0, 100, 0, 25)),      # exactly 25: must not truncate to 24
])
def test_sample_counts_known_answers(gl, gp, gn, expected):
    assert sample_counts(100, gn, gl, gp) == expected


def test_split_counts_and_labels():
    split = build_split(fake_source(), seed=1, normal_class=0, n_known_anomaly_classes=1,
                        ratio_known_anomaly=0.05, ratio_pollution=0.1, scaling="minmax")
    c = split.counts
    assert (c["n_train_normal_unlabeled"], c["n_train_polluted"], c["n_train_known_anomaly"]) == (100, 11, 5)
    assert c["n_train"] == len(split.train) == 116
    assert c["n_test"] == 40 and c["test_per_class"] == {"0": 10, "1": 10, "2": 10, "3": 10}
    assert len(split.known_anomaly_classes) == 1
    known = split.known_anomaly_classes[0]
    labeled = split.train.semi == -1
    assert set(split.train.cls[labeled].tolist()) == {known}
    assert c["train_known_anomaly_per_class"] == {str(known): 5}
    assert (split.train.y[labeled] == 1).all()
    polluted = (split.train.semi == 0) & (split.train.y == 1)
    assert polluted.sum() == 11
    assert (split.train.y[split.train.cls == 0] == 0).all()


def test_explicit_known_classes_and_k():
    split = build_split(fake_source(), seed=3, normal_class=0, known_anomaly_classes=[2, 3],
                        ratio_known_anomaly=0.1)
    assert split.known_anomaly_classes == [2, 3]
    assert set(split.train.cls[split.train.semi == -1].tolist()) <= {2, 3}
    split3 = build_split(fake_source(), seed=3, normal_class=0, n_known_anomaly_classes=3,
                         ratio_known_anomaly=0.1)
    assert split3.known_anomaly_classes == [1, 2, 3]


def test_deterministic_per_seed():
    a = build_split(fake_source(), seed=7, ratio_known_anomaly=0.05, ratio_pollution=0.05)
    b = build_split(fake_source(), seed=7, ratio_known_anomaly=0.05, ratio_pollution=0.05)
    c = build_split(fake_source(), seed=8, ratio_known_anomaly=0.05, ratio_pollution=0.05)
    np.testing.assert_array_equal(a.train.index, b.train.index)
    np.testing.assert_array_equal(a.train.X, b.train.X)
    assert not np.array_equal(a.train.index, c.train.index)


@pytest.mark.parametrize("official", [True, False])
def test_no_test_row_in_train_and_no_duplicates(official):
    split = build_split(fake_source(official), seed=1, ratio_known_anomaly=0.05, ratio_pollution=0.1)
    assert not set(split.train.index.tolist()) & set(split.test.index.tolist())
    assert len(set(split.train.index.tolist())) == len(split.train)


@pytest.mark.parametrize("test_size, expected", [
    (0.4, {"0": 44, "1": 12, "2": 12, "3": 12}),   # 110 rows -> 44; 30 rows -> 12
    (0.35, {"0": 39, "1": 11, "2": 11, "3": 11}),  # sklearn rounds the test part up: ceil(38.5), ceil(10.5)
])
def test_stratified_holdout_when_no_official_test(test_size, expected):
    split = build_split(fake_source(official_test=False), seed=1, test_size=test_size, ratio_known_anomaly=0.0)
    assert split.counts["test_per_class"] == expected
    assert split.counts["n_train_pool"] == 200 - sum(expected.values())


def test_scaling_is_fitted_on_train_only():
    split = build_split(fake_source(), seed=1, scaling="minmax", ratio_known_anomaly=0.05)
    assert split.train.X.max() <= 1.0 + 1e-6 and split.train.X.min() >= -1e-6
    # test rows carry +1000 in feature 0: fitted on train, they land far above 1
    assert split.test.X[:, 0].min() > 5.0


def test_validation_holdout_is_stratified_and_disjoint():
    split = build_split(fake_source(), seed=1, ratio_known_anomaly=0.15)  # int(15/0.85) = 17 labeled
    train, val = hold_out_validation(split.train, 0.2, seed=1)
    assert len(train) + len(val) == len(split.train)
    assert (val.semi == -1).sum() == 3 and (val.semi == 0).sum() == 20
    assert not set(train.index.tolist()) & set(val.index.tolist())


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="normal_class=42"):
        build_split(fake_source(), seed=1, normal_class=42)
    with pytest.raises(ConfigError, match="needs 21 labeled anomalies"):
        # int(0.174 * 100 / 0.826) = 21 labeled anomalies, but the known class has 20 rows
        build_split(fake_source(), seed=1, ratio_known_anomaly=0.174, max_train_normal=100)
    with pytest.raises(ConfigError, match="ratio_known_anomaly"):
        build_split(fake_source(), seed=1, ratio_known_anomaly=-0.1)
    with pytest.raises(ConfigError, match="n_known_anomaly_classes=5"):
        build_split(fake_source(), seed=1, n_known_anomaly_classes=5)


def test_normal_class_without_training_rows_is_a_data_error():
    src = fake_source()
    src.labels = np.where((src.labels == 3) & ~src.is_test, 1, src.labels)  # class 3 only in test
    with pytest.raises(DataError, match="no training rows"):
        build_split(src, seed=1, normal_class=3, ratio_known_anomaly=0.0)
