"""One buffer for all trainable parameters (and one for their gradients), and a lean Adam step on it.

Why: on the small nets of this project a training step is dominated by per-tensor, per-op
overhead, not arithmetic. torch's Adam spends about 0.2–0.5 ms per step in Python and in
one dispatch per op *per parameter tensor*; zeroing gradients costs another loop. With every
parameter a view into one flat buffer, the optimizer sees a single tensor, gradients are
zeroed by one ``zero_()``, and ``adam_step`` applies torch's own single-tensor Adam/AdamW
formulas in eight ops. The numbers are bit-identical to ``torch.optim.Adam``/``AdamW`` with
``foreach=False`` on the separate parameters (``tests/unit/test_flat.py`` checks it on every
run, so a change in torch's formulas fails loudly), and the optimizer's ``state_dict`` keeps
torch's layout (``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints resume either way.
``benchmarks/throughput.py`` measures the gain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

#: group options under which ``adam_step`` reproduces torch's update exactly
_PLAIN = {"amsgrad": False, "maximize": False, "capturable": False, "differentiable": False}


class FlatParameters:
    """Makes ``params`` (same dtype and device, each dense) views into one buffer, grads likewise.

    ``leaf`` is the flat tensor to hand to a torch optimizer; its ``.grad`` is the flat gradient,
    into which autograd accumulates through the per-parameter gradient views. Call ``zero_grad``
    instead of ``optimizer.zero_grad`` (that would drop the views), and ``release`` when training
    ends, so that every parameter owns its storage again (memory formats are kept).
    """

    def __init__(self, params: Sequence[torch.nn.Parameter]) -> None:
        self.params = list(params)
        first = self.params[0]
        total = sum(p.numel() for p in self.params)
        data = torch.empty(total, dtype=first.dtype, device=first.device)
        grad = torch.zeros(total, dtype=first.dtype, device=first.device)
        offset = 0
        for p in self.params:
            view = data.as_strided(p.size(), p.stride(), offset)
            view.copy_(p.detach())
            p.data = view
            p.grad = grad.as_strided(p.size(), p.stride(), offset)
            offset += p.numel()
        self.leaf = data.requires_grad_(True)
        self.leaf.grad = grad

    @classmethod
    def maybe(cls, params: Sequence[torch.nn.Parameter]) -> FlatParameters | None:
        """A ``FlatParameters`` when the parameters can share one buffer, else ``None``."""
        params = list(params)
        if not params or len({(p.dtype, p.device) for p in params}) != 1:
            return None
        if any(p.is_sparse or torch.is_complex(p) or not _dense(p) for p in params):
            return None
        return cls(params)

    def zero_grad(self) -> None:
        self.leaf.grad.zero_()

    def release(self) -> None:
        """Give every parameter its own storage (same values, same strides) and drop the gradients."""
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None
        self.leaf.grad = None


def _dense(p: torch.Tensor) -> bool:
    """True when ``p`` covers exactly ``numel`` contiguous elements in some dimension order."""
    return p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last) or (
        p.dim() == 5 and p.is_contiguous(memory_format=torch.channels_last_3d))


def step_function(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """``adam_step`` when ``optimizer`` is a plain Adam/AdamW over one tensor, else ``optimizer.step``."""
    groups = optimizer.param_groups
    if (type(optimizer) in (torch.optim.Adam, torch.optim.AdamW) and len(groups) == 1
            and len(groups[0]["params"]) == 1 and not groups[0].get("fused")
            and all(groups[0].get(k, v) == v for k, v in _PLAIN.items())):
        return lambda: adam_step(optimizer)
    return optimizer.step


@torch.no_grad()
def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """torch's ``_single_tensor_adam`` (non-capturable, no amsgrad) for the optimizer's one tensor."""
    group = optimizer.param_groups[0]
    param = group["params"][0]
    grad = param.grad
    if grad is None:
        return
    state = optimizer.state[param]
    if not state:
        scalar_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        state["step"] = torch.tensor(0.0, dtype=scalar_dtype)  # on the CPU, as torch keeps it
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    lr, (beta1, beta2) = _scalar(group["lr"]), (_scalar(b) for b in group["betas"])
    eps, weight_decay = group["eps"], group["weight_decay"]
    exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
    step_t += 1
    if weight_decay != 0:
        if group.get("decoupled_weight_decay", False):
            param.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step = step_t.item()
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)


def _scalar(x: float | torch.Tensor) -> float:
    return x.item() if isinstance(x, torch.Tensor) else x
