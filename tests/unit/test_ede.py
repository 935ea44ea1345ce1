"""EDE loss terms on hand-computed tensors, gradients, and encoder sharing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semiad_cli.errors import ConfigError
from semiad_cli.models.ede import EDE, ede_losses, safe_norm
from semiad_cli.models.nets.lenet import LeNetSpec
from semiad_cli.models.nets.mlp import MLPSpec


def _toy():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x_hat = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    z = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    z_hat = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    return x, x_hat, z, z_hat


def test_loss_terms_match_hand_computation():
    x, x_hat, z, z_hat = _toy()
    semi = torch.tensor([0, -1])
    parts = ede_losses(x, x_hat, z, z_hat, semi, eps=1.0)
    # rec: per-sample sums 0.25 and 1.0 -> mean 0.625
    assert parts["rec"].item() == pytest.approx(0.625)
    # ent: unlabeled ||(3,4)|| = 5; labeled anomaly 1/(0 + 1) = 1 -> mean 3
    assert parts["ent"].item() == pytest.approx(3.0)
    # con: ||(3,4)-(1,0)||^2 = 20 and 0 -> mean 10
    assert parts["con"].item() == pytest.approx(10.0)


def test_known_normals_count_as_normal_and_anomalies_can_be_left_out_of_rec():
    x, x_hat, z, z_hat = _toy()
    parts = ede_losses(x, x_hat, z, z_hat, torch.tensor([1, -1]), eps=1.0, anomaly_reconstruction="skip")
    assert parts["rec"].item() == pytest.approx(0.25)  # only the normal row
    assert parts["ent"].item() == pytest.approx(3.0)


def test_noise_target_replaces_the_input_for_labeled_anomalies_only():
    x, x_hat, z, z_hat = _toy()
    noise = torch.tensor([[9.0, 9.0], [0.0, 3.0]])
    parts = ede_losses(x, x_hat, z, z_hat, torch.tensor([0, -1]), eps=1.0, anomaly_reconstruction="noise",
                       noise_target=noise)
    # row 0 (normal) against x: 0.25; row 1 (anomaly) against (0, 3): 0 + 9 = 9 -> mean 4.625
    assert parts["rec"].item() == pytest.approx(4.625)


def test_consistency_mean_is_over_batch_and_code_dims():
    x, x_hat, z, z_hat = _toy()
    mean = ede_losses(x, x_hat, z, z_hat, torch.tensor([0, 0]), eps=1.0, consistency="mean")
    total = ede_losses(x, x_hat, z, z_hat, torch.tensor([0, 0]), eps=1.0, consistency="sum")
    assert total["con"].item() == pytest.approx(10.0)  # (4 + 16 + 0 + 0) / 2 rows
    assert mean["con"].item() == pytest.approx(5.0)  # (4 + 16 + 0 + 0) / 4 entries


def test_noise_targets_stay_in_each_features_training_range():
    torch.manual_seed(0)
    model = EDE(net=MLPSpec(input_shape=[3], hidden=[4], rep_dim=2), anomaly_reconstruction="noise")
    X = torch.tensor([[0.0, 10.0, -1.0], [1.0, 20.0, -1.0], [0.5, 15.0, -1.0]])
    model.init_from_data(X, torch.zeros(3))
    assert model.x_low_.tolist() == [0.0, 10.0, -1.0] and model.x_high_.tolist() == [1.0, 20.0, -1.0]
    loss, _ = model.loss(X, torch.tensor([0, -1, 0]))
    assert torch.isfinite(loss)


@pytest.mark.parametrize("kind", ["loss", "reference", "standardized", "standardized_rel"])
def test_score_variants_combine_the_reported_parts(kind):
    torch.manual_seed(0)
    model = EDE(net=MLPSpec(input_shape=[6], hidden=[5], rep_dim=3), score=kind)
    X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    model.after_fit(torch.as_tensor(X[:30]), torch.zeros(30))
    parts = model.score_parts(X)
    if kind == "loss":
        expected = parts["rec"] + parts["znorm"]
    elif kind == "reference":
        expected = parts["rec"] / 6 + parts["znorm"]
    else:  # z-scored with the 30 "training normals"
        names = ["rec", "znorm"] + (["rec_rel"] if kind == "standardized_rel" else [])
        expected = sum((parts[k] - parts[k][:30].mean()) / parts[k][:30].std(ddof=1) for k in names)
    np.testing.assert_allclose(model.score(X), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["standardized", "standardized_rel"])
def test_part_weights_scale_each_z_score_of_the_standardized_scores(kind):
    torch.manual_seed(0)
    weights = {"rec": 0.5, "rec_rel": 3.0, "znorm": 2.0}
    model = EDE(net=MLPSpec(input_shape=[6], hidden=[5], rep_dim=3), score=kind, part_weights=weights)
    X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    model.after_fit(torch.as_tensor(X[:30]), torch.zeros(30))
    parts = model.score_parts(X)
    names = ["rec", "znorm"] + (["rec_rel"] if kind == "standardized_rel" else [])
    expected = sum(weights[k] * (parts[k] - parts[k][:30].mean()) / parts[k][:30].std(ddof=1) for k in names)
    np.testing.assert_allclose(model.score(X), expected, rtol=1e-4, atol=1e-4)  # float32 means, weights up to 3
    # a part left out keeps weight 1; the weights are config, not state: a reload takes the new ones
    assert EDE(net=MLPSpec(input_shape=[6]), part_weights={"znorm": 2.0}).part_weights == {
        "rec": 1.0, "rec_rel": 1.0, "znorm": 2.0}


@pytest.mark.parametrize("weights,score,match", [
    ({"zn": 2.0}, "standardized_rel", "model.part_weights.zn is not a score part"),
    ({"znorm": -1.0}, "standardized_rel", r"model.part_weights.znorm=-1.0 is out of range"),
    ({"znorm": float("nan")}, "standardized_rel", "must be finite"),
    ({"znorm": float("inf")}, "standardized_rel", "must be finite"),
    ({"znorm": "two"}, "standardized_rel", "wrong type"),
])
def test_bad_part_weights_are_config_errors_naming_the_key(weights, score, match):
    with pytest.raises(ConfigError, match=match):
        EDE(net=MLPSpec(input_shape=[6]), score=score, part_weights=weights)


@pytest.mark.parametrize("kind", ["loss", "reference"])
def test_scores_with_fixed_scales_ignore_part_weights_and_say_so(kind, caplog):
    """F-MNIST's config weighs ‖ẑ‖ twice; ``model.score=loss`` there still runs, with a warning."""
    torch.manual_seed(0)
    spec = MLPSpec(input_shape=[6], hidden=[5], rep_dim=3)
    X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    with caplog.at_level("WARNING", logger="semiad_cli.models.ede"):
        weighted = EDE(net=spec, score=kind, part_weights={"znorm": 2.0})
    assert "model.score=" + kind + " has fixed scales and ignores them" in caplog.text and "znorm=2" in caplog.text
    torch.manual_seed(0)
    plain = EDE(net=spec, score=kind)
    np.testing.assert_array_equal(weighted.score(X), plain.score(X))


def test_standardized_statistics_leave_labeled_anomalies_out_and_are_saved(tmp_path):
    torch.manual_seed(0)
    spec = MLPSpec(input_shape=[4], hidden=[5], rep_dim=3)
    model = EDE(net=spec, score="standardized")
    X = torch.rand(20, 4)
    semi = torch.zeros(20)
    semi[:5] = -1
    model.after_fit(X, semi)
    parts = model.score_parts(X[5:].numpy())
    assert model.part_mean_[0].item() == pytest.approx(float(parts["rec"].mean()), rel=1e-5)
    model.save(tmp_path)
    again = EDE(net=spec, score="standardized").load(tmp_path)
    assert torch.equal(again.part_mean_, model.part_mean_) and torch.equal(again.part_std_, model.part_std_)


@pytest.mark.parametrize("key,value", [("anomaly_reconstruction", "drop"), ("score", "mean"),
                                       ("consistency", "max")])
def test_unknown_option_is_a_config_error(key, value):
    from semiad_cli.errors import ConfigError

    with pytest.raises(ConfigError, match=f"model.{key}"):
        EDE(net=MLPSpec(input_shape=[6]), **{key: value})


@pytest.mark.parametrize("spec", [MLPSpec(input_shape=[6], hidden=[5, 4], rep_dim=3),
                                  LeNetSpec(input_shape=[1, 28, 28])])
def test_net_width_widens_every_hidden_layer_of_all_three_nets_and_keeps_the_code(spec):
    """``net_width=2`` doubles each hidden size of E1, D and E2; the code and the data shape stay."""
    def hidden_sizes(module):
        return [m.weight.shape[0] for m in module.modules()
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]

    one, two = EDE(net=spec), EDE(net=spec, net_width=2)
    for name in ("encoder_", "encoder2_"):
        a, b = hidden_sizes(getattr(one, name)), hidden_sizes(getattr(two, name))
        assert b[:-1] == [2 * h for h in a[:-1]] and b[-1] == a[-1] == spec.rep_dim
    assert sum(p.numel() for p in two.decoder_.parameters()) > sum(p.numel() for p in one.decoder_.parameters())
    x = torch.rand(4, *spec.input_shape)
    assert two(x)[1].shape == x.shape and two(x)[2].shape == (4, spec.rep_dim)
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="model.net_width"):
            EDE(net=spec, net_width=bad)


def test_labeled_anomaly_term_pushes_norm_up_and_normal_term_pulls_it_down():
    z_hat = torch.tensor([[0.6, 0.8], [0.6, 0.8]], requires_grad=True)
    x = torch.zeros(2, 2)
    parts = ede_losses(x, x, z_hat.detach(), z_hat, torch.tensor([0, -1]), eps=1e-6)
    parts["ent"].backward()
    with torch.no_grad():
        stepped = z_hat - 0.1 * z_hat.grad
    norms = stepped.norm(dim=1)
    assert norms[0] < 1.0 < norms[1]


def test_no_nan_when_code_is_zero():
    z_hat = torch.zeros(3, 4, requires_grad=True)
    x = torch.rand(3, 5)
    parts = ede_losses(x, x, torch.zeros(3, 4), z_hat, torch.tensor([0, -1, 1]), eps=1e-6)
    total = parts["rec"] + parts["ent"] + parts["con"]
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(z_hat.grad).all()
    assert safe_norm(torch.zeros(2, 3)).tolist() == [0.0, 0.0]


def test_shared_encoder_has_one_encoder_worth_fewer_parameters():
    spec = MLPSpec(input_shape=[10], hidden=[8, 6], rep_dim=4)
    two = EDE(net=spec, shared_encoder=False)
    one = EDE(net=spec, shared_encoder=True)
    enc = sum(p.numel() for p in spec.encoder().parameters())
    n_two = sum(p.numel() for p in two.parameters())
    n_one = sum(p.numel() for p in one.parameters())
    assert n_two - n_one == enc == 10 * 8 + 8 * 6 + 6 * 4
    assert one.encoder2_ is one.encoder_ and two.encoder2_ is not two.encoder_


def test_score_is_reconstruction_plus_code_norm_and_has_right_shape():
    torch.manual_seed(0)
    model = EDE(net=MLPSpec(input_shape=[6], hidden=[5], rep_dim=3), score="loss")
    X = np.random.default_rng(0).random((7, 6), dtype=np.float32)
    scores = model.score(X)
    parts = model.score_parts(X)
    assert scores.shape == (7,)
    np.testing.assert_allclose(scores, parts["rec"] + parts["znorm"], rtol=1e-6)


def test_relative_reconstruction_part_divides_by_the_inputs_squared_norm():
    """rec_rel on a known answer: the same absolute error counts 4x more on an input of half the size."""
    from semiad_cli.models.ede import ede_score_parts

    x = torch.tensor([[3.0, 4.0], [1.5, 2.0], [0.0, 0.0]])  # ‖x‖² = 25, 6.25, 0
    x_hat = x + torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    parts = ede_score_parts(x, x_hat, torch.zeros(3, 2))
    assert parts["rec"].tolist() == [1.0, 1.0, 0.0]
    assert parts["rec_rel"][:2].tolist() == pytest.approx([1 / 25, 1 / 6.25])
    assert parts["rec_rel"][2].item() == 0.0  # 0 / the floor, not NaN


def test_checkpoints_from_before_rec_rel_still_load(tmp_path):
    """A run saved with two statistics (rec, znorm) loads and scores as it did; standardized_rel,
    which would need the missing rec_rel statistics, is refused by name."""
    from semiad_cli.errors import CheckpointError
    from semiad_cli.models.base import STATE_FILE
    from semiad_cli.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    spec = MLPSpec(input_shape=[4], hidden=[5], rep_dim=3)
    model = EDE(net=spec, score="standardized")
    X = torch.rand(30, 4)
    model.after_fit(X, torch.zeros(30))
    state = model.state_dict()
    state["part_mean_"], state["part_std_"] = state["part_mean_"][[0, 2]], state["part_std_"][[0, 2]]
    save_checkpoint(tmp_path / STATE_FILE, {"model": state, "model_class": model.class_path()})
    old = EDE(net=spec, score="standardized").load(tmp_path)
    np.testing.assert_array_equal(old.score(X.numpy()), model.score(X.numpy()))
    with pytest.raises(CheckpointError, match="model.score=standardized"):
        EDE(net=spec, score="standardized_rel").load(tmp_path)


def test_wrong_feature_count_is_a_named_error():
    from semiad_cli.errors import SemiadError

    model = EDE(net=MLPSpec(input_shape=[6], hidden=[5], rep_dim=3))
    with pytest.raises(SemiadError, match=r"shape \(6,\)"):
        model.score(np.zeros((2, 5), np.float32))


def test_negative_lambda_is_rejected():
    from semiad_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="model.lambda_ent"):
        EDE(net=MLPSpec(input_shape=[6]), lambda_ent=-1)


@pytest.mark.parametrize("kind", ["loss", "reference", "standardized", "standardized_rel"])
def test_one_scoring_pass_gives_score_and_parts_with_one_forward_per_batch(kind):
    """score_with_parts (what the train and evaluate tasks call) equals score() and score_parts() bit for
    bit, from one forward pass per batch instead of two passes over the data."""
    torch.manual_seed(0)
    model = EDE(net=MLPSpec(input_shape=[6], hidden=[5], rep_dim=3), score=kind)
    X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    model.after_fit(torch.as_tensor(X[:30]), torch.zeros(30))
    model.score_batch_size = 16  # 3 batches
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    scores, parts = model.score_with_parts(X)
    assert calls == [16, 16, 8]
    calls.clear()
    np.testing.assert_array_equal(scores, model.score(X))
    expected = model.score_parts(X)
    assert parts.keys() == expected.keys() == {"rec", "rec_rel", "znorm"}
    for k in parts:
        np.testing.assert_array_equal(parts[k], expected[k])
    assert len(calls) == 6  # the two separate calls cost two passes


def test_models_without_parts_score_once_through_score_batch():
    from semiad_cli.models.classifier import Classifier

    torch.manual_seed(0)
    model = Classifier(net=MLPSpec(input_shape=[6], hidden=[5], rep_dim=1, batchnorm=False))
    X = np.random.default_rng(1).random((10, 6), dtype=np.float32)
    scores, parts = model.score_with_parts(X)
    assert parts == {}
    np.testing.assert_array_equal(scores, model.score(X))


def test_safe_norm_has_zero_gradient_at_zero() -> None:
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    n = safe_norm(z)
    n.sum().backward()
    assert n.tolist() == [5.0, 0.0]
    assert z.grad.tolist() == [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]


@pytest.mark.parametrize("key", ["lambda_ent", "lambda_con", "eps"])
def test_nan_loss_weights_are_config_errors(key):
    """``check_range`` refuses NaN, which passes every bound comparison, for every range-checked key."""
    with pytest.raises(ConfigError, match=f"model.{key}=nan is not a number"):
        EDE(net=MLPSpec(input_shape=[6]), **{key: float("nan")})
