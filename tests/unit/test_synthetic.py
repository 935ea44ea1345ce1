"""Synthetic anomalies: counts, box, binary and one-hot columns, determinism, never from test data."""

from __future__ import annotations

import numpy as np
import pytest

from semiad_cli.data.source import FeatureInfo, Source
from semiad_cli.data.split import KNOWN_ANOMALY, Part, build_split
from semiad_cli.data.synthetic import SYNTHETIC_CLASS, SyntheticAnomalies, feature_box, sample_uniform
from semiad_cli.errors import ConfigError

# 10 columns: 0–4 continuous, 5–6 binary, 7–9 one one-hot group
FEATURES = FeatureInfo(binary=[5, 6], onehot_groups=[[7, 8, 9]])


def _part(n: int = 200, seed: int = 0) -> Part:
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 10), np.float32)
    X[:, :5] = rng.random((n, 5)) * 0.5 + 0.25  # real data in [0.25, 0.75]
    X[:, 5:7] = rng.integers(0, 2, (n, 2))
    X[np.arange(n), 7 + rng.integers(0, 3, n)] = 1
    return Part(X=X, y=np.zeros(n, np.int8), semi=np.zeros(n, np.int8), cls=np.zeros(n, np.int64),
                index=np.arange(n, dtype=np.int64))


def test_counts_labels_and_bounds():
    part = _part(200)
    out = SyntheticAnomalies(ratio=1.5).apply(part, FEATURES, seed=3)
    assert len(out) == 200 + 300
    syn = out.take(np.arange(200, 500))
    assert (syn.y == 1).all() and (syn.semi == KNOWN_ANOMALY).all() and (syn.index == -1).all()
    assert (syn.cls == SYNTHETIC_CLASS).all()
    np.testing.assert_array_equal(out.X[:200], part.X)  # real rows untouched, first
    # data in [0,1] → the unit box (wider than the data's [0.25, 0.75] range)
    assert syn.X.min() >= 0 and syn.X.max() <= 1
    assert syn.X[:, :5].min() < 0.2 and syn.X[:, :5].max() > 0.8
    # uniform: mean near 0.5, each continuous column covers the box
    assert abs(syn.X[:, :5].mean() - 0.5) < 0.03


def test_binary_and_onehot_columns():
    X = sample_uniform(4000, np.zeros(10, np.float32), np.ones(10, np.float32), FEATURES,
                       np.random.default_rng(0))
    assert set(np.unique(X[:, 5:7]).tolist()) == {0.0, 1.0}
    assert abs(X[:, 5:7].mean() - 0.5) < 0.03  # Bernoulli(0.5)
    onehot = X[:, 7:10]
    assert set(np.unique(onehot).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(onehot.sum(axis=1), np.ones(4000))  # exactly one category
    freq = onehot.mean(axis=0)
    assert np.all(np.abs(freq - 1 / 3) < 0.03)
    # continuous columns are not 0/1
    assert len(np.unique(X[:, :5])) > 1000


def test_ratio_zero_adds_nothing_and_rounding():
    part = _part(7)
    assert SyntheticAnomalies(ratio=0).apply(part, FEATURES, seed=1) is part
    assert len(SyntheticAnomalies(ratio=0.5).apply(part, FEATURES, seed=1)) == 7 + 4  # round(3.5) = 4


def test_deterministic_per_seed_and_salted():
    part = _part()
    gen = SyntheticAnomalies(ratio=1.0)
    a = gen.apply(part, FEATURES, seed=5).X
    np.testing.assert_array_equal(a, gen.apply(part, FEATURES, seed=5).X)
    assert not np.array_equal(a, gen.apply(part, FEATURES, seed=6).X)
    train, val, counts = gen.augment(part, _part(50, seed=1), FEATURES, seed=5)
    assert counts == {"n_synthetic_train": 200, "n_synthetic_val": 50}
    np.testing.assert_array_equal(train.X, a)
    # validation gets its own draw, not the first rows of the training draw
    assert not np.array_equal(val.X[50:], a[200:250])


def test_train_box_for_data_outside_unit_range():
    part = _part()
    part.X[:, 0] = part.X[:, 0] * 10 - 3  # standard-scaled-like column in [-0.5, 4.5]
    lo, hi = feature_box(part.X, "auto")
    assert lo[0] == part.X[:, 0].min() and hi[0] == part.X[:, 0].max()
    np.testing.assert_array_equal(feature_box(part.X, "unit")[1], np.ones(10, np.float32))
    syn = SyntheticAnomalies(ratio=1.0, box="train").apply(part, FeatureInfo(), seed=0).X[200:]
    assert syn[:, 0].min() >= lo[0] and syn[:, 0].max() <= hi[0]
    with pytest.raises(ConfigError, match="synthetic.box"):
        SyntheticAnomalies(box="cube")
    with pytest.raises(ConfigError, match="synthetic.ratio"):
        SyntheticAnomalies(ratio=-1)


def test_images_keep_their_shape():
    X = np.random.default_rng(0).random((20, 1, 8, 8)).astype(np.float32)
    part = Part(X=X, y=np.zeros(20, np.int8), semi=np.zeros(20, np.int8), cls=np.zeros(20, np.int64),
                index=np.arange(20))
    out = SyntheticAnomalies(ratio=1.0).apply(part, FeatureInfo(), seed=0)
    assert out.X.shape == (40, 1, 8, 8) and out.X.dtype == np.float32
    assert out.X[20:].min() >= 0 and out.X[20:].max() <= 1


def test_never_drawn_from_test_data():
    """The box comes from the training rows only: test rows far outside it change nothing."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4)).astype(np.float32)
    labels = np.r_[np.zeros(500, np.int64), np.ones(100, np.int64)]
    is_test = np.zeros(600, bool)
    is_test[::3] = True
    X_far = X.copy()
    X_far[is_test] *= 1000  # test rows far outside the training range
    gen = SyntheticAnomalies(ratio=1.0, box="train")
    draws = []
    for data in (X, X_far):
        split = build_split(Source("toy", data, labels, is_test=is_test), seed=1, scaling="none",
                            ratio_known_anomaly=0.0, n_known_anomaly_classes=0)
        train, _, _ = gen.augment(split.train, None, split.features, seed=1)
        syn = train.X[train.index < 0]
        lo, hi = split.train.X.min(axis=0), split.train.X.max(axis=0)
        assert (syn >= lo).all() and (syn <= hi).all()
        assert not (syn[:, None, :] == split.test.X[None, :, :]).all(axis=2).any()
        draws.append(syn)
    np.testing.assert_array_equal(draws[0], draws[1])
