"""The one training loop: every gradient-trained detector goes through ``Trainer.fit``.

Data lives in memory as tensors (on the training device) and batches are drawn
by indexing a permutation: no per-sample ``Dataset``/``DataLoader`` overhead.
The trainer owns epochs, the optimizer and scheduler (from config), seeding of
batch order, validation/early stopping, NaN checks, progress and checkpoints;
models only provide ``loss`` and ``score_batch``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from semiad_cli.data.split import KNOWN_ANOMALY, Part, hold_out_validation
from semiad_cli.errors import CheckpointError, ConfigError, DataError, TrainingError, check_range
from semiad_cli.models.base import STATE_FILE, Detector, TorchDetector
from semiad_cli.signals import hold_until_epoch_end
from semiad_cli.threads import default_threads
from semiad_cli.training.batching import balanced_batches, index_batches
from semiad_cli.training.checkpoint import load_checkpoint, save_checkpoint
from semiad_cli.training.flat import ELEMENTWISE, FlatParameters
from semiad_cli.training.optim import build_optimizer

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a config error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={device} but no CUDA device is available; use trainer.device=auto or cpu")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ConfigError(f"trainer.device={device!r} is unknown; use auto, cpu or cuda[:N]")
    return torch.device(device)


def set_threads(num_threads: int | None) -> int:
    """Set torch's intra-op threads (``None`` → ``default_threads()``); returns the number set."""
    n = num_threads if num_threads else default_threads()
    torch.set_num_threads(int(n))
    return int(n)


def progress_line(history: list[dict[str, float]], every: int, max_epochs: int) -> str | None:
    """The console line for the newest epoch of ``history`` when one is due (every ``every`` epochs
    and the last), else None: without a progress bar it is all a SLURM log or a pipe shows of training.
    Loss terms and validation loss as in ``history``; seconds per epoch averaged over the last ``every``.
    """
    epoch = int(history[-1]["epoch"])
    if every <= 0 or (epoch % every and epoch != max_epochs):
        return None
    terms = "  ".join(f"{k} {v:.4g}" for k, v in history[-1].items() if k not in ("epoch", "seconds"))
    seconds = float(np.mean([h["seconds"] for h in history[-every:]]))
    return f"epoch {epoch}/{max_epochs}  {terms}  ({seconds:.3g} s/epoch)"


class Trainer:
    """Fits any ``Detector``: gradient loop for ``TorchDetector``, ``fit`` for closed-form ones.

    Args:
        max_epochs: epochs to train (early stopping may end sooner).
        batch_size: rows per step.
        optimizer: ``functools.partial`` of a torch optimizer (``_partial_: true`` in config); its
            ``fused: null`` means fused where torch has the kernel (``training/optim.py``).
        scheduler: optional partial of a torch LR scheduler, stepped once per epoch.
        device: ``auto`` | ``cpu`` | ``cuda[:N]``.
        num_threads: torch CPU threads (null: half the cores, 1–4); parallel sweeps set 1 per job.
        val_fraction: fraction of the training part held out for validation (stratified by label).
        patience: early-stopping patience in epochs on the validation loss (null/0: off); the
            best-validation weights are restored at the end.
        min_steps: no early stop before this many optimizer steps in all (on a small set at batch
            1024 an epoch is one step, and patience 7 would stop after a handful of steps).
        checkpoint_every: write ``checkpoints/last.pt`` every N epochs (and always at the end, and at the end
            of the epoch in which a SIGTERM arrives, see ``semiad_cli/signals.py``).
        progress: tqdm bar (null: only when stderr is a terminal). Without a bar (SLURM, pipes) an
            INFO line every ``log_every`` epochs shows the progress instead.
        log_every: epochs between those lines (null: about ten per run; 0: none).
        amp: bfloat16/float16 autocast on CUDA.
        grad_clip: optional max gradient norm.
        resume: continue from ``checkpoints/last.pt`` (model, optimizer, scheduler, epoch, RNG states).
        flat_params: train all parameters as views into one buffer, which torch's optimizer updates as
            one tensor (fewer ops per step; elementwise optimizers only, see ``training/flat.py``).
        balanced_batches: share (0–1) of labeled anomalies in every batch, oversampled with
            replacement (DeepOD's Deep SAD does this); null: plain shuffled batches.
        ema_decay: keep an exponential moving average of the weights and BatchNorm statistics over the
            optimizer steps (torch's ``AveragedModel``, decay per step) and end with the averaged weights;
            validation and early stopping then judge the averaged model. null: the last step's weights.
        compile: ``torch.compile`` the model's training loss (forward + backward fused). Pays on long
            runs of small nets (benchmarks/throughput.py measures it); the first steps pay the compile
            time, and losses match eager mode to float rounding only, not bit for bit.
        on_epoch_end: called with a copy of each epoch's record (``epoch``, loss terms, ``val_loss``, ``lr``,
            ``seconds``) once it is in ``history``; the train task writes ``history.csv`` and feeds the
            tracking logger from it.
    """

    def __init__(self, *, max_epochs: int = 50, batch_size: int = 128, optimizer: Callable | None = None,
                 scheduler: Callable | None = None, device: str = "auto", num_threads: int | None = None,
                 val_fraction: float = 0.0, patience: int | None = None, checkpoint_every: int = 1,
                 progress: bool | None = None, amp: bool = False, grad_clip: float | None = None,
                 resume: bool = False, compile: bool = False, flat_params: bool = True,
                 balanced_batches: float | None = None, min_steps: int = 0, log_every: int | None = None,
                 ema_decay: float | None = None,
                 on_epoch_end: Callable[[dict[str, float]], None] | None = None) -> None:
        check_range("trainer.max_epochs", max_epochs, 0)
        check_range("trainer.min_steps", min_steps, 0)
        if balanced_batches is not None:
            check_range("trainer.balanced_batches", balanced_batches, 0.0, 1.0)
            if not 0 < balanced_batches < 1:
                raise ConfigError(f"trainer.balanced_batches={balanced_batches} must be a share in (0, 1), or null")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ConfigError(f"trainer.ema_decay={ema_decay} must be a decay per step in (0, 1), e.g. 0.999, or null")
        check_range("trainer.batch_size", batch_size, 1)
        check_range("trainer.val_fraction", val_fraction, 0.0, 0.9)
        check_range("trainer.checkpoint_every", checkpoint_every, 1)
        if patience is not None:
            check_range("trainer.patience", patience, 0)
        if log_every is not None:
            check_range("trainer.log_every", log_every, 0)
        self.max_epochs, self.batch_size = int(max_epochs), int(batch_size)
        self.optimizer = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-3))
        self.scheduler = scheduler
        self.device_name, self.num_threads = device, num_threads
        self.val_fraction, self.patience = val_fraction, patience
        self.checkpoint_every, self.progress, self.amp = checkpoint_every, progress, amp
        self.grad_clip, self.resume, self.compile, self.flat_params = grad_clip, resume, compile, flat_params
        self.balanced_batches, self.min_steps = balanced_batches, int(min_steps)
        self.ema_decay = ema_decay
        self.log_every = max(1, self.max_epochs // 10) if log_every is None else int(log_every)
        self.on_epoch_end = on_epoch_end
        self.history: list[dict[str, float]] = []
        self.epochs_run = 0
        self.best_epoch: int | None = None

    # ---------------------------------------------------------------- public API
    def hold_out(self, train: Part, seed: int) -> tuple[Part, Part | None]:
        """Split the validation part off the training part (``val_fraction``; None when 0)."""
        return hold_out_validation(train, self.val_fraction, seed)

    def fit(self, model: Detector, train: Part, val: Part | None, ckpt_dir: Path, seed: int) -> Detector:
        """Fit ``model`` on ``train`` (``val`` for early stopping), writing checkpoints to ``ckpt_dir``."""
        if len(train) == 0:
            raise DataError("the training part is empty after the split; check dataset.split (normal_class, "
                            "max_train_normal, test_size)")
        ckpt_dir = Path(ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        set_threads(self.num_threads)
        if not isinstance(model, TorchDetector):
            model.fit(train, val)
            model.save(ckpt_dir)
            self.epochs_run = 0
            return model
        self._fit_torch(model, train, val, ckpt_dir, seed)
        return model

    # ---------------------------------------------------------------- gradient loop
    def _batches(self, n: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
        return index_batches(n, self.batch_size, gen, device)

    def _epoch_batches(self, S: torch.Tensor, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
        """This epoch's batches: plain shuffled batches, or with a fixed share of labeled anomalies."""
        if self.balanced_batches:
            return balanced_batches(S == KNOWN_ANOMALY, self.batch_size, self.balanced_batches, gen, device)
        return self._batches(len(S), gen, device)

    def _fit_torch(self, model: TorchDetector, train: Part, val: Part | None, ckpt_dir: Path, seed: int) -> None:
        device = resolve_device(self.device_name)
        model.to(device)
        X = torch.as_tensor(train.X, device=device)
        S = torch.as_tensor(train.semi, device=device)
        Xv = torch.as_tensor(val.X, device=device) if val is not None and len(val) else None
        Sv = torch.as_tensor(val.semi, device=device) if Xv is not None else None
        gen = torch.Generator().manual_seed(int(seed))
        # The average is a copy made before the parameters become views of one flat buffer; its first
        # update copies the trained model (after init_from_data or a resume), the later ones average.
        ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay), use_buffers=True)
               if self.ema_decay else None)
        flat, optimizer = self._optimizer(model, device)
        zero_grad = flat.zero_grad if flat is not None else lambda: optimizer.zero_grad(set_to_none=True)
        scheduler = self.scheduler(optimizer) if self.scheduler else None
        start_epoch, best_val, best_state, bad_epochs = 0, math.inf, None, 0
        ckpt_path = ckpt_dir / STATE_FILE
        self.history, self.best_epoch = [], None

        state = self._resume_state(ckpt_path) if self.resume else None
        if state is not None and state.get("finished"):
            # Training had ended (final weights written) before the run was cut off: only scoring is left.
            if flat is not None:
                flat.release()
            model.load(ckpt_dir)
            self.history, self.best_epoch = state["history"], state.get("best_epoch")
            self.epochs_run = len(self.history)
            if state.get("stacked_with"):
                log.info("trained with %d seeds stacked (hydra/launcher=stacked), %d epochs: scoring its weights "
                         "from %s", state["stacked_with"], state["epoch"], ckpt_path)
            else:
                log.info("resumed from %s: training had finished at epoch %d", ckpt_path, state["epoch"])
            return
        if state is not None:
            model.load_model_state(state["ckpt"])
            try:  # checkpoints hold the per-parameter layout, whatever flat_params was (training/flat.py)
                optimizer.load_state_dict(flat.flat_state(state["optimizer"]) if flat is not None
                                          else state["optimizer"])
            except (ValueError, KeyError) as err:
                raise CheckpointError(f"{ckpt_path}: the optimizer state does not fit this trainer ({err}); "
                                      f"resume with the run's own trainer.optimizer, or train afresh") from None
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if state.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            if ema is not None:
                if state.get("ema") is None:
                    raise CheckpointError(f"{ckpt_path} was written without trainer.ema_decay; resume with the "
                                          "run's own trainer settings, or train afresh")
                ema.load_state_dict(state["ema"])
            start_epoch, best_val, bad_epochs = state["epoch"], state["best_val"], state["bad_epochs"]
            best_state, self.history, self.best_epoch = state.get("best_state"), state["history"], state.get(
                "best_epoch")
            log.info("resumed from %s at epoch %d", ckpt_path, start_epoch)
        else:
            model.init_from_data(X, S)

        amp_ctx = (torch.autocast(device_type="cuda", dtype=torch.bfloat16)
                   if self.amp and device.type == "cuda" else contextlib.nullcontext())
        params = [p for p in model.parameters() if p.requires_grad]
        loss_fn = torch.compile(model.loss) if self.compile else model.loss
        show_bar = self.progress if self.progress is not None else sys.stderr.isatty()
        bar = tqdm(range(start_epoch, self.max_epochs), initial=start_epoch, total=self.max_epochs,
                   desc=f"train {type(model).__name__}", unit="epoch", disable=not show_bar,
                   dynamic_ncols=True, leave=True)
        names: list[str] | None = None
        try:
            # SIGTERM during an epoch waits for its end (GRACE_S at most): the checkpoint written then is
            # an exact epoch boundary, the state a resume expects (see semiad_cli/signals.py).
            with hold_until_epoch_end() as take_signal:
                for epoch in bar:
                    t0 = time.perf_counter()
                    lr = float(optimizer.param_groups[0]["lr"])  # the rate this epoch trains with
                    model.train()
                    # Loss and parts are summed on the device without a host sync per step; finiteness is
                    # checked once per epoch (a non-finite step makes the sum non-finite).
                    acc: torch.Tensor | None = None
                    n_steps = 0
                    for idx in self._epoch_batches(S, gen, device):
                        with amp_ctx:
                            loss, parts = loss_fn(X[idx], S[idx])
                        zero_grad()
                        loss.backward()
                        if self.grad_clip:
                            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                        optimizer.step()
                        if ema is not None:
                            ema.update_parameters(model)
                        if names is None:
                            names = ["loss", *parts]
                        step = torch.stack([loss.detach(), *(v.detach() for v in parts.values())]).float()
                        acc = step if acc is None else acc.add_(step)
                        n_steps += 1
                    if scheduler is not None:
                        scheduler.step()
                    sums = dict(zip(names or ["loss"], acc.tolist() if acc is not None else [0.0], strict=False))
                    if not math.isfinite(sums["loss"]):
                        self._diverged(epoch, sums, ckpt_path)
                    record = {k: v / max(n_steps, 1) for k, v in sums.items()}
                    record["epoch"] = epoch + 1
                    record["steps"] = n_steps
                    record["seconds"] = time.perf_counter() - t0
                    record["lr"] = lr
                    if Xv is not None:
                        judged = ema.module if ema is not None else model
                        record["val_loss"] = self._val_loss(judged, Xv, Sv)
                        if record["val_loss"] < best_val:
                            best_val, bad_epochs, self.best_epoch = record["val_loss"], 0, epoch + 1
                            best_state = {k: v.detach().clone() for k, v in judged.state_dict().items()}
                        else:
                            bad_epochs += 1
                    self.history.append(record)
                    if self.on_epoch_end is not None:
                        self.on_epoch_end(dict(record))
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("loss", "val_loss")})
                    log.debug("epoch %d/%d %s", epoch + 1, self.max_epochs,
                              " ".join(f"{k}={v:.5g}" for k, v in record.items() if k != "epoch"))
                    if not show_bar and (line := progress_line(self.history, self.log_every, self.max_epochs)):
                        log.info(line)
                    stop = Xv is not None and self.should_stop(bad_epochs, self.history)
                    terminated = take_signal()
                    if (epoch + 1) % self.checkpoint_every == 0 or stop or terminated is not None:
                        opt_state = (flat.per_parameter_state(optimizer.state_dict()) if flat is not None
                                     else optimizer.state_dict())
                        self._save_progress(ckpt_path, model, opt_state, scheduler, gen, epoch + 1, best_val,
                                            bad_epochs, best_state, ema)
                    if terminated is not None:
                        terminated.checkpoint_epoch = epoch + 1
                        log.debug("%s: checkpoint of epoch %d written to %s", terminated.name, epoch + 1, ckpt_path)
                        raise terminated
                    if stop:
                        log.info("early stopping at epoch %d (best val_loss %.5g at epoch %s)", epoch + 1, best_val,
                                 self.best_epoch)
                        break
        finally:
            bar.close()
            if flat is not None:
                flat.release()  # parameters own their storage again, also after an error or Ctrl-C
        self.epochs_run = len(self.history)
        if best_state is not None and self.patience:
            model.load_state_dict(best_state)
        elif ema is not None:
            model.load_state_dict(ema.module.state_dict())
        model.after_fit(X, S)
        self._save_final(ckpt_dir, model)

    def _resume_state(self, path: Path) -> dict[str, Any] | None:
        """The trainer state saved in ``path`` (None: no checkpoint yet, start from scratch)."""
        if not path.is_file():
            log.warning("trainer.resume=true but %s does not exist; training from scratch", path)
            return None
        ckpt = load_checkpoint(path)
        state = ckpt.get("trainer")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} holds weights only (no trainer state); it cannot be resumed")
        return {**state, "ckpt": ckpt}

    def should_stop(self, bad_epochs: int, history: list[dict]) -> bool:
        """Early stopping: ``patience`` epochs without a better validation loss, and at least
        ``min_steps`` optimizer steps taken in all (shared with the stacked trainer, per seed)."""
        return (bool(self.patience) and bad_epochs >= self.patience
                and sum(h.get("steps", 0) for h in history) >= self.min_steps)

    def _save_final(self, ckpt_dir: Path, model: TorchDetector, stacked_with: int | None = None) -> None:
        """Final weights through the model's own ``save``, tagged ``finished`` so a resume skips to scoring;
        ``stacked_with``: trained in a group of that many seeds (training/stacked.py)."""
        model.save(ckpt_dir)
        path = ckpt_dir / STATE_FILE
        if path.is_file():
            payload = load_checkpoint(path)
            if isinstance(payload, dict):
                payload["trainer"] = {"finished": True, "epoch": self.epochs_run, "history": self.history,
                                      "best_epoch": self.best_epoch, "stacked_with": stacked_with}
                save_checkpoint(path, payload)

    @torch.no_grad()
    def _val_loss(self, model: TorchDetector, Xv: torch.Tensor, Sv: torch.Tensor) -> float:
        model.eval()
        total, n = 0.0, 0
        for start in range(0, len(Xv), max(self.batch_size, 1024)):
            xb, sb = Xv[start:start + max(self.batch_size, 1024)], Sv[start:start + max(self.batch_size, 1024)]
            loss, _ = model.loss(xb, sb)
            total += float(loss) * len(xb)
            n += len(xb)
        model.train()
        return total / max(n, 1)

    def _optimizer(self, model: TorchDetector, device: torch.device
                   ) -> tuple[FlatParameters | None, torch.optim.Optimizer]:
        """The configured optimizer over one flat buffer of the parameters (``flat_params``, elementwise
        optimizers) or over the parameters themselves; the flat buffer or None."""
        params = [p for p in model.parameters() if p.requires_grad]
        flat = FlatParameters.maybe(params) if self.flat_params else None
        optimizer = build_optimizer(self.optimizer, [flat.leaf] if flat is not None else params, device)
        if flat is not None and not isinstance(optimizer, ELEMENTWISE):  # e.g. a per-layer trust ratio
            flat.release()
            flat, optimizer = None, build_optimizer(self.optimizer, params, device)
        return flat, optimizer

    def _save_progress(self, path: Path, model: TorchDetector, optimizer_state: dict, scheduler, gen: torch.Generator,
                       epoch: int, best_val: float, bad_epochs: int, best_state: dict | None,
                       ema: AveragedModel | None = None) -> None:
        save_checkpoint(path, {
            "model": model.state_dict(),
            "model_class": model.class_path(),
            "trainer": {
                "epoch": epoch, "optimizer": optimizer_state,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "best_val": best_val, "bad_epochs": bad_epochs, "best_state": best_state,
                "best_epoch": self.best_epoch, "history": self.history,
                "ema": ema.state_dict() if ema is not None else None,
            },
        })

    def _diverged(self, epoch: int, sums: dict[str, float], path: Path) -> None:
        bad = [k for k, v in sums.items() if k != "loss" and not math.isfinite(v)] or ["total"]
        kept = f"; the last good checkpoint is {path}" if path.is_file() else "; no checkpoint was written yet"
        raise TrainingError(
            f"loss became {sums['loss']} at epoch {epoch + 1} (non-finite term: {', '.join(bad)}); "
            f"lower trainer.optimizer.lr or check the data for extreme values{kept}"
        )

    def summary(self) -> dict[str, Any]:
        """Facts about the fit for ``metrics.json``."""
        last = self.history[-1] if self.history else {}
        return {
            "epochs": self.epochs_run,
            "best_epoch": self.best_epoch,
            "final_train_loss": last.get("loss"),
            "final_val_loss": last.get("val_loss"),
            "mean_epoch_seconds": float(np.mean([h["seconds"] for h in self.history])) if self.history else None,
        }
