"""EDE: the encoder-decoder-encoder of ESAD (Huang et al., BMVC 2021; METHODS.md §1).

    z = E1(x),  x̂ = D(z),  ẑ = E2(x̂)

    L = L_rec + λ_ent · L_ent + λ_con · L_con
    L_rec = mean_i Σ_j (x̂_ij − x_ij)²                 (mutual information I(X;Z))
    L_ent = mean_i [‖ẑ_i‖ if normal/unlabeled, 1/(‖ẑ_i‖ + ε) if labeled anomaly]
    L_con = mean_i ‖ẑ_i − z_i‖²

Score = per-sample mean squared reconstruction error + ‖ẑ‖₂ (both reported).
"""

from __future__ import annotations

import torch

from semiad_cli.data.split import KNOWN_ANOMALY
from semiad_cli.errors import check_range
from semiad_cli.models.base import TorchDetector
from semiad_cli.models.nets.base import NetSpec


def safe_norm(z: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 norm whose gradient at ``z = 0`` is 0 instead of NaN.

    ``torch.linalg.vector_norm`` masks the zero-norm rows in its backward (tested), in one op
    where ``sqrt((z * z).sum())`` with guards took seven.
    """
    return torch.linalg.vector_norm(z, dim=1)


def ede_losses(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor, z_hat: torch.Tensor, semi: torch.Tensor,
               eps: float, reconstruct_anomalies: bool = True) -> dict[str, torch.Tensor]:
    """The three EDE loss terms of a batch (each a scalar), as specified in METHODS §1.

    ``semi``: +1 known normal, 0 unlabeled, −1 labeled anomaly. Known normals count as normal.
    With ``reconstruct_anomalies=False`` labeled anomalies are left out of L_rec.
    """
    anomalous = semi == KNOWN_ANOMALY
    rec = ((x_hat - x) ** 2).flatten(1).sum(dim=1)
    if not reconstruct_anomalies:
        keep = (~anomalous).float()
        l_rec = (rec * keep).sum() / keep.sum().clamp_min(1.0)
    else:
        l_rec = rec.mean()
    norm = safe_norm(z_hat)
    l_ent = torch.where(anomalous, 1.0 / (norm + eps), norm).mean()
    l_con = ((z_hat - z) ** 2).sum(dim=1).mean()
    return {"rec": l_rec, "ent": l_ent, "con": l_con}


class EDE(TorchDetector):
    """Encoder-decoder-encoder semi-supervised detector.

    Args:
        net: a ``NetSpec`` (``dataset.net``) building encoder and decoder for the data shape.
        shared_encoder: reuse E1 as E2 (the public Julia reference does); default two encoders
            as in the paper text.
        lambda_ent, lambda_con: weights of L_ent and L_con (1, 1 in the paper).
        eps: ε in 1/(‖ẑ‖+ε) for labeled anomalies; avoids the reference's division by zero.
        reconstruct_anomalies: include labeled anomalies in L_rec (reference default: yes).

    Attributes:
        encoder_, decoder_, encoder2_: the three modules (``encoder2_ is encoder_`` when shared).

    Scores: higher = more anomalous; ``score_parts`` gives ``rec`` and ``znorm``.
    """

    def __init__(self, *, net: NetSpec, shared_encoder: bool = False, lambda_ent: float = 1.0,
                 lambda_con: float = 1.0, eps: float = 1e-6, reconstruct_anomalies: bool = True) -> None:
        super().__init__()
        check_range("model.lambda_ent", lambda_ent, 0.0)
        check_range("model.lambda_con", lambda_con, 0.0)
        check_range("model.eps", eps, 0.0)
        self.shared_encoder = shared_encoder
        self.lambda_ent, self.lambda_con, self.eps = lambda_ent, lambda_con, eps
        self.reconstruct_anomalies = reconstruct_anomalies
        self.input_shape = tuple(net.input_shape)
        self.encoder_ = net.encoder()
        self.decoder_ = net.decoder()
        self.encoder2_ = self.encoder_ if shared_encoder else net.encoder()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder_(x)
        x_hat = self.decoder_(z)
        z_hat = self.encoder2_(x_hat)
        return z, x_hat, z_hat

    def loss(self, x: torch.Tensor, semi: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, x_hat, z_hat = self(x)
        parts = ede_losses(x, x_hat, z, z_hat, semi, self.eps, self.reconstruct_anomalies)
        total = parts["rec"] + self.lambda_ent * parts["ent"] + self.lambda_con * parts["con"]
        return total, parts

    def score_parts_batch(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        _, x_hat, z_hat = self(x)
        return {"rec": ((x_hat - x) ** 2).flatten(1).mean(dim=1), "znorm": safe_norm(z_hat)}

    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.score_parts_batch(x)
        return parts["rec"] + parts["znorm"]

