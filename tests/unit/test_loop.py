"""The training loop's reliability: loss bookkeeping, NaN handling, checkpoints and resume."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from semiad_cli.data.split import Part
from semiad_cli.errors import CheckpointError, ConfigError, DataError, TrainingError
from semiad_cli.models.base import STATE_FILE, TorchDetector
from semiad_cli.training.checkpoint import load_checkpoint
from semiad_cli.training.loop import Trainer, progress_line


class Toy(TorchDetector):
    """A tiny detector with dropout (uses the global torch RNG) and a loss that can be made to blow up."""

    def __init__(self, blow_up_at_call: int | None = None, dropout: float = 0.2) -> None:
        super().__init__()
        self.input_shape = (3,)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(dropout), nn.Linear(4, 2))
        self.blow_up_at_call, self.calls = blow_up_at_call, 0

    def loss(self, x, semi):
        self.calls += 1
        z = self.net(x)
        fit = (z ** 2).sum(dim=1).mean()
        bad = fit * 0.0
        if self.blow_up_at_call is not None and self.calls >= self.blow_up_at_call:
            bad = bad + float("inf")
        return fit + bad, {"fit": fit.detach(), "bad": bad.detach()}

    def score_batch(self, x):
        return (self.net(x) ** 2).sum(dim=1)


def part(n: int, seed: int = 0) -> Part:
    rng = np.random.default_rng(seed)
    return Part(rng.normal(size=(n, 3)).astype(np.float32), np.zeros(n, np.int64), np.zeros(n, np.int8),
                np.zeros(n, np.int64), np.arange(n))


def trainer(**kw) -> Trainer:
    opts = dict(max_epochs=4, batch_size=8, device="cpu", num_threads=1, checkpoint_every=1, progress=False,
                optimizer=functools.partial(torch.optim.Adam, lr=1e-2),
                scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))
    opts.update(kw)
    return Trainer(**opts)


def fresh_model(**kw) -> Toy:
    torch.manual_seed(0)
    return Toy(**kw)


def test_epoch_loss_is_mean_of_step_losses(tmp_path: Path) -> None:
    """lr = 0 keeps weights fixed, so every step's loss is known: a linear 'model' whose loss is mean(x)."""

    class Mean(Toy):
        def loss(self, x, semi):
            v = x.mean() + 0.0 * self.net[0].weight.sum()
            return v, {"m": v.detach()}

    X = np.arange(10, dtype=np.float32).reshape(10, 1).repeat(3, axis=1)  # rows 0..9
    p = Part(X, np.zeros(10, np.int64), np.zeros(10, np.int8), np.zeros(10, np.int64), np.arange(10))
    t = trainer(max_epochs=2, batch_size=5, optimizer=functools.partial(torch.optim.SGD, lr=0.0), scheduler=None)
    t.fit(Mean(), p, None, tmp_path, seed=0)
    # two batches of 5 rows: the mean of their means is the mean of 0..9, whatever the order
    assert [h["loss"] for h in t.history] == pytest.approx([4.5, 4.5], abs=1e-6)
    assert [h["m"] for h in t.history] == pytest.approx([4.5, 4.5], abs=1e-6)


def test_nan_loss_names_epoch_and_term_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    # 24 rows / batch 8 = 3 steps per epoch: call 7 is the first step of epoch 3
    model = fresh_model(blow_up_at_call=7)
    with pytest.raises(TrainingError, match=r"epoch 3 \(non-finite term: bad\)") as info:
        trainer().fit(model, part(24), None, tmp_path, seed=1)
    assert "last good checkpoint" in str(info.value)
    ckpt = load_checkpoint(tmp_path / STATE_FILE)
    assert ckpt["trainer"]["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path: Path) -> None:
    data = part(30)
    full = fresh_model()
    t_full = trainer()
    t_full.fit(full, data, None, tmp_path / "full", seed=3)

    # Interrupted in the middle of epoch 3 (checkpoint of epoch 2 on disk), then resumed by a new process-like setup.
    _cut_in_epoch_3(trainer(), fresh_model(), data, tmp_path / "resumed")

    torch.manual_seed(12345)  # the global RNG state must come from the checkpoint, not from here
    resumed = fresh_model()
    t_res = trainer(resume=True)
    t_res.fit(resumed, data, None, tmp_path / "resumed", seed=3)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in t_full.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in t_res.history] == strip
    assert t_res.summary()["epochs"] == 4


def test_resume_of_finished_training_skips_to_scoring(tmp_path: Path) -> None:
    data = part(16)
    t = trainer(max_epochs=2)
    model = fresh_model()
    t.fit(model, data, None, tmp_path, seed=0)
    again = Toy()
    t2 = trainer(max_epochs=2, resume=True)
    t2.fit(again, data, None, tmp_path, seed=0)
    assert again.calls == 0  # not one training step
    assert t2.history == t.history and t2.summary()["epochs"] == 2
    assert np.array_equal(model.score(data.X), again.score(data.X))


def test_resume_rejects_weights_only_checkpoint(tmp_path: Path) -> None:
    fresh_model().save(tmp_path)
    with pytest.raises(CheckpointError, match="weights only"):
        trainer(resume=True).fit(fresh_model(), part(16), None, tmp_path, seed=0)


def test_corrupt_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="corrupt") as info:
        fresh_model().load(tmp_path)
    assert "\n" not in str(info.value)


def test_checkpoint_of_other_shape_is_one_line_error(tmp_path: Path) -> None:
    fresh_model().save(tmp_path)
    other = fresh_model()
    other.net[0] = nn.Linear(5, 4)
    with pytest.raises(CheckpointError, match="does not fit") as info:
        other.load(tmp_path)
    assert "\n" not in str(info.value)


def test_empty_training_part_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="training part is empty"):
        trainer().fit(fresh_model(), part(0), None, tmp_path, seed=0)


def test_min_steps_holds_early_stopping_back(tmp_path: Path) -> None:
    """Validation loss that never improves: patience 1 stops at epoch 2, unless min_steps asks for more steps."""

    class Worse(Toy):
        def loss(self, x, semi):
            fit, parts = super().loss(x, semi)
            return fit + 10.0 * self.calls, parts  # val loss grows with every call

    data, val = part(16), part(8, seed=1)  # 16 rows, batch 8: 2 steps per epoch
    early = trainer(max_epochs=10, patience=1, val_fraction=0.0, scheduler=None)
    torch.manual_seed(0)
    early.fit(Worse(), data, val, tmp_path / "a", seed=0)
    held = trainer(max_epochs=10, patience=1, val_fraction=0.0, scheduler=None, min_steps=12)
    torch.manual_seed(0)
    held.fit(Worse(), data, val, tmp_path / "b", seed=0)
    assert early.epochs_run == 2
    assert held.epochs_run == 6  # 12 steps = 6 epochs of 2 steps, then patience applies
    assert [h["steps"] for h in held.history] == [2] * 6


def test_balanced_batches_put_labeled_anomalies_in_every_step(tmp_path: Path) -> None:
    seen: list[int] = []

    class Count(Toy):
        def loss(self, x, semi):
            seen.append(int((semi == -1).sum()))
            return super().loss(x, semi)

    p = part(40)
    p.semi[:2] = -1
    t = trainer(max_epochs=1, batch_size=8, balanced_batches=0.25, scheduler=None)
    torch.manual_seed(0)
    t.fit(Count(), p, None, tmp_path, seed=0)
    assert seen == [2] * 7  # 38 other rows in batches of 6, each with round(0.25 * 8) = 2 anomalies


def test_after_fit_is_called_once_with_the_training_data(tmp_path: Path) -> None:
    calls = []

    class Hook(Toy):
        def after_fit(self, X, semi):
            calls.append(len(X))

    t = trainer(max_epochs=2, scheduler=None)
    torch.manual_seed(0)
    t.fit(Hook(), part(20), None, tmp_path, seed=0)
    assert calls == [20]

# ---------------------------------------------------------------------------- progress without a terminal
def test_progress_line_every_n_epochs_and_at_the_last() -> None:
    history = [{"loss": 1.0 / e, "fit": 0.5, "epoch": e, "seconds": float(e), "val_loss": 2.0} for e in range(1, 8)]
    due = {e: progress_line(history[:e], 3, 7) for e in range(1, 8)}
    assert [e for e, line in due.items() if line] == [3, 6, 7]
    assert due[6] == "epoch 6/7  loss 0.1667  fit 0.5  val_loss 2  (5 s/epoch)"  # seconds: mean of epochs 4-6
    assert progress_line(history, 0, 7) is None


def test_trainer_without_a_bar_logs_progress_lines(tmp_path: Path, caplog) -> None:
    caplog.set_level("INFO", logger="semiad_cli.training.loop")
    trainer(max_epochs=4, log_every=2).fit(fresh_model(), part(24), None, tmp_path, seed=0)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "INFO" and r.getMessage().startswith("epoch")]
    assert [ln.split()[1] for ln in lines] == ["2/4", "4/4"] and all("fit " in ln for ln in lines)
    assert trainer(max_epochs=100).log_every == 10 and trainer(max_epochs=3).log_every == 1
    with pytest.raises(ConfigError, match="trainer.log_every"):
        trainer(log_every=-1)


def test_on_epoch_end_gets_each_record_with_the_epochs_learning_rate(tmp_path: Path) -> None:
    seen: list[tuple[dict, int]] = []
    t = trainer()  # StepLR halves lr after every epoch
    t.on_epoch_end = lambda record: seen.append((record, len(t.history)))
    t.fit(fresh_model(), part(24), None, tmp_path, seed=0)
    assert [r["epoch"] for r, _ in seen] == [1, 2, 3, 4]
    assert [n for _, n in seen] == [1, 2, 3, 4]  # called once the record is in history
    assert [r["lr"] for r, _ in seen] == pytest.approx([1e-2, 5e-3, 2.5e-3, 1.25e-3])  # the rate each epoch used
    assert [r for r, _ in seen] == t.history


class Drift(TorchDetector):
    """Loss ``sum(w)`` under SGD lr 1: each step subtracts 1 from every weight, so the weights after step t
    are ``w0 - t`` and their moving average has a closed form. A BatchNorm (unused by the loss) keeps its
    integer ``num_batches_tracked`` in the averaged buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.input_shape = (3,)
        self.w = nn.Parameter(torch.zeros(2))
        self.bn = nn.BatchNorm1d(3, affine=False)

    def loss(self, x, semi):
        self.bn(x)
        s = self.w.sum() + 0.0 * x.sum()
        return s, {"s": s.detach()}

    def score_batch(self, x):
        return x.sum(dim=1) + self.w.sum()


def test_ema_decay_ends_with_the_moving_average_of_the_steps_weights(tmp_path: Path) -> None:
    d = 0.5
    t = trainer(max_epochs=2, batch_size=8, scheduler=None, ema_decay=d,
                optimizer=functools.partial(torch.optim.SGD, lr=1.0))
    model = Drift()
    t.fit(model, part(24), None, tmp_path, seed=0)  # 3 steps per epoch: weights -1, -2, ..., -6
    ema = -1.0  # the first update copies the weights of step 1
    for step in range(2, 7):
        ema = d * ema + (1 - d) * -step
    assert ema == pytest.approx(-5.03125)  # -1, -1.5, -2.25, -3.125, -4.0625, -5.03125
    np.testing.assert_allclose(model.w.detach().numpy(), [ema, ema], rtol=0, atol=1e-6)
    assert model.bn.num_batches_tracked.dtype == torch.int64
    assert not torch.equal(model.bn.running_mean, torch.zeros(3))  # averaged statistics, not the initial ones
    # off: the last step's weights
    plain = Drift()
    trainer(max_epochs=2, batch_size=8, scheduler=None, optimizer=functools.partial(torch.optim.SGD, lr=1.0)
            ).fit(plain, part(24), None, tmp_path / "plain", seed=0)
    np.testing.assert_allclose(plain.w.detach().numpy(), [-6.0, -6.0])


def _cut_in_epoch_3(t: Trainer, model: Toy, data: Part, ckpt_dir: Path) -> None:
    """Fit until the first step of epoch 3, then stop as Ctrl-C would: the checkpoint of epoch 2 is left."""
    original = Trainer._batches
    calls = [0]

    def stop_in_epoch_3(self, n, gen, device):
        calls[0] += 1
        chunks = original(self, n, gen, device)
        if calls[0] == 3:
            def gen_():
                yield chunks[0]
                raise KeyboardInterrupt
            return gen_()
        return chunks

    Trainer._batches = stop_in_epoch_3
    try:
        with pytest.raises(KeyboardInterrupt):
            t.fit(model, data, None, ckpt_dir, seed=3)
    finally:
        Trainer._batches = original
    assert load_checkpoint(ckpt_dir / STATE_FILE)["trainer"]["epoch"] == 2


def test_ema_decay_resumes_its_average_from_the_checkpoint(tmp_path: Path) -> None:
    data = part(30)
    full = fresh_model()
    trainer(ema_decay=0.9).fit(full, data, None, tmp_path / "full", seed=3)
    _cut_in_epoch_3(trainer(ema_decay=0.9), fresh_model(), data, tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut" / STATE_FILE)["trainer"]["ema"] is not None
    resumed = fresh_model()
    trainer(ema_decay=0.9, resume=True).fit(resumed, data, None, tmp_path / "cut", seed=3)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # a checkpoint written without the average cannot continue one
    _cut_in_epoch_3(trainer(), fresh_model(), data, tmp_path / "plain")
    with pytest.raises(CheckpointError, match="without trainer.ema_decay"):
        trainer(ema_decay=0.9, resume=True).fit(fresh_model(), data, None, tmp_path / "plain", seed=3)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 2.0])
def test_ema_decay_outside_zero_one_is_a_config_error(decay: float) -> None:
    with pytest.raises(ConfigError, match="trainer.ema_decay"):
        trainer(ema_decay=decay)
