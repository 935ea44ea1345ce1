"""Classifier: hinge and BCE on hand-computed values, score direction, conv-backbone head, config."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from semiad_cli.errors import ConfigError
from semiad_cli.models.classifier import Classifier, bce_loss, hinge_loss, targets
from semiad_cli.models.nets.mlp import MLPSpec
from semiad_cli.tasks.common import build, fill_data_sizes
from semiad_cli.training.loop import Trainer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _net(d: int = 4) -> MLPSpec:
    return MLPSpec(input_shape=[d], hidden=[16, 16], rep_dim=1, bias=True, batchnorm=False)


def test_targets():
    assert targets(torch.tensor([1, 0, -1])).tolist() == [1.0, 1.0, -1.0]


def test_hinge_hand_computed():
    f = torch.tensor([2.0, 0.5, -0.5, 0.2])
    t = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # max(0, 1 − t f): 0, 0.5, 0.5, 1.2 → mean 0.55
    assert hinge_loss(f, t).item() == pytest.approx(0.55)


def test_bce_hand_computed():
    f = torch.tensor([0.0, 2.0])
    t = torch.tensor([1.0, -1.0])  # normal → label 1, anomaly → label 0
    expected = (-math.log(0.5) - math.log(1 - 1 / (1 + math.exp(-2.0)))) / 2  # (0.6931 + 2.1269) / 2
    assert bce_loss(f, t).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1.4100, abs=1e-4)


@pytest.mark.parametrize("loss", ["hinge", "bce"])
def test_scores_are_one_minus_output(loss):
    torch.manual_seed(0)
    model = Classifier(net=_net(), loss=loss)
    X = torch.randn(5, 4)
    f = model(X).detach()
    expected = 1 - (f if loss == "hinge" else torch.sigmoid(f))
    np.testing.assert_allclose(model.score(X.numpy()), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("loss", ["hinge", "bce"])
def test_obvious_outlier_scores_higher(tmp_path, loss):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    normal = (0.5 + 0.05 * rng.standard_normal((300, 4))).astype(np.float32)
    anomalies = rng.random((300, 4)).astype(np.float32)  # synthetic-style, uniform in [0,1]^4
    from semiad_cli.data.split import Part

    train = Part(X=np.r_[normal, anomalies], y=np.r_[np.zeros(300), np.ones(300)].astype(np.int8),
                 semi=np.r_[np.zeros(300), -np.ones(300)].astype(np.int8), cls=np.zeros(600, np.int64),
                 index=np.arange(600))
    model = Classifier(net=_net(), loss=loss)
    Trainer(max_epochs=60, batch_size=128, device="cpu", num_threads=1, progress=False,
            optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2)).fit(
        model, train, None, tmp_path, seed=0)
    s_normal_mean = model.score(np.full((1, 4), 0.5, np.float32))[0]
    s_outlier = model.score(np.array([[0.98, 0.02, 0.97, 0.03]], np.float32))[0]
    assert s_outlier > s_normal_mean
    assert model.score(normal).mean() < model.score(anomalies).mean()


def test_linear_head_for_wider_backbone():
    spec = MLPSpec(input_shape=[1, 6, 6], hidden=[8], rep_dim=5, bias=True, batchnorm=False)
    model = Classifier(net=spec)
    assert isinstance(model.head_, torch.nn.Linear) and model.head_.in_features == 5
    assert model(torch.rand(3, 1, 6, 6)).shape == (3,)
    assert isinstance(Classifier(net=_net()).head_, torch.nn.Identity)


def test_unknown_loss():
    with pytest.raises(ConfigError, match="model.loss"):
        Classifier(net=_net(), loss="mse")


def test_config_selects_paper_trainer_and_synthetic():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["model=classifier"])
        quick = compose("train", overrides=["model=classifier", "trainer.max_epochs=3", "synthetic.ratio=0"])
        ede = compose("train", overrides=["model=ede"])
    t = cfg.trainer
    assert (t.max_epochs, t.batch_size, t.val_fraction, t.patience) == (200, 1024, 0.2, 7)
    assert t.optimizer._target_ == "torch.optim.AdamW" and t.optimizer.lr == 1e-3 and t.optimizer.weight_decay == 1e-2
    assert cfg.synthetic.ratio == 1.0
    assert list(cfg.model.net.hidden) == [500, 500] and cfg.model.net.rep_dim == 1 and cfg.model.loss == "hinge"
    assert quick.trainer.max_epochs == 3 and quick.synthetic.ratio == 0
    assert ede.synthetic.ratio == 0.0 and ede.trainer.optimizer._target_ == "torch.optim.Adam"
    fill_data_sizes(cfg, (64,))
    model = build(cfg.model, "model")
    assert isinstance(model, Classifier) and model.input_shape == (64,)
    linears = [m for m in model.body_ if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 500), (500, 500), (500, 1)]
    assert all(m.bias is not None for m in linears)
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in model.body_)


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "odds").is_dir(),
                    reason="needs ../shared/data/odds")
@pytest.mark.parametrize("min_steps,ranks_well", [(0, False), (100, True)])
def test_vanilla_classifier_needs_optimizer_steps_before_early_stopping(min_steps, ranks_well):
    """cardio: 803 rows at batch 1024 = one step per epoch; patience 7 alone stopped after ~11 steps
    with a near-chance (here below-chance) ranking. min_steps (trainer=classifier: 100) fixes it."""
    import functools
    import tempfile

    from hydra import compose, initialize_config_dir
    from sklearn.metrics import roc_auc_score

    from semiad_cli.tasks.common import load_split

    data_root = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["dataset=cardio", "seed=2", f"data_root={data_root}"])
    split, _ = load_split(cfg)
    torch.manual_seed(2)
    net = MLPSpec(input_shape=[split.train.X.shape[1]], hidden=[500, 500], rep_dim=1, bias=True, batchnorm=False,
                  activation="leaky_relu")
    model = Classifier(net=net)
    trainer = Trainer(max_epochs=200, batch_size=1024, device="cpu", num_threads=1, val_fraction=0.2, patience=7,
                      optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=1e-2), progress=False,
                      min_steps=min_steps, checkpoint_every=100)
    train, val = trainer.hold_out(split.train, 2)
    trainer.fit(model, train, val, Path(tempfile.mkdtemp()), seed=2)
    auroc = roc_auc_score(split.test.y, model.score(split.test.X))
    if ranks_well:
        assert trainer.epochs_run > 100 and auroc > 0.97, (trainer.epochs_run, auroc)
    else:
        assert trainer.epochs_run < 20 and auroc < 0.7, (trainer.epochs_run, auroc)


def test_classifier_recipe_holds_early_stopping_for_100_steps(compose_cfg):
    assert compose_cfg("train", ["model=classifier"]).trainer.min_steps == 100
