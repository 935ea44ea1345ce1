"""K seeds of one configuration trained as one vectorized model (``hydra/launcher=stacked``).

On this project's small MLPs one optimizer step is mostly per-op overhead; stacking the K seeds'
parameters along a new first axis (as ``torch.func.stack_module_state`` does) and running the model's own
``loss`` once for all of them does K steps' work per op. Two ways: an MLP whose loss keeps the seed axis
runs on ``[K, b, ...]`` batches with its layers replaced by batched ones (``stacked_layers.StackedModel``:
no ``vmap``, whose batching rules cost more than the seeds' arithmetic there, benchmarks/README.md); any
other net runs under ``torch.func.vmap`` (each seed's slice set into a meta copy of the model, ``SlotModel``).
Each seed keeps what a
separate run has: its model built and initialised from its seed (the caller prepares it exactly as
``tasks/train.py`` does), its own training part, its own batch order (a generator seeded with its
seed, drawn with the trainer's own ``_epoch_batches``), its own validation loss, early stopping and
best weights. The optimizer is the configured one over the stacked tensors: Adam/AdamW and their
weight decay are elementwise, so one step over ``[K, ...]`` is K separate steps; the gradient of the
sum of the K losses is each seed's own gradient (no op mixes seeds).

At the end every seed's weights go back into its own model, ``after_fit`` runs and the trainer's
``_save_final`` writes the checkpoint tagged ``finished`` with the seed's history: the normal train
task then resumes from it (scoring only) and writes the run folder as a separate run would.

What cannot stack raises ``Unstackable`` before any step (the launcher then runs the seeds one after
another): closed-form models, different split sizes, a loss under ``vmap`` that draws random numbers other
than through ``loss_draws`` (vmap could not give each seed its own run's draws; a model whose loss keeps
the seed axis promises not to, ``loss_takes_seed_axis``), ``trainer.compile``, ``trainer.ema_decay``. The draws a
model declares in ``loss_draws`` (EDE's noise targets) come per seed from a generator that continues
torch's global RNG as the seed's own run has it, so they are that run's draws.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from semiad_cli.data.split import KNOWN_ANOMALY, Part
from semiad_cli.errors import SemiadError, TrainingError
from semiad_cli.models.base import Detector, TorchDetector
from semiad_cli.training.checkpoint import load_checkpoint, save_checkpoint
from semiad_cli.training.flat import ELEMENTWISE, FlatParameters
from semiad_cli.training.loop import Trainer, progress_line, resolve_device, set_threads
from semiad_cli.training.optim import build_optimizer
from semiad_cli.training.stacked_layers import SlotModel, StackedModel

log = logging.getLogger(__name__)


class Unstackable(SemiadError):
    """These seeds cannot be trained as one stacked model; the message says why."""


def _state_names(model: nn.Module) -> tuple[list[str], list[str]]:
    return [n for n, _ in model.named_parameters()], [n for n, _ in model.named_buffers()]


def slower_stacked(model: TorchDetector, device: torch.device) -> str | None:
    """Why this model trains slower stacked than one seed after another on ``device``, else None.

    Measured at 1 thread on a CPU (benchmarks/README.md): ten seeds of EDE's LeNet on MNIST stacked took
    9.8-10.1x one seed's fit (CPU time; issue 17 measured a grouped convolution at 0.5-0.6x the throughput),
    and the classifier's d-500-500-1 MLP at batch 1024 is arithmetic-bound: 10.9-11.7x one seed's epoch.
    """
    if device.type != "cpu":
        return None
    if any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
        return "a conv net trains slower stacked than one seed after another on a CPU"
    if not model.stacks_on_cpu:
        return (f"{type(model).__name__} trains slower stacked than one seed after another on a CPU "
                "(arithmetic-bound)")
    return None


def check_stackable(trainers: Sequence[Trainer], models: Sequence[Detector], trains: Sequence[Part],
                    vals: Sequence[Part | None], device: torch.device | None = None,
                    stack_slower: bool = False) -> None:
    """Raise ``Unstackable`` when these seeds cannot train as one stacked model on ``device``, or (unless
    ``stack_slower``) would train slower that way (``slower_stacked``)."""
    first = models[0]
    if not all(isinstance(m, TorchDetector) for m in models):
        raise Unstackable(f"{type(first).__name__} is not trained by gradient steps")
    slower = None if stack_slower or device is None else slower_stacked(first, device)
    if slower:
        raise Unstackable(f"{slower} (hydra.launcher.stack_slower=true stacks it anyway)")
    if any(type(m) is not type(first) for m in models):
        raise Unstackable("the seeds build different model classes")
    shapes = [[tuple(t.shape) for t in (*m.parameters(), *m.buffers())] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise Unstackable("the seeds' models have different parameter shapes")
    if trainers[0].compile:
        raise Unstackable("trainer.compile=true is not stacked")
    if trainers[0].ema_decay:
        raise Unstackable("trainer.ema_decay is not stacked")
    sizes = {len(t) for t in trains}
    if 0 in sizes:
        raise Unstackable("a training part is empty (its own run reports it)")
    if len(sizes) > 1:
        raise Unstackable(f"the seeds' training parts differ in size ({sorted(sizes)} rows), so their batches "
                          "per epoch differ")
    val_sizes = {0 if v is None else len(v) for v in vals}
    if len(val_sizes) > 1:
        raise Unstackable(f"the seeds' validation parts differ in size ({sorted(val_sizes)} rows)")
    if trainers[0].balanced_batches:
        known = {int((t.semi == KNOWN_ANOMALY).sum()) for t in trains}
        if len(known) > 1:
            raise Unstackable(f"with trainer.balanced_batches the seeds' labeled anomalies must be as many "
                              f"({sorted(known)})")


def fit_stacked(trainers: Sequence[Trainer], models: Sequence[TorchDetector], trains: Sequence[Part],
                vals: Sequence[Part | None], ckpt_dirs: Sequence[Path], seeds: Sequence[int],
                rng_states: Sequence[torch.Tensor] | None = None, state_path: Path | None = None,
                resume: bool = False, stack_slower: bool = False, force_vmap: bool = False) -> list[bool]:
    """Train the K seeds together; write each seed's final checkpoint into its ``ckpt_dirs[k]``.

    ``models[k]`` is freshly built from seed k; ``rng_states[k]`` is torch's global RNG state right after
    (``init_from_data`` runs here, first thing, seed by seed, from that state). Returns per seed whether it finished;
    a seed whose loss became non-finite is left out (no checkpoint), so that its own run reports it.
    ``state_path``: the group's checkpoint, written every ``checkpoint_every`` epochs and removed at the end;
    ``resume`` continues from it (same seeds) where the group was cut off. ``stack_slower``: stack a model
    that ``slower_stacked`` names too (tests, benchmarks). ``force_vmap``: run the loss under ``vmap`` even where
    ``StackedModel`` runs it without (tests, benchmarks).
    """
    lead = trainers[0]
    device = resolve_device(lead.device_name)
    check_stackable(trainers, models, trains, vals, device, stack_slower)
    set_threads(lead.num_threads)
    K = len(models)
    Xs = [torch.as_tensor(t.X, device=device) for t in trains]
    Ss = [torch.as_tensor(t.semi, device=device) for t in trains]
    draw_states: list[torch.Tensor] = []
    for k, model in enumerate(models):  # as Trainer._fit_torch: to the device, then c / ranges / pre-training
        model.to(device)
        if rng_states is not None:  # torch's global RNG as seed k's own run has it here (pre-training draws)
            torch.set_rng_state(rng_states[k])
        model.init_from_data(Xs[k], Ss[k])
        draw_states.append(_global_state(device))
    X, S = torch.stack(Xs), torch.stack(Ss)
    has_val = vals[0] is not None and len(vals[0]) > 0
    Xv = torch.stack([torch.as_tensor(v.X, device=device) for v in vals]) if has_val else None
    Sv = torch.stack([torch.as_tensor(v.semi, device=device) for v in vals]) if has_val else None

    param_names, buffer_names = _state_names(models[0])
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_(True)
              for n in param_names}
    buffers = {n: torch.stack([dict(m.named_buffers())[n].detach() for m in models]) for n in buffer_names}
    executor = None if force_vmap else StackedModel.maybe(models[0])
    if executor is None:  # any net under vmap: each op through functorch's batching rules
        executor = SlotModel(models[0])
        loss_fn = torch.func.vmap(executor.loss, randomness="error")
    else:  # an MLP whose loss keeps the seed axis: batched matrix products, no vmap (stacked_layers.py)
        loss_fn = executor.loss
    base = executor.model
    trainable = [params[n] for n in param_names if dict(models[0].named_parameters())[n].requires_grad]
    # as Trainer._optimizer: one flat buffer for the elementwise optimizers (one fused update per step)
    flat = FlatParameters.maybe(trainable) if lead.flat_params else None
    optimizer = build_optimizer(lead.optimizer, [flat.leaf] if flat is not None else trainable, device)
    if flat is not None and not isinstance(optimizer, ELEMENTWISE):
        flat.release()
        flat, optimizer = None, build_optimizer(lead.optimizer, trainable, device)
    scheduler = lead.scheduler(optimizer) if lead.scheduler else None
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    # the random numbers each seed's loss draws: from its own generator, which starts where torch's global
    # RNG stands when the seed's own run takes its first step (after init_from_data)
    draw_gens = [torch.Generator(device=device).set_state(state) for state in draw_states]
    rows = torch.arange(K, device=device)[:, None]

    histories: list[list[dict[str, float]]] = [[] for _ in range(K)]
    active = [True] * K
    diverged = [False] * K
    best_val, bad_epochs = [math.inf] * K, [0] * K
    best_epoch: list[int | None] = [None] * K
    best_state: list[dict[str, torch.Tensor] | None] = [None] * K
    names: list[str] | None = None
    amp_ctx = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if lead.amp and device.type == "cuda"
               else contextlib.nullcontext())
    start_epoch = 0

    def save_group(epoch: int) -> None:
        save_checkpoint(state_path, {"stacked": {
            "epoch": epoch, "seeds": [int(s) for s in seeds], "params": {n: t.detach() for n, t in params.items()},
            "buffers": buffers, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "gens": [g.get_state() for g in gens], "draw_gens": [g.get_state() for g in draw_gens],
            "histories": histories, "active": active, "diverged": diverged, "best_val": best_val,
            "bad_epochs": bad_epochs, "best_epoch": best_epoch, "best_state": best_state}})

    saved = _group_state(state_path, seeds) if resume and state_path is not None else None
    if saved is not None:
        with torch.no_grad():
            for n, t in (params | buffers).items():
                t.copy_(saved["params"][n] if n in params else saved["buffers"][n])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved["scheduler"] is not None:
            scheduler.load_state_dict(saved["scheduler"])
        for g, state in zip([*gens, *draw_gens], [*saved["gens"], *saved["draw_gens"]], strict=True):
            g.set_state(state)
        histories, active, diverged = saved["histories"], saved["active"], saved["diverged"]
        best_val, bad_epochs, best_epoch, best_state = (saved["best_val"], saved["bad_epochs"], saved["best_epoch"],
                                                        saved["best_state"])
        start_epoch = int(saved["epoch"])
        log.info("stacked training of seeds %s resumed from %s at epoch %d", ",".join(str(s) for s in seeds),
                 state_path, start_epoch)
    base.train()
    for epoch in range(start_epoch, lead.max_epochs):
        if not any(active):
            break
        t0 = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        batches = [list(lead._epoch_batches(Ss[k], gens[k], device)) for k in range(K)]
        if len({len(b) for b in batches}) > 1 or any(
                [len(i) for i in b] != [len(i) for i in batches[0]] for b in batches):
            if epoch == 0:
                raise Unstackable("the seeds' batches differ in number or size")
            raise TrainingError("stacked training: the seeds' batches stopped lining up")
        acc: torch.Tensor | None = None
        n_steps = 0
        for step in range(len(batches[0])):
            idx = torch.stack([b[step] for b in batches])
            xb = X[rows, idx]
            draws = [models[k].loss_draws(xb[k], draw_gens[k]) for k in range(K)]
            draws_k = {n: torch.stack([d[n] for d in draws]) for n in draws[0]}
            with amp_ctx:
                try:
                    losses, parts = loss_fn(params, buffers, xb, S[rows, idx], draws_k)
                except RuntimeError as err:
                    if epoch == 0 and step == 0:  # nothing stepped yet: the launcher falls back
                        raise Unstackable(f"{type(models[0]).__name__}'s loss cannot be stacked "
                                          f"({str(err).splitlines()[0][:160]})") from None
                    raise
            if flat is not None:
                flat.zero_grad()
            else:
                for p in trainable:
                    p.grad = None
            losses.sum().backward()
            if lead.grad_clip:
                _clip_per_seed(trainable, float(lead.grad_clip))
            optimizer.step()
            if names is None:
                names = ["loss", *parts]
            vals_k = torch.stack([losses.detach(), *(v.detach() for v in parts.values())]).float()  # [P, K]
            acc = vals_k if acc is None else acc.add_(vals_k)
            n_steps += 1
        if scheduler is not None:
            scheduler.step()
        seconds = time.perf_counter() - t0
        sums = acc.tolist() if acc is not None else [[0.0] * K]
        val_losses = _val_losses(lead, base, loss_fn, params, buffers, Xv, Sv) if Xv is not None else None
        for k in range(K):
            if not active[k]:
                continue
            record = {n: sums[i][k] / max(n_steps, 1) for i, n in enumerate(names or ["loss"])}
            if not math.isfinite(record["loss"]):
                active[k], diverged[k] = False, True
                log.warning("stacked training: seed %s diverged at epoch %d; its own run will report it",
                            seeds[k], epoch + 1)
                continue
            record.update({"epoch": epoch + 1, "steps": n_steps, "seconds": seconds, "lr": lr})
            if val_losses is not None:
                record["val_loss"] = val_losses[k]
                if record["val_loss"] < best_val[k]:
                    best_val[k], bad_epochs[k], best_epoch[k] = record["val_loss"], 0, epoch + 1
                    best_state[k] = {n: t[k].detach().clone() for n, t in (params | buffers).items()}
                else:
                    bad_epochs[k] += 1
            histories[k].append(record)
            stop = val_losses is not None and lead.should_stop(bad_epochs[k], histories[k])
            if stop:
                active[k] = False
                log.info("seed %s: early stopping at epoch %d (best val_loss %.5g at epoch %s)", seeds[k],
                         epoch + 1, best_val[k], best_epoch[k])
        show = [h for h, a in zip(histories, active, strict=True) if a and h]
        if show and (line := progress_line(show[0], lead.log_every, lead.max_epochs)):
            log.info("stacked x%d (first active seed) %s", K, line)
        if state_path is not None and (epoch + 1) % lead.checkpoint_every == 0 and any(active):
            save_group(epoch + 1)

    finished = []
    for k, model in enumerate(models):
        if diverged[k]:
            finished.append(False)
            continue
        state = best_state[k] if (best_state[k] is not None and lead.patience) else {
            n: t[k].detach() for n, t in (params | buffers).items()}
        with torch.no_grad():
            for n, t in (*model.named_parameters(), *model.named_buffers()):
                t.copy_(state[n])
        trainer = trainers[k]
        trainer.history, trainer.best_epoch = histories[k], best_epoch[k]
        trainer.epochs_run = len(histories[k])
        model.after_fit(Xs[k], Ss[k])
        Path(ckpt_dirs[k]).mkdir(parents=True, exist_ok=True)
        trainer._save_final(Path(ckpt_dirs[k]), model, stacked_with=K)
        finished.append(True)
    if state_path is not None:
        Path(state_path).unlink(missing_ok=True)  # the seeds' own finished checkpoints take over
    return finished


def _group_state(path: Path, seeds: Sequence[int]) -> dict | None:
    """The group checkpoint at ``path`` when it holds these seeds, else None (start afresh)."""
    if not Path(path).is_file():
        return None
    state = load_checkpoint(Path(path)).get("stacked")
    if not isinstance(state, dict) or state.get("seeds") != [int(s) for s in seeds]:
        log.warning("%s holds another stacked group; training afresh", path)
        return None
    return state


def _global_state(device: torch.device) -> torch.Tensor:
    """The state of torch's global RNG that draws on ``device``."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _clip_per_seed(params: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` for each seed's slice on its own (the global norm would mix the seeds)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack([g.flatten(1).pow(2).sum(dim=1) for g in grads]).sum(dim=0).sqrt()  # [K]
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))


@torch.no_grad()
def _val_losses(lead: Trainer, base: nn.Module, loss_fn, params: dict, buffers: dict, Xv: torch.Tensor,
                Sv: torch.Tensor) -> list[float]:
    """Each seed's validation loss, chunked and weighted as ``Trainer._val_loss`` does."""
    base.eval()
    chunk = max(lead.batch_size, 1024)
    total = torch.zeros(Xv.shape[0], dtype=torch.float64)
    n = 0
    for start in range(0, Xv.shape[1], chunk):
        xb, sb = Xv[:, start:start + chunk], Sv[:, start:start + chunk]
        losses, _ = loss_fn(params, buffers, xb, sb, {})
        total += losses.double().cpu() * xb.shape[1]
        n += xb.shape[1]
    base.train()
    return (total / max(n, 1)).tolist()
