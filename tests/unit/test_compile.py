"""``trainer.compile=true`` trains through ``torch.compile`` (needs a C compiler on CPU) to eager mode's numbers."""

from __future__ import annotations

import shutil

import pytest
import torch

from semiad_cli.tasks.train import run

# Deep SAD (the smallest graph; EDE takes 67 s): 48 s with a cold inductor cache, 16 s warm, on the 2-core
# development machine at load 2-3
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                 reason="torch.compile on CPU needs a C compiler")]


def test_compiled_deep_sad_training_on_digits_matches_eager(tmp_path, compose_cfg) -> None:
    metrics = {}
    for compiled in (False, True):
        cfg = compose_cfg("train", ["dataset=digits", "model=deepsad", "trainer.max_epochs=2", "trainer.num_threads=1",
                                    "trainer.device=cpu", f"trainer.compile={str(compiled).lower()}"])
        metrics[compiled] = run(cfg, tmp_path / str(compiled))
        torch._dynamo.reset()
    eager, compiled = metrics[False], metrics[True]
    assert compiled["status"] == "completed" and compiled["train"]["epochs"] == 2
    # the compiled kernels sum in another order: losses agree to float rounding, not bit for bit
    assert compiled["train"]["final_train_loss"] == pytest.approx(eager["train"]["final_train_loss"], rel=1e-3)
    assert compiled["auroc"] == pytest.approx(eager["auroc"], abs=0.02)
