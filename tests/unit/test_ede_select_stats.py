"""scripts/ede_select_stats.py: the scores docs/ede.md compares, on statistics with known answers."""

from __future__ import annotations

import numpy as np

from tests.conftest import load_script


def _module():
    return load_script("ede_select_stats")


def _stats(rng, n, rec, znorm):
    names = ("rec", "znorm", "zin", "con", "xnorm")
    return {name: np.abs(rng.normal(loc, 0.1, n)) for name, loc in zip(names, (rec, znorm, 1.0, 1.0, 1.0), strict=True)}


def _typical(seed, n_test):
    """500 training normals' statistics, and ``n_test`` test samples at the normals' mean of each."""
    train = _stats(np.random.default_rng(seed), 500, rec=2.0, znorm=1.0)
    d = {f"train_{k}": v for k, v in train.items()}
    for k in train:
        d[f"test_{k}"] = np.array([train[k].mean()] * n_test)
    return train, d


def test_standardized_is_the_sum_of_one_sided_z_scores_and_typicality_flags_both_tails():
    # three test samples: typical, too-large rec (an ordinary anomaly), too-small rec (a simple one)
    train, d = _typical(0, 3)
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
    train, d = _typical(1, 2)
    d["test_xnorm"] = np.array([1.0, 0.5])  # same rec, half the size
    scores = _module().scores(d, "test")
    rel_tr = train["rec"] / train["xnorm"] ** 2
    rel = d["test_rec"] / d["test_xnorm"] ** 2
    expected = scores["standardized"] + (rel - rel_tr.mean()) / rel_tr.std()
    np.testing.assert_allclose(scores["standardized_rel"], expected, rtol=1e-6, atol=1e-9)
    assert scores["standardized"][0] == scores["standardized"][1]
    assert scores["standardized_rel"][1] > scores["standardized_rel"][0]


def test_zrel_scores_use_the_code_norm_relative_to_the_inputs_norm():
    """``std_rel_zrel`` swaps ‖ẑ‖'s z-score for that of ‖ẑ‖ / ‖x‖; ``std_rel_plus_zrel`` adds it."""
    train, d = _typical(2, 2)
    d["test_xnorm"] = np.array([1.0, 0.5])  # same ‖ẑ‖, half the size
    d["test_znorm"] = np.array([1.5, 1.5])  # off the normals' mean, so that ‖ẑ‖'s own z-score is not 0
    scores = _module().scores(d, "test")
    zrel_tr = train["znorm"] / train["xnorm"]
    z_zrel = (d["test_znorm"] / d["test_xnorm"] - zrel_tr.mean()) / zrel_tr.std()
    z_zn = (d["test_znorm"] - train["znorm"].mean()) / train["znorm"].std()
    np.testing.assert_allclose(scores["std_rel_plus_zrel"], scores["standardized_rel"] + z_zrel, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scores["std_rel_zrel"], scores["standardized_rel"] - z_zn + z_zrel, rtol=1e-6, atol=1e-9)
    assert scores["std_rel_plus_zrel"][1] > scores["std_rel_plus_zrel"][0]
