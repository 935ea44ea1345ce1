"""Stacked training of a seed group (``hydra/launcher=stacked``): grouping, and each seed's fit equal to
its own ``Trainer.fit`` (losses, validation, per-seed early stopping, per-seed gradient clipping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad_cli.data.split import Part
from semiad_cli.stacking import seed_groups
from semiad_cli.tasks.train import prepare_seed
from semiad_cli.training.stacked import Unstackable, check_stackable, fit_stacked

LOSS_KEYS = ("loss", "val_loss", "error_rate", "rec", "ent", "con", "dist", "lr", "steps", "epoch")


def test_seed_groups_join_jobs_that_differ_only_in_seed_and_chunk_them():
    jobs = [(0, ["seed=1", "model=ede"]), (1, ["seed=1", "model=deepsad"]), (2, ["model=ede", "seed=2"]),
            (3, ["seed=2", "model=deepsad"]), (4, ["seed=3", "model=ede"])]
    assert [[n for n, _ in g] for g in seed_groups(jobs, 10)] == [[0, 2, 4], [1, 3]]
    assert [[n for n, _ in g] for g in seed_groups(jobs, 2)] == [[0, 2], [4], [1, 3]]


def _cfg(compose_cfg, seed: int, overrides: list[str]):
    return compose_cfg("train", ["dataset=digits", f"seed={seed}", "trainer.num_threads=1", *overrides])


def _separate(compose_cfg, seed: int, overrides: list[str], tmp_path):
    """One seed through the normal trainer: its history and final scores."""
    prep = prepare_seed(_cfg(compose_cfg, seed, overrides))
    prep.trainer.fit(prep.model, prep.train, prep.val, tmp_path / f"separate{seed}", seed=seed)
    return prep.trainer.history, prep.model.score(prep.train.X)


def _stacked(compose_cfg, seeds: list[int], overrides: list[str], tmp_path, force_vmap: bool = False):
    preps, states = [], []
    for seed in seeds:
        preps.append(prepare_seed(_cfg(compose_cfg, seed, overrides)))
        states.append(torch.get_rng_state())
    finished = fit_stacked([p.trainer for p in preps], [p.model for p in preps], [p.train for p in preps],
                           [p.val for p in preps], [tmp_path / f"stacked{s}" for s in seeds], seeds, states,
                           stack_slower=True,  # the classifier too: its stacked fit is what a GPU runs
                           force_vmap=force_vmap)
    assert finished == [True] * len(seeds)
    return [(p.trainer.history, p.model.score(p.train.X)) for p in preps]


def _assert_same_fit(separate, stacked) -> None:
    (h1, s1), (h2, s2) = separate, stacked
    assert len(h1) == len(h2)
    for a, b in zip(h1, h2, strict=True):
        assert set(a) == set(b)
        for key in set(a) & set(LOSS_KEYS):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-7), key
    # float32 sums in another order: weights agree to ~1e-7, EDE's standardized scores to ~1e-4 of their range
    np.testing.assert_allclose(s2, s1, rtol=0, atol=1e-3 * float(np.abs(s1).max()))


# Classifier: validation split, early stopping with patience 1 (the seeds stop at different epochs),
# gradient clipping per seed. EDE: the noise targets drawn per seed (loss_draws); "_vmap": the loss under
# torch.func.vmap (conv nets' way) instead of stacked_layers.py (the MLPs' way, the others here).
CASES = {
    "classifier_early_stop_clip": ["model=classifier", "trainer.max_epochs=12", "trainer.patience=1",
                                   "trainer.min_steps=0", "trainer.batch_size=32", "trainer.grad_clip=0.5",
                                   "trainer.optimizer.lr=0.01"],
    "ede_noise": ["model=ede", "trainer.max_epochs=2"],
    "ede_noise_vmap": ["model=ede", "trainer.max_epochs=2"],
}


@pytest.mark.parametrize("case", CASES)
def test_each_stacked_seed_fits_as_its_own_run(compose_cfg, tmp_path, case):
    seeds = [1, 2, 3]
    stacked = _stacked(compose_cfg, seeds, CASES[case], tmp_path, force_vmap=case.endswith("_vmap"))
    for seed, got in zip(seeds, stacked, strict=True):
        _assert_same_fit(_separate(compose_cfg, seed, CASES[case], tmp_path), got)
    if case.startswith("classifier"):  # early stopping really was per seed
        assert len({len(h) for h, _ in stacked}) > 1, [len(h) for h, _ in stacked]
        assert all(len(h) < 12 for h, _ in stacked)


def _part(n: int) -> Part:
    return Part(np.zeros((n, 3), np.float32), np.zeros(n, np.int8), np.zeros(n, np.int8), np.zeros(n, np.int64),
                np.arange(n))


def test_different_split_sizes_weight_averaging_or_a_closed_form_model_do_not_stack(compose_cfg):
    preps = [prepare_seed(_cfg(compose_cfg, s, ["model=deepsad", "trainer.max_epochs=1"])) for s in (1, 2)]
    trainers, models = [p.trainer for p in preps], [p.model for p in preps]
    with pytest.raises(Unstackable, match="differ in size"):
        check_stackable(trainers, models, [_part(10), _part(11)], [None, None])
    averaged = prepare_seed(_cfg(compose_cfg, 1, ["model=deepsad", "trainer.ema_decay=0.99"]))
    with pytest.raises(Unstackable, match="trainer.ema_decay is not stacked"):
        check_stackable([averaged.trainer] * 2, [averaged.model] * 2, [_part(10)] * 2, [None, None])
    forest = prepare_seed(_cfg(compose_cfg, 1, ["model=iforest"]))
    with pytest.raises(Unstackable, match="not trained by gradient steps"):
        check_stackable([forest.trainer] * 2, [forest.model] * 2, [_part(10)] * 2, [None, None])


def test_models_measured_slower_stacked_on_a_cpu_fall_back_unless_asked(compose_cfg):
    """Conv nets and the classifier train slower stacked on a CPU (benchmarks/README.md): not stacked there
    by default; MLP Deep SAD and EDE are; on CUDA nothing is ruled out this way."""
    from semiad_cli.training.stacked import slower_stacked

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    built = {name: prepare_seed(_cfg(compose_cfg, 1, [f"model={name}"])) for name in ("classifier", "deepsad", "ede")}
    assert "arithmetic-bound" in slower_stacked(built["classifier"].model, cpu)
    assert slower_stacked(built["deepsad"].model, cpu) is None and slower_stacked(built["ede"].model, cpu) is None
    assert slower_stacked(built["classifier"].model, cuda) is None
    conv = built["ede"].model
    conv.add_module("extra_conv", torch.nn.Conv2d(1, 1, 3))  # any conv layer in the model
    assert slower_stacked(conv, cpu).startswith("a conv net trains slower stacked")
    p = built["classifier"]
    with pytest.raises(Unstackable, match=r"hydra.launcher.stack_slower=true stacks it anyway"):
        check_stackable([p.trainer] * 2, [p.model] * 2, [p.train] * 2, [p.val] * 2, cpu)
    check_stackable([p.trainer] * 2, [p.model] * 2, [p.train] * 2, [p.val] * 2, cpu, stack_slower=True)
