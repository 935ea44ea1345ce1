"""EDE with its defaults reproduces ESAD on MNIST (issue 14's regression check; docs/ede.md)."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_DATA, read_metrics

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="needs ../shared/data/mnist")]


def test_ede_defaults_reach_097_on_mnist_normal_0_known_1(cli, tmp_path):
    run = tmp_path / "run"
    cli("train", "model=ede", "dataset=mnist", "dataset.split.normal_class=0",
        "dataset.split.known_anomaly_classes=[1]", "dataset.split.max_train_normal=2000",
        "trainer.max_epochs=20", "seed=1", f"data_root={SHARED_DATA}", f"hydra.run.dir={run}", timeout=900)
    metrics = read_metrics(run)
    assert metrics["split"]["n_train_known_anomaly"] == 105  # int(0.05 * 2000 / 0.95)
    assert metrics["auroc"] >= 0.97, metrics["auroc"]
