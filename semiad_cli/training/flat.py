"""One buffer for all trainable parameters (and one for their gradients), updated by torch's optimizer as one tensor.

Why: on the small nets of this project a training step is dominated by per-tensor overhead, not
arithmetic: an optimizer step dispatches its ops once per parameter tensor, and zeroing gradients
is another loop. With every parameter a view into one flat buffer, torch's own optimizer (fused
where available, see ``training/optim.py``) updates a single tensor through ``optimizer.step``
(so hooks and LR schedulers see every step), and gradients are zeroed by one ``zero_()``.
``benchmarks/throughput.py --variant per_param=trainer.flat_params=false`` measures what it buys.

Only optimizers whose update is elementwise (``ELEMENTWISE``) give the same update on one flat
tensor as on the parameters one by one; the trainer falls back to the separate parameters for
any other. Checkpoints hold the optimizer state in the per-parameter layout
(``per_parameter_state``), which ``flat_state`` turns back into the flat layout: a run started with
``trainer.flat_params=true`` resumes with ``false`` and vice versa.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

#: optimizers whose update of an element depends only on that element's gradient and state (and
#: on shared scalars such as the step): one flat tensor gets exactly the per-parameter update
ELEMENTWISE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop, torch.optim.Adagrad,
               torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam)


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
        self.numel = sum(p.numel() for p in self.params)
        data = torch.empty(self.numel, dtype=first.dtype, device=first.device)
        grad = torch.zeros(self.numel, dtype=first.dtype, device=first.device)
        self.offsets: list[int] = []
        offset = 0
        for p in self.params:
            view = data.as_strided(p.size(), p.stride(), offset)
            view.copy_(p.detach())
            p.data = view
            p.grad = grad.as_strided(p.size(), p.stride(), offset)
            self.offsets.append(offset)
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

    # ------------------------------------------------------------------ optimizer state layouts
    def _per_element(self, key: str, values: Sequence[Any]) -> bool:
        """True when ``values`` (one per parameter) are per-element state, shaped like their parameters."""
        return (key != "step" and all(isinstance(v, torch.Tensor) for v in values)
                and all(v.shape == p.shape for v, p in zip(values, self.params, strict=True)))

    def per_parameter_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The flat optimizer's ``state_dict`` as the same optimizer over the separate parameters holds it
        (per-element state as views into the flat state; scalars such as ``step`` copied, since each
        parameter's optimizer state updates its own)."""
        (group,) = state["param_groups"]
        flat = state["state"].get(group["params"][0], {})

        def part(key: str, value: Any, p: torch.Tensor, offset: int) -> Any:
            if isinstance(value, torch.Tensor) and key != "step" and value.numel() == self.numel:
                return value.as_strided(p.size(), p.stride(), value.storage_offset() + offset)
            return value.clone() if isinstance(value, torch.Tensor) else value

        per_param = {i: {k: part(k, v, p, offset) for k, v in flat.items()}
                     for i, (p, offset) in enumerate(zip(self.params, self.offsets, strict=True))} if flat else {}
        return {"state": per_param, "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def flat_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """A per-parameter ``state_dict`` (from ``per_parameter_state`` or a run without flat parameters)
        in the flat layout; a flat one passes through. ``ValueError`` when it does not fit."""
        groups = state["param_groups"]
        if len(groups) != 1:
            raise ValueError(f"{len(groups)} parameter groups, the flat buffer takes one")
        ids = groups[0]["params"]
        flat_group = {**groups[0], "params": [0]}
        if len(ids) == 1 and len(self.params) > 1:  # already flat
            return state
        if len(ids) != len(self.params):
            raise ValueError(f"state for {len(ids)} parameter tensors, the model has {len(self.params)}")
        states = [state["state"].get(i, {}) for i in ids]
        if not any(states):
            return {"state": {}, "param_groups": [flat_group]}
        if not all(s.keys() == states[0].keys() for s in states):
            raise ValueError("some parameters have optimizer state and some have none")
        merged: dict[str, Any] = {}
        for key in states[0]:
            values = [s[key] for s in states]
            if self._per_element(key, values):
                buf = torch.empty(self.numel, dtype=values[0].dtype, device=values[0].device)
                for v, p, offset in zip(values, self.params, self.offsets, strict=True):
                    buf.as_strided(p.size(), p.stride(), offset).copy_(v)
                merged[key] = buf
            elif all(_same(v, values[0]) for v in values):
                merged[key] = values[0].clone() if isinstance(values[0], torch.Tensor) else values[0]
            else:
                raise ValueError(f"optimizer state {key!r} differs between parameters")
        return {"state": {0: merged}, "param_groups": [flat_group]}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu()))
    return a == b


def _dense(p: torch.Tensor) -> bool:
    """True when ``p`` covers exactly ``numel`` contiguous elements in some dimension order."""
    return p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last) or (
        p.dim() == 5 and p.is_contiguous(memory_format=torch.channels_last_3d))
