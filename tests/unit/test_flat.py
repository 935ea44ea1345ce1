"""One-buffer parameters and the lean Adam step: the same numbers as torch's per-parameter optimizers."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from semiad_cli.data.split import Part
from semiad_cli.models.base import TorchDetector
from semiad_cli.models.nets.lenet import LeNetSpec
from semiad_cli.training.flat import FlatParameters, adam_step, step_function
from semiad_cli.training.loop import Trainer


def net() -> nn.Module:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, bias=True).to(memory_format=torch.channels_last)  # a non-default layout too
    return nn.Sequential(conv, nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.BatchNorm1d(5), nn.LeakyReLU(),
                         nn.Linear(5, 1, bias=False))


def train_steps(model: nn.Module, make_opt, flat: bool, steps: int = 25, lr_drop_at: int = 10) -> list[float]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 2, 6, 6, generator=gen)
    params = [p for p in model.parameters() if p.requires_grad]
    fp = FlatParameters.maybe(params) if flat else None
    opt = make_opt([fp.leaf] if fp is not None else params)
    step = step_function(opt)
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
        step()
        losses.append(loss.item())
    if fp is not None:
        fp.release()
    return losses


@pytest.mark.parametrize("make_opt", [
    functools.partial(torch.optim.Adam, lr=1e-2, weight_decay=1e-3),
    functools.partial(torch.optim.Adam, lr=1e-2),
    functools.partial(torch.optim.AdamW, lr=1e-2, weight_decay=1e-2, betas=(0.8, 0.99), eps=1e-6),
], ids=["adam-wd", "adam", "adamw"])
def test_flat_adam_is_bit_identical_to_torch_per_parameter_loop(make_opt) -> None:
    ref_model, flat_model = net(), net()
    ref = train_steps(ref_model, functools.partial(make_opt, foreach=False), flat=False)
    ours = train_steps(flat_model, make_opt, flat=True)
    assert ours == ref
    for (name, a), b in zip(ref_model.state_dict().items(), flat_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_lean_step_is_used_only_where_it_is_exact() -> None:
    p = torch.zeros(3, requires_grad=True)
    assert step_function(torch.optim.Adam([p])).__name__ == "<lambda>"
    assert step_function(torch.optim.AdamW([p])).__name__ == "<lambda>"
    for opt in (torch.optim.Adam([p], amsgrad=True), torch.optim.SGD([p], lr=0.1),
                torch.optim.Adam([p, torch.zeros(2, requires_grad=True)])):
        assert step_function(opt) == opt.step


def test_lean_step_state_resumes_in_torch_adam_and_back() -> None:
    """Same state layout as torch: a checkpoint written by one continues in the other."""
    torch.manual_seed(0)
    a, b = torch.randn(7, requires_grad=True), None
    b = a.detach().clone().requires_grad_(True)
    opt_a, opt_b = torch.optim.Adam([a], lr=0.1, weight_decay=0.01), torch.optim.Adam([b], lr=0.1, weight_decay=0.01)
    for i in range(6):
        for p in (a, b):
            p.grad = torch.sin(p.detach() * (i + 1))
        adam_step(opt_a)  # lean
        opt_b.step()      # torch
        if i == 2:  # swap states through state_dict, as a resume does
            sa, sb = opt_a.state_dict(), opt_b.state_dict()
            opt_a.load_state_dict(sb)
            opt_b.load_state_dict(sa)
    assert torch.equal(a, b)


def test_parameters_are_views_and_own_storage_after_release() -> None:
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    fp = FlatParameters(params)
    assert all(p.untyped_storage().data_ptr() == fp.leaf.untyped_storage().data_ptr() for p in params)
    assert params[0].is_contiguous(memory_format=torch.channels_last)  # layout kept
    fp.leaf.data.add_(1.0)  # writing the buffer writes the parameters
    assert torch.equal(params[-1], before["5.weight"] + 1.0)
    fp.release()
    assert len({p.untyped_storage().data_ptr() for p in params}) == len(params)
    assert params[0].is_contiguous(memory_format=torch.channels_last)
    assert all(p.grad is None for p in params)


def test_mixed_dtypes_are_not_flattened() -> None:
    assert FlatParameters.maybe([nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))]) \
        is None
    assert FlatParameters.maybe([]) is None


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


@pytest.mark.parametrize("optimizer", [functools.partial(torch.optim.Adam, lr=1e-2, weight_decay=1e-4),
                                       functools.partial(torch.optim.SGD, lr=1e-2, momentum=0.9)],
                         ids=["adam", "sgd"])
def test_trainer_flat_and_per_parameter_give_identical_runs(tmp_path: Path, optimizer) -> None:
    rng = np.random.default_rng(0)
    train = Part(rng.normal(size=(50, 4)).astype(np.float32), np.zeros(50, np.int64), np.zeros(50, np.int8),
                 np.zeros(50, np.int64), np.arange(50))
    runs = []
    for flat in (True, False):
        opt = optimizer if flat else functools.partial(optimizer, foreach=False)
        tr = Trainer(max_epochs=3, batch_size=8, device="cpu", num_threads=1, progress=False, optimizer=opt,
                     flat_params=flat)
        model = tr.fit(Lin(), train, None, tmp_path / str(flat), seed=3)
        runs.append(([h["loss"] for h in tr.history], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1].values(), runs[1][1].values(), strict=True))
    # after training every parameter owns its storage again
    assert len({p.untyped_storage().data_ptr() for p in model.parameters()}) == len(list(model.parameters()))


@pytest.mark.parametrize("variant", ["mnist", "cifar10"])
def test_lenet_channels_last_matches_nchw_to_float_rounding(variant: str) -> None:
    shape = (1, 28, 28) if variant == "mnist" else (3, 32, 32)
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
        assert float((a - b).norm() / b.norm()) < 1e-5
