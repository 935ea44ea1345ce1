"""The one interface every detector implements.

* ``Detector`` — fit on a training ``Part`` (features, ground truth, semi
  labels +1/0/−1), ``score(X)`` → anomaly scores, **higher = more anomalous**,
  ``save(dir)``/``load(dir)``. Closed-form detectors (OC-SVM, IsolationForest)
  implement ``fit`` themselves.
* ``TorchDetector`` — gradient-trained detectors. They only say what a batch
  costs (``loss``) and how a batch scores (``score_batch``); the one loop in
  ``training/loop.py`` owns epochs, optimizer, batching, checkpoints. The
  trainer recognises them by capability (``isinstance(model, TorchDetector)``),
  never by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch import nn

from semiad_cli.data.split import Part
from semiad_cli.errors import CheckpointError, SemiadError

STATE_FILE = "last.pt"


class Detector(ABC):
    """Base of every model. Subclasses keep hyperparameters as given and learned
    state in attributes ending with ``_``."""

    #: input shape the model was built for; checked at ``score`` and ``load``
    input_shape: tuple[int, ...] = ()

    def fit(self, train: Part, val: Part | None = None) -> Detector:
        """Closed-form fit. Gradient models are fitted by ``training.loop.Trainer``."""
        raise NotImplementedError(f"{type(self).__name__} is fitted by the trainer, not by fit()")

    @abstractmethod
    def score(self, X: np.ndarray) -> np.ndarray:
        """Anomaly score per row, shape ``(n,)``; higher = more anomalous."""

    def score_parts(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Named components of the score (e.g. EDE's reconstruction and ‖ẑ‖); empty by default."""
        return {}

    def score_with_parts(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``score(X)`` and ``score_parts(X)`` together; models that compute both from one forward pass
        override it, so that a task scores its test set once."""
        return self.score(X), self.score_parts(X)

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the fitted state into ``directory`` (created by the caller)."""

    @abstractmethod
    def load(self, directory: Path) -> Detector:
        """Restore the state written by ``save``; the instance is built from the run config first."""

    def _check_input(self, X: np.ndarray) -> None:
        if self.input_shape and tuple(X.shape[1:]) != tuple(self.input_shape):
            raise SemiadError(
                f"{type(self).__name__} was built for samples of shape {tuple(self.input_shape)} "
                f"but got {tuple(X.shape[1:])}"
            )


class TorchDetector(Detector, nn.Module):
    """A detector trained by gradient steps in the shared loop.

    Subclasses build their nets in ``__init__`` from a ``NetSpec`` and implement
    ``loss`` and ``score_batch``. ``score_batch_size`` bounds memory at scoring.
    """

    score_batch_size: int = 4096
    # False where benchmarks/stacked.py measured K stacked seeds slower than K separate fits on a CPU:
    # hydra/launcher=stacked then trains the seeds one after another there (training/stacked.py)
    stacks_on_cpu: bool = True
    # True where ``loss`` reduces over trailing axes only, so that it takes the stacked trainer's ``[K, b, ...]``
    # batches directly and returns ``[K]`` losses (training/stacked_layers.py: no ``vmap`` for MLPs). It also
    # promises that ``loss`` draws no random numbers except those passed in from ``loss_draws``: without
    # ``vmap``'s randomness check, other draws would be shared by the seeds
    loss_takes_seed_axis: bool = False

    def __init__(self) -> None:
        nn.Module.__init__(self)

    def init_from_data(self, X: torch.Tensor, semi: torch.Tensor) -> None:
        """Called once before the first epoch (not on resume), e.g. Deep SAD's center c."""

    def after_fit(self, X: torch.Tensor, semi: torch.Tensor) -> None:
        """Called once when training ends (best weights in place), e.g. EDE's score statistics."""

    @abstractmethod
    def loss(self, x: torch.Tensor, semi: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean loss of a batch and its named parts (detached values are fine for the parts)."""

    def loss_draws(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The random tensors ``loss`` draws for batch ``x`` (from ``generator``, else torch's global RNG),
        which ``loss`` also accepts as keyword arguments; empty by default. The stacked trainer draws them
        per seed, outside the stacked loss (training/stacked.py), so each seed gets a separate run's draws."""
        return {}

    @abstractmethod
    def score_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of a batch, shape ``(b,)``, higher = more anomalous."""

    def score_parts_batch(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named parts of a batch's scores, each ``(b,)``; empty by default."""
        return {}

    def score_from_parts(self, parts: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The scores as a function of ``score_parts_batch``'s parts, where the model defines them so
        (EDE); ``None``: the score needs its own pass (``score_batch``)."""
        return None

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    @torch.inference_mode()
    def _batched(self, X: np.ndarray, fn) -> list:
        self._check_input(X)
        was_training = self.training
        self.eval()
        out = []
        try:
            Xt = torch.as_tensor(X)
            for start in range(0, len(Xt), self.score_batch_size):
                out.append(fn(Xt[start:start + self.score_batch_size].to(self.device, non_blocking=True)))
        finally:
            self.train(was_training)
        return out

    def score(self, X: np.ndarray) -> np.ndarray:
        parts = self._batched(X, self.score_batch)
        return torch.cat(parts).float().cpu().numpy() if parts else np.zeros(0, np.float32)

    def score_parts(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return _cat_parts(self._batched(X, self.score_parts_batch))

    def score_with_parts(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One pass over ``X``: per batch the parts, and the score from them where ``score_from_parts``
        defines it (else ``score_batch`` on the same batch)."""

        def both(x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            parts = self.score_parts_batch(x)
            score = self.score_from_parts(parts) if parts else None
            return (self.score_batch(x) if score is None else score), parts

        batches = self._batched(X, both)
        scores = torch.cat([s for s, _ in batches]).float().cpu().numpy() if batches else np.zeros(0, np.float32)
        return scores, _cat_parts([p for _, p in batches])

    def save(self, directory: Path) -> None:
        from semiad_cli.training.checkpoint import save_checkpoint

        save_checkpoint(Path(directory) / STATE_FILE, {"model": self.state_dict(), "model_class": self.class_path()})

    def load(self, directory: Path) -> TorchDetector:
        from semiad_cli.training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(Path(directory) / STATE_FILE)
        self.load_model_state(ckpt)
        return self

    def load_model_state(self, ckpt: dict) -> None:
        """Load ``ckpt['model']``, turning class or shape mismatches into a ``CheckpointError``."""
        saved_class = ckpt.get("model_class")
        if saved_class and saved_class != self.class_path():
            raise CheckpointError(f"checkpoint holds a {saved_class} but the config builds {self.class_path()}")
        try:
            self.load_state_dict(ckpt["model"])
        except (RuntimeError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(
                f"checkpoint does not fit this {type(self).__name__} (different model or dataset shape?): {first}"
            ) from None

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"


def _cat_parts(batches: list[dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    """Per-batch part dicts joined into one array per part (empty when the model reports none)."""
    if not batches or not batches[0]:
        return {}
    return {k: torch.cat([b[k] for b in batches]).float().cpu().numpy() for k in batches[0]}
