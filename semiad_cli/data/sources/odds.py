"""ODDS tabular benchmarks used by Deep SAD and ESAD (``odds/<name>.mat``, keys ``X`` and ``y``).

Labels: 0 normal, 1 outlier. No official test split (``is_test=None``): the split
draws the 60/40 train/test part per class itself (docs/methods.md, protocol).
"""

from __future__ import annotations

import numpy as np
import scipy.io

from semiad_cli.data import files
from semiad_cli.data.files import DataFile
from semiad_cli.data.source import Source, as_float32
from semiad_cli.errors import ConfigError, DataError

ODDS_PAGE = "http://odds.cs.stonybrook.edu"

# name -> (sha256 of the shared copy, rows, columns, outliers), from odds/SOURCE.md
ODDS = {
    "arrhythmia": ("e4d47e499591ae31e5d7f0cd983367092353eac240f48e14c9b36457edb3460d", 452, 274, 66),
    "cardio": ("5e568b6a73711012c481fa6cc984ab9c68e9a4fa44d6aeb3b43efa381c3f695b", 1831, 21, 176),
    "satellite": ("6feac3112b9c14e1c3e60afc437f2f3d29dc1000119c9f950c628078778d6aa0", 6435, 36, 2036),
    "satimage-2": ("95c37a07cea2cb201f6900d14f521510e10b6b2f0074c06ac46d3157440ec67b", 5803, 36, 71),
    "shuttle": ("b6e396c92354d5dcf5036901e36dc58e2913f2d1a5e138c35a2bedf9c69db899", 49097, 9, 3511),
    "thyroid": ("49155d7861b977e90808faf68343ff67a67f63090c2744d514dbb67ac68e7e33", 3772, 6, 93),
}


def load_odds(*, name: str, root=None) -> Source:
    """One ODDS set: ``X`` float32 ``(n, d)``, labels int 0 (normal) / 1 (outlier).

    Args:
        name: one of ``arrhythmia, cardio, satellite, satimage-2, shuttle, thyroid``
            (``satimage2`` and underscores are accepted too).
        root: data root (config ``data_root``); see ``files.resolve_root``.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key == "satimage2":
        key = "satimage-2"
    if key not in ODDS:
        raise ConfigError(f"dataset.source.name={name!r} is not an ODDS set; choose one of {sorted(ODDS)}")
    sha, n, d, n_out = ODDS[key]
    spec = DataFile(f"odds/{key}.mat", (f"sha256:{sha}",), source=f"{ODDS_PAGE} ({key} page)")
    path = files.locate(spec, root, what=f"odds/{key}")
    mat = scipy.io.loadmat(path)
    X = as_float32(mat["X"], f"odds/{key}")
    y = np.asarray(mat["y"]).ravel().astype(np.int64)
    if X.shape != (n, d) or int(y.sum()) != n_out or not set(np.unique(y)) <= {0, 1}:
        raise DataError(
            f"odds/{key}: {path} holds X{X.shape} with {int(y.sum())} outliers; "
            f"expected ({n}, {d}) with {n_out} (odds/SOURCE.md)"
        )
    return Source(
        name=key,
        X=X,
        labels=y,
        kind="tabular",
        is_test=None,
        class_names={0: "normal", 1: "outlier"},
        default_normal=0,
    )
