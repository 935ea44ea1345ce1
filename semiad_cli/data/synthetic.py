"""Synthetic anomalies drawn uniformly in the scaled feature box (Lau et al. 2025, docs/methods.md, classifier).

Added to the training part (and, with its own draw, to the validation part) as
*labeled anomalies*: ``y = 1``, ``semi = −1``, ``cls = "synthetic"``, ``index = −1``.
Any semi-supervised model sees them like known anomalies, so "+SA" is an option of
the data pipeline (config group ``synthetic``), not of one model; the test part
never gets synthetic rows, so metrics and per-class results are untouched.

Sampling, per row:

* continuous columns: uniform in ``[low_j, high_j]``;
* binary columns (``FeatureInfo.binary``): ``low_j`` or ``high_j`` with probability ½ each
  (Bernoulli(0.5) on [0,1]-scaled data);
* one-hot groups (``FeatureInfo.onehot_groups``): one category chosen uniformly gets
  ``high``, the others ``low``.

The box ``[low, high]``: ``unit`` = [0,1]^d, the paper's choice, right for data scaled
with ``minmax``/``standard_minmax`` (train maps onto [0,1]) and ``pixel`` images;
``train`` = per-feature min/max of the training rows (for ``standard`` or unscaled data);
``auto`` (default) = ``unit`` when every training value lies in [0,1], else ``train``.
Only the training rows ever define the box: validation and test rows are never looked at.
"""

from __future__ import annotations

import math

import numpy as np

from semiad_cli.data.source import FeatureInfo
from semiad_cli.data.split import KNOWN_ANOMALY, Part
from semiad_cli.errors import ConfigError, check_range

SYNTHETIC_CLASS = "synthetic"
BOXES = ("auto", "unit", "train")
# different salts give train and validation their own, independent draws from the same seed
TRAIN_SALT, VAL_SALT = 104_729, 130_363


def feature_box(X: np.ndarray, box: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(low, high)`` of the sampling box, each shaped like one sample."""
    if box not in BOXES:
        raise ConfigError(f"synthetic.box={box!r} is unknown; choose one of {list(BOXES)}")
    shape = X.shape[1:]
    unit = (np.zeros(shape, np.float32), np.ones(shape, np.float32))
    if box == "unit" or len(X) == 0:
        return unit
    lo, hi = X.min(axis=0).astype(np.float32), X.max(axis=0).astype(np.float32)
    if box == "auto" and lo.min() >= 0.0 and hi.max() <= 1.0:
        return unit
    return lo, hi


def sample_uniform(n: int, low: np.ndarray, high: np.ndarray, features: FeatureInfo | None,
                   rng: np.random.Generator) -> np.ndarray:
    """``n`` synthetic samples shaped like ``low``: uniform, binary and one-hot columns as documented above."""
    shape = tuple(np.shape(low))
    d = math.prod(shape)
    lo, hi = np.asarray(low, np.float32).reshape(d), np.asarray(high, np.float32).reshape(d)
    X = lo + (hi - lo) * rng.random((n, d), dtype=np.float32)
    features = features or FeatureInfo()
    if features.binary:
        cols = np.asarray(features.binary, dtype=np.int64)
        _check_columns(cols, d, "binary")
        X[:, cols] = np.where(rng.random((n, len(cols))) < 0.5, hi[cols], lo[cols])
    for group in features.onehot_groups:
        cols = np.asarray(group, dtype=np.int64)
        _check_columns(cols, d, "one-hot")
        pick = rng.integers(0, len(cols), size=n)
        block = np.broadcast_to(lo[cols], (n, len(cols))).copy()
        block[np.arange(n), pick] = hi[cols][pick]
        X[:, cols] = block
    return X.reshape((n, *shape))


def _check_columns(cols: np.ndarray, d: int, what: str) -> None:
    if len(cols) and (cols.min() < 0 or cols.max() >= d):
        raise ConfigError(f"the dataset's {what} columns {cols.tolist()} do not fit its {d} features")


def synthetic_part(X: np.ndarray) -> Part:
    """Wrap synthetic samples as labeled anomalies of the class ``"synthetic"`` (object dtype: classes may be ints)."""
    n = len(X)
    cls = np.full(n, SYNTHETIC_CLASS, dtype=object)
    return Part(X=X, y=np.ones(n, np.int8), semi=np.full(n, KNOWN_ANOMALY, np.int8), cls=cls,
                index=np.full(n, -1, np.int64))


class SyntheticAnomalies:
    """The ``synthetic`` config group: how many uniform synthetic anomalies to add, and where.

    Args:
        ratio: synthetic rows per real row of the part (Lau et al.: 1.0; 0 disables).
        box: ``auto`` | ``unit`` | ``train``, the sampling box (module docstring).

    ``augment`` draws ``round(ratio · len(train))`` rows for the training part and
    ``round(ratio · len(val))`` for the validation part, once per run from the run's seed.
    """

    def __init__(self, *, ratio: float = 0.0, box: str = "auto") -> None:
        check_range("synthetic.ratio", ratio, 0.0, 100.0)
        if box not in BOXES:
            raise ConfigError(f"synthetic.box={box!r} is unknown; choose one of {list(BOXES)}")
        self.ratio, self.box = float(ratio), box

    def count(self, n_rows: int) -> int:
        return int(round(self.ratio * n_rows))

    def apply(self, part: Part, features: FeatureInfo | None, seed: int, salt: int = TRAIN_SALT,
              low: np.ndarray | None = None, high: np.ndarray | None = None) -> Part:
        """``part`` plus its synthetic rows (appended). ``low``/``high`` default to the box of ``part`` itself."""
        n = self.count(len(part))
        if n == 0:
            return part
        if low is None or high is None:
            low, high = feature_box(part.X, self.box)
        rng = np.random.default_rng([int(seed), int(salt)])
        X = sample_uniform(n, low, high, features, rng).astype(part.X.dtype, copy=False)
        return Part.concat(part, synthetic_part(X))

    def augment(self, train: Part, val: Part | None, features: FeatureInfo | None,
                seed: int) -> tuple[Part, Part | None, dict[str, int]]:
        """Add synthetic anomalies to ``train`` and ``val`` (own draw); the box comes from ``train`` only."""
        low, high = feature_box(train.X, self.box)
        new_train = self.apply(train, features, seed, TRAIN_SALT, low, high)
        new_val = self.apply(val, features, seed, VAL_SALT, low, high) if val is not None and len(val) else val
        counts = {"n_synthetic_train": len(new_train) - len(train),
                  "n_synthetic_val": (len(new_val) - len(val)) if val is not None and new_val is not None else 0}
        return new_train, new_val, counts
