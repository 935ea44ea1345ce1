"""The short-path BatchNorm layers compute exactly what torch's BatchNorm computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semiad_cli.models.ede import safe_norm
from semiad_cli.models.nets.layers import BatchNorm1d, BatchNorm2d


@pytest.mark.parametrize("ours,theirs,shape", [
    (BatchNorm1d, nn.BatchNorm1d, (16, 5)),
    (BatchNorm1d, nn.BatchNorm1d, (16, 5, 3)),
    (BatchNorm2d, nn.BatchNorm2d, (8, 4, 6, 6)),
])
@pytest.mark.parametrize("affine", [False, True])
def test_batchnorm_is_bit_identical_to_torch_in_train_and_eval(ours, theirs, shape, affine) -> None:
    a, b = ours(shape[1], eps=1e-4, affine=affine), theirs(shape[1], eps=1e-4, affine=affine)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):  # running statistics evolve the same way
        x = torch.randn(*shape, generator=gen).requires_grad_(True)
        xa, xb = x.detach().clone().requires_grad_(True), x.detach().clone().requires_grad_(True)
        ya, yb = a(xa), b(xb)
        (ya * torch.arange(ya.numel()).view_as(ya)).sum().backward()
        (yb * torch.arange(yb.numel()).view_as(yb)).sum().backward()
        assert torch.equal(ya, yb) and torch.equal(xa.grad, xb.grad)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    a.eval(), b.eval()
    x = torch.randn(*shape, generator=gen)
    assert torch.equal(a(x), b(x))


def test_batchnorm_rejects_a_single_row_in_training_like_torch() -> None:
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3)(torch.randn(1, 3))


def test_safe_norm_has_zero_gradient_at_zero() -> None:
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    n = safe_norm(z)
    n.sum().backward()
    assert n.tolist() == [5.0, 0.0]
    assert z.grad.tolist() == [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
