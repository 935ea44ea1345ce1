"""Classical baselines: fit, score direction, joblib round trip, named errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from semiad_cli.data.split import Part
from semiad_cli.errors import CheckpointError, ConfigError, SemiadError
from semiad_cli.models.classical import OCSVM, IsolationForest, LabeledClassifier


def toy_part(seed: int = 0, n_normal: int = 300, n_anomaly: int = 30, shape=(2, 3), labeled: int = 10) -> Part:
    """Normals in a tight cluster, anomalies spread far away; ``labeled`` anomalies carry semi −1."""
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    X = np.concatenate([rng.normal(0.5, 0.05, (n_normal, d)), rng.uniform(0.7, 1.0, (n_anomaly, d))])
    y = np.r_[np.zeros(n_normal), np.ones(n_anomaly)].astype(np.int8)
    semi = np.zeros(len(y), np.int8)
    semi[n_normal:n_normal + labeled] = -1
    return Part(X.reshape(-1, *shape).astype(np.float32), y, semi, y.astype(np.int64), np.arange(len(y)))


MODELS = {
    "ocsvm": lambda: OCSVM(nu=0.05, gamma="scale"),
    "iforest": lambda: IsolationForest(n_estimators=50, random_state=0),
    "gbt": lambda: LabeledClassifier(estimator="hgb", max_iter=30),
    "logreg": lambda: LabeledClassifier(estimator="logistic"),
}


@pytest.mark.parametrize("name", MODELS)
def test_fits_scores_higher_for_anomalies_and_reloads_identically(name, tmp_path):
    train, test = toy_part(0, n_anomaly=10), toy_part(1)
    model = MODELS[name]().fit(train)
    scores = model.score(test.X)
    assert scores.shape == (len(test),) and np.isfinite(scores).all()
    assert roc_auc_score(test.y, scores) > 0.9  # higher = more anomalous
    model.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"model.joblib", "model.json"}
    again = MODELS[name]().load(tmp_path)
    np.testing.assert_array_equal(again.score(test.X), scores)
    assert again.input_shape == (2, 3)


@pytest.mark.parametrize("name", MODELS)
def test_wrong_shape_unfitted_and_foreign_checkpoint_are_named_errors(name, tmp_path):
    with pytest.raises(SemiadError, match="not fitted"):
        MODELS[name]().score(np.zeros((2, 2, 3), np.float32))
    model = MODELS[name]().fit(toy_part())
    with pytest.raises(SemiadError, match="shape"):
        model.score(np.zeros((2, 7), np.float32))
    model.save(tmp_path)
    other = "iforest" if name != "iforest" else "ocsvm"
    with pytest.raises(CheckpointError, match="config builds"):
        MODELS[other]().load(tmp_path)
    with pytest.raises(CheckpointError, match="no model.joblib"):
        MODELS[name]().load(tmp_path / "missing")


def test_scores_are_sklearn_scores_negated():
    train = toy_part()
    X2 = train.X.reshape(len(train), -1).astype(np.float64)
    svm = OCSVM(nu=0.05).fit(train)
    np.testing.assert_allclose(svm.score(train.X), -svm.estimator_.decision_function(X2))
    forest = IsolationForest(n_estimators=20).fit(train)
    np.testing.assert_allclose(forest.score(train.X), -forest.estimator_.score_samples(X2))


def test_ocsvm_max_train_subsamples_with_its_seed():
    train = toy_part(n_normal=300)
    a = OCSVM(max_train=50, random_state=3).fit(train)
    b = OCSVM(max_train=50, random_state=3).fit(train)
    c = OCSVM(max_train=50, random_state=4).fit(train)
    assert a.estimator_.shape_fit_ == (50, 6)
    np.testing.assert_array_equal(a.score(train.X), b.score(train.X))
    assert not np.array_equal(a.score(train.X), c.score(train.X))
    assert OCSVM(max_train=None).fit(train).estimator_.shape_fit_ == (len(train), 6)


def test_labeled_classifier_learns_from_semi_labels_only():
    train = toy_part(labeled=10)
    flipped = Part(train.X, 1 - train.y, train.semi, train.cls, train.index)  # ground truth must not matter
    a = LabeledClassifier(estimator="logistic").fit(train).score(train.X)
    b = LabeledClassifier(estimator="logistic").fit(flipped).score(train.X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="ratio_known_anomaly"):
        LabeledClassifier().fit(toy_part(labeled=0))


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match="model.nu"):
        OCSVM(nu=1.5)
    with pytest.raises(ConfigError, match="model.gamma"):
        OCSVM(gamma="wide")
    with pytest.raises(ConfigError, match="model.gamma"):
        OCSVM(gamma=-1.0)
    with pytest.raises(ConfigError, match="model.n_estimators"):
        IsolationForest(n_estimators=0)
    with pytest.raises(ConfigError, match="model.estimator"):
        LabeledClassifier(estimator="xgboost")
