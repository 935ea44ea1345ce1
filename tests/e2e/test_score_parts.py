"""scripts/score_parts.py: the PCA baseline on a known answer, and the parts of a real EDE run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import load_script


def _module():
    return load_script("score_parts")


def test_pca_error_is_the_squared_distance_to_the_training_line():
    # training rows on the line y = 2x (one component explains all their variance)
    t = np.linspace(-1, 1, 50)
    train = np.stack([t, 2 * t], axis=1)
    test = np.array([[0.5, 1.0], [0.0, 1.0], [1.0, 0.0]])
    error, kept = _module().pca_reconstruction_error(train, test, 0.9)
    assert kept == 1
    # distance of (a, b) to the line through 0 along (1, 2)/sqrt(5): |2a - b| / sqrt(5)
    expected = (2 * test[:, 0] - test[:, 1]) ** 2 / 5
    np.testing.assert_allclose(error, expected, atol=1e-10)


def test_parts_of_an_ede_run_rank_as_its_metrics_say(tmp_path, cli_inproc):
    run = tmp_path / "run"
    cli_inproc("train", "model=ede", "trainer.max_epochs=2", f"hydra.run.dir={run}", check=True)
    metrics = json.loads((run / "metrics.json").read_text())
    row = _module().run_row(run, 0.9)
    assert row["score"] == pytest.approx(100 * metrics["auroc"], abs=1e-9)
    assert row["score_rec"] == pytest.approx(100 * metrics["parts"]["rec"]["auroc"], abs=1e-9)
    assert 0 <= row["pca_rec"] <= 100 and row["pca_components"] >= 1
