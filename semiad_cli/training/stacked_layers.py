"""How the stacked trainer runs a model's own loss for K seeds at once: ``SlotModel`` (under ``vmap``, any
net) and ``StackedModel`` (K seeds' MLPs as one model by batched matrix products, without ``torch.func.vmap``).

Why: under ``vmap`` each op of a small net pays functorch's batching layer, and BatchNorm's batching rule
alone cost more than the ten seeds' arithmetic (benchmarks/README.md, "Stacked seeds"). Here a copy of the
model has each ``nn.Linear`` replaced by a ``torch.baddbmm`` over weights stacked ``[K, out, in]``, each
``nn.BatchNorm1d`` by one ``F.batch_norm`` over the seeds side by side (``[b, K·C]``: per-channel statistics
are per seed and channel, as K separate calls compute them), and ``Flatten``/``Unflatten`` by torch's own ones
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


_REPLACEMENTS = (StackedLinear, StackedBatchNorm1d)  # the replacements that hold the seeds' tensors


def _stacked(module: nn.Module) -> nn.Module | None:
    """The stacked replacement of one layer, or None when ``module`` has none."""
    if type(module) is nn.Linear:
        return StackedLinear()
    if type(module) is nn.BatchNorm1d:
        return StackedBatchNorm1d(module)
    if type(module) is nn.Flatten and module.start_dim >= 1 and module.end_dim == -1:
        return nn.Flatten(module.start_dim + 1, module.end_dim)  # one axis further in: the seed axis is first
    if type(module) is nn.Unflatten and module.dim >= 1:
        return nn.Unflatten(module.dim + 1, module.unflattened_size)
    return None


class SlotModel:
    """A meta-device copy of the model whose parameters and buffers are set, by name, to the tensors its
    ``loss`` gets before it runs: under ``vmap`` one seed's slice (any net).

    ``torch.func.functional_call`` does the same through ``named_modules`` walks and checks on every call:
    on these small nets that was as much time per step as the arithmetic of ten seeds. Here the
    (module, dict, key) slots are found once and written directly.
    """

    def __init__(self, model: TorchDetector) -> None:
        self.model = copy.deepcopy(model).to("meta")
        self._adapt()
        modules = dict(self.model.named_modules())
        # (table, attribute, name, is_param, broadcast): ``broadcast`` tensors get a batch axis after the seed axis
        self.slots: list[tuple[dict, str, str, bool, bool]] = []
        for kind, named in (("params", model.named_parameters()), ("buffers", model.named_buffers())):
            for name, _ in named:
                owner, _, attr = name.rpartition(".")
                module = modules[owner]
                table = module._parameters if kind == "params" else module._buffers
                self.slots.append((table, attr, name, kind == "params", self._broadcast(module)))

    def _adapt(self) -> None:
        """Change the copy's layers before the slots are found (nothing: ``vmap`` hands over per-seed slices)."""

    def _broadcast(self, module: nn.Module) -> bool:
        return False

    def loss(self, params: dict, buffers: dict, x: torch.Tensor, semi: torch.Tensor,
             draws: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        for table, attr, name, is_param, broadcast in self.slots:
            t = params[name] if is_param else buffers[name]
            table[attr] = t.unsqueeze(1) if broadcast else t
        return self.model.loss(x, semi, **draws)


class StackedModel(SlotModel):
    """A copy of ``model`` with its layers replaced for ``[K, b, ...]`` batches; ``loss`` takes the stacked
    parameters and buffers by name (each ``[K, ...]``) and returns the K seeds' losses, as
    ``vmap`` over the model's own loss does."""

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

    def _adapt(self) -> None:
        """Each layer replaced once, wherever it sits (a shared encoder is one module under two names)."""
        new: dict[int, nn.Module] = {}
        for parent in list(self.model.modules()):
            for name, child in list(parent.named_children()):
                if id(child) not in new and (stacked := _stacked(child)) is not None:
                    stacked.train(child.training)
                    new[id(child)] = stacked
                if id(child) in new:
                    setattr(parent, name, new[id(child)])

    def _broadcast(self, module: nn.Module) -> bool:
        # a replaced layer's tensors are used as stacked; any other (the model's own c, feature ranges) gets
        # a batch axis after the seed axis
        return not isinstance(module, _REPLACEMENTS)
