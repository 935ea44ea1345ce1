"""What every dataset loader returns: raw arrays plus the facts the split needs.

A loader (one module per family in ``data/sources/``) reads files and returns a
``Source``; it knows nothing of the semi-supervised protocol. ``data/split.py``
turns a ``Source`` into train/val/test parts. Keeping the two apart is what
lets one protocol serve images, tabular sets and user CSVs alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FeatureInfo:
    """Column types of tabular features, for synthetic anomalies and encoding.

    ``binary``: indices of 0/1 columns; ``onehot_groups``: lists of column
    indices that together one-hot encode one categorical variable. Every other
    column is continuous.
    """

    binary: list[int] = field(default_factory=list)
    onehot_groups: list[list[int]] = field(default_factory=list)


@dataclass
class Source:
    """Raw data of one dataset, before any split or scaling.

    Attributes:
        name: dataset name as in the config group.
        X: features, shape ``(n, *sample_shape)``; float32 or uint8 for images.
        labels: class label per row, shape ``(n,)`` (ints or strings). Which
            label is normal is decided by the split config, not here.
        kind: ``"image"`` (pixel arrays, ``(n, C, H, W)``) or ``"tabular"``
            (``(n, d)``).
        is_test: optional bool mask, shape ``(n,)``, marking an official test
            split (MNIST, CIFAR-10, NSL-KDD). ``None``: the split draws a
            stratified test part itself (ODDS 60/40).
        class_names: optional readable name per label value, for reports.
        features: column types (tabular only).
        default_normal: label that means "normal" when the config leaves
            ``normal_class`` unset (e.g. 0 for ODDS, ``"normal"`` for NSL-KDD).
    """

    name: str
    X: np.ndarray
    labels: np.ndarray
    kind: str = "tabular"
    is_test: np.ndarray | None = None
    class_names: dict | None = None
    features: FeatureInfo = field(default_factory=FeatureInfo)
    default_normal: object = 0

    def __post_init__(self) -> None:
        if len(self.X) != len(self.labels):
            raise ValueError(f"{self.name}: X has {len(self.X)} rows but labels has {len(self.labels)}")
        if self.kind not in ("image", "tabular"):
            raise ValueError(f"{self.name}: kind must be 'image' or 'tabular', got {self.kind!r}")
        if self.is_test is not None and len(self.is_test) != len(self.X):
            raise ValueError(f"{self.name}: is_test mask has the wrong length")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])
