"""scripts/ede_select_stats.py: the scores docs/ede.md compares, on statistics with known answers."""

from __future__ import annotations

import numpy as np

from tests.conftest import load_script


def _module():
    return load_script("ede_select_stats")


def _stats(rng, n, rec, znorm):
    names = ("rec", "znorm", "zin", "con", "xnorm")
    return {name: np.abs(rng.normal(loc, 0.1, n)) for name, loc in zip(names, (rec, znorm, 1.0, 1.0, 1.0), strict=True)}


def test_standardized_is_the_sum_of_one_sided_z_scores_and_typicality_flags_both_tails():
    rng = np.random.default_rng(0)
    train = _stats(rng, 500, rec=2.0, znorm=1.0)
    d = {f"train_{k}": v for k, v in train.items()}
    # three test samples: typical, too-large rec (an ordinary anomaly), too-small rec (a simple one)
    for k in train:
        d[f"test_{k}"] = np.array([train[k].mean()] * 3)
    d["test_rec"] = np.array([2.0, 3.0, 1.0])
    scores = _module().scores(d, "test")
    mu, sd = train["rec"].mean(), train["rec"].std()
    z_rec = (d["test_rec"] - mu) / sd
    z_zn = (d["test_znorm"] - train["znorm"].mean()) / train["znorm"].std()
    np.testing.assert_allclose(scores["standardized"], z_rec + z_zn, rtol=1e-6, atol=1e-9)
    # one-sided: the simple anomaly scores *below* the typical sample; two-sided: above it
    assert scores["standardized"][2] < scores["standardized"][0] < scores["standardized"][1]
    for kind in ("typ_rz", "typlog_rz", "maha_rz"):
        assert scores[kind][1] > scores[kind][0] and scores[kind][2] > scores[kind][0], kind


def test_standardized_rel_adds_the_z_score_of_the_error_relative_to_the_inputs_squared_norm():
    """The same absolute error on a smaller input (a thin digit) scores higher once rec / ‖x‖² counts."""
    rng = np.random.default_rng(1)
    train = _stats(rng, 500, rec=2.0, znorm=1.0)
    d = {f"train_{k}": v for k, v in train.items()}
    for k in train:
        d[f"test_{k}"] = np.array([train[k].mean()] * 2)
    d["test_xnorm"] = np.array([1.0, 0.5])  # same rec, half the size
    scores = _module().scores(d, "test")
    rel_tr = train["rec"] / train["xnorm"] ** 2
    rel = d["test_rec"] / d["test_xnorm"] ** 2
    expected = scores["standardized"] + (rel - rel_tr.mean()) / rel_tr.std()
    np.testing.assert_allclose(scores["standardized_rel"], expected, rtol=1e-6, atol=1e-9)
    assert scores["standardized"][0] == scores["standardized"][1]
    assert scores["standardized_rel"][1] > scores["standardized_rel"][0]
