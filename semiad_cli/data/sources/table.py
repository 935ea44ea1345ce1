"""User tables (CSV or parquet) as a tabular ``Source``.

The label column marks anomalies (``anomaly_values``) or normals (``normal_values``);
an optional ``class_column`` gives anomaly classes for per-class metrics and
known/unknown splits. Categorical columns become one-hot groups and 0/1 numeric
columns are recorded as binary (``FeatureInfo``), which the synthetic-anomaly
generator needs. Problems (missing file, unknown column, NaN, inf or values beyond
float32, text in a numeric column) raise one-line errors that name the column.

Columns without a name or with the name of another column are refused: pandas'
``to_csv()`` writes the index as an unnamed first column, which predicts the label
when the file is sorted by it, and a second ``y`` (read as ``y.1``) is a copy of
the label. ``drop_columns`` removes them before any check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from semiad_cli.data.source import FeatureInfo, Source, check_values
from semiad_cli.errors import ConfigError, DataError

NORMAL_LABEL = "normal"
# names pandas gives to columns without one (and that an earlier round trip may have written as real names)
_UNNAMED = re.compile(r"Unnamed: \d+(\.\d+)?|__index_level_\d+__")


def _dedupe(names: list[str]) -> list[str]:
    """pandas' renaming of repeated CSV names (``y, y`` -> ``y, y.1``), for parquet files that keep them."""
    out: list[str] = []
    taken = set(names)
    for name in names:
        if name in out:
            k = 1
            while f"{name}.{k}" in taken:
                k += 1
            taken.add(f"{name}.{k}")
            name = f"{name}.{k}"
        out.append(name)
    return out


def _read_frame(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table with unique string column names, and each name's spelling in the file's header.

    pandas renames a repeated CSV name (``y.1``) and names an empty one ``Unnamed: <i>``;
    the header row itself shows which columns were really repeated or empty. A parquet
    file may hold repeated names, which pyarrow cannot turn into a frame: they get
    pandas' CSV names, so ``drop_columns`` works the same for both formats.
    """
    suffixes = "".join(path.suffixes).lower()
    if ".parquet" in suffixes or suffixes.endswith(".pq"):
        import pyarrow.parquet as pq

        raw = [str(c) for c in pq.read_schema(path).names]
        if len(set(raw)) == len(raw):
            df = pd.read_parquet(path)
        else:
            # ParquetFile, not read_table: the dataset reader behind read_table refuses repeated names
            df = pq.ParquetFile(path).read().rename_columns(_dedupe(raw)).to_pandas()
    else:
        df = pd.read_csv(path)
        head = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
        raw = [str(v) for v in head.iloc[0]] if len(head) else []
    df.columns = [str(c) for c in df.columns]
    if len(raw) != len(df.columns):  # parquet index columns, or a header shorter than its rows
        raw = list(df.columns)
    return df, dict(zip(df.columns, raw, strict=True))


def _read(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    try:
        return _read_frame(path)
    except ImportError as exc:
        raise DataError(
            f"reading {path} needs an optional package: {exc} (pip install 'semiad-cli[parquet]')"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split())  # pyarrow's messages span lines
        raise DataError(f"cannot read table {path}: {reason}") from exc


def _check_names(df: pd.DataFrame, header: dict[str, str], fname: str) -> None:
    """Refuse unnamed and repeated columns (after ``drop_columns``): either can leak the label."""
    unnamed = [c for c in df.columns if not header[c].strip() or _UNNAMED.fullmatch(header[c])]
    if unnamed:
        raise DataError(
            f"{fname}: unnamed columns {unnamed} (often the index written by DataFrame.to_csv(), which predicts "
            f"the label when the rows are sorted by it); drop them with dataset.source.drop_columns={unnamed} "
            f"or write the file with index=False"
        )
    copies: dict[str, list[str]] = {}
    for c in df.columns:
        copies.setdefault(header[c], []).append(c)
    repeated = {name: cols for name, cols in copies.items() if len(cols) > 1}
    if repeated:
        read_as = "; ".join(f"{name!r} read as {cols}" for name, cols in repeated.items())
        extra = [c for cols in repeated.values() for c in cols[1:]]
        raise DataError(
            f"{fname}: duplicate column names {list(repeated)} ({read_as}); a copy of the label would become a "
            f"feature: rename them in the file or drop the copies with dataset.source.drop_columns={extra}"
        )


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
        drop_columns: columns removed before anything else is checked (ids, timestamps,
            a written index ``'Unnamed: 0'``, a repeated name as pandas reads it: ``'y.1'``).
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
    df, header = _read(path)
    cols = list(df.columns)
    for key, group in (("drop_columns", drop_columns), ("categorical_columns", categorical_columns or [])):
        missing = [c for c in _as_list(group) if c not in cols]
        if missing:
            raise ConfigError(
                f"dataset.source.{key} names unknown columns {missing}; columns of {path.name}: {cols}"
            )
    for key, col in (("label_column", label_column), ("class_column", class_column)):
        if col is not None and col not in cols:
            raise ConfigError(f"dataset.source.{key}={col!r} is not a column of {path.name}; columns: {cols}")
        if col is not None and col in _as_list(drop_columns):
            raise ConfigError(
                f"dataset.source.drop_columns drops the {key.replace('_', ' ')} {col!r}; remove it from drop_columns"
            )
    df = df.drop(columns=_as_list(drop_columns))
    cols = list(df.columns)
    _check_names(df, header, path.name)

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
        check_values(
            arr[:, None], path.name, columns=[c], row="data row {} (1-based, header not counted)",
            fix=f"fix those rows or drop the column with dataset.source.drop_columns=[{c!r}]",
        )
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
