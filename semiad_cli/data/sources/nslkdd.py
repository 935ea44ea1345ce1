"""NSL-KDD network-intrusion data (Tavallaee et al. 2009), as used by Lau et al. 2025.

KDDTrain+ is the training pool, KDDTest+ the official test split (``is_test``).
Labels are attack categories (``normal``, ``DoS``, ``Probe``, ``R2L``, ``U2R``) so
known/unknown anomaly classes work per category; the test file has attack types
absent from training, mapped with the usual table below. The three categorical
columns are one-hot encoded with categories from train ∪ test, so the feature
count does not depend on which file is read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from semiad_cli.data import files
from semiad_cli.data.files import DataFile
from semiad_cli.data.source import FeatureInfo, Source, as_float32
from semiad_cli.errors import ConfigError, DataError

NSL_KDD_PAGE = "https://www.unb.ca/cic/datasets/nsl.html"

COLUMNS = [
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
    "attack",
    "difficulty",
]
CATEGORICAL = ["protocol_type", "service", "flag"]
CATEGORIES = ["normal", "DoS", "Probe", "R2L", "U2R"]

# attack name -> category (KDD'99 taxonomy, with the attacks that appear only in KDDTest+)
ATTACK_CATEGORY = {
    "normal": "normal",
    **dict.fromkeys(
        [
            "back",
            "land",
            "neptune",
            "pod",
            "smurf",
            "teardrop",
            "apache2",
            "mailbomb",
            "processtable",
            "udpstorm",
        ],
        "DoS",
    ),
    **dict.fromkeys(["ipsweep", "nmap", "portsweep", "satan", "mscan", "saint"], "Probe"),
    **dict.fromkeys(
        [
            "ftp_write",
            "guess_passwd",
            "imap",
            "multihop",
            "phf",
            "spy",
            "warezclient",
            "warezmaster",
            "named",
            "sendmail",
            "snmpgetattack",
            "snmpguess",
            "xlock",
            "xsnoop",
            "worm",
        ],
        "R2L",
    ),
    **dict.fromkeys(
        ["buffer_overflow", "loadmodule", "perl", "rootkit", "httptunnel", "ps", "sqlattack", "xterm"], "U2R"
    ),
}

# file -> (sha256 of the .gz, rows), from nsl-kdd/SOURCE.md
FILES = {
    "KDDTrain+.txt.gz": ("39e78eaceffb1a183af002b4994b100b69795895bfbf67cfc62dabd4c9b76d4e", 125973),
    "KDDTrain+_20Percent.txt.gz": ("fc113da7acc7e3006f0c3bf00c9ba5c052be44b00af3b1951beff90694bf66ff", 25192),
    "KDDTest+.txt.gz": ("1ebe1079af669e3c35ef7be25b5bafde1e47951244d1b4834682b14a22238da1", 22544),
    "KDDTest-21.txt.gz": ("cf79d2eab7d8cc749e7c088260c0297cbb26d95062d27d1f8c761f4eeac3327a", 11850),
}
_TRAIN_ALIASES = {"full": "KDDTrain+.txt.gz", "20percent": "KDDTrain+_20Percent.txt.gz"}
_TEST_ALIASES = {"full": "KDDTest+.txt.gz", "21": "KDDTest-21.txt.gz"}


def _pick(value: str, aliases: dict, key: str) -> str:
    if value in aliases:
        return aliases[value]
    if value in FILES:
        return value
    raise ConfigError(f"dataset.source.{key}={value!r}; choose one of {sorted(aliases)} or {sorted(FILES)}")


def _read(path, fname: str) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=COLUMNS)
    if len(df) != FILES[fname][1]:
        raise DataError(f"nsl-kdd/{fname}: {path} has {len(df)} rows, expected {FILES[fname][1]}")
    return df


def _encode(train_file: str, test_file: str, label: str, paths) -> dict[str, np.ndarray]:
    train, test = _read(paths[0], train_file), _read(paths[1], test_file)
    df = pd.concat([train, test], ignore_index=True)
    attacks = df["attack"].astype(str).str.strip().str.rstrip(".")
    unknown = sorted(set(attacks) - set(ATTACK_CATEGORY))
    if unknown:
        raise DataError(f"nsl-kdd: attack names without a category: {unknown}; extend ATTACK_CATEGORY")
    labels = attacks.map(ATTACK_CATEGORY) if label == "category" else attacks
    numeric = [c for c in COLUMNS[:41] if c not in CATEGORICAL]
    num = df[numeric].astype(np.float64)
    parts, names, groups = [num.to_numpy()], list(numeric), []
    for col in CATEGORICAL:
        cats = sorted(df[col].astype(str).unique())  # union of train and test: fixed width
        codes = pd.Categorical(df[col].astype(str), categories=cats).codes
        parts.append(np.eye(len(cats), dtype=np.float64)[codes])
        groups.append(list(range(len(names), len(names) + len(cats))))
        names += [f"{col}={c}" for c in cats]
    X = as_float32(np.concatenate(parts, axis=1), "nsl-kdd", columns=names, row="row {} (1-based, training rows first)")
    binary = [i for i, c in enumerate(numeric) if set(np.unique(num[c])) <= {0.0, 1.0}]
    return {
        "X": X,
        "labels": labels.to_numpy().astype(str),
        "attack": attacks.to_numpy().astype(str),
        "is_test": np.r_[np.zeros(len(train), bool), np.ones(len(test), bool)],
        "columns": np.array(names),
        "binary": np.array(binary, dtype=np.int64),
        "group_sizes": np.array([len(g) for g in groups], dtype=np.int64),
    }


def load_nslkdd(
    *, root=None, train_file: str = "full", test_file: str = "full", label: str = "category"
) -> Source:
    """NSL-KDD with one-hot categorical columns: 148517 × 122 float32 (38 numeric + 84 one-hot).

    Args:
        root: data root (config ``data_root``).
        train_file: ``full`` (KDDTrain+) or ``20percent`` (KDDTrain+_20Percent), or a file name.
        test_file: ``full`` (KDDTest+) or ``21`` (KDDTest-21), or a file name.
        label: ``category`` (normal/DoS/Probe/R2L/U2R) or ``attack`` (the raw attack name).

    ``features`` records the 0/1 numeric columns and the three one-hot groups;
    ``default_normal`` is ``"normal"``.
    """
    if label not in ("category", "attack"):
        raise ConfigError(f"dataset.source.label={label!r}; choose 'category' or 'attack'")
    tr, te = _pick(train_file, _TRAIN_ALIASES, "train_file"), _pick(test_file, _TEST_ALIASES, "test_file")
    paths = [
        files.locate(
            DataFile(f"nsl-kdd/{f}", (f"sha256:{FILES[f][0]}",), source=NSL_KDD_PAGE),
            root,
            what=f"nsl-kdd/{f}",
        )
        for f in (tr, te)
    ]
    arrays = files.cached_arrays(
        "nsl_kdd",
        paths,
        lambda: _encode(tr, te, label, paths),
        params={"train": tr, "test": te, "label": label},
    )
    groups, start = [], len(arrays["columns"]) - int(arrays["group_sizes"].sum())
    for size in arrays["group_sizes"].tolist():
        groups.append(list(range(start, start + size)))
        start += size
    class_names = {c: c for c in CATEGORIES} if label == "category" else None
    src = Source(
        name="nsl_kdd",
        X=arrays["X"],
        labels=arrays["labels"],
        kind="tabular",
        is_test=arrays["is_test"],
        class_names=class_names,
        features=FeatureInfo(binary=arrays["binary"].tolist(), onehot_groups=groups),
        default_normal="normal",
    )
    src.columns = arrays["columns"].tolist()  # type: ignore[attr-defined]  # for reports; not part of the contract
    return src
