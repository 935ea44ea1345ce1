"""scripts/ede_rescore.py: rescoring a finished EDE run with another score gives what training with
that score gives, without training again."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_script


def test_rescoring_matches_the_run_itself_and_a_run_trained_with_the_other_score(tmp_path, cli_inproc):
    old, new = tmp_path / "standardized", tmp_path / "standardized_rel"
    for run, score in ((old, "standardized"), (new, "standardized_rel")):
        cli_inproc("train", "model=ede", "trainer.max_epochs=2", f"model.score={score}", f"hydra.run.dir={run}",
                   check=True)
    row = load_script("ede_rescore").rescore(old)
    assert row["matches_train"] and row["trained_score"] == "standardized"
    # the score does not change training (same seed, same weights): only the ranking at the end
    trained_rel = json.loads((new / "metrics.json").read_text())
    assert row["auroc_standardized_rel"] == pytest.approx(trained_rel["auroc"], abs=1e-9)
    assert row["auroc_rec_rel"] == pytest.approx(trained_rel["parts"]["rec_rel"]["auroc"], abs=1e-9)


def test_other_models_are_skipped(tmp_path, cli_inproc):
    run = tmp_path / "iforest"
    cli_inproc("train", "model=iforest", f"hydra.run.dir={run}", check=True)
    assert load_script("ede_rescore").rescore(run) is None


def test_rescoring_with_other_part_weights_matches_a_run_trained_with_them(tmp_path, cli_inproc):
    """The weights only reweigh the parts at scoring time: znorm 2 rescored with znorm 1 is the unit-weight run."""
    doubled, unit = tmp_path / "doubled", tmp_path / "unit"
    for run, weight in ((doubled, 2), (unit, 1)):
        cli_inproc("train", "model=ede", "trainer.max_epochs=2", f"model.part_weights.znorm={weight}",
                   f"hydra.run.dir={run}", check=True)
    script = load_script("ede_rescore")
    row = script.rescore(doubled, part_weights={"znorm": 1.0})
    assert row["matches_train"] and row["part_weights"] == "rec=1 rec_rel=1 znorm=1"
    trained_unit = json.loads((unit / "metrics.json").read_text())
    assert row["auroc_standardized_rel"] == pytest.approx(trained_unit["auroc"], abs=1e-9)
    assert row["auroc_standardized_rel"] != pytest.approx(json.loads((doubled / "metrics.json").read_text())["auroc"],
                                                          abs=1e-9)
