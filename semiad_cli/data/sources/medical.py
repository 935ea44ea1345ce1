"""Medical benchmarks: PneumoniaMNIST (MedMNIST v2, 28×28 chest X-rays).

The shared ``medical/pneumoniamnist.npz`` was rebuilt from two partial copies (see
its SOURCE.md), so no official byte checksum applies; the loader checks the split
sizes and class counts of the official release instead, and records a content
digest of the shared copy for tests.
"""

from __future__ import annotations

import logging

import numpy as np

from semiad_cli.data import files
from semiad_cli.data.files import DataFile
from semiad_cli.data.source import Source
from semiad_cli.errors import DataError

log = logging.getLogger(__name__)

PNEUMONIA = DataFile(
    "medical/pneumoniamnist.npz",
    (),  # no reproducible byte hash: checked by shapes and class counts below
    source="https://medmnist.com (Zenodo record 10519652, pneumoniamnist.npz)",
    url="https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1",
)
# split -> (rows, normal, pneumonia): official MedMNIST numbers (medical/SOURCE.md)
PNEUMONIA_COUNTS = {"train": (4708, 1214, 3494), "val": (524, 135, 389), "test": (624, 234, 390)}
# sha256 over the raw bytes of train/val/test images+labels of the shared copy (files.array_digest)
PNEUMONIA_CONTENT_SHA256 = "9334d20ce3df5d2655873c60d34709e00ba829952c6739d8edc917b7ca9348b2"


def load_pneumoniamnist(*, root=None) -> Source:
    """PneumoniaMNIST: 5856 × 1 × 28 × 28 uint8; train+val (5232) are the training pool,
    the 624 official test rows are ``is_test``. Labels: 0 normal, 1 pneumonia."""
    path = files.locate(PNEUMONIA, root, what="pneumoniamnist")
    xs, ys = [], []
    with np.load(path, allow_pickle=False) as z:
        for split, (n, n0, n1) in PNEUMONIA_COUNTS.items():
            try:
                x, y = z[f"{split}_images"], np.asarray(z[f"{split}_labels"]).ravel()
            except KeyError as exc:
                raise DataError(
                    f"pneumoniamnist: {path} lacks {exc}; expected MedMNIST keys "
                    f"train/val/test_images and _labels"
                ) from exc
            counts = (len(x), int((y == 0).sum()), int((y == 1).sum()))
            if x.shape[1:] != (28, 28) or counts != (n, n0, n1):
                raise DataError(
                    f"pneumoniamnist: {path} split '{split}' has images {x.shape} and "
                    f"(rows, normal, pneumonia)={counts}; expected ({n}, 28, 28) and {(n, n0, n1)} — "
                    f"replace it with the official 28×28 file from {PNEUMONIA.source}"
                )
            xs.append(np.asarray(x, dtype=np.uint8))
            ys.append(y.astype(np.int64))
    n_test = len(xs[-1])
    X = np.concatenate(xs)[:, None, :, :]
    labels = np.concatenate(ys)
    is_test = np.r_[np.zeros(len(X) - n_test, bool), np.ones(n_test, bool)]
    return Source(
        name="pneumoniamnist",
        X=X,
        labels=labels,
        kind="image",
        is_test=is_test,
        class_names={0: "normal", 1: "pneumonia"},
        default_normal=0,
    )
