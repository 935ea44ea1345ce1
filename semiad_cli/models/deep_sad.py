"""Deep SAD and Deep SVDD (Ruff et al., ICLR 2020 / ICML 2018; METHODS.md §3).

A bias-free encoder φ maps x to a code; the hypersphere center c is fixed from
the initial forward pass. Per-sample loss, with semi label y (+1 known normal,
0 unlabeled, −1 labeled anomaly):

    unlabeled:  ‖φ(x) − c‖²
    labeled:    η · (‖φ(x) − c‖² + ε)^y        (y = −1 pushes labeled anomalies away)

Score = ‖φ(x) − c‖² (higher = more anomalous). Deep SVDD is the same model
with every label ignored (``use_labels=False``): all rows count as unlabeled.

Differences from the reference code (lukasruff/Deep-SAD-PyTorch), on purpose:

* Autoencoder pre-training really initialises the encoder: the encoder trained
  inside the autoencoder *is* ``encoder_`` (no state-dict copy whose key
  prefixes could silently miss, the reference's no-op bug).
* c: as the reference, the mean of φ(x) over **all** training rows (labeled
  ones included) in eval mode without gradients; components with |c_i| < 0.1 are
  pushed to ±0.1. The reference leaves an exact 0 at 0; we push it to +0.1.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from semiad_cli.data.split import UNLABELED, Part
from semiad_cli.errors import SemiadError, TrainingError, check_range
from semiad_cli.models.base import TorchDetector
from semiad_cli.models.nets.base import NetSpec
from semiad_cli.training.loop import Trainer

log = logging.getLogger(__name__)


def deep_sad_loss(dist: torch.Tensor, semi: torch.Tensor, eta: float, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample Deep SAD loss from squared distances ``dist`` ``(b,)`` and semi labels ``(b,)``."""
    y = semi.to(dist.dtype)
    labeled = semi != UNLABELED
    # for unlabeled rows y = 0 makes the power 1, finite with a zero gradient: torch.where stays NaN-free
    return torch.where(labeled, eta * (dist + eps) ** y, dist)


def init_center(codes: torch.Tensor, min_abs: float = 0.1) -> torch.Tensor:
    """Mean code, with components closer than ``min_abs`` to 0 pushed to ±``min_abs`` (0 → +min_abs).

    A component near 0 could be matched trivially by zero weights (Ruff et al.).
    """
    c = codes.mean(dim=0)
    small = c.abs() < min_abs
    return torch.where(small, torch.where(c < 0, -min_abs, min_abs).to(c.dtype), c)


class Autoencoder(TorchDetector):
    """``decoder(encoder(x))`` fitted on Σ_j (x̂_j − x_j)², mean over the batch: Deep SAD's pre-training.

    The modules are the caller's own (no copies), so training this trains them. Scores: the per-sample
    reconstruction error.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.encoder_, self.decoder_, self.input_shape = encoder, decoder, tuple(input_shape)

    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        return ((self.decoder_(self.encoder_(x)) - x) ** 2).flatten(1).sum(dim=1)

    def loss(self, x: torch.Tensor, semi: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.score_batch(x).mean(), {}


class DeepSAD(TorchDetector):
    """Deep SAD (``use_labels=True``) / Deep SVDD (``use_labels=False``) one-class detector.

    Args:
        net: ``NetSpec`` (``dataset.net``); use bias-free nets (the shipped MLP/LeNet specs are, unless
            ``net.batchnorm_affine=true``, whose BatchNorm shift is a bias) or the hypersphere can collapse
            to a constant map.
        eta: η, weight of labeled rows (Deep SAD paper: 1).
        eps: ε in (dist + ε)^y, keeps 1/dist finite.
        use_labels: False → Deep SVDD: semi labels ignored, all rows unlabeled.
        center_eps: components of c with |c_i| below this are set to ±center_eps.
        pretrain_epochs: autoencoder (encoder + ``net.decoder()``) pre-training epochs run in
            ``init_from_data`` before c is computed; 0 disables it.
        pretrain_lr, pretrain_weight_decay, pretrain_batch_size, pretrain_lr_milestones: Adam
            settings of the pre-training (reference: lr 1e-4, wd 0.5e-6, batch 128, milestone 50,
            ×0.1 after each milestone; ours drops the lr *after* the milestone epoch).

    Attributes:
        encoder_: φ. ``c_``: center, a buffer (so it is in every checkpoint); all zeros = unfitted.
        pretrain_history_: mean reconstruction loss per pre-training epoch (not checkpointed).

    Scores: ‖φ(x) − c‖², higher = more anomalous.
    """

    loss_takes_seed_axis = True

    def __init__(self, *, net: NetSpec, eta: float = 1.0, eps: float = 1e-6, use_labels: bool = True,
                 center_eps: float = 0.1, pretrain_epochs: int = 0, pretrain_lr: float = 1e-4,
                 pretrain_weight_decay: float = 0.5e-6, pretrain_batch_size: int = 128,
                 pretrain_lr_milestones: Sequence[int] = ()) -> None:
        super().__init__()
        check_range("model.eta", eta, 0.0)
        check_range("model.eps", eps, 0.0)
        check_range("model.center_eps", center_eps, 0.0)
        check_range("model.pretrain_epochs", pretrain_epochs, 0)
        check_range("model.pretrain_lr", pretrain_lr, 0.0)
        check_range("model.pretrain_weight_decay", pretrain_weight_decay, 0.0)
        check_range("model.pretrain_batch_size", pretrain_batch_size, 2)
        self.eta, self.eps, self.use_labels, self.center_eps = float(eta), float(eps), bool(use_labels), center_eps
        self.pretrain_epochs, self.pretrain_lr = int(pretrain_epochs), float(pretrain_lr)
        self.pretrain_weight_decay, self.pretrain_batch_size = float(pretrain_weight_decay), int(pretrain_batch_size)
        self.pretrain_lr_milestones = [int(m) for m in pretrain_lr_milestones]
        self.net_spec = net
        self.input_shape = tuple(net.input_shape)
        self.encoder_ = net.encoder()
        self.register_buffer("c_", torch.zeros(int(net.rep_dim)))
        self.pretrain_history_: list[float] = []

    # ------------------------------------------------------------------ set-up
    def init_from_data(self, X: torch.Tensor, semi: torch.Tensor) -> None:
        """Optional autoencoder pre-training of ``encoder_``, then the center c (fresh starts only)."""
        if self.pretrain_epochs:
            self.pretrain(X)
        self.c_.copy_(self.compute_center(X))

    @torch.no_grad()
    def compute_center(self, X: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """c from one forward pass over ``X`` in eval mode (as the reference's ``init_center_c``)."""
        was_training = self.training
        self.eval()
        try:
            codes = torch.cat([self.encoder_(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
        finally:
            self.train(was_training)
        return init_center(codes.float(), self.center_eps)

    def pretrain(self, X: torch.Tensor) -> list[float]:
        """Train ``encoder_`` + a fresh ``net.decoder()`` as an ``Autoencoder`` through the one ``Trainer``.

        The trainer comes from the ``pretrain_*`` options (Adam, fused where available; MultiStepLR ×0.1
        after each milestone epoch), keeps the current thread count and device, and checkpoints into a
        temporary folder (pre-training runs again on a fresh start, never on resume). The encoder is
        updated in place, so its pre-trained weights are what Deep SAD starts from. The batch-order seed
        is drawn from torch's global RNG (seeded by the task), so runs repeat.
        """
        ae = Autoencoder(self.encoder_, self.net_spec.decoder().to(X.device), self.input_shape)
        trainer = Trainer(
            max_epochs=self.pretrain_epochs, batch_size=self.pretrain_batch_size,
            optimizer=functools.partial(torch.optim.Adam, lr=self.pretrain_lr,
                                        weight_decay=self.pretrain_weight_decay, fused=None),
            scheduler=functools.partial(torch.optim.lr_scheduler.MultiStepLR,
                                        milestones=self.pretrain_lr_milestones, gamma=0.1),
            device=str(X.device), num_threads=torch.get_num_threads(), checkpoint_every=self.pretrain_epochs + 1)
        n = len(X)
        rows = Part(X.cpu().numpy(), np.zeros(n, np.int8), np.zeros(n, np.int8), np.zeros(n, np.int64), np.arange(n))
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        was_training = self.training
        try:
            with tempfile.TemporaryDirectory(prefix="semiad-pretrain-") as tmp:
                trainer.fit(ae, rows, None, Path(tmp), seed=seed)
        except TrainingError as err:
            raise TrainingError(f"autoencoder pre-training diverged ({str(err).split(';')[0]}); "
                                f"lower model.pretrain_lr") from None
        finally:
            self.train(was_training)
        self.pretrain_history_ = [h["loss"] for h in trainer.history]
        if self.pretrain_history_:
            log.info("autoencoder pre-training: %d epochs, reconstruction loss %.4g -> %.4g", self.pretrain_epochs,
                     self.pretrain_history_[0], self.pretrain_history_[-1])
        return self.pretrain_history_

    # ------------------------------------------------------------------ loss and score
    def _dist(self, x: torch.Tensor) -> torch.Tensor:
        return ((self.encoder_(x) - self.c_) ** 2).sum(dim=-1)

    def _check_center(self) -> None:
        # Checked where scores are asked for, not in ``loss``: the trainer sets c before the first step, and
        # a host-side check in the loss would stop the stacked trainer's vmap (training/stacked.py).
        if not bool((self.c_ != 0).any()):
            raise SemiadError("DeepSAD has no center c yet: train it (semiad train) or load a checkpoint first")

    def loss(self, x: torch.Tensor, semi: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        dist = self._dist(x)
        labels = semi if self.use_labels else torch.zeros_like(semi)
        losses = deep_sad_loss(dist, labels, self.eta, self.eps)
        return losses.mean(dim=-1), {"dist": dist.detach().mean(dim=-1)}

    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        self._check_center()
        return self._dist(x)
