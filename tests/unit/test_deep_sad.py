"""Deep SAD / Deep SVDD: loss and center rule on hand-computed values, real pre-training, a toy fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad_cli.data.split import Part
from semiad_cli.errors import ConfigError, SemiadError
from semiad_cli.models.deep_sad import DeepSAD, deep_sad_loss, init_center
from semiad_cli.models.nets.mlp import MLPSpec
from semiad_cli.training.loop import Trainer


def toy_part(seed: int = 0, n_normal: int = 200, n_anomaly: int = 20, d: int = 6) -> Part:
    """Separable toy set in [0,1]^d: normals near 0.3, anomalies near 0.8, all anomalies labeled."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0.3, 0.05, (n_normal, d)), rng.normal(0.8, 0.05, (n_anomaly, d))])
    y = np.r_[np.zeros(n_normal), np.ones(n_anomaly)].astype(np.int8)
    semi = np.r_[np.zeros(n_normal), -np.ones(n_anomaly)].astype(np.int8)
    return Part(X.astype(np.float32), y, semi, y.astype(np.int64), np.arange(len(y)))


def make(**kw) -> DeepSAD:
    torch.manual_seed(0)
    return DeepSAD(net=MLPSpec(input_shape=[6], hidden=[16], rep_dim=4), **kw)


def test_loss_on_hand_computed_values():
    dist = torch.tensor([1.0, 4.0, 0.5, 2.0])
    semi = torch.tensor([0, 1, -1, -1])
    # unlabeled: d; known normal: η·d; labeled anomaly: η/d   (η = 2, ε = 0)
    assert deep_sad_loss(dist, semi, eta=2.0, eps=0.0).tolist() == [1.0, 8.0, 4.0, 1.0]
    out = deep_sad_loss(dist, semi, eta=1.0, eps=1e-6)
    assert out.tolist() == pytest.approx([1.0, 4.0 + 1e-6, 1 / (0.5 + 1e-6), 1 / (2.0 + 1e-6)], rel=1e-7)


def test_loss_gradients_are_finite_at_zero_distance():
    dist = torch.zeros(3, requires_grad=True)
    deep_sad_loss(dist, torch.tensor([0, 1, -1]), eta=1.0).sum().backward()
    assert torch.isfinite(dist.grad).all()
    assert dist.grad.tolist() == pytest.approx([1.0, 1.0, -1e12], rel=1e-4)  # d/dd (d+ε)^-1 = -1/ε²


def test_center_rule_pushes_small_components_to_plus_minus_eps():
    codes = torch.tensor([[0.05, -0.3, 0.0, -0.02, 0.5], [0.05, -0.1, 0.0, -0.04, 0.7]])
    c = init_center(codes, 0.1)
    assert c.tolist() == pytest.approx([0.1, -0.2, 0.1, -0.1, 0.6])


def test_center_is_mean_of_eval_forward_pass_over_all_training_rows():
    model = make()
    part = toy_part()
    X = torch.as_tensor(part.X)
    model.init_from_data(X, torch.as_tensor(part.semi))
    assert model.training  # init_from_data leaves the mode as it found it
    model.eval()
    with torch.no_grad():
        expected = init_center(model.encoder_(X), 0.1)
    assert torch.equal(model.c_, expected)
    assert "c_" in model.state_dict() and torch.equal(model.state_dict()["c_"], expected)


def test_pretraining_really_changes_the_encoder_weights():
    part = toy_part()
    X, S = torch.as_tensor(part.X), torch.as_tensor(part.semi)
    plain, pre = make(pretrain_epochs=0), make(pretrain_epochs=5, pretrain_lr=1e-2)
    before = {k: v.clone() for k, v in pre.encoder_.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in plain.encoder_.state_dict().items())  # same init
    plain.init_from_data(X, S)
    pre.init_from_data(X, S)
    weights = [k for k in before if k.endswith("weight")]
    assert weights and all(not torch.equal(before[k], pre.encoder_.state_dict()[k]) for k in weights)
    assert all(torch.equal(before[k], plain.encoder_.state_dict()[k]) for k in weights)
    assert len(pre.pretrain_history_) == 5 and pre.pretrain_history_[-1] < pre.pretrain_history_[0]
    assert not torch.equal(pre.c_, plain.c_)  # c comes from the pre-trained encoder
    # the decoder is scaffolding only: checkpoints hold the encoder and c
    assert set(pre.state_dict()) == set(plain.state_dict())


def fit(model: DeepSAD, part: Part, tmp_path, epochs: int = 30) -> DeepSAD:
    trainer = Trainer(max_epochs=epochs, batch_size=32, num_threads=1, progress=False,
                      optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))
    trainer.fit(model, part, None, tmp_path, seed=0)
    return model


def test_labeled_anomalies_end_farther_from_c_than_normals(tmp_path):
    part = toy_part()
    model = fit(make(), part, tmp_path)
    scores = model.score(part.X)
    normal, anomaly = scores[part.y == 0], scores[part.y == 1]
    assert anomaly.min() > np.quantile(normal, 0.95)
    assert anomaly.mean() > 10 * normal.mean()
    # the labels did it: Deep SVDD (labels ignored) on the same data separates far less
    svdd = fit(make(use_labels=False), part, tmp_path / "svdd").score(part.X)
    assert anomaly.mean() / normal.mean() > 10 * svdd[part.y == 1].mean() / svdd[part.y == 0].mean()


def test_deep_svdd_ignores_labels():
    model = make(use_labels=False)
    part = toy_part()
    X, S = torch.as_tensor(part.X), torch.as_tensor(part.semi)
    model.init_from_data(X, S)
    with_labels, _ = model.loss(X, S)
    without, _ = model.loss(X, torch.zeros_like(S))
    assert torch.equal(with_labels, without)
    model.use_labels = True
    assert not torch.equal(model.loss(X, S)[0], without)


def test_save_load_round_trip_gives_identical_scores(tmp_path):
    part = toy_part()
    model = fit(make(), part, tmp_path / "a", epochs=2)
    fresh = make()
    fresh.load(tmp_path / "a")
    assert torch.equal(fresh.c_, model.c_)
    np.testing.assert_array_equal(fresh.score(part.X), model.score(part.X))


def test_unfitted_model_and_bad_settings_raise_named_errors():
    with pytest.raises(SemiadError, match="no center"):
        make().score(toy_part().X)
    with pytest.raises(ConfigError, match="model.eta"):
        make(eta=-1.0)
    with pytest.raises(ConfigError, match="model.pretrain_epochs"):
        make(pretrain_epochs=-2)
    with pytest.raises(SemiadError, match="shape"):
        fit_free = make()
        fit_free.c_.fill_(1.0)
        fit_free.score(np.zeros((3, 5), np.float32))


def test_pretraining_updates_the_lenet_encoder_in_place():
    from semiad_cli.models.nets.lenet import LeNetSpec

    torch.manual_seed(0)
    model = DeepSAD(net=LeNetSpec(input_shape=[1, 28, 28], variant="mnist", rep_dim=32), pretrain_epochs=1,
                    pretrain_lr=1e-3, pretrain_batch_size=16)
    before = {k: v.clone() for k, v in model.encoder_.state_dict().items() if k.endswith("weight")}
    X = torch.rand(32, 1, 28, 28)
    model.init_from_data(X, torch.zeros(32, dtype=torch.int8))
    assert all(not torch.equal(v, model.encoder_.state_dict()[k]) for k, v in before.items())
    assert model.score(X.numpy()).shape == (32,)


@pytest.mark.parametrize("pretrain_epochs", [0, 2])
def test_deep_sad_training_with_multistep_lr_emits_no_scheduler_warning(tmp_path, pretrain_epochs):
    """trainer=deepsad's MultiStepLR (and the pre-training's) see every optimizer.step(): torch warns
    'lr_scheduler.step() before optimizer.step()' when the optimizer is stepped behind their back."""
    import functools
    import warnings

    part = toy_part()
    trainer = Trainer(max_epochs=3, batch_size=32, num_threads=1, progress=False,
                      optimizer=functools.partial(torch.optim.Adam, lr=1e-4, weight_decay=5e-7, fused=None),
                      scheduler=functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[1], gamma=0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer.fit(make(pretrain_epochs=pretrain_epochs, pretrain_lr_milestones=[1]), part, None, tmp_path, seed=0)
    assert len(trainer.history) == 3


def test_pretraining_runs_through_the_trainer_and_repeats_from_the_seed():
    part = toy_part()
    X, S = torch.as_tensor(part.X), torch.as_tensor(part.semi)
    runs = []
    for _ in range(2):
        model = make(pretrain_epochs=3, pretrain_lr=1e-2, pretrain_batch_size=32, pretrain_lr_milestones=[2])
        torch.manual_seed(7)  # the task's seed_everything: the batch-order seed is drawn from it
        model.init_from_data(X, S)
        runs.append(model)
    assert runs[0].pretrain_history_ == runs[1].pretrain_history_ and len(runs[0].pretrain_history_) == 3
    assert all(torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values(),
                                                  strict=True))
    assert torch.get_num_threads() >= 1 and runs[0].training


def test_pretraining_divergence_is_a_training_error_naming_the_pretrain_lr():
    from semiad_cli.errors import TrainingError

    X = torch.as_tensor(toy_part().X)
    X[3, 0] = float("inf")
    with pytest.raises(TrainingError, match=r"pre-training diverged .*epoch 1.*model.pretrain_lr"):
        make(pretrain_epochs=2).init_from_data(X, torch.zeros(len(X), dtype=torch.int8))
