"""Layers shared by the nets: BatchNorm with a short training-mode path.

``nn.BatchNorm1d/2d.forward`` spends about 25 µs per call on Python checks before the one
``torch.batch_norm`` it runs, which is more than the arithmetic on this project's small
batches (EDE calls BatchNorm ten times per step). In training mode with running statistics
and a fixed momentum (how every net here uses it) these layers call ``torch.batch_norm``
directly, exactly as ``F.batch_norm`` would: same op, same arguments, same numbers, same
``state_dict``. Every other case goes through torch's own forward.
"""

from __future__ import annotations

import torch
from torch import nn


def _train_forward(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    if x.numel() == x.shape[1]:  # F.batch_norm's own check: one value per channel cannot be normalised
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
    bn.num_batches_tracked.add_(1)
    return torch.batch_norm(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, True, bn.momentum, bn.eps,
                            torch.backends.cudnn.enabled)


def _lean(bn: nn.modules.batchnorm._BatchNorm) -> bool:
    return bn.training and bn.track_running_stats and bn.momentum is not None and bn.num_batches_tracked is not None


class BatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with the short training path (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _train_forward(self, x) if _lean(self) and x.dim() in (2, 3) else super().forward(x)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the short training path (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _train_forward(self, x) if _lean(self) and x.dim() == 4 else super().forward(x)
