"""ADBench "Classical" ``.npz`` sets (``adbench/<k>_<name>.npz``, keys ``X`` and ``y``, y 1 = anomaly).

Files listed in adbench/SOURCE.md are checked byte for byte; any other ``*.npz``
a user drops into the folder is loaded without a checksum.
"""

from __future__ import annotations

import re

import numpy as np

from semiad_cli.data import files
from semiad_cli.data.files import DataFile
from semiad_cli.data.source import Source, as_float32
from semiad_cli.errors import ConfigError, DataError

ADBENCH_URL = "https://github.com/Minqi824/ADBench/raw/main/adbench/datasets/Classical/"

# file -> sha256, from adbench/SOURCE.md
ADBENCH = {
    "2_annthyroid.npz": "e738f7c58a8740d2c4aac4c71ff49ce5e1d1aa16f44178135fc9c09df05fad1b",
    "4_breastw.npz": "4f37ce07dbc25ddad8178fdc6d664ab46d2d0000ee28c2787c3c7ff3c03ef9f6",
    "5_campaign.npz": "74dd4d0072d6c6f1aabab63bc102f9633454f32bb936fa9bcfbd38f9f2386bcd",
    "6_cardio.npz": "bc5009bde6930b4d298b594f31b34485a9a17210cff0e8fb00a8c3068b885a2d",
    "31_satimage-2.npz": "1b056e357f801b8b20c3f380a30224a3c4088d7ed764ec5a24828dc9b1918d6f",
    "38_thyroid.npz": "8de161b3f235b7647bb0b39a836d983ff61d67bf234edac461da2d71e889cb87",
    "42_WBC.npz": "650f9dcb129248f67a291be0974f533ef259fcbde50fce5c8ad2a1cb2652d03b",
}


def _short(fname: str) -> str:
    return re.sub(r"^\d+_", "", fname.removesuffix(".npz"))


def _resolve_file(name: str, root) -> str:
    want = str(name).strip().removesuffix(".npz")
    folder = files.resolve_root(root) / "adbench"
    present = sorted(p.name for p in folder.glob("*.npz")) if folder.is_dir() else []
    candidates = sorted(set(present) | set(ADBENCH))
    for fname in candidates:
        stem = fname.removesuffix(".npz")
        if want.lower() in (stem.lower(), _short(fname).lower()):
            return fname
    raise ConfigError(
        f"dataset.source.name={name!r} is not an ADBench file; choose one of "
        f"{[_short(f) for f in candidates]} (or the full stem like '6_cardio'), "
        f"or put <k>_{want}.npz into {folder}"
    )


def load_adbench(*, name: str, root=None) -> Source:
    """One ADBench set: ``X`` float32 ``(n, d)``, labels int 0 normal / 1 anomaly.

    Args:
        name: ``cardio`` or ``6_cardio`` (the number prefix is optional).
        root: data root (config ``data_root``).
    """
    fname = _resolve_file(name, root)
    sha = ADBENCH.get(fname)
    spec = DataFile(
        f"adbench/{fname}",
        (f"sha256:{sha}",) if sha else (),
        source=ADBENCH_URL + fname,
        url=ADBENCH_URL + fname if sha else None,
    )
    path = files.locate(spec, root, what=f"adbench/{fname}")
    with np.load(path, allow_pickle=False) as z:
        if "X" not in z or "y" not in z:
            raise DataError(
                f"adbench/{fname}: {path} must hold arrays 'X' and 'y' (it has {sorted(z.files)})"
            )
        X = np.asarray(z["X"])
        y = np.asarray(z["y"]).ravel()
    if X.ndim != 2 or len(X) != len(y):
        raise DataError(f"adbench/{fname}: X{X.shape} and y{y.shape} do not match")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise DataError(f"adbench/{fname}: y must be 0/1 (1 = anomaly), found {np.unique(y)[:10]}")
    X = as_float32(X, f"adbench/{fname}")
    return Source(
        name=_short(fname),
        X=X,
        labels=y.astype(np.int64),
        kind="tabular",
        is_test=None,
        class_names={0: "normal", 1: "anomaly"},
        default_normal=0,
    )
