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


def load_breast_cancer() -> Source:
    """Wisconsin diagnostic breast cancer (WDBC, scikit-learn bundled): 569 × 30 float32.

    Labels are the strings ``benign`` (357, normal) and ``malignant`` (212, anomaly);
    sklearn's own target codes 0 = malignant, which would invert the usual reading.
    """
    bunch = datasets.load_breast_cancer()
    names = np.asarray(bunch.target_names)[bunch.target]  # target_names = ['malignant', 'benign']
    return Source(
        name="breast_cancer",
        X=bunch.data.astype(np.float32),
        labels=names.astype(str),
        kind="tabular",
        class_names={"benign": "benign", "malignant": "malignant"},
        default_normal="benign",
    )
