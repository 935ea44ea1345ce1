"""The optimizer from config, with torch's fused kernel where there is one.

``trainer.optimizer.fused: null`` (the shipped default) means *auto*: ``fused=True`` when torch has
a fused kernel for this optimizer on this device (CPU Adam/AdamW since torch 2.4, CUDA), else
torch's multi-tensor ``foreach`` path. ``true``/``false`` are passed to torch as given, and an
explicit ``foreach`` turns auto off (torch refuses ``fused`` and ``foreach`` together).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable

import torch


def build_optimizer(factory: Callable[..., torch.optim.Optimizer], params: Iterable[torch.Tensor],
                    device: torch.device) -> torch.optim.Optimizer:
    """``factory(params)``, with ``fused=None`` in a partial's keywords resolved as the module docstring says."""
    if isinstance(factory, functools.partial) and "fused" in factory.keywords and factory.keywords["fused"] is None:
        kwargs = {k: v for k, v in factory.keywords.items() if k != "fused"}
        accepted = inspect.signature(factory.func).parameters
        if kwargs.get("foreach") is None and not kwargs.get("differentiable"):
            if "fused" in accepted and fused_available(factory.func, torch.device(device).type):
                kwargs["fused"] = True
            elif "foreach" in accepted:
                kwargs["foreach"] = True
        factory = functools.partial(factory.func, *factory.args, **kwargs)
    return factory(params)


@functools.cache
def fused_available(optimizer_class: type, device_type: str) -> bool:
    """Whether ``optimizer_class(..., fused=True)`` can step on a ``device_type`` tensor (one tiny step, once)."""
    p = torch.zeros(2, device=device_type, requires_grad=True)
    p.grad = torch.ones_like(p)
    try:
        optimizer_class([p], fused=True).step()
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device (e.g. CPU before torch 2.4)
        return False
    return True
