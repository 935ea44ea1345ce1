"""Feature scaling fitted on training rows only (never on test rows)."""

from __future__ import annotations

import numpy as np

from semiad_cli.errors import ConfigError

SCALINGS = ("standard_minmax", "standard", "minmax", "pixel", "none")


class Scaler:
    """Fit/transform in float32; ``kind`` is one of ``SCALINGS``.

    ``standard_minmax`` is the ODDS recipe of Deep SAD (StandardScaler then
    MinMaxScaler, both fitted on train); ``pixel`` maps uint8 images to [0,1];
    ``gcn`` applies global contrast normalisation per sample first (L1 norm, as
    in Deep SVDD's image preprocessing).
    """

    def __init__(self, kind: str = "standard_minmax", gcn: bool = False) -> None:
        if kind not in SCALINGS:
            raise ConfigError(f"dataset.split.scaling={kind!r} is unknown; choose one of {list(SCALINGS)}")
        self.kind = kind
        self.gcn = gcn
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self.min_: np.ndarray | None = None
        self.range_: np.ndarray | None = None

    def _pre(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if self.kind == "pixel" and not self.gcn:
            X = X / 255.0
        if self.gcn:
            flat = X.reshape(len(X), -1)
            flat = flat - flat.mean(axis=1, keepdims=True)
            flat = flat / np.maximum(np.abs(flat).mean(axis=1, keepdims=True), 1e-8)
            X = flat.reshape(X.shape)
        return X

    def fit(self, X: np.ndarray) -> Scaler:
        X = self._pre(X)
        if self.kind in ("standard", "standard_minmax"):
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            self.std_ = np.where(std > 0, std, 1.0).astype(np.float32)
            X = (X - self.mean_) / self.std_
        if self.kind in ("minmax", "standard_minmax") or (self.kind == "pixel" and self.gcn):
            # pixel+gcn: one global min/max (keeps the image's geometry) instead of per column
            if self.kind == "pixel":
                self.min_ = np.float32(X.min())
                self.range_ = np.float32(max(X.max() - X.min(), 1e-8))
            else:
                self.min_ = X.min(axis=0)
                rng = X.max(axis=0) - self.min_
                self.range_ = np.where(rng > 0, rng, 1.0).astype(np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = self._pre(X)
        if self.mean_ is not None:
            X = (X - self.mean_) / self.std_
        if self.min_ is not None:
            X = (X - self.min_) / self.range_
        return np.ascontiguousarray(X, dtype=np.float32)


def make_scaler(kind: str, gcn: bool = False) -> Scaler:
    return Scaler(kind, gcn=gcn)
