"""Image benchmarks of the one-class protocol: MNIST, Fashion-MNIST, CIFAR-10.

Each loader returns uint8 pixels ``(n, C, H, W)``, the integer class per row and an
``is_test`` mask for the official test rows; the split scales pixels later.
Decoded arrays are cached as ``.npy`` (``files.cached_arrays``), so only the first
load pays for decompression (CIFAR-10's LZMA npz: ~15–20 s).
"""

from __future__ import annotations

import gzip
import logging
import pickle
import tarfile
from pathlib import Path

import numpy as np

from semiad_cli.data import files
from semiad_cli.data.files import DataFile
from semiad_cli.data.source import Source
from semiad_cli.errors import DataError

log = logging.getLogger(__name__)

_IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# sha256 of the shared copies (SOURCE.md) + md5 of the historical official .gz files
_MNIST = {
    "folder": "mnist",
    "source": "http://yann.lecun.com/exdb/mnist/",
    "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "sha256": (
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    ),
    "md5": (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
    "classes": [str(i) for i in range(10)],
}
_FASHION = {
    "folder": "fashion-mnist",
    "source": "https://github.com/zalandoresearch/fashion-mnist",
    "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "sha256": (
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    ),
    "md5": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
    "classes": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_NPZ = DataFile(
    "cifar10/cifar10.npz",
    ("sha256:c21c67261a10c80b7c42bda315264d26e72186b4cc62098b3abfce631e177e1b",),
    source="https://www.cs.toronto.edu/~kriz/cifar.html (python version: cifar-10-python.tar.gz)",
)
CIFAR10_TAR = DataFile(
    "cifar10/cifar-10-python.tar.gz",
    ("md5:c58f30108f718f92721af3b95e74349a",),
    source="https://www.cs.toronto.edu/~kriz/cifar.html",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
)
_CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _read_idx(path: Path, magic: int, what: str) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    head = np.frombuffer(raw[:4], dtype=">i4")[0]
    if head != magic:
        raise DataError(f"{what}: {path} is not an IDX file (magic {head}, expected {magic})")
    ndim = magic & 0xFF
    dims = np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">i4").astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{what}: {path} is truncated ({data.size} bytes of data, header says {tuple(dims)})")
    return data.reshape(tuple(dims))


def _load_idx_family(name: str, meta: dict, root) -> Source:
    paths = []
    for fname, sha, md5 in zip(_IDX_NAMES, meta["sha256"], meta["md5"], strict=True):
        spec = DataFile(
            f"{meta['folder']}/{fname}",
            (f"sha256:{sha}", f"md5:{md5}"),
            source=meta["source"],
            url=meta["url"] + fname,
        )
        paths.append(files.locate(spec, root, what=name))

    def build() -> dict[str, np.ndarray]:
        xtr, ytr, xte, yte = (
            _read_idx(p, m, name) for p, m in zip(paths, (2051, 2049, 2051, 2049), strict=True)
        )
        if len(xtr) != len(ytr) or len(xte) != len(yte):
            raise DataError(f"{name}: image and label counts differ in {paths[0].parent}")
        return {
            "X": np.concatenate([xtr, xte])[:, None, :, :],
            "labels": np.concatenate([ytr, yte]).astype(np.int64),
            "is_test": np.r_[np.zeros(len(xtr), bool), np.ones(len(xte), bool)],
        }

    arrays = files.cached_arrays(name, paths, build)
    return Source(
        name=name,
        X=arrays["X"],
        labels=arrays["labels"],
        kind="image",
        is_test=arrays["is_test"],
        class_names=dict(enumerate(meta["classes"])),
        default_normal=0,
    )


def load_mnist(*, root=None) -> Source:
    """MNIST: 70000 × 1 × 28 × 28 uint8 (60000 train + 10000 ``is_test``), labels 0–9."""
    return _load_idx_family("mnist", _MNIST, root)


def load_fashion_mnist(*, root=None) -> Source:
    """Fashion-MNIST: 70000 × 1 × 28 × 28 uint8 (60000 train + 10000 ``is_test``), labels 0–9."""
    return _load_idx_family("fashion_mnist", _FASHION, root)


def _find_batches_dir(root) -> Path | None:
    base = files.resolve_root(root)
    for cand in (
        base / "cifar10" / "cifar-10-batches-py",
        base / "cifar-10-batches-py",
        files.download_dir() / "cifar10" / "cifar-10-batches-py",
    ):
        if all((cand / b).is_file() for b in _CIFAR_BATCHES):
            return cand
    return None


def _read_batches(folder: Path) -> dict[str, np.ndarray]:
    xs, ys = [], []
    for b in _CIFAR_BATCHES:
        with open(folder / b, "rb") as fh:
            # the official release is a pickle; only files the user placed there are read
            d = pickle.load(fh, encoding="bytes")  # noqa: S301
        xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d[b"labels"], dtype=np.int64))
    n_test = len(ys[-1])
    n = sum(len(y) for y in ys)
    return {
        "X": np.concatenate(xs),
        "labels": np.concatenate(ys),
        "is_test": np.r_[np.zeros(n - n_test, bool), np.ones(n_test, bool)],
    }


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        xtr, ytr, xte, yte = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    if xtr.shape[1:] != (32, 32, 3) or xte.shape[1:] != (32, 32, 3):
        raise DataError(f"cifar10: {path} holds images of shape {xtr.shape[1:]}, expected (32, 32, 3)")
    X = np.concatenate([xtr, xte]).transpose(0, 3, 1, 2)
    return {
        "X": np.ascontiguousarray(X, dtype=np.uint8),
        "labels": np.concatenate([ytr, yte]).astype(np.int64).ravel(),
        "is_test": np.r_[np.zeros(len(xtr), bool), np.ones(len(xte), bool)],
    }


def load_cifar10(*, root=None, prefer: str = "auto") -> Source:
    """CIFAR-10: 60000 × 3 × 32 × 32 uint8 (50000 train + 10000 ``is_test``), labels 0–9.

    Reads the official ``cifar-10-batches-py`` folder when present (original pixels),
    else the shared ``cifar10/cifar10.npz`` (JPEG-derived copy, see its SOURCE.md).
    ``prefer``: ``auto`` | ``batches`` | ``npz``.
    """
    if prefer not in ("auto", "batches", "npz"):
        raise DataError(f"cifar10: prefer={prefer!r}; choose auto, batches or npz")
    batches = _find_batches_dir(root) if prefer in ("auto", "batches") else None
    if batches is not None:
        log.info("cifar10: reading official batches from %s", batches)
        inputs = [batches / b for b in _CIFAR_BATCHES]
        arrays = files.cached_arrays("cifar10-batches", inputs, lambda: _read_batches(batches))
    elif prefer == "batches":
        tar = files.locate(CIFAR10_TAR, root, what="cifar10")
        dest = files.download_dir() / "cifar10"
        with tarfile.open(tar, "r:gz") as tf:
            tf.extractall(dest, filter="data")
        if _find_batches_dir(root) is None:
            raise DataError(f"cifar10: {tar} did not unpack to cifar-10-batches-py/ under {dest}")
        return load_cifar10(root=root, prefer="batches")
    else:
        path = files.locate(CIFAR10_NPZ, root, what="cifar10")
        arrays = files.cached_arrays("cifar10-npz", [path], lambda: _read_npz(path))
    return Source(
        name="cifar10",
        X=arrays["X"],
        labels=arrays["labels"],
        kind="image",
        is_test=arrays["is_test"],
        class_names=dict(enumerate(CIFAR10_CLASSES)),
        default_normal=0,
    )
