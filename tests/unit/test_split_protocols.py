"""Row-for-row checks of the two split protocols against scikit-learn (docs/splits.md).

``clean`` must pick, per class, exactly the rows ``train_test_split(rows_c,
test_size, random_state=seed)`` picks. ``deepsad_reference`` must pick exactly the
rows Deep-SAD-PyTorch picks; its procedure is re-stated below with sklearn calls
(``src/base/odds_dataset.py``, ``src/datasets/odds.py``, ``src/datasets/preprocessing.py``).
"""

from __future__ import annotations

import logging
import math
import random

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from semiad_cli.data.source import Source
from semiad_cli.data.sources.odds import load_odds
from semiad_cli.data.split import build_split
from semiad_cli.errors import ConfigError
from tests.conftest import SHARED_DATA

SEEDS = [0, 1, 2, 7, 2024]


def toy_source() -> Source:
    """Four classes whose 40 % is never a whole number (111, 27, 33, 7 rows), shuffled together."""
    labels = np.repeat([0, 1, 2, 3], [111, 27, 33, 7])
    labels = np.random.default_rng(5).permutation(labels)
    X = np.stack([np.arange(len(labels), dtype=np.float32), labels.astype(np.float32)], axis=1)
    return Source(name="toy", X=X, labels=labels, is_test=None)


def cardio() -> Source:
    if not (SHARED_DATA / "odds" / "cardio.mat").is_file():
        pytest.skip(f"odds/cardio.mat not under {SHARED_DATA}")
    return load_odds(name="cardio", root=SHARED_DATA)


def rows_of(part, cls) -> list:
    return sorted(part.index[part.cls == cls].tolist())


# ------------------------------------------------------------------ clean: sklearn per class
def check_clean(src: Source, seed: int, test_size: float) -> None:
    labels = np.asarray(src.labels)
    classes = list(dict.fromkeys(labels.tolist()))
    for normal in classes:  # with γl = γp = 0 the training part is exactly the normal class's training rows
        split = build_split(src, seed=seed, normal_class=normal, n_known_anomaly_classes=0, ratio_known_anomaly=0.0,
                            test_size=test_size, scaling="none")
        for c in classes:
            rows = np.flatnonzero(labels == c)
            want_train, want_test = train_test_split(rows, test_size=test_size, random_state=seed)
            assert len(want_test) == math.ceil(test_size * len(rows))
            assert rows_of(split.test, c) == sorted(want_test.tolist()), (seed, c)
            if c == normal:
                assert sorted(split.train.index.tolist()) == sorted(want_train.tolist()), (seed, c)
        assert not set(split.train.index.tolist()) & set(split.test.index.tolist())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("test_size", [0.4, 0.3])
def test_clean_split_is_sklearn_train_test_split_per_class_synthetic(seed, test_size):
    check_clean(toy_source(), seed, test_size)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_split_is_sklearn_train_test_split_per_class_cardio(seed):
    check_clean(cardio(), seed, 0.4)


def test_clean_split_keeps_a_single_row_class_in_training():
    """sklearn cannot cut one row (its training part would be empty): the class stays whole in training."""
    labels = np.r_[np.zeros(20, int), np.ones(10, int), [2]]
    src = Source(name="tiny", X=np.arange(len(labels), dtype=np.float32)[:, None], labels=labels)
    split = build_split(src, seed=1, n_known_anomaly_classes=0, ratio_known_anomaly=0.0, ratio_pollution=0.05,
                        scaling="none")
    assert split.counts["test_per_class"] == {"0": 8, "1": 4}


# ------------------------------------------------------------------ deepsad_reference, re-stated
def reference_cuts(labels, normal, seed, test_size=0.4):
    """``main.py`` builds one ``RandomState(seed)``; ``ODDSDataset(train=True)`` cuts normal then
    outlier rows with it, ``ODDSDataset(train=False)`` cuts them again with the advanced state."""
    state = np.random.RandomState(seed)
    is_normal = np.isin(labels, normal)
    groups = [np.flatnonzero(is_normal), np.flatnonzero(~is_normal)]
    first = [train_test_split(g, test_size=test_size, random_state=state) for g in groups]
    second = [train_test_split(g, test_size=test_size, random_state=state) for g in groups]
    return (np.concatenate([tr for tr, _ in first]), np.concatenate([te for _, te in second]),
            np.concatenate([tr for tr, _ in second]))


def reference_semisupervised(pool, labels, normal, known, gl, gp, seed):
    """``create_semisupervised_setting`` on the training cut, with ``np.random`` seeded by ``seed``."""
    lab = labels[pool]
    idx_normal, idx_outlier = pool[np.isin(lab, normal)], pool[~np.isin(lab, normal)]
    cand = pool[np.isin(lab, known)]
    a = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [-gl, -gl, -gl, 1 - gl], [0, -gp, 1 - gp, 0]])
    n_kn, n_un, n_ua, n_ka = (int(v) for v in np.linalg.solve(a, np.array([len(idx_normal), 0, 0, 0])))
    state = np.random.RandomState(seed)
    perm_normal, perm_outlier = state.permutation(len(idx_normal)), state.permutation(len(idx_outlier))
    perm_known = state.permutation(len(cand))
    rows = [idx_normal[perm_normal[:n_kn]], idx_normal[perm_normal[n_kn:n_kn + n_un]],
            idx_outlier[perm_outlier[:n_ua]], cand[perm_known[:n_ka]]]
    semi = np.concatenate([np.full(len(rows[0]), 1), np.zeros(len(rows[1]) + len(rows[2]), int),
                           np.full(len(rows[3]), -1)])
    rows = np.concatenate(rows)
    last = dict(zip(rows.tolist(), semi.tolist(), strict=True))  # train_set.semi_targets[idx] = ...: last write wins
    return rows, np.array([last[r] for r in rows.tolist()])


def check_reference(src, seed, known, gl, gp):
    labels = np.asarray(src.labels)
    split = build_split(src, seed=seed, normal_class=0, known_anomaly_classes=known, ratio_known_anomaly=gl,
                        ratio_pollution=gp, protocol="deepsad_reference", scaling="none")
    pool, test, _ = reference_cuts(labels, [0], seed)
    rows, semi = reference_semisupervised(pool, labels, [0], known, gl, gp, seed)
    np.testing.assert_array_equal(split.test.index, test)
    np.testing.assert_array_equal(split.train.index, rows)
    np.testing.assert_array_equal(split.train.semi, semi)
    assert split.counts["n_test_in_train_pool"] == len(set(test.tolist()) & set(pool.tolist()))
    return split


@pytest.mark.parametrize("seed", SEEDS)
def test_deepsad_reference_reproduces_the_reference_rows_synthetic(seed):
    split = check_reference(toy_source(), seed, [1, 3], gl=0.1, gp=0.05)
    assert split.counts["n_test_in_train_pool"] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_deepsad_reference_reproduces_the_reference_rows_cardio(seed):
    check_reference(cardio(), seed, [1], gl=0.01, gp=0.0)


def test_deepsad_reference_repeats_a_row_drawn_as_pollution_and_as_labeled():
    """The reference draws pollution from all anomalies: a row can come twice, both copies labeled −1."""
    repeats = 0
    for seed in SEEDS:
        split = build_split(toy_source(), seed=seed, normal_class=0, known_anomaly_classes=[1, 3],
                            ratio_known_anomaly=0.1, ratio_pollution=0.05, protocol="deepsad_reference")
        rows, counts = np.unique(split.train.index, return_counts=True)
        twice = np.isin(split.train.index, rows[counts > 1])
        repeats += int(twice.sum())
        assert (split.train.semi[twice] == -1).all()
    assert repeats > 0


def test_deepsad_reference_labels_mnist_rows_like_the_reference():
    """Official test split: only the labeled selection differs; the reference's own image path."""
    from semiad_cli.data.sources.images import load_mnist

    if not (SHARED_DATA / "mnist" / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"mnist not under {SHARED_DATA}")
    src = load_mnist(root=SHARED_DATA)
    labels = np.asarray(src.labels)
    split = build_split(src, seed=3, normal_class=0, known_anomaly_classes=[1], ratio_known_anomaly=0.05,
                        protocol="deepsad_reference", scaling="pixel")
    rows, semi = reference_semisupervised(np.flatnonzero(~src.is_test), labels, [0], [1], 0.05, 0.0, 3)
    np.testing.assert_array_equal(split.train.index, rows)
    np.testing.assert_array_equal(split.train.semi, semi)
    np.testing.assert_array_equal(split.test.index, np.flatnonzero(src.is_test))
    # k > 1 known classes: MNIST_Dataset draws random.sample(outlier_classes, k) after random.seed(seed)
    split3 = build_split(src, seed=3, normal_class=0, n_known_anomaly_classes=3, ratio_known_anomaly=0.05,
                         protocol="deepsad_reference", scaling="pixel", max_test=100)
    assert split3.known_anomaly_classes == random.Random(3).sample((1, 2, 3, 4, 5, 6, 7, 8, 9), 3)


def test_deepsad_reference_cardio_seed1_overlap_and_warning(caplog):
    src = cardio()
    with caplog.at_level(logging.WARNING, logger="semiad_cli.data.split"):
        split = check_reference(src, 1, [1], gl=0.01, gp=0.0)
    c = split.counts
    assert (c["n_test"], c["n_test_in_train_pool"], c["protocol"]) == (733, 447, "deepsad_reference")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "test rows overlap training rows: 447 of 733" in warnings[0]


def test_deepsad_reference_scales_test_rows_like_the_reference():
    """The reference fits the test set's scalers on the *second* cut's training part."""
    src = cardio()
    split = build_split(src, seed=1, protocol="deepsad_reference", ratio_known_anomaly=0.01)
    pool, test, second_train = reference_cuts(np.asarray(src.labels), [0], 1)

    def scaled(fit_rows, rows):
        std = StandardScaler().fit(src.X[fit_rows].astype(np.float64))
        mm = MinMaxScaler().fit(std.transform(src.X[fit_rows].astype(np.float64)))
        return mm.transform(std.transform(src.X[rows].astype(np.float64)))

    np.testing.assert_allclose(split.test.X, scaled(second_train, test), atol=1e-5)
    np.testing.assert_allclose(split.train.X, scaled(pool, split.train.index), atol=1e-5)


def test_clean_split_logs_no_overlap_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="semiad_cli.data.split"):
        split = build_split(toy_source(), seed=1, ratio_known_anomaly=0.05)
    assert split.counts["n_test_in_train_pool"] == 0 and split.counts["protocol"] == "clean"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------------------------------------------ config
def test_unknown_protocol_is_a_config_error():
    with pytest.raises(ConfigError, match=r"dataset.split.protocol='bogus' is unknown; choose one of \['clean', "):
        build_split(toy_source(), seed=1, protocol="bogus")


def test_unknown_protocol_is_one_line_from_the_cli(tmp_path, cli_inproc):
    # cli_inproc, not cli.main: the run configures Hydra's job logging, which the fixture puts back
    code, _, err = cli_inproc("train", "dataset.split.protocol=bogus", "trainer=quick", f"hydra.run.dir={tmp_path}")
    assert code == 2
    assert err.startswith("semiad: error: dataset.split.protocol='bogus' is unknown") and err.count("\n") == 1


def test_every_dataset_config_names_the_clean_protocol(compose_cfg):
    from tests.unit.test_configs import DATASETS

    for name in DATASETS:
        assert compose_cfg("train", [f"dataset={name}"]).dataset.split.protocol == "clean", name
