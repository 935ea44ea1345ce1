"""Classical baselines through scikit-learn: OC-SVM, Isolation Forest, and a supervised classifier.

They take the same split parts as the deep detectors (flattened, already scaled by the
split), go through the same trainer (``fit`` + ``save``), checkpoint folder and metrics.
Scores always point the same way: **higher = more anomalous** (sklearn's
``score_samples``/``decision_function`` point the other way and are negated).

Checkpoints are ``model.joblib`` (pickle) plus ``model.json`` (class, input shape):
load only files you trust: unpickling runs code.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble import IsolationForest as SkIsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import OneClassSVM
from threadpoolctl import threadpool_limits

from semiad_cli.atomic import atomic_write
from semiad_cli.data.split import KNOWN_ANOMALY, Part
from semiad_cli.errors import CheckpointError, ConfigError, SemiadError, check_range
from semiad_cli.models.base import Detector

MODEL_FILE = "model.joblib"
META_FILE = "model.json"


class SklearnDetector(Detector):
    """Shared plumbing: flatten rows, check feature count, joblib checkpoint.

    Subclasses implement ``_fit(X2d, part) -> estimator`` and ``_score(estimator, X2d) -> (n,)``.
    """

    estimator_ = None
    #: OpenMP/BLAS threads during fit and score (HistGradientBoosting spins all cores otherwise,
    #: which stalls badly on shared machines); None = library default
    n_threads: int | None = 1

    # ---------------------------------------------------------------- subclass hooks
    def _fit(self, X: np.ndarray, part: Part):
        raise NotImplementedError

    def _score(self, estimator, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ---------------------------------------------------------------- Detector API
    def fit(self, train: Part, val: Part | None = None) -> SklearnDetector:
        """Fit on the flattened training rows; ``val`` is not used (closed-form fit)."""
        if len(train) == 0:
            raise SemiadError(f"{type(self).__name__}: the training part is empty")
        self.input_shape = tuple(int(s) for s in train.X.shape[1:])
        with threadpool_limits(limits=self.n_threads):
            self.estimator_ = self._fit(_flatten(train.X), train)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        if self.estimator_ is None:
            raise SemiadError(f"{type(self).__name__} is not fitted: train it (semiad train) or load a checkpoint")
        self._check_input(X)
        if len(X) == 0:
            return np.zeros(0, np.float64)
        with threadpool_limits(limits=self.n_threads):
            return np.asarray(self._score(self.estimator_, _flatten(X)), dtype=np.float64)

    def save(self, directory: Path) -> None:
        if self.estimator_ is None:
            raise SemiadError(f"{type(self).__name__} is not fitted; nothing to save")
        directory = Path(directory)
        meta = {"model_class": self.class_path(), "input_shape": list(self.input_shape)}
        atomic_write(directory / MODEL_FILE, lambda tmp: joblib.dump(self.estimator_, tmp))
        atomic_write(directory / META_FILE, lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))

    def load(self, directory: Path) -> SklearnDetector:
        """Read ``model.joblib`` (trusted files only: joblib unpickles) and ``model.json``."""
        directory = Path(directory)
        meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
        if not meta_path.is_file() or not model_path.is_file():
            raise CheckpointError(f"no {MODEL_FILE}/{META_FILE} in {directory}: is this a finished "
                                  f"{type(self).__name__} run?")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{meta_path} is unreadable ({type(err).__name__})") from None
        if meta.get("model_class") != self.class_path():
            raise CheckpointError(f"checkpoint holds a {meta.get('model_class')} but the config builds "
                                  f"{self.class_path()}")
        try:
            self.estimator_ = joblib.load(model_path)
        except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
            raise CheckpointError(f"{model_path} is corrupt ({type(err).__name__}); re-run training") from None
        self.input_shape = tuple(int(s) for s in meta["input_shape"])
        return self

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"


def _flatten(X: np.ndarray) -> np.ndarray:
    return np.asarray(X, dtype=np.float64).reshape(len(X), -1)


def _subsample(X: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    if max_rows is None or len(X) <= max_rows:
        return X
    rows = np.sort(np.random.default_rng(seed).permutation(len(X))[:max_rows])
    return X[rows]


def _check_gamma(gamma) -> float | str:
    if isinstance(gamma, str):
        if gamma not in ("scale", "auto"):
            raise ConfigError(f"model.gamma={gamma!r}: use 'scale', 'auto' or a positive number")
        return gamma
    check_range("model.gamma", gamma, 1e-12)
    return float(gamma)


class OCSVM(SklearnDetector):
    """One-class SVM (Schölkopf et al. 2001), RBF kernel by default; unsupervised.

    Semi labels are ignored: every training row (labeled anomalies included) is treated as
    unlabeled, the same rule as Deep SVDD. Kernel SVMs cost O(n²) memory/time, so at most
    ``max_train`` rows (a seeded random subset) are used; null = all.

    Args:
        nu: ν ∈ (0, 1], upper bound on the fraction of training outliers.
        gamma: RBF width, ``scale`` | ``auto`` | a positive float.
        kernel: sklearn kernel name.
        max_train: row cap for fitting (seeded subsample by ``random_state``).
        random_state: seed of the subsample.

    Score: −decision_function (higher = more anomalous).
    """

    def __init__(self, *, nu: float = 0.1, gamma: float | str = "scale", kernel: str = "rbf",
                 max_train: int | None = 10000, random_state: int = 0, cache_size: float = 500.0) -> None:
        check_range("model.nu", nu, 1e-6, 1.0)
        if max_train is not None:
            check_range("model.max_train", max_train, 2)
        if kernel not in ("rbf", "linear", "poly", "sigmoid"):
            raise ConfigError(f"model.kernel={kernel!r}: use rbf, linear, poly or sigmoid")
        self.nu, self.gamma, self.kernel = float(nu), _check_gamma(gamma), kernel
        self.max_train, self.random_state, self.cache_size = max_train, int(random_state), float(cache_size)

    def _fit(self, X: np.ndarray, part: Part):
        X = _subsample(X, self.max_train, self.random_state)
        return OneClassSVM(kernel=self.kernel, nu=self.nu, gamma=self.gamma, cache_size=self.cache_size).fit(X)

    def _score(self, estimator, X: np.ndarray) -> np.ndarray:
        return -estimator.decision_function(X)


class IsolationForest(SklearnDetector):
    """Isolation Forest (Liu et al. 2008); unsupervised, semi labels ignored (as OC-SVM).

    Args:
        n_estimators, max_samples, max_features: as in sklearn.
        random_state: seed of the trees.
        n_jobs: sklearn worker processes (1 keeps parallel sweeps fair).

    Score: −score_samples (higher = more anomalous).
    """

    def __init__(self, *, n_estimators: int = 100, max_samples: int | float | str = "auto",
                 max_features: float = 1.0, random_state: int = 0, n_jobs: int | None = 1) -> None:
        check_range("model.n_estimators", n_estimators, 1)
        check_range("model.max_features", max_features, 1e-6, 1.0)
        if isinstance(max_samples, str) and max_samples != "auto":
            raise ConfigError(f"model.max_samples={max_samples!r}: use 'auto', a count or a fraction")
        if isinstance(max_samples, float):
            check_range("model.max_samples", max_samples, 1e-6, 1.0)
        elif isinstance(max_samples, int):
            check_range("model.max_samples", max_samples, 1)
        self.n_estimators, self.max_samples, self.max_features = int(n_estimators), max_samples, float(max_features)
        self.random_state, self.n_jobs = int(random_state), n_jobs

    def _fit(self, X: np.ndarray, part: Part):
        return SkIsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                 max_features=self.max_features, random_state=self.random_state,
                                 n_jobs=self.n_jobs).fit(X)

    def _score(self, estimator, X: np.ndarray) -> np.ndarray:
        return -estimator.score_samples(X)


class LabeledClassifier(SklearnDetector):
    """Supervised baseline: labeled anomalies (semi −1) vs everything else treated as normal.

    The semi-supervised shortcut users try first: a classifier that learns only what the
    labeled anomalies look like. Unlabeled rows (normal, or polluting anomalies) count as
    normal; classes are re-weighted (``class_weight='balanced'``) because labeled anomalies
    are few (γl). It cannot see anomaly classes it was never shown, which is why the
    per-class known/unknown metrics matter for it.

    Args:
        estimator: ``hgb`` (HistGradientBoostingClassifier) or ``logistic`` (LogisticRegression).
        max_iter: boosting iterations / solver iterations.
        learning_rate: boosting learning rate (``hgb`` only).
        C: inverse L2 strength (``logistic`` only).
        random_state: seed.
        n_threads: OpenMP threads of the boosting (null = all cores).

    Score: predicted probability of "anomaly" (higher = more anomalous).
    """

    ESTIMATORS = ("hgb", "logistic")

    def __init__(self, *, estimator: str = "hgb", max_iter: int = 100, learning_rate: float = 0.1,
                 C: float = 1.0, random_state: int = 0, n_threads: int | None = 1) -> None:
        if estimator not in self.ESTIMATORS:
            raise ConfigError(f"model.estimator={estimator!r}: choose one of {list(self.ESTIMATORS)}")
        check_range("model.max_iter", max_iter, 1)
        check_range("model.learning_rate", learning_rate, 1e-9)
        check_range("model.C", C, 1e-12)
        self.estimator, self.max_iter, self.learning_rate = estimator, int(max_iter), float(learning_rate)
        self.C, self.random_state = float(C), int(random_state)
        if n_threads is not None:
            check_range("model.n_threads", n_threads, 1)
        self.n_threads = n_threads

    def _fit(self, X: np.ndarray, part: Part):
        target = (part.semi == KNOWN_ANOMALY).astype(np.int64)
        if target.sum() == 0 or target.sum() == len(target):
            raise ConfigError(
                f"{type(self).__name__} needs labeled anomalies and other rows in the training part "
                f"(got {int(target.sum())} labeled anomalies of {len(target)}); "
                f"raise dataset.split.ratio_known_anomaly above 0"
            )
        if self.estimator == "hgb":
            clf = HistGradientBoostingClassifier(max_iter=self.max_iter, learning_rate=self.learning_rate,
                                                 class_weight="balanced", random_state=self.random_state)
        else:
            clf = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight="balanced")
        return clf.fit(X, target)

    def _score(self, estimator, X: np.ndarray) -> np.ndarray:
        return estimator.predict_proba(X)[:, 1]
