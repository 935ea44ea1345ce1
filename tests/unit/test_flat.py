"""One-buffer parameters under torch's own optimizers: same numbers as per-parameter, schedulers, resume."""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from semiad_cli.data.split import Part
from semiad_cli.models.base import STATE_FILE, TorchDetector
from semiad_cli.models.nets.lenet import LeNetSpec
from semiad_cli.training.checkpoint import load_checkpoint
from semiad_cli.training.flat import FlatParameters
from semiad_cli.training.loop import Trainer
from semiad_cli.training.optim import build_optimizer


def net() -> nn.Module:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, bias=False).to(memory_format=torch.channels_last)  # a non-default layout too
    # no bias right before BatchNorm: its gradient is rounding noise, which Adam would normalise to full steps
    return nn.Sequential(conv, nn.Flatten(), nn.Linear(3 * 4 * 4, 5, bias=False), nn.BatchNorm1d(5), nn.LeakyReLU(),
                         nn.Linear(5, 1))


def train_steps(model: nn.Module, make_opt, flat: bool, steps: int = 25, lr_drop_at: int = 10) -> list[float]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 2, 6, 6, generator=gen)
    params = [p for p in model.parameters() if p.requires_grad]
    fp = FlatParameters.maybe(params) if flat else None
    opt = make_opt([fp.leaf] if fp is not None else params)
    losses = []
    for i in range(steps):
        if i == lr_drop_at:
            for g in opt.param_groups:
                g["lr"] *= 0.1  # what a scheduler does
        idx = torch.randperm(64, generator=gen)[:16]
        loss = (model(x[idx]) ** 2).mean() + model[2].weight.abs().sum() * 1e-3
        if fp is not None:
            fp.zero_grad()
        else:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if fp is not None:
        fp.release()
    return losses


@pytest.mark.parametrize("fused", [False, True], ids=["single-tensor", "fused"])
@pytest.mark.parametrize("make_opt", [
    functools.partial(torch.optim.Adam, lr=1e-2, weight_decay=1e-3),
    functools.partial(torch.optim.AdamW, lr=1e-2, weight_decay=1e-2, betas=(0.8, 0.99), eps=1e-6),
    functools.partial(torch.optim.SGD, lr=1e-2, momentum=0.9, weight_decay=1e-3),
], ids=["adam-wd", "adamw", "sgd"])
def test_one_flat_tensor_gets_the_per_parameter_update(make_opt, fused: bool) -> None:
    """Bit for bit on torch's single-tensor path; to the last bits with the fused kernel, whose vector loop
    and scalar tail meet a tensor's elements at other places when they sit in one buffer."""
    ref_model, flat_model = net(), net()
    ref = train_steps(ref_model, functools.partial(make_opt, foreach=False, fused=fused), flat=False)
    ours = train_steps(flat_model, functools.partial(make_opt, foreach=False, fused=fused), flat=True)
    tol = {"rtol": 1e-5, "atol": 1e-5} if fused else {"rtol": 0, "atol": 0}
    torch.testing.assert_close(torch.tensor(ours, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64),
                               **tol)
    for (name, a), b in zip(ref_model.state_dict().items(), flat_model.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, **tol, msg=name)


def test_parameters_are_views_and_own_storage_after_release() -> None:
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    fp = FlatParameters(params)
    assert all(p.untyped_storage().data_ptr() == fp.leaf.untyped_storage().data_ptr() for p in params)
    assert params[0].is_contiguous(memory_format=torch.channels_last)  # layout kept
    fp.leaf.data.add_(1.0)  # writing the buffer writes the parameters
    assert torch.equal(params[-1], before["5.bias"] + 1.0)
    fp.release()
    assert len({p.untyped_storage().data_ptr() for p in params}) == len(params)
    assert params[0].is_contiguous(memory_format=torch.channels_last)
    assert all(p.grad is None for p in params)


def test_mixed_dtypes_are_not_flattened() -> None:
    assert FlatParameters.maybe([nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))]) \
        is None
    assert FlatParameters.maybe([]) is None


def test_optimizer_state_round_trips_between_flat_and_per_parameter_layouts() -> None:
    """A flat optimizer's state, written in the per-parameter layout (through bytes, as a checkpoint), continues
    in torch's optimizer over the separate parameters exactly as the flat one continues."""
    model, x = net(), torch.rand(8, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    params = list(model.parameters())
    fp = FlatParameters(params)
    flat_opt = torch.optim.Adam([fp.leaf], lr=1e-2, weight_decay=1e-3, foreach=False)
    for _ in range(3):
        fp.zero_grad()
        (model(x) ** 2).mean().backward()
        flat_opt.step()
    buffer = io.BytesIO()
    torch.save(fp.per_parameter_state(flat_opt.state_dict()), buffer)
    buffer.seek(0)
    per_param = torch.load(buffer, weights_only=True)
    assert sorted(per_param["state"]) == list(range(len(params)))
    assert all(per_param["state"][i]["exp_avg"].stride() == p.stride() for i, p in enumerate(params))
    twin = net()
    twin.load_state_dict(model.state_dict())
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-2, weight_decay=1e-3, foreach=False)
    twin_opt.load_state_dict(per_param)
    for m, zero, opt in ((model, fp.zero_grad, flat_opt), (twin, twin_opt.zero_grad, twin_opt)):
        zero()
        (m(x) ** 2).mean().backward()
        opt.step()
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    back = fp.flat_state(per_param)  # and back into the flat layout
    assert back["param_groups"][0]["params"] == [0]
    assert torch.equal(fp.per_parameter_state(back)["state"][4]["exp_avg_sq"], per_param["state"][4]["exp_avg_sq"])
    assert fp.flat_state(flat_opt.state_dict()) == flat_opt.state_dict()  # a flat state passes through
    with pytest.raises(ValueError, match="parameter tensors"):
        fp.flat_state({"state": {}, "param_groups": [{"params": [0, 1]}]})
    fp.release()


class Lin(TorchDetector):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.input_shape = (4,)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(), nn.Linear(8, 2))

    def loss(self, x, semi):
        out = (self.net(x) ** 2).sum(dim=1).mean()
        return out, {"fit": out.detach()}

    def score_batch(self, x):
        return (self.net(x) ** 2).sum(dim=1)


def rows(n: int = 50) -> Part:
    rng = np.random.default_rng(0)
    return Part(rng.normal(size=(n, 4)).astype(np.float32), np.zeros(n, np.int64), np.zeros(n, np.int8),
                np.zeros(n, np.int64), np.arange(n))


@pytest.mark.parametrize("fused", [None, False], ids=["fused-auto", "single-tensor"])
@pytest.mark.parametrize("optimizer", [functools.partial(torch.optim.Adam, lr=1e-2, weight_decay=1e-4),
                                       functools.partial(torch.optim.SGD, lr=1e-2, momentum=0.9)],
                         ids=["adam", "sgd"])
def test_trainer_flat_and_per_parameter_give_the_same_run(tmp_path: Path, optimizer, fused) -> None:
    optimizer = functools.partial(optimizer, fused=fused, **({} if fused is None else {"foreach": False}))
    runs = []
    for flat in (True, False):
        tr = Trainer(max_epochs=3, batch_size=8, device="cpu", num_threads=1, progress=False, optimizer=optimizer,
                     flat_params=flat)
        model = tr.fit(Lin(), rows(), None, tmp_path / str(flat), seed=3)
        runs.append((torch.tensor([h["loss"] for h in tr.history]), model.state_dict()))
    tol = {"rtol": 1e-5, "atol": 1e-6} if fused is None else {"rtol": 0, "atol": 0}  # see the test above
    torch.testing.assert_close(runs[0][0], runs[1][0], **tol)
    for (k, a), b in zip(runs[0][1].items(), runs[1][1].values(), strict=True):
        torch.testing.assert_close(a, b, **tol, msg=k)
    # after training every parameter owns its storage again
    assert len({p.untyped_storage().data_ptr() for p in model.parameters()}) == len(list(model.parameters()))


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "per-parameter"])
def test_scheduler_drives_the_optimizer_that_steps_without_a_warning(tmp_path: Path, flat: bool) -> None:
    """MultiStepLR with gamma 0 at milestone 1: epoch 2 runs at lr 0, so 2 epochs end where 1 epoch ends.
    torch warns 'lr_scheduler.step() before optimizer.step()' when the optimizer is stepped behind its back."""
    optimizer = functools.partial(torch.optim.Adam, lr=1e-2, fused=None)
    scheduler = functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[1], gamma=0.0)
    weights = []
    for epochs in (1, 2):
        tr = Trainer(max_epochs=epochs, batch_size=8, device="cpu", num_threads=1, progress=False,
                     optimizer=optimizer, scheduler=scheduler, flat_params=flat)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = tr.fit(Lin(), rows(), None, tmp_path / str(epochs), seed=3)
        weights.append(model.state_dict())
    assert not torch.equal(weights[0]["net.0.weight"], Lin().state_dict()["net.0.weight"])  # epoch 1 trained
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize("before,after", [(True, False), (False, True), (True, True), (False, False)])
def test_a_checkpoint_resumes_with_flat_params_switched(tmp_path: Path, before: bool, after: bool) -> None:
    opts = dict(batch_size=8, device="cpu", num_threads=1, progress=False, checkpoint_every=1,
                optimizer=functools.partial(torch.optim.Adam, lr=1e-2, fused=None),
                scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))
    full = Trainer(max_epochs=4, flat_params=after, **opts)
    reference = full.fit(Lin(), rows(), None, tmp_path / "full", seed=3)

    cut = tmp_path / "cut"
    stop_after = Trainer(max_epochs=4, flat_params=before, **opts)
    original = Trainer._epoch_batches

    def interrupt_in_epoch_3(self, S, gen, device, calls=[0]):  # noqa: B006 - counter shared across calls
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return original(self, S, gen, device)

    Trainer._epoch_batches = interrupt_in_epoch_3
    try:
        with pytest.raises(KeyboardInterrupt):
            stop_after.fit(Lin(), rows(), None, cut, seed=3)
    finally:
        Trainer._epoch_batches = original
    assert load_checkpoint(cut / STATE_FILE)["trainer"]["epoch"] == 2
    resumed = Trainer(max_epochs=4, flat_params=after, resume=True, **opts)
    model = resumed.fit(Lin(), rows(), None, cut, seed=3)
    # the same layout throughout: bit for bit; switched: the fused kernel's last bits differ (see above), but a
    # lost or misplaced optimizer state (Adam restarting its moments) would be off by about 1e-3
    tol = {"rtol": 0, "atol": 0} if before == after else {"rtol": 1e-5, "atol": 1e-6}
    for k, v in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, **tol, msg=k)
    torch.testing.assert_close(torch.tensor([h["loss"] for h in resumed.history]),
                               torch.tensor([h["loss"] for h in full.history]), **tol)


def test_non_elementwise_optimizer_gets_the_separate_parameters(tmp_path: Path) -> None:
    """LBFGS-like or per-layer optimizers would change meaning on one flat tensor: the trainer falls back."""
    seen = []

    class PerLayer(torch.optim.Optimizer):  # a stand-in for LARS/LAMB: its update needs each tensor's norm
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                seen.append([tuple(p.shape) for p in group["params"]])
                for p in group["params"]:
                    p.add_(p.grad / (p.grad.norm() + 1e-12), alpha=-group["lr"])

    tr = Trainer(max_epochs=1, batch_size=50, device="cpu", num_threads=1, progress=False, optimizer=PerLayer)
    tr.fit(Lin(), rows(), None, tmp_path, seed=0)
    assert seen == [[(8, 4), (8,), (2, 8), (2,)]]


def test_fused_null_means_fused_where_torch_has_the_kernel_and_conflicts_are_avoided() -> None:
    p = [nn.Parameter(torch.zeros(3))]
    cpu = torch.device("cpu")
    auto = build_optimizer(functools.partial(torch.optim.Adam, lr=1e-3, fused=None), p, cpu)
    assert auto.defaults["fused"] is (torch.__version__ >= "2.4")
    explicit = build_optimizer(functools.partial(torch.optim.Adam, lr=1e-3, fused=None, foreach=True), p, cpu)
    assert explicit.defaults["foreach"] is True and not explicit.defaults["fused"]
    off = build_optimizer(functools.partial(torch.optim.Adam, lr=1e-3, fused=False), p, cpu)
    assert off.defaults["fused"] is False
    no_kernel = build_optimizer(functools.partial(torch.optim.RMSprop, lr=1e-3, fused=None), p, cpu)
    assert no_kernel.defaults["foreach"] is True  # RMSprop takes no `fused`: the multi-tensor path instead


def test_adamw_from_the_classifier_config_decays_weights_decoupled(tmp_path: Path, compose_cfg) -> None:
    """One AdamW step from the shipped classifier recipe: w ← w·(1 − lr·λ) − lr·g/(|g| + ε) at step 1
    (m̂ = g, v̂ = g²). L2 decay would instead add λ·w to g before the normalisation."""
    cfg = compose_cfg("train", ["model=classifier", "trainer.optimizer.lr=0.1", "trainer.optimizer.weight_decay=0.5"])
    optimizer = instantiate(cfg.trainer.optimizer)
    assert optimizer.func is torch.optim.AdamW and optimizer.keywords["fused"] is None
    lr, wd, eps = 0.1, 0.5, optimizer.keywords.get("eps", 1e-8)
    data = rows(16)
    model = Lin()
    w0 = {k: v.clone() for k, v in model.state_dict().items()}
    probe = Lin()  # the gradient at w0 on the whole set (one batch of 16 = the one step)
    loss, _ = probe.loss(torch.as_tensor(data.X), torch.as_tensor(data.semi))
    loss.backward()
    grads = {f"net.{k}": p.grad for k, p in probe.net.named_parameters()}
    Trainer(max_epochs=1, batch_size=16, device="cpu", num_threads=1, progress=False, optimizer=optimizer
            ).fit(model, data, None, tmp_path, seed=0)
    for k, w in model.state_dict().items():
        g = grads[k]
        decoupled = w0[k] * (1 - lr * wd) - lr * g / (g.abs() + eps)
        torch.testing.assert_close(w, decoupled, rtol=1e-5, atol=1e-6, msg=k)
        g_l2 = g + wd * w0[k]
        l2 = w0[k] - lr * g_l2 / (g_l2.abs() + eps)
        assert (w - l2).abs().max() > 1e-3, k  # the test tells the two apart


def test_lenet_channels_last_matches_nchw_to_float_rounding() -> None:
    for variant, shape in (("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))):
        nets = []
        for cl in (True, False):
            torch.manual_seed(0)
            spec = LeNetSpec(input_shape=shape, variant=variant, channels_last=cl)
            nets.append((spec.encoder(), spec.decoder()))
        (enc_cl, dec_cl), (enc, dec) = nets
        assert enc_cl.conv2.weight.is_contiguous(memory_format=torch.channels_last)
        assert not enc.conv2.weight.is_contiguous(memory_format=torch.channels_last)
        x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
        outs = []
        for e, d in ((enc_cl, dec_cl), (enc, dec)):
            z = e(x)
            x_hat = d(z)
            ((x_hat - x) ** 2).sum().backward()
            outs.append((z, x_hat, e.conv1.weight.grad))
        for a, b in zip(*outs, strict=True):  # relative to the whole tensor: gradients are sums with cancellation
            assert float((a - b).detach().norm() / b.detach().norm()) < 1e-5
