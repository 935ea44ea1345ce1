"""Binary normal-vs-anomaly classifier (Lau et al. 2025, docs/methods.md, classifier).

Normal = unlabeled and known-normal rows (semi ∈ {0, +1}), target t = +1; anomaly =
labeled anomalies (semi = −1, real or synthetic from the ``synthetic`` config group),
t = −1. With ``synthetic.ratio=0`` this is the plain ("vanilla") classifier; with
synthetic anomalies it is Lau et al.'s method.

    hinge:  L = mean_i max(0, 1 − t_i · f(x_i)),      score = 1 − f(x)
    bce:    L = BCE(σ(f(x_i)), (t_i + 1) / 2),        score = 1 − σ(f(x))

f is the net's single output; higher score = more anomalous (normal data are pushed to
f ≥ 1 or σ(f) → 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from semiad_cli.data.split import KNOWN_ANOMALY
from semiad_cli.errors import ConfigError
from semiad_cli.models.base import TorchDetector
from semiad_cli.models.nets.base import NetSpec

LOSSES = ("hinge", "bce")


def targets(semi: torch.Tensor) -> torch.Tensor:
    """±1 targets: +1 normal/unlabeled, −1 labeled anomaly."""
    return torch.where(semi == KNOWN_ANOMALY, -1.0, 1.0).to(torch.float32)


def hinge_loss(f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """mean(max(0, 1 − t·f)) for outputs ``f`` and ±1 targets ``t``, both ``(b,)``."""
    return F.relu(1.0 - t * f).mean(dim=-1)


def bce_loss(f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of σ(f) against normal = 1, anomaly = 0 (computed from logits, stably)."""
    return F.binary_cross_entropy_with_logits(f, (t + 1.0) / 2.0, reduction="none").mean(dim=-1)


class Classifier(TorchDetector):
    """Normal vs. (known + synthetic) anomalies, one real-valued output.

    Args:
        net: a ``NetSpec``; its encoder is the classifier body. Tabular default (config):
            MLP d → 500 → 500 → 1, LeakyReLU, biases, no BatchNorm. When the encoder's
            ``rep_dim`` is not 1 (e.g. ``model.net=${dataset.net}``, a LeNet for images), a
            ``Linear(rep_dim, 1)`` head with bias is added.
        loss: ``hinge`` (±1 targets, default) or ``bce``.

    Attributes:
        body_: the encoder; head_: the linear head or ``Identity``.

    Scores: ``1 − f(x)`` (hinge) or ``1 − σ(f(x))`` (bce); higher = more anomalous.
    """

    # d-500-500-1 at batch 1024 is arithmetic-bound: 10 seeds stacked took 10.9-11.7x one seed's epoch on a
    # CPU at 1 thread (benchmarks/README.md), so the stacked launcher trains them one after another there
    stacks_on_cpu = False
    loss_takes_seed_axis = True

    def __init__(self, *, net: NetSpec, loss: str = "hinge") -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"model.loss={loss!r} is unknown; choose one of {list(LOSSES)}")
        self.loss_name = loss
        self.input_shape = tuple(net.input_shape)
        self.body_ = net.encoder()
        self.head_ = nn.Identity() if int(net.rep_dim) == 1 else nn.Linear(int(net.rep_dim), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw output f(x), shape ``(b,)`` (``[K, b]`` for the stacked trainer's ``[K, b, ...]`` batches)."""
        return self.head_(self.body_(x)).squeeze(-1)

    def loss(self, x: torch.Tensor, semi: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        f = self(x)
        t = targets(semi)
        total = hinge_loss(f, t) if self.loss_name == "hinge" else bce_loss(f, t)
        with torch.no_grad():  # both losses decide "normal" at f > 0
            err = ((f > 0) != (t > 0)).float().mean(dim=-1)
        return total, {"error_rate": err}

    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        f = self(x).float()
        return 1.0 - (f if self.loss_name == "hinge" else torch.sigmoid(f))
