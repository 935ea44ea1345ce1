"""A detector whose ``fit`` raises ``RuntimeError``: a bug deep in a model, not a user error.

Reached from the real CLI with ``model=iforest model._target_=tests.helpers.failing.FailingDetector``
(the subprocess runs in the repo root, so ``tests`` is importable).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semiad_cli.models.base import Detector

MESSAGE = "planted failure in FailingDetector.fit"


class FailingDetector(Detector):
    """Accepts any hyperparameters; ``fit`` always fails."""

    def __init__(self, **params) -> None:
        self.params = params

    def fit(self, train, val=None) -> FailingDetector:
        raise RuntimeError(MESSAGE)

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X))

    def save(self, directory: Path) -> None:
        pass

    def load(self, directory: Path) -> FailingDetector:
        return self
