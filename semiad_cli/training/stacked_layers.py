"""K seeds' MLPs run as one model by batched matrix products, without ``torch.func.vmap``.

Why: under ``vmap`` each op of a small net pays functorch's batching layer, and BatchNorm's batching rule
alone cost more than the ten seeds' arithmetic (benchmarks/README.md, "Stacked seeds"). Here a copy of the
model has each ``nn.Linear`` replaced by a ``torch.baddbmm`` over weights stacked ``[K, out, in]``, each
``nn.BatchNorm1d`` by one ``F.batch_norm`` over the seeds side by side (``[b, K·C]``: per-channel statistics
are per seed and channel, as K separate calls compute them), and ``Flatten``/``Unflatten`` by their versions
one axis further in. Elementwise layers (activations) run as they are. The model's own ``loss`` then runs
once on ``[K, b, ...]`` batches: it must reduce over trailing axes only (``TorchDetector.loss_takes_seed_axis``),
and its own buffers (Deep SAD's c, EDE's feature ranges) are seen as ``[K, 1, ...]`` so that they broadcast
over the batch axis.

Only models built from the layers in ``_ELEMENTWISE`` and ``_STACKED`` take this path (``StackedModel.maybe``);
any other (conv nets, dropout: its draws would be shared between the seeds) trains under ``vmap``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from semiad_cli.models.base import TorchDetector

_ELEMENTWISE = (nn.Identity, nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.ELU, nn.Sigmoid)


class StackedLinear(nn.Module):
    """``nn.Linear`` for ``[K, b, in]`` inputs and ``[K, out, in]`` weights (``[K, out]`` bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.transpose(1, 2)
        return torch.bmm(x, w) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), x, w)


class StackedBatchNorm1d(nn.Module):
    """``nn.BatchNorm1d`` on ``[K, b, C]``: one ``F.batch_norm`` over ``[b, K·C]``, whose running statistics
    (and affine weights) are the seeds' ``[K, C]`` buffers viewed as ``[K·C]``, updated in place."""

    def __init__(self, bn: nn.BatchNorm1d) -> None:
        super().__init__()
        self.eps, self.momentum, self.track_running_stats = bn.eps, bn.momentum, bn.track_running_stats
        for name in ("weight", "bias"):
            self.register_parameter(name, None)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, b, C = x.shape
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)  # as nn.BatchNorm1d: the count of every seed
            if self.momentum is None:  # cumulative moving average (the count is the same for every seed)
                factor = 1.0 / float(self.num_batches_tracked[0])
        use_batch = self.training or self.running_mean is None
        flat = [None if t is None else t.reshape(-1) for t in (self.running_mean, self.running_var, self.weight,
                                                              self.bias)]
        y = F.batch_norm(x.transpose(0, 1).reshape(b, K * C), *flat, use_batch, factor, self.eps)
        return y.view(b, K, C).transpose(0, 1)


class StackedFlatten(nn.Module):
    """``nn.Flatten(start_dim)`` one axis further in (the seed axis comes first)."""

    def __init__(self, flatten: nn.Flatten) -> None:
        super().__init__()
        self.start_dim, self.end_dim = flatten.start_dim + 1, flatten.end_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(self.start_dim, self.end_dim)


class StackedUnflatten(nn.Module):
    """``nn.Unflatten(dim, sizes)`` one axis further in."""

    def __init__(self, unflatten: nn.Unflatten) -> None:
        super().__init__()
        self.dim, self.sizes = unflatten.dim + 1, unflatten.unflattened_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(self.dim, self.sizes)


_REPLACEMENTS = (StackedLinear, StackedBatchNorm1d, StackedFlatten, StackedUnflatten)


def _stacked(module: nn.Module) -> nn.Module | None:
    """The stacked replacement of one layer, or None when ``module`` has none."""
    if type(module) is nn.Linear:
        return StackedLinear()
    if type(module) is nn.BatchNorm1d:
        return StackedBatchNorm1d(module)
    if type(module) is nn.Flatten and module.start_dim >= 1 and module.end_dim == -1:
        return StackedFlatten(module)
    if type(module) is nn.Unflatten and module.dim >= 1:
        return StackedUnflatten(module)
    return None


class StackedModel:
    """A copy of ``model`` with its layers replaced for ``[K, b, ...]`` batches; ``loss`` takes the stacked
    parameters and buffers by name (each ``[K, ...]``) and returns the K seeds' losses, as
    ``vmap`` over the model's own loss does."""

    def __init__(self, model: TorchDetector) -> None:
        self.model = copy.deepcopy(model).to("meta")
        self._replace(self.model)
        modules = dict(self.model.named_modules())
        # (table, attribute, name, is_param, broadcast): a tensor of a replaced layer is used as stacked;
        # any other (the model's own c, feature ranges) gets a batch axis after the seed axis
        self.slots: list[tuple[dict, str, str, bool, bool]] = []
        for kind, named in (("params", model.named_parameters()), ("buffers", model.named_buffers())):
            for name, _ in named:
                owner, _, attr = name.rpartition(".")
                module = modules[owner]
                table = module._parameters if kind == "params" else module._buffers
                broadcast = not isinstance(module, _REPLACEMENTS)
                self.slots.append((table, attr, name, kind == "params", broadcast))

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """True when every layer of ``model`` runs stacked here and its loss keeps the seed axis."""
        if not (isinstance(model, TorchDetector) and model.loss_takes_seed_axis):
            return False
        for module in model.modules():
            if module is model or type(module) is nn.Sequential or isinstance(module, _ELEMENTWISE):
                continue
            if _stacked(module) is None:
                return False
        return True

    @classmethod
    def maybe(cls, model: TorchDetector) -> StackedModel | None:
        return cls(model) if cls.supports(model) else None

    def _replace(self, module: nn.Module) -> None:
        for name, child in module.named_children():
            new = _stacked(child)
            if new is None:
                self._replace(child)
            else:
                new.train(child.training)
                setattr(module, name, new)

    def loss(self, params: dict, buffers: dict, x: torch.Tensor, semi: torch.Tensor,
             draws: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        for table, attr, name, is_param, broadcast in self.slots:
            t = params[name] if is_param else buffers[name]
            table[attr] = t.unsqueeze(1) if broadcast else t
        return self.model.loss(x, semi, **draws)
