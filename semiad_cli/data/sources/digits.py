"""scikit-learn's bundled datasets: the embedded defaults that need no files."""

from __future__ import annotations

import numpy as np
from sklearn import datasets

from semiad_cli.data.source import Source


def load_digits() -> Source:
    """8×8 handwritten digits (1797 × 64, pixel values 0–16), one class per digit.

    Treated as tabular (the MLP nets), which keeps the default run under a minute.
    """
    bunch = datasets.load_digits()
    return Source(
        name="digits",
        X=bunch.data.astype(np.float32),
        labels=bunch.target.astype(np.int64),
        kind="tabular",
        class_names={i: str(i) for i in range(10)},
        default_normal=0,
    )
