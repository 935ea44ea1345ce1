"""The semi-supervised split protocol shared by every dataset (docs/methods.md, protocol, docs/splits.md).

``build_split`` turns a ``Source`` into train/test parts the way Deep SAD's
reference code does (``create_semisupervised_setting``), with its exact counts:

* normal = rows whose label is ``normal_class``; every other label is an anomaly class;
* the number of labeled anomalies is ``int(γl · n_normal / (1 − γl))`` (solved from
  the same linear system as the reference, truncated), drawn from ``k`` known
  anomaly classes; pollution γp adds unlabeled anomalies from all anomaly classes;
* sources with an official test split keep it whole; others are cut per class
  into exactly the rows sklearn's ``train_test_split(rows_c, test_size=test_size,
  random_state=seed)`` returns (ODDS: 60/40, the test part holds ceil(0.4·n_c) rows);
* scaling is fitted on the training pool only (for ODDS, before unused
  anomalies are dropped, as in the reference).

``protocol`` picks how rows are selected:

* ``clean`` (default): the cut above, no test row is ever a training row; polluting
  anomalies are drawn from the anomalies *not* picked as labeled, so no row appears twice.
* ``deepsad_reference``: Deep-SAD-PyTorch's selection row for row. Its ``main.py``
  hands one ``np.random.RandomState(seed)`` to the dataset, which cuts the training
  part and the test part with two different ``train_test_split`` calls on that
  advancing generator, so test rows overlap training rows (logged as a warning);
  labeled rows and pollution come from ``create_semisupervised_setting`` with
  ``np.random`` seeded by ``seed``, and the test rows are scaled with scalers fitted
  on the second call's training part, as there.

Semi-supervised labels follow Deep SAD: +1 known normal, 0 unlabeled, −1 known anomaly.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split

from semiad_cli.data.scaling import Scaler, make_scaler
from semiad_cli.data.source import FeatureInfo, Source
from semiad_cli.errors import ConfigError, DataError, check_range

KNOWN_NORMAL, UNLABELED, KNOWN_ANOMALY = 1, 0, -1
PROTOCOLS = ("clean", "deepsad_reference")

log = logging.getLogger(__name__)


@dataclass
class Part:
    """One part of a split. Arrays share their first dimension ``n``.

    X: float32 features ``(n, *sample_shape)``; y: 1 = anomaly, 0 = normal (ground
    truth); semi: +1/0/−1 semi-supervised label; cls: original class label;
    index: row number in the source (``-1`` for synthetic rows).
    """

    X: np.ndarray
    y: np.ndarray
    semi: np.ndarray
    cls: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.X)

    def fingerprint(self) -> str:
        """sha256 over ``X`` (dtype, shape, bytes) and the labels ``y``: ``semiad evaluate`` compares it
        with the training run's to tell when the data it scores are not the data the run saw."""
        X = np.ascontiguousarray(self.X)
        digest = hashlib.sha256(f"{X.dtype.str}{X.shape}".encode())
        digest.update(X)
        digest.update(np.ascontiguousarray(self.y, dtype=np.int64))
        return digest.hexdigest()

    def take(self, rows: np.ndarray) -> Part:
        return Part(self.X[rows], self.y[rows], self.semi[rows], self.cls[rows], self.index[rows])

    @staticmethod
    def concat(a: Part, b: Part) -> Part:
        cls = np.concatenate([a.cls.astype(object), b.cls.astype(object)]) if a.cls.dtype != b.cls.dtype \
            else np.concatenate([a.cls, b.cls])
        return Part(np.concatenate([a.X, b.X]), np.concatenate([a.y, b.y]), np.concatenate([a.semi, b.semi]),
                    cls, np.concatenate([a.index, b.index]))


@dataclass
class Split:
    """Train (optionally val) and test parts plus the facts metrics and reports need."""

    train: Part
    test: Part
    val: Part | None = None
    normal_classes: list = field(default_factory=list)
    known_anomaly_classes: list = field(default_factory=list)
    anomaly_classes: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    features: FeatureInfo = field(default_factory=FeatureInfo)
    kind: str = "tabular"
    class_names: dict | None = None
    scaler: Scaler | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.train.X.shape[1:])


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):  # a class name, not a sequence of characters
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    try:  # OmegaConf ListConfig
        return list(value)
    except TypeError:
        return [value]


def _match_labels(wanted: list, labels: np.ndarray, what: str, name: str) -> list:
    """Map config values (often ints from YAML) onto the label values present."""
    present = list(dict.fromkeys(labels.tolist()))
    by_str = {str(p): p for p in present}
    out = []
    for w in wanted:
        if w in present:
            out.append(w)
        elif str(w) in by_str:
            out.append(by_str[str(w)])
        else:
            raise ConfigError(
                f"{what}={w!r} is not a class of dataset '{name}'; its classes are {sorted(map(str, present))}"
            )
    return out


def sample_counts(n_normal: int, ratio_known_normal: float, ratio_known_anomaly: float,
                  ratio_pollution: float, *, nudge: float = 1e-9) -> tuple[int, int, int, int]:
    """Counts (known normal, unlabeled normal, unlabeled anomaly, known anomaly).

    Solves the reference code's linear system so that γn, γl and γp are the
    fractions of the *training set*; each count is truncated with ``int``. A tiny
    ``nudge`` keeps exact integers (e.g. 19.999999) from truncating down; ``nudge=0``
    truncates exactly as the reference does (``protocol=deepsad_reference``).
    """
    a = np.array([
        [1, 1, 0, 0],
        [1 - ratio_known_normal, -ratio_known_normal, -ratio_known_normal, -ratio_known_normal],
        [-ratio_known_anomaly, -ratio_known_anomaly, -ratio_known_anomaly, 1 - ratio_known_anomaly],
        [0, -ratio_pollution, 1 - ratio_pollution, 0],
    ])
    x = np.linalg.solve(a, np.array([n_normal, 0, 0, 0], dtype=float))
    return tuple(int(v + nudge) for v in x)  # type: ignore[return-value]


def _stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask selecting ``fraction`` of each class (rounded down, at least one when possible)."""
    mask = np.zeros(len(labels), dtype=bool)
    for value in dict.fromkeys(labels.tolist()):
        rows = np.flatnonzero(labels == value)
        n = int(fraction * len(rows))
        mask[rng.permutation(rows)[:n]] = True
    return mask


def _sklearn_state(seed: int) -> int:
    """The seed as sklearn/``RandomState`` take it (they refuse seeds of 2**32 and above)."""
    return int(seed) % 2**32


def _can_cut(n: int, test_size: float) -> bool:
    """Whether ``train_test_split`` can cut ``n`` rows: its test part is ceil(test_size·n) and must leave one."""
    return math.ceil(test_size * n) < n


def _clean_test_mask(labels: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """Test rows: per class, those of ``train_test_split(rows_c, test_size=test_size, random_state=seed)``.

    Each class gets its own call with the integer seed, so the rows are exactly the
    ones sklearn returns for that class alone. A class too small to leave a training
    row (one row at 0.4) stays whole in training, where sklearn would refuse it.
    """
    mask = np.zeros(len(labels), dtype=bool)
    for value in dict.fromkeys(labels.tolist()):
        rows = np.flatnonzero(labels == value)
        if _can_cut(len(rows), test_size):
            mask[train_test_split(rows, test_size=test_size, random_state=_sklearn_state(seed))[1]] = True
    return mask


def _reference_cut(is_normal: np.ndarray, test_size: float, seed: int,
                   name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deep-SAD-PyTorch's ODDS cut: (training pool, test rows, rows its test scalers are fitted on).

    Its ``main.py`` passes one ``RandomState(seed)`` to ``ODDSDataset(train=True)`` and then
    to ``ODDSDataset(train=False)``; each cuts the normal rows, then the anomalous rows,
    with ``train_test_split``. The test part thus comes from the third and fourth calls
    on the advanced generator and overlaps the training part of the first two. Rows
    keep the order those calls return (normal part first), as in the reference.
    """
    groups = [np.flatnonzero(is_normal), np.flatnonzero(~is_normal)]
    for rows, what in zip(groups, ("normal", "anomalous"), strict=True):
        if not _can_cut(len(rows), test_size):
            raise DataError(f"dataset '{name}': dataset.split.protocol=deepsad_reference cannot cut its {len(rows)} "
                            f"{what} rows with test_size={test_size} (no training row would be left); "
                            f"use dataset.split.protocol=clean")
    state = np.random.RandomState(_sklearn_state(seed))
    first = [train_test_split(rows, test_size=test_size, random_state=state) for rows in groups]
    second = [train_test_split(rows, test_size=test_size, random_state=state) for rows in groups]
    return (np.concatenate([train for train, _ in first]), np.concatenate([test for _, test in second]),
            np.concatenate([train for train, _ in second]))


def _clean_semisupervised(idx_normal: np.ndarray, idx_anomaly: np.ndarray, idx_known_cand: np.ndarray,
                          counts: tuple[int, int, int, int], rng: np.random.Generator, ratio_known_anomaly: float,
                          ratio_pollution: float, known: list) -> tuple[np.ndarray, np.ndarray]:
    """Training rows and semi labels for ``protocol=clean``: pollution never repeats a labeled row."""
    n_kn, n_un, n_ua, n_ka = counts
    if n_ka > len(idx_known_cand):
        raise ConfigError(
            f"dataset.split.ratio_known_anomaly={ratio_known_anomaly} needs {n_ka} labeled anomalies but the "
            f"known classes {known} have only {len(idx_known_cand)} training rows; lower the ratio or add classes"
        )
    perm_normal = rng.permutation(idx_normal)
    known_normal_rows = perm_normal[:n_kn]
    unlabeled_normal_rows = perm_normal[n_kn:n_kn + n_un]
    known_anomaly_rows = rng.permutation(idx_known_cand)[:n_ka]
    pollution_pool = np.setdiff1d(idx_anomaly, known_anomaly_rows)
    if n_ua > len(pollution_pool):
        raise ConfigError(
            f"dataset.split.ratio_pollution={ratio_pollution} needs {n_ua} unlabeled anomalies but only "
            f"{len(pollution_pool)} are left"
        )
    polluted_rows = rng.permutation(pollution_pool)[:n_ua]

    train_rows = np.concatenate([known_normal_rows, unlabeled_normal_rows, polluted_rows, known_anomaly_rows])
    semi = np.concatenate([
        np.full(len(known_normal_rows), KNOWN_NORMAL), np.full(len(unlabeled_normal_rows), UNLABELED),
        np.full(len(polluted_rows), UNLABELED), np.full(len(known_anomaly_rows), KNOWN_ANOMALY),
    ]).astype(np.int8)
    order = rng.permutation(len(train_rows))  # mix labeled rows in; batches are drawn by index anyway
    return train_rows[order], semi[order]


def _reference_semisupervised(idx_normal: np.ndarray, idx_anomaly: np.ndarray, idx_known_cand: np.ndarray,
                              counts: tuple[int, int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows and semi labels as the reference's ``create_semisupervised_setting`` picks them.

    ``main.py`` seeds ``np.random`` with ``seed`` and nothing draws from it before this
    function's three permutations. Pollution is drawn from *all* anomalies, so a row
    can be drawn both as pollution and as labeled; it then appears twice, and since
    ``semi_targets[idx] = ...`` keeps the last write, both copies are labeled (−1).
    Order: known normals, unlabeled normals, pollution, labeled anomalies.
    """
    n_kn, n_un, n_ua, n_ka = counts
    state = np.random.RandomState(_sklearn_state(seed))
    perm_normal = state.permutation(len(idx_normal))
    perm_anomaly = state.permutation(len(idx_anomaly))
    perm_known = state.permutation(len(idx_known_cand))
    parts = [idx_normal[perm_normal[:n_kn]], idx_normal[perm_normal[n_kn:n_kn + n_un]],
             idx_anomaly[perm_anomaly[:n_ua]], idx_known_cand[perm_known[:n_ka]]]
    semi = np.concatenate([np.full(len(parts[0]), KNOWN_NORMAL), np.full(len(parts[1]) + len(parts[2]), UNLABELED),
                           np.full(len(parts[3]), KNOWN_ANOMALY)])
    rows = np.concatenate(parts)
    last = dict(zip(rows.tolist(), semi.tolist(), strict=True))
    return rows, np.array([last[r] for r in rows.tolist()], dtype=np.int8)


def build_split(
    source: Source,
    *,
    seed: int,
    normal_class=None,
    known_anomaly_classes=None,
    n_known_anomaly_classes: int = 1,
    ratio_known_anomaly: float = 0.05,
    ratio_pollution: float = 0.0,
    ratio_known_normal: float = 0.0,
    test_size: float = 0.4,
    protocol: str = "clean",
    scaling: str = "standard_minmax",
    gcn: bool = False,
    max_train_normal: int | None = None,
    max_test: int | None = None,
) -> Split:
    """Build the train/test split of ``source`` for one seed (deterministic).

    Args:
        source: raw dataset from a loader.
        seed: all randomness (class choice, sampling, test split) comes from it.
        normal_class: label (or list) that is normal; default ``source.default_normal``.
        known_anomaly_classes: explicit labeled-anomaly classes; when null, ``k =
            n_known_anomaly_classes`` are drawn at random from the anomaly classes.
        ratio_known_anomaly: γl, fraction of labeled anomalies in the training set.
        ratio_pollution: γp, fraction of unlabeled anomalies in the training set.
        ratio_known_normal: γn, fraction of labeled normals in the training set.
        test_size: test fraction per class when the source has no official test split
            (sklearn's rounding: ceil(test_size · n_c) test rows).
        protocol: ``clean`` (no test row is a training row) or ``deepsad_reference``
            (Deep-SAD-PyTorch's rows, overlap included); see docs/splits.md.
        scaling: ``standard_minmax`` | ``standard`` | ``minmax`` | ``pixel`` | ``none``.
        gcn: global contrast normalisation per sample (images), before scaling.
        max_train_normal / max_test: optional caps (random, stratified for test) for
            quick runs; null keeps the protocol's full sizes (and, for
            ``deepsad_reference``, the reference's rows).

    Returns:
        ``Split`` with ``counts`` recording every number of the protocol.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"dataset.split.protocol={protocol!r} is unknown; choose one of {list(PROTOCOLS)}")
    check_range("dataset.split.ratio_known_anomaly", ratio_known_anomaly, 0.0, 0.99)
    check_range("dataset.split.ratio_pollution", ratio_pollution, 0.0, 0.99)
    check_range("dataset.split.ratio_known_normal", ratio_known_normal, 0.0, 0.99)
    check_range("dataset.split.test_size", test_size, 0.01, 0.99)
    check_range("dataset.split.n_known_anomaly_classes", n_known_anomaly_classes, 0, None)
    if ratio_known_anomaly + ratio_pollution + ratio_known_normal >= 1:
        raise ConfigError("dataset.split ratios γl + γp + γn must sum to less than 1")
    reference = protocol == "deepsad_reference"

    rng = np.random.default_rng(seed)
    labels = np.asarray(source.labels)
    normal = _match_labels(_as_list(normal_class if normal_class is not None else source.default_normal),
                           labels, "dataset.split.normal_class", source.name)
    all_classes = list(dict.fromkeys(labels.tolist()))
    anomaly_classes = sorted((c for c in all_classes if c not in normal), key=str)
    if not anomaly_classes:
        raise DataError(f"dataset '{source.name}' has no anomaly class once {normal} is normal")

    if known_anomaly_classes is not None:
        known = _match_labels(_as_list(known_anomaly_classes), labels,
                              "dataset.split.known_anomaly_classes", source.name)
        if set(known) & set(normal):
            raise ConfigError("dataset.split.known_anomaly_classes overlaps normal_class")
    else:
        if n_known_anomaly_classes > len(anomaly_classes):
            raise ConfigError(
                f"dataset.split.n_known_anomaly_classes={n_known_anomaly_classes} but '{source.name}' has only "
                f"{len(anomaly_classes)} anomaly classes"
            )
        if reference:  # the reference's image sets: random.sample(outlier_classes, k) after random.seed(seed)
            known = random.Random(seed).sample(anomaly_classes, n_known_anomaly_classes)
        else:
            picks = rng.permutation(len(anomaly_classes))[:n_known_anomaly_classes]
            known = [anomaly_classes[i] for i in sorted(picks)]
    if ratio_known_anomaly > 0 and not known:
        raise ConfigError("dataset.split.ratio_known_anomaly > 0 needs at least one known anomaly class "
                          "(set n_known_anomaly_classes >= 1 or known_anomaly_classes)")

    # --- train pool / test part ------------------------------------------------------------
    test_fit_rows = None  # rows the test part's scaler is fitted on, when not the pool (reference)
    if source.is_test is not None:
        is_test = np.asarray(source.is_test, dtype=bool)
        pool, test_rows = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    elif reference:
        pool, test_rows, test_fit_rows = _reference_cut(np.isin(labels, normal), test_size, seed, source.name)
    else:
        is_test = _clean_test_mask(labels, test_size, seed)
        pool, test_rows = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if max_test is not None and max_test < len(test_rows):
        keep = _stratified_holdout(labels[test_rows], max_test / len(test_rows), rng)
        test_rows = test_rows[keep]

    pool_labels = labels[pool]
    idx_normal = pool[np.isin(pool_labels, normal)]
    idx_anomaly = pool[~np.isin(pool_labels, normal)]
    idx_known_cand = pool[np.isin(pool_labels, known)] if known else pool[:0]
    if len(idx_normal) == 0:
        raise DataError(f"dataset '{source.name}': the normal class {normal} has no training rows after the split")
    if max_train_normal is not None and max_train_normal < len(idx_normal):
        idx_normal_used = rng.permutation(idx_normal)[:max_train_normal]
    else:
        idx_normal_used = idx_normal

    n_kn, n_un, n_ua, n_ka = sample_counts(len(idx_normal_used), ratio_known_normal, ratio_known_anomaly,
                                           ratio_pollution, nudge=0.0 if reference else 1e-9)
    if reference:
        if n_ka > len(idx_known_cand) or n_ua > len(idx_anomaly):  # the reference takes what there is
            log.warning("dataset.split.protocol=deepsad_reference: asked for %d labeled and %d polluting anomalies, "
                        "the training part has %d and %d; using those, as the reference does", n_ka, n_ua,
                        len(idx_known_cand), len(idx_anomaly))
        train_rows, semi = _reference_semisupervised(idx_normal_used, idx_anomaly, idx_known_cand,
                                                     (n_kn, n_un, n_ua, n_ka), seed)
    else:
        train_rows, semi = _clean_semisupervised(idx_normal_used, idx_anomaly, idx_known_cand,
                                                 (n_kn, n_un, n_ua, n_ka), rng, ratio_known_anomaly,
                                                 ratio_pollution, known)

    # --- scaling: fitted on the training pool only (reference: before unused anomalies drop) -
    scaler = make_scaler(scaling, gcn=gcn)
    scaler.fit(source.X[pool])
    test_scaler = scaler if test_fit_rows is None else make_scaler(scaling, gcn=gcn).fit(source.X[test_fit_rows])

    def part(rows: np.ndarray, semi_labels: np.ndarray, fitted: Scaler) -> Part:
        cls = labels[rows]
        return Part(
            X=fitted.transform(source.X[rows]),
            y=(~np.isin(cls, normal)).astype(np.int8),
            semi=semi_labels,
            cls=cls,
            index=rows.astype(np.int64),
        )

    train = part(train_rows, semi, scaler)
    test = part(test_rows, np.zeros(len(test_rows), dtype=np.int8), test_scaler)
    if test.y.sum() == 0 or test.y.sum() == len(test):
        raise DataError(f"dataset '{source.name}': the test part needs both normal and anomalous rows "
                        f"(it has {int(test.y.sum())} anomalies in {len(test)} rows)")
    n_overlap = len(np.intersect1d(test_rows, pool))
    if n_overlap:
        log.warning("dataset '%s', dataset.split.protocol=%s: test rows overlap training rows: %d of %d (%d of them "
                    "in the training set itself), as in Deep-SAD-PyTorch; protocol=clean keeps them apart",
                    source.name, protocol, n_overlap, len(test_rows), len(np.intersect1d(test_rows, train_rows)))

    labeled, polluted = train.semi == KNOWN_ANOMALY, (train.semi == UNLABELED) & (train.y == 1)
    counts = {
        "protocol": protocol,
        "n_train_pool": len(pool),
        "n_train": len(train),
        "n_train_normal_unlabeled": int(((train.semi == UNLABELED) & (train.y == 0)).sum()),
        "n_train_known_normal": int((train.semi == KNOWN_NORMAL).sum()),
        "n_train_known_anomaly": int(labeled.sum()),
        "n_train_polluted": int(polluted.sum()),
        "train_known_anomaly_per_class": {str(k): v for k, v in Counter(train.cls[labeled].tolist()).items()},
        "train_polluted_per_class": {str(k): v for k, v in Counter(train.cls[polluted].tolist()).items()},
        "n_test": len(test),
        "n_test_normal": int((test.y == 0).sum()),
        "n_test_anomaly": int(test.y.sum()),
        "n_test_in_train_pool": n_overlap,
        "test_per_class": {str(k): v for k, v in sorted(Counter(test.cls.tolist()).items(), key=lambda kv: str(kv[0]))},
    }
    return Split(
        train=train, test=test, normal_classes=normal, known_anomaly_classes=known,
        anomaly_classes=anomaly_classes, counts=counts, features=source.features, kind=source.kind,
        class_names=source.class_names, scaler=scaler,
    )


def hold_out_validation(train: Part, fraction: float, seed: int) -> tuple[Part, Part | None]:
    """Split ``fraction`` of the training part off for validation, stratified by semi label.

    Used by the trainer for early stopping and by sweepers for their objective,
    so that no decision ever looks at the test part.
    """
    check_range("trainer.val_fraction", fraction, 0.0, 0.9)
    if fraction == 0:
        return train, None
    rng = np.random.default_rng([seed, 7919])
    mask = _stratified_holdout(train.semi, fraction, rng)
    return train.take(np.flatnonzero(~mask)), train.take(np.flatnonzero(mask))
