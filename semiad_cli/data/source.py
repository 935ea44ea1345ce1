"""What every dataset loader returns: raw arrays plus the facts the split needs.

A loader (one module per family in ``data/sources/``) reads files and returns a
``Source``; it knows nothing of the semi-supervised protocol. ``data/split.py``
turns a ``Source`` into train/val/test parts. Keeping the two apart is what
lets one protocol serve images, tabular sets and user CSVs alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from semiad_cli.errors import DataError

FLOAT32_MAX = float(np.finfo(np.float32).max)  # ≈ 3.4028235e38; larger values become inf in float32


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
        check_values(self.X, self.name)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])


def check_values(
    X: np.ndarray,
    what: str,
    *,
    columns: Sequence[str] | None = None,
    row: str = "row {} (1-based)",
    fix: str = "fix or remove those values in the file",
) -> None:
    """Raise a one-line ``DataError`` at the first NaN, ±inf or value beyond float32 range.

    Such values pass the loaders as numbers, but scaling turns them into NaN and a
    model then trains on damaged features without a word, so every source is
    checked here (``Source`` calls this; loaders that cast to float32 call it
    before the cast, where 1e39 is still 1e39 and not inf). Integer and uint8
    arrays cannot hold such values and are skipped.

    Args:
        X: features, ``(n, d)`` or ``(n, *shape)`` (flattened per row).
        what: file or dataset name that starts the message.
        columns: column names (``d`` of them); default: 1-based column numbers.
        row: how to show the 0-based row ``r``: ``row.format(r + 1)``.
        fix: what the user can do, ends the message.
    """
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating) or X.size == 0:
        return
    flat = X.reshape(len(X), -1)
    bad = ~np.isfinite(flat)
    if flat.dtype.itemsize > 4:
        with np.errstate(invalid="ignore"):
            bad |= np.abs(flat) > FLOAT32_MAX
    if not bad.any():
        return
    r, c = (int(i[0]) for i in np.nonzero(bad))  # the first offending row, and its first offending column
    value = float(flat[r, c])
    shown = "NaN" if np.isnan(value) else f"{value:g}" if np.isinf(value) else f"{value:g} (beyond float32 range)"
    name = f"column {columns[c]!r}" if columns is not None else f"column {c + 1} (1-based)"
    count = int(bad[:, c].sum())
    where = row.format(r + 1)
    if count > 1:
        where = f"{where[:-1]}; {count} such values)" if where.endswith(")") else f"{where} ({count} such values)"
    raise DataError(
        f"{what}: {name} holds {shown} at {where}; features must be finite numbers within float32 range "
        f"(|x| <= {FLOAT32_MAX:.8g}): {fix}"
    )


def as_float32(X: np.ndarray, what: str, **check) -> np.ndarray:
    """``X`` as float32 after ``check_values`` on the original values (``check``: its keyword arguments)."""
    X = np.asarray(X)
    check_values(X, what, **check)
    return X.astype(np.float32, copy=False)
