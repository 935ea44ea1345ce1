"""User tables (CSV or parquet) as a tabular ``Source``.

The label column marks anomalies (``anomaly_values``) or normals (``normal_values``);
an optional ``class_column`` gives anomaly classes for per-class metrics and
known/unknown splits. Categorical columns become one-hot groups and 0/1 numeric
columns are recorded as binary (``FeatureInfo``), which the synthetic-anomaly
generator needs. Problems (missing file, unknown column, NaN, text in a numeric
column) raise one-line errors that name the column.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from semiad_cli.data.source import FeatureInfo, Source
from semiad_cli.errors import ConfigError, DataError

NORMAL_LABEL = "normal"


def _read(path: Path) -> pd.DataFrame:
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes or suffixes.endswith(".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError as exc:
        raise DataError(
            f"reading {path} needs an optional package: {exc} (pip install 'semiad-cli[parquet]')"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(f"cannot read table {path}: {exc}") from exc


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [value]
    return list(value)


def _matches(column: pd.Series, values: list) -> np.ndarray:
    """Rows whose value equals one of ``values``, comparing as strings too (YAML gives ints/strs)."""
    as_str = column.astype(str)
    return (column.isin(values) | as_str.isin([str(v) for v in values])).to_numpy()


def _mostly_numeric(column: pd.Series, share: float = 0.5) -> bool:
    """A text column whose values are nearly all numbers is a numeric column with stray strings
    (a typo, "n/a"), not a categorical one: one-hot encoding it would hide the problem."""
    if pd.api.types.is_bool_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype):
        return False
    parsed = pd.to_numeric(column, errors="coerce")
    return bool(parsed.notna().mean() > share)


def load_table(
    *,
    path: str | os.PathLike,
    label_column: str,
    anomaly_values: Sequence | None = None,
    normal_values: Sequence | None = None,
    class_column: str | None = None,
    categorical_columns: Sequence[str] | None = None,
    drop_columns: Sequence[str] = (),
    name: str | None = None,
) -> Source:
    """Load a CSV/parquet table.

    Args:
        path: ``.csv`` (any pandas-readable text) or ``.parquet`` file.
        label_column: column that tells normal from anomalous rows.
        anomaly_values / normal_values: values of ``label_column`` that are anomalies /
            normal; give exactly one of the two (the other side is "everything else").
        class_column: optional anomaly class per row (e.g. attack type). Anomalous rows
            get its value as label, normal rows get ``"normal"``. Without it the label
            is the label column's value.
        categorical_columns: columns to one-hot encode; ``None``: every object,
            string, category or bool column, except text columns whose values are mostly
            (over half) numbers: those are numeric columns with stray strings and raise
            a ``DataError``. Any other column must be numeric.
        drop_columns: columns ignored entirely (ids, timestamps).
        name: dataset name for reports; default the file stem.

    Returns:
        ``Source`` with float32 ``X (n, d)``: numeric columns in file order, then the
        one-hot groups; ``default_normal`` is always a *list* of the normal label values
        (so the split needs no ``normal_class``, and a string label is never read as a
        sequence of characters).
    """
    path = Path(os.path.expanduser(str(path)))
    if not path.is_file():
        raise DataError(
            f"table file not found: {path.resolve()} ; set dataset.source.path to an existing "
            f".csv or .parquet file"
        )
    if (anomaly_values is None) == (normal_values is None):
        raise ConfigError(
            "dataset.source: give exactly one of anomaly_values or normal_values (values of the label column)"
        )
    df = _read(path)
    cols = [str(c) for c in df.columns]
    df.columns = cols
    for key, col in (("label_column", label_column), ("class_column", class_column)):
        if col is not None and col not in cols:
            raise ConfigError(f"dataset.source.{key}={col!r} is not a column of {path.name}; columns: {cols}")
    for key, group in (("drop_columns", drop_columns), ("categorical_columns", categorical_columns or [])):
        missing = [c for c in _as_list(group) if c not in cols]
        if missing:
            raise ConfigError(
                f"dataset.source.{key} names unknown columns {missing}; columns of {path.name}: {cols}"
            )

    label = df[label_column]
    if label.isna().any():
        raise DataError(
            f"{path.name}: label column '{label_column}' has {int(label.isna().sum())} empty values"
        )
    if anomaly_values is not None:
        is_anomaly = _matches(label, _as_list(anomaly_values))
    else:
        is_anomaly = ~_matches(label, _as_list(normal_values))
    if not is_anomaly.any() or is_anomaly.all():
        raise ConfigError(
            f"dataset.source: with label_column={label_column!r}, anomaly_values={anomaly_values} "
            f"and normal_values={normal_values}, {int(is_anomaly.sum())} of {len(df)} rows are "
            f"anomalies; values present: {sorted(map(str, label.unique()))[:20]}"
        )

    if class_column is not None:
        cls = df[class_column]
        if cls[is_anomaly].isna().any():
            raise DataError(
                f"{path.name}: class column '{class_column}' is empty in {int(cls[is_anomaly].isna().sum())}"
                f" anomalous rows"
            )
        anomaly_classes = cls[is_anomaly].astype(str)
        if (anomaly_classes == NORMAL_LABEL).any():
            raise DataError(
                f"{path.name}: class column '{class_column}' uses '{NORMAL_LABEL}' for anomalous rows; "
                f"that name is reserved for the normal rows"
            )
        labels = np.full(len(df), NORMAL_LABEL, dtype=object)
        labels[is_anomaly] = anomaly_classes.to_numpy()
        labels = labels.astype(str)
        default_normal: list = [NORMAL_LABEL]
    else:
        labels = label.to_numpy()
        if labels.dtype == object:
            labels = labels.astype(str)
        default_normal = sorted(set(labels[~is_anomaly].tolist()), key=str)

    used = [c for c in cols if c not in {label_column, class_column, *_as_list(drop_columns)}]
    if not used:
        raise ConfigError(
            f"dataset.source: no feature columns left in {path.name} after dropping label/class/drop columns"
        )
    feats = df[used]
    nan = feats.isna().sum()
    nan = nan[nan > 0]
    if len(nan):
        listed = ", ".join(f"{c} ({n})" for c, n in nan.items())
        raise DataError(
            f"{path.name}: missing values (NaN) in feature columns {listed}; fill or drop them "
            f"(dataset.source.drop_columns) before loading"
        )

    if categorical_columns is None:
        categorical = [
            c
            for c in used
            if (
                feats[c].dtype == object
                or isinstance(feats[c].dtype, pd.CategoricalDtype)
                or pd.api.types.is_string_dtype(feats[c].dtype)
                or pd.api.types.is_bool_dtype(feats[c].dtype)
            )
            and not _mostly_numeric(feats[c])
        ]
    else:
        categorical = [c for c in _as_list(categorical_columns) if c in used]
    numeric = [c for c in used if c not in categorical]

    blocks, binary = [], []
    for c in numeric:
        values = pd.to_numeric(feats[c], errors="coerce")
        bad = values.isna()
        if bad.any():
            examples = sorted(map(str, feats[c][bad].unique()))[:5]
            raise DataError(
                f"{path.name}: column '{c}' is numeric but holds non-numeric values {examples} in "
                f"{int(bad.sum())} rows; list it in dataset.source.categorical_columns or clean it"
            )
        arr = values.to_numpy(dtype=np.float64)
        if set(np.unique(arr).tolist()) <= {0.0, 1.0}:
            binary.append(len(blocks))
        blocks.append(arr[:, None])
    groups = []
    start = len(blocks)
    for c in categorical:
        values = feats[c].astype(str)
        cats = sorted(values.unique())
        codes = pd.Categorical(values, categories=cats).codes
        blocks.append(np.eye(len(cats), dtype=np.float64)[codes])
        groups.append(list(range(start, start + len(cats))))
        start += len(cats)
    X = np.concatenate(blocks, axis=1).astype(np.float32)
    return Source(
        name=name or path.stem,
        X=X,
        labels=labels,
        kind="tabular",
        is_test=None,
        class_names=None,
        features=FeatureInfo(binary=binary, onehot_groups=groups),
        default_normal=default_normal,
    )
