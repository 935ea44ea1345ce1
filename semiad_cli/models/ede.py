"""EDE: the encoder-decoder-encoder of ESAD (Huang et al., BMVC 2021; docs/methods.md, METHODS.md §1).

    z = E1(x),  x̂ = D(z),  ẑ = E2(x̂)

    L = L_rec + λ_ent · L_ent + λ_con · L_con
    L_rec = mean_i Σ_j (x̂_ij − t_ij)²      t = x for normals; for labeled anomalies see
                                            ``anomaly_reconstruction`` (skip | input | noise)
    L_ent = mean_i [‖ẑ_i‖ if normal/unlabeled, 1/(‖ẑ_i‖ + ε) if labeled anomaly]
    L_con = mean over batch and code dims of (ẑ − z)²  (``consistency=mean``, the reference)
            or mean_i ‖ẑ_i − z_i‖²                     (``consistency=sum``)

Score (``score``): ``loss`` Σ_j (x̂_j − x_j)² + ‖ẑ‖ (the training loss's scale), ``reference``
mean_j (x̂_j − x_j)² + ‖ẑ‖ (the Julia reference), ``standardized`` (``rec`` and ``znorm`` each
z-scored with the training normals' mean and std) or ``standardized_rel`` (the same with
``rec_rel`` = Σ_j (x̂_j − x_j)² / ‖x‖² added: an input with little signal, such as a thin digit 1,
is reconstructed with a small error in absolute terms but not relative to its own size); the
``standardized*`` scores weigh each z-score by ``part_weights`` (1 each unless a dataset's config says
otherwise). Every part is always reported: ``rec`` (the per-sample sum), ``rec_rel`` and ``znorm``.
docs/ede.md says why the defaults are what they are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import torch

from semiad_cli.data.split import KNOWN_ANOMALY
from semiad_cli.errors import CheckpointError, ConfigError, check_positive_int, check_range
from semiad_cli.models.base import TorchDetector
from semiad_cli.models.nets.base import NetSpec

log = logging.getLogger(__name__)

ANOMALY_RECONSTRUCTION = ("skip", "input", "noise")
SCORES = ("loss", "reference", "standardized", "standardized_rel")
PARTS = ("rec", "rec_rel", "znorm")  # the order of part_mean_ / part_std_
# the parts each z-scored score sums (in PARTS order, as before rec_rel existed)
STANDARDIZED_PARTS = {"standardized": ("rec", "znorm"), "standardized_rel": PARTS}
TINY = 1e-12  # floor of ‖x‖² in rec_rel: an all-zero input gets a large, finite value
CONSISTENCY = ("mean", "sum")


def safe_norm(z: torch.Tensor) -> torch.Tensor:
    """L2 norm over the last axis whose gradient at ``z = 0`` is 0 instead of NaN.

    ``torch.linalg.vector_norm`` masks the zero-norm rows in its backward (tested), in one op
    where ``sqrt((z * z).sum())`` with guards took seven.
    """
    return torch.linalg.vector_norm(z, dim=-1)


def ede_losses(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor, z_hat: torch.Tensor, semi: torch.Tensor,
               eps: float, anomaly_reconstruction: str = "input", consistency: str = "sum",
               noise_target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The three EDE loss terms of a batch (each a scalar).

    ``semi``: +1 known normal, 0 unlabeled, −1 labeled anomaly. Known normals count as normal.
    ``anomaly_reconstruction``: ``input`` reconstructs labeled anomalies like normals, ``skip``
    leaves them out of L_rec (mean over the other rows), ``noise`` uses ``noise_target`` (same
    shape as ``x``) as their target.

    The batch axis is ``semi``'s last; leading axes (the stacked trainer's seeds: ``semi`` ``[K, b]``,
    ``x`` ``[K, b, ...]``, codes ``[K, b, d]``) are kept, so each term is then ``[K]``.
    """
    anomalous = semi == KNOWN_ANOMALY
    batch_dims = semi.dim()
    if anomaly_reconstruction == "noise":
        if noise_target is None:
            raise ValueError("anomaly_reconstruction='noise' needs a noise_target")
        target = torch.where(anomalous.view(*anomalous.shape, *([1] * (x.dim() - batch_dims))), noise_target, x)
    else:
        target = x
    rec = ((x_hat - target) ** 2).flatten(batch_dims).sum(dim=-1)
    if anomaly_reconstruction == "skip":
        keep = (~anomalous).to(rec.dtype)
        l_rec = (rec * keep).sum(dim=-1) / keep.sum(dim=-1).clamp_min(1.0)
    else:
        l_rec = rec.mean(dim=-1)
    norm = safe_norm(z_hat)
    l_ent = torch.where(anomalous, 1.0 / (norm + eps), norm).mean(dim=-1)
    sq = (z_hat - z) ** 2
    l_con = sq.mean(dim=(-2, -1)) if consistency == "mean" else sq.sum(dim=-1).mean(dim=-1)
    return {"rec": l_rec, "ent": l_ent, "con": l_con}


def ede_score_parts(x: torch.Tensor, x_hat: torch.Tensor, z_hat: torch.Tensor) -> dict[str, torch.Tensor]:
    """The score parts of a forward pass: ``rec`` (Σ_j squared error), ``rec_rel`` (``rec`` / ‖x‖²)
    and ``znorm`` (‖ẑ‖)."""
    rec = ((x_hat - x) ** 2).flatten(1).sum(dim=1)
    size = (x * x).flatten(1).sum(dim=1).clamp_min(TINY)
    return {"rec": rec, "rec_rel": rec / size, "znorm": safe_norm(z_hat)}


def check_part_weights(part_weights: Mapping[str, float] | None, score: str) -> dict[str, float]:
    """Every part's weight (1 unless given), checked: known part names, finite and ≥ 0. Only the
    ``standardized*`` scores sum z-scored parts; with another score, weights other than 1 are named in
    a warning, not an error, because a dataset's config may set them (F-MNIST) under a user's score."""
    weights = dict.fromkeys(PARTS, 1.0)
    for name, value in (part_weights or {}).items():
        if name not in PARTS:
            raise ConfigError(f"model.part_weights.{name} is not a score part: use {', '.join(PARTS)}")
        check_range(f"model.part_weights.{name}", value, 0.0)  # also refuses NaN
        if math.isinf(value):
            raise ConfigError(f"model.part_weights.{name}={value} must be finite")
        weights[name] = float(value)
    if score not in STANDARDIZED_PARTS and any(w != 1.0 for w in weights.values()):
        log.warning("model.part_weights (%s) weigh the z-scored parts of model.score=standardized or "
                    "standardized_rel only; model.score=%s has fixed scales and ignores them",
                    " ".join(f"{k}={v:g}" for k, v in weights.items()), score)
    return weights


class EDE(TorchDetector):
    """Encoder-decoder-encoder semi-supervised detector.

    Args:
        net: a ``NetSpec`` (``dataset.net``) building encoder and decoder for the data shape.
        shared_encoder: reuse E1 as E2 (the public Julia reference does); default two encoders
            as in the paper text.
        lambda_ent, lambda_con: weights of L_ent and L_con (1, 1 in the paper).
        eps: ε in 1/(‖ẑ‖+ε) for labeled anomalies; avoids the reference's division by zero.
        anomaly_reconstruction: target of labeled anomalies in L_rec: ``skip`` (left out),
            ``input`` (the reference's default ``noise = identity``), ``noise`` (uniform noise
            within each feature's training range, drawn afresh each step).
        score: ``loss`` | ``reference`` | ``standardized`` | ``standardized_rel`` (see the module
            docstring).
        part_weights: weight of each part's z-score in the ``standardized*`` scores, by part name
            (``rec``, ``rec_rel``, ``znorm``; a part left out keeps 1). It reweighs the parts without
            retraining; ``loss`` and ``reference`` have fixed scales and ignore it (with a warning).
        consistency: ``mean`` (the reference: over batch and code dims) or ``sum`` (per sample).
        net_width: build E1, D and E2 ``net_width`` times as wide as ``net`` (its channel counts, or
            an MLP's hidden sizes; code size unchanged). ESAD's nets are not recovered; 1 is the
            data's protocol net (Deep SAD's), which Deep SAD and the tables' other models keep.

    Attributes:
        encoder_, decoder_, encoder2_: the three modules (``encoder2_ is encoder_`` when shared).
        x_low_, x_high_: per-feature training range (buffers; the ``noise`` targets).
        part_mean_, part_std_: mean/std of the training normals' ``rec``, ``rec_rel`` and ``znorm``
            (buffers, in ``PARTS`` order; the ``standardized*`` scores), set after training.

    Scores: higher = more anomalous; ``score_parts`` gives ``rec`` (Σ_j squared error), ``rec_rel``
    and ``znorm``.
    """

    loss_takes_seed_axis = True

    def __init__(self, *, net: NetSpec, shared_encoder: bool = False, lambda_ent: float = 1.0,
                 lambda_con: float = 1.0, eps: float = 1e-6, anomaly_reconstruction: str = "noise",
                 score: str = "standardized_rel", consistency: str = "mean", net_width: int = 1,
                 part_weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        check_range("model.lambda_ent", lambda_ent, 0.0)
        check_range("model.lambda_con", lambda_con, 0.0)
        check_range("model.eps", eps, 0.0)
        for key, value, allowed in (("anomaly_reconstruction", anomaly_reconstruction, ANOMALY_RECONSTRUCTION),
                                    ("score", score, SCORES), ("consistency", consistency, CONSISTENCY)):
            if value not in allowed:
                raise ConfigError(f"model.{key}={value!r} is not one of {', '.join(allowed)}")
        self.net_width = check_positive_int("model.net_width", net_width, "the dataset's net")
        self.part_weights = check_part_weights(part_weights, score)
        if self.net_width != 1:
            net = net.widened(self.net_width)
        self.shared_encoder = shared_encoder
        self.lambda_ent, self.lambda_con, self.eps = lambda_ent, lambda_con, eps
        self.anomaly_reconstruction, self.score_kind, self.consistency = anomaly_reconstruction, score, consistency
        self.input_shape = tuple(net.input_shape)
        self.n_features = math.prod(self.input_shape)
        self.encoder_ = net.encoder()
        self.decoder_ = net.decoder()
        self.encoder2_ = self.encoder_ if shared_encoder else net.encoder()
        self.register_buffer("x_low_", torch.zeros(self.input_shape))
        self.register_buffer("x_high_", torch.ones(self.input_shape))
        self.register_buffer("part_mean_", torch.zeros(len(PARTS)))
        self.register_buffer("part_std_", torch.ones(len(PARTS)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder_(x)
        x_hat = self.decoder_(z)
        z_hat = self.encoder2_(x_hat)
        return z, x_hat, z_hat

    def init_from_data(self, X: torch.Tensor, semi: torch.Tensor) -> None:
        """Record each feature's training range: the ``noise`` targets are drawn inside it."""
        self.x_low_.copy_(X.amin(dim=0).to(self.x_low_))
        self.x_high_.copy_(X.amax(dim=0).to(self.x_high_))

    def loss_draws(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``noise``: uniform within each feature's training range (``anomaly_reconstruction=noise``)."""
        if self.anomaly_reconstruction != "noise":
            return {}
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return {"noise": self.x_low_ + (self.x_high_ - self.x_low_) * u}

    def loss(self, x: torch.Tensor, semi: torch.Tensor,
             noise: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, x_hat, z_hat = self(x)
        if noise is None and self.anomaly_reconstruction == "noise":
            noise = self.loss_draws(x)["noise"]
        parts = ede_losses(x, x_hat, z, z_hat, semi, self.eps, self.anomaly_reconstruction, self.consistency, noise)
        total = parts["rec"] + self.lambda_ent * parts["ent"] + self.lambda_con * parts["con"]
        return total, parts

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Read checkpoints written before ``rec_rel`` existed: their statistics are (rec, znorm)."""
        old = state_dict.get(prefix + "part_mean_")
        if old is not None and old.shape == (2,):
            if self.score_kind == "standardized_rel":
                raise CheckpointError("this EDE checkpoint predates score=standardized_rel and holds no training "
                                      "statistics for rec_rel: evaluate it with model.score=standardized, or retrain")
            for name, fill in (("part_mean_", 0.0), ("part_std_", 1.0)):
                saved = state_dict[prefix + name]
                state_dict[prefix + name] = torch.stack([saved[0], saved.new_tensor(fill), saved[1]])
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @torch.no_grad()
    def after_fit(self, X: torch.Tensor, semi: torch.Tensor) -> None:
        """Mean and std of the training normals' score parts, for the ``standardized*`` scores."""
        normal = X[semi != KNOWN_ANOMALY]
        if len(normal) < 2:
            return
        parts = self.score_parts(normal)  # the batched eval-mode scoring every detector uses
        stacked = torch.stack([torch.as_tensor(parts[name]) for name in PARTS])
        self.part_mean_.copy_(stacked.mean(dim=1))
        self.part_std_.copy_(stacked.std(dim=1).clamp_min(1e-12))

    def score_parts_batch(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        _, x_hat, z_hat = self(x)
        return ede_score_parts(x, x_hat, z_hat)

    def combine(self, parts: dict[str, torch.Tensor], kind: str | None = None) -> torch.Tensor:
        """The score ``kind`` (default: the configured one) from the parts of ``score_parts``."""
        kind = kind or self.score_kind
        rec, znorm = parts["rec"], parts["znorm"]
        if kind == "reference":
            return rec / self.n_features + znorm
        if kind in STANDARDIZED_PARTS:
            return sum(self.part_weights[name] * (parts[name] - self.part_mean_[i]) / self.part_std_[i]
                       for i, name in enumerate(PARTS) if name in STANDARDIZED_PARTS[kind])
        return rec + znorm

    def score_from_parts(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.combine(parts)

    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_from_parts(self.score_parts_batch(x))
