"""scripts/ede_select.py --warmup-epochs: L_ent and L_con are off for the first epochs, then back."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import load_script


def test_warm_up_turns_the_code_terms_off_and_restores_them_after_its_epochs():
    model, trainer = SimpleNamespace(lambda_ent=1.0, lambda_con=0.5), SimpleNamespace(on_epoch_end=None)
    load_script("ede_select").warm_up(model, trainer, 2)
    assert (model.lambda_ent, model.lambda_con) == (0.0, 0.0)
    trainer.on_epoch_end({"epoch": 1, "rec": 0.1})
    assert (model.lambda_ent, model.lambda_con) == (0.0, 0.0)  # epoch 2 still trains on L_rec alone
    trainer.on_epoch_end({"epoch": 2, "rec": 0.1})
    assert (model.lambda_ent, model.lambda_con) == (1.0, 0.5)
    trainer.on_epoch_end({"epoch": 3, "rec": 0.1})
    assert (model.lambda_ent, model.lambda_con) == (1.0, 0.5)


def test_no_warm_up_changes_nothing():
    model, trainer = SimpleNamespace(lambda_ent=1.0, lambda_con=0.5), SimpleNamespace(on_epoch_end=None)
    load_script("ede_select").warm_up(model, trainer, 0)
    assert (model.lambda_ent, model.lambda_con, trainer.on_epoch_end) == (1.0, 0.5, None)
