"""The stacked MLP path (``training/stacked_layers.py``): each model's loss on ``[K, b, ...]`` batches through
batched matrix products gives what ``vmap`` over the model's own loss gives (losses, parts, gradients and
BatchNorm's running statistics), and only models it can run take it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semiad_cli.tasks.train import prepare_seed
from semiad_cli.training.stacked_layers import SlotModel, StackedModel

K = 3
MODELS = {
    "deepsad": ["model=deepsad"],
    "deepsvdd": ["model=deepsvdd"],
    "ede_noise_mean": ["model=ede", "model.anomaly_reconstruction=noise", "model.consistency=mean"],
    "ede_skip_sum": ["model=ede", "model.anomaly_reconstruction=skip", "model.consistency=sum"],
    "ede_input_shared": ["model=ede", "model.anomaly_reconstruction=input", "model.shared_encoder=true"],
    "ede_julia_template": ["model=ede", "+dataset.net.batchnorm_affine=true", "+dataset.net.activation=relu"],
    "classifier_hinge": ["model=classifier", "model.loss=hinge"],
    "classifier_bce": ["model=classifier", "model.loss=bce"],
}


def _seeds(compose_cfg, overrides: list[str]):
    preps = []
    for seed in range(1, K + 1):
        prep = prepare_seed(compose_cfg("train", ["dataset=digits", f"seed={seed}", *overrides]))
        prep.model.init_from_data(torch.as_tensor(prep.train.X), torch.as_tensor(prep.train.semi))
        preps.append(prep)
    return preps


def _stack(models, requires_grad: bool):
    names = [n for n, _ in models[0].named_parameters()]
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).clone().requires_grad_(
        requires_grad) for n in names}
    buffers = {n: torch.stack([dict(m.named_buffers())[n].detach() for m in models]).clone()
               for n, _ in models[0].named_buffers()}
    return params, buffers


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("training", [True, False])
def test_the_stacked_mlp_loss_is_vmap_over_the_models_own_loss(compose_cfg, case, training):
    preps = _seeds(compose_cfg, MODELS[case])
    models = [p.model for p in preps]
    assert StackedModel.supports(models[0])
    b = 40  # labeled anomalies in the first rows of some seeds: every branch of the losses is taken
    X = torch.stack([torch.as_tensor(p.train.X[-b:]) for p in preps])
    S = torch.stack([torch.as_tensor(p.train.semi[-b:]) for p in preps])
    S[0, :3] = -1
    S[1, :2] = 1
    draws_k = [m.loss_draws(X[k], torch.Generator().manual_seed(k)) for k, m in enumerate(models)]
    draws = {n: torch.stack([d[n] for d in draws_k]) for n in draws_k[0]}
    results = []
    for kind in ("vmap", "stacked"):
        params, buffers = _stack(models, requires_grad=True)
        executor = SlotModel(models[0]) if kind == "vmap" else StackedModel(models[0])
        executor.model.train(training)
        loss_fn = torch.func.vmap(executor.loss, randomness="error") if kind == "vmap" else executor.loss
        losses, parts = loss_fn(params, buffers, X, S, draws)
        losses.sum().backward()
        results.append((losses.detach(), {n: v.detach() for n, v in parts.items()},
                        {n: p.grad for n, p in params.items()}, buffers))
    (l1, p1, g1, b1), (l2, p2, g2, b2) = results
    assert l2.shape == (K,) and torch.isfinite(l2).all()
    torch.testing.assert_close(l2, l1, rtol=1e-5, atol=1e-7)
    assert p2.keys() == p1.keys()
    for n in p1:
        torch.testing.assert_close(p2[n], p1[n], rtol=1e-5, atol=1e-7)
    for n in g1:
        torch.testing.assert_close(g2[n], g1[n], rtol=1e-4, atol=1e-6)
    for n in b1:  # running statistics and batch counts move alike in training mode, not at all in eval mode
        torch.testing.assert_close(b2[n], b1[n], rtol=1e-5, atol=1e-7)


def test_the_stacked_path_matches_each_seeds_own_loss_on_its_own_batch(compose_cfg):
    """Against the plain model, not vmap: seed k's loss on its batch is the stacked loss's k-th entry."""
    preps = _seeds(compose_cfg, MODELS["ede_noise_mean"])
    models = [p.model for p in preps]
    X = torch.stack([torch.as_tensor(p.train.X[:16]) for p in preps])
    S = torch.stack([torch.as_tensor(p.train.semi[:16]) for p in preps])
    S[:, 0] = -1
    draws = {"noise": torch.rand(X.shape)}
    params, buffers = _stack(models, requires_grad=False)
    stacked = StackedModel(models[0])
    stacked.model.train()
    losses, _ = stacked.loss(params, buffers, X, S, draws)
    for k, model in enumerate(models):
        model.train()
        own, _ = model.loss(X[k], S[k], noise=draws["noise"][k])
        torch.testing.assert_close(losses[k], own, rtol=1e-5, atol=1e-7)


def test_conv_nets_dropout_and_losses_without_a_seed_axis_take_vmap(compose_cfg, monkeypatch):
    (prep,) = [prepare_seed(compose_cfg("train", ["dataset=digits", "seed=1", "model=deepsad"]))]
    model = prep.model
    assert StackedModel.supports(model)
    with_dropout = prepare_seed(compose_cfg("train", ["dataset=digits", "seed=1", "model=deepsad"])).model
    with_dropout.encoder_.append(nn.Dropout(0.1))  # its draws would be shared by the seeds
    assert not StackedModel.supports(with_dropout)
    conv = prepare_seed(compose_cfg("train", ["dataset=digits", "seed=1", "model=deepsad"])).model
    conv.encoder_.insert(0, nn.Conv1d(1, 1, 1))
    assert not StackedModel.supports(conv)
    monkeypatch.setattr(type(model), "loss_takes_seed_axis", False)
    assert not StackedModel.supports(model)
