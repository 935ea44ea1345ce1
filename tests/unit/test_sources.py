"""Shared datasets load with the shapes and class counts of their SOURCE.md; tables; LeNet; configs."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from semiad_cli.data import files
from semiad_cli.data.source import Source
from semiad_cli.data.sources import images
from semiad_cli.data.sources.adbench import load_adbench
from semiad_cli.data.sources.digits import load_breast_cancer
from semiad_cli.data.sources.medical import PNEUMONIA_CONTENT_SHA256, load_pneumoniamnist
from semiad_cli.data.sources.nslkdd import load_nslkdd
from semiad_cli.data.sources.odds import load_odds
from semiad_cli.data.sources.table import load_table
from semiad_cli.data.split import build_split
from semiad_cli.errors import ConfigError, DataError
from semiad_cli.models.nets.lenet import LeNetSpec
from semiad_cli.models.nets.mlp import MLPSpec

SHARED = files.resolve_root(None)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setenv(files.ENV_DOWNLOAD, "0")
    monkeypatch.delenv(files.ENV_ROOT, raising=False)


def need(*rels: str) -> None:
    for rel in rels:
        if not (SHARED / rel).is_file():
            pytest.skip(f"shared data file {SHARED / rel} is absent")


# ------------------------------------------------------------------------------ images
MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_shapes_counts_and_cache(monkeypatch):
    need("mnist/train-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
    src = images.load_mnist()
    assert src.X.shape == (70000, 1, 28, 28) and src.X.dtype == np.uint8 and src.kind == "image"
    assert src.is_test.sum() == 10000 and not src.is_test[:60000].any()
    assert np.bincount(src.labels[~src.is_test]).tolist() == MNIST_TRAIN
    assert np.bincount(src.labels[src.is_test]).tolist() == MNIST_TEST

    # second load: decoded arrays come from the .npy cache, no IDX decoding, no re-hash
    def boom(*a, **k):
        raise AssertionError("cache not used")

    monkeypatch.setattr(images, "_read_idx", boom)
    monkeypatch.setattr(files, "_digests", boom)
    again = images.load_mnist()
    np.testing.assert_array_equal(again.X, src.X)
    np.testing.assert_array_equal(again.labels, src.labels)


def test_fashion_mnist_shapes_counts():
    need("fashion-mnist/train-images-idx3-ubyte.gz", "fashion-mnist/t10k-labels-idx1-ubyte.gz")
    src = images.load_fashion_mnist()
    assert src.X.shape == (70000, 1, 28, 28) and src.X.dtype == np.uint8
    assert np.bincount(src.labels[~src.is_test]).tolist() == [6000] * 10
    assert np.bincount(src.labels[src.is_test]).tolist() == [1000] * 10


@pytest.mark.slow
def test_cifar10_shapes_counts_and_warm_load():
    need("cifar10/cifar10.npz")
    src = images.load_cifar10(prefer="npz")  # cold: LZMA decode, ~10-20 s
    assert src.X.shape == (60000, 3, 32, 32) and src.X.dtype == np.uint8
    assert np.bincount(src.labels[~src.is_test]).tolist() == [5000] * 10
    assert np.bincount(src.labels[src.is_test]).tolist() == [1000] * 10
    # SOURCE.md train mean per channel (RGB) 125.27, 122.93, 113.86: checks the NHWC -> NCHW transpose
    means = src.X[~src.is_test].mean(axis=(0, 2, 3))
    np.testing.assert_allclose(means, [125.27, 122.93, 113.86], atol=0.01)
    t = time.perf_counter()
    again = images.load_cifar10(prefer="npz")
    assert time.perf_counter() - t < 3.0
    np.testing.assert_array_equal(again.X[:100], src.X[:100])


# ------------------------------------------------------------------------------ tabular
ODDS = {
    "arrhythmia": (452, 274, 66),
    "cardio": (1831, 21, 176),
    "satellite": (6435, 36, 2036),
    "satimage-2": (5803, 36, 71),
    "shuttle": (49097, 9, 3511),
    "thyroid": (3772, 6, 93),
}
ADBENCH = {
    "2_annthyroid": (7200, 6, 534),
    "4_breastw": (683, 9, 239),
    "5_campaign": (41188, 62, 4640),
    "6_cardio": (1831, 21, 176),
    "31_satimage-2": (5803, 36, 71),
    "38_thyroid": (3772, 6, 93),
    "42_WBC": (223, 9, 10),
}


@pytest.mark.parametrize("name", sorted(ODDS))
def test_odds(name):
    need(f"odds/{name}.mat")
    n, d, n_out = ODDS[name]
    src = load_odds(name=name)
    assert src.X.shape == (n, d) and src.X.dtype == np.float32 and src.is_test is None
    assert np.bincount(src.labels).tolist() == [n - n_out, n_out] and src.default_normal == 0


def test_odds_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="satimage-2"):
        load_odds(name="mnist")


@pytest.mark.parametrize("stem", sorted(ADBENCH))
def test_adbench(stem):
    need(f"adbench/{stem}.npz")
    n, d, n_anom = ADBENCH[stem]
    short = stem.split("_", 1)[1]
    for name in (stem, short):
        src = load_adbench(name=name)
        assert src.X.shape == (n, d) and int(src.labels.sum()) == n_anom and src.name == short


def test_nslkdd():
    need("nsl-kdd/KDDTrain+.txt.gz", "nsl-kdd/KDDTest+.txt.gz")
    src = load_nslkdd()
    assert src.X.shape == (125973 + 22544, 122) and src.X.dtype == np.float32
    assert int(src.is_test.sum()) == 22544 and not src.is_test[:125973].any()
    train, test = Counter(src.labels[~src.is_test].tolist()), Counter(src.labels[src.is_test].tolist())
    assert set(train) | set(test) == {"normal", "DoS", "Probe", "R2L", "U2R"}
    assert train["normal"] == 67343 and sum(train.values()) - train["normal"] == 58630  # SOURCE.md
    assert test["normal"] == 9711 and sum(test.values()) - test["normal"] == 12833
    assert [len(g) for g in src.features.onehot_groups] == [3, 70, 11]
    flat = [i for g in src.features.onehot_groups for i in g]
    assert flat == list(range(38, 122))
    np.testing.assert_array_equal(src.X[:, flat].sum(axis=1), 3.0)  # one hot per group per row
    for i in src.features.binary:
        assert set(np.unique(src.X[:, i]).tolist()) <= {0.0, 1.0}
    assert src.default_normal == "normal"


def test_nslkdd_20percent_width_119():
    need("nsl-kdd/KDDTrain+_20Percent.txt.gz", "nsl-kdd/KDDTest+.txt.gz")
    src = load_nslkdd(train_file="20percent")
    assert src.X.shape == (25192 + 22544, 119)  # Lau et al.'s feature count


def test_pneumoniamnist():
    need("medical/pneumoniamnist.npz")
    src = load_pneumoniamnist()
    assert src.X.shape == (5856, 1, 28, 28) and src.X.dtype == np.uint8
    assert np.bincount(src.labels[~src.is_test]).tolist() == [1214 + 135, 3494 + 389]
    assert np.bincount(src.labels[src.is_test]).tolist() == [234, 390]
    n_train = 4708
    digest = files.array_digest(
        [
            src.X[:n_train, 0],
            src.labels[:n_train, None].astype(np.uint8),
            src.X[n_train:5232, 0],
            src.labels[n_train:5232, None].astype(np.uint8),
            src.X[5232:, 0],
            src.labels[5232:, None].astype(np.uint8),
        ]
    )
    assert digest == PNEUMONIA_CONTENT_SHA256


def test_breast_cancer():
    src = load_breast_cancer()
    assert src.X.shape == (569, 30)
    assert Counter(src.labels.tolist()) == {"benign": 357, "malignant": 212}
    assert src.default_normal == "benign"


TABULAR = {
    **{f"odds:{n}": (lambda n=n: load_odds(name=n), f"odds/{n}.mat") for n in ODDS},
    **{f"adbench:{s}": (lambda s=s: load_adbench(name=s), f"adbench/{s}.npz") for s in ADBENCH},
    "nsl_kdd": (load_nslkdd, "nsl-kdd/KDDTrain+.txt.gz"),
    "breast_cancer": (load_breast_cancer, None),
}


@pytest.mark.parametrize("key", sorted(TABULAR))
def test_build_split_counts(key):
    """γl = 0.05, k = 1, seed 1: n_known = int(γl · n_normal_train / (1 − γl)) (Deep SAD's formula)."""
    loader, rel = TABULAR[key]
    if rel:
        need(rel)
    src = loader()
    labels = np.asarray(src.labels)
    normal = np.isin(labels, [src.default_normal])
    n_normal = int(normal.sum())
    n_normal_train = (
        int((normal & ~src.is_test).sum()) if src.is_test is not None else n_normal - math.ceil(0.4 * n_normal)
    )
    expected = int(0.05 * n_normal_train / 0.95)
    try:
        split = build_split(
            src,
            seed=1,
            normal_class=[src.default_normal],
            ratio_known_anomaly=0.05,
            n_known_anomaly_classes=1,
            scaling="minmax",
        )
    except ConfigError as exc:  # known class too small for γl = 0.05 (e.g. thyroid, satimage-2, U2R)
        assert f"needs {expected} labeled anomalies" in str(exc)
        return
    c = split.counts
    assert c["n_train_known_anomaly"] == expected
    assert c["n_train_normal_unlabeled"] == n_normal_train and c["n_train_polluted"] == 0
    assert c["n_train"] == n_normal_train + expected
    assert (split.train.semi == -1).sum() == expected
    assert split.train.X.dtype == np.float32 and split.train.X.shape[1:] == src.X.shape[1:]


def test_split_accepts_string_normal_class():
    src = load_breast_cancer()
    split = build_split(src, seed=1, ratio_known_anomaly=0.0)  # default_normal == "benign"
    assert split.normal_classes == ["benign"]


# ------------------------------------------------------------------------------ CSV / parquet
def _frame():
    import pandas as pd

    return pd.DataFrame(
        {
            "x": [0.5, 1.5, 2.0, 3.0, 0.1, 0.2],
            "flag": [0, 1, 1, 0, 0, 1],
            "color": ["red", "blue", "red", "green", "blue", "red"],
            "proto": ["tcp", "udp", "tcp", "tcp", "udp", "icmp"],
            "status": ["ok", "ok", "ok", "attack", "attack", "ok"],
            "kind": ["", "", "", "scan", "flood", ""],
            "id": [1, 2, 3, 4, 5, 6],
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_onehot_groups_and_binary(tmp_path, fmt):
    df = _frame()
    path = tmp_path / f"t.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    src = load_table(path=path, label_column="status", anomaly_values=["attack"], drop_columns=["kind", "id"])
    # x, flag, then color (3) and proto (3)
    assert src.X.shape == (6, 8) and src.features.binary == [1]
    assert src.features.onehot_groups == [[2, 3, 4], [5, 6, 7]]
    np.testing.assert_array_equal(src.X[:, 2:5].sum(axis=1), 1)
    assert src.labels.tolist() == df["status"].tolist() and src.default_normal == ["ok"]
    with_class = load_table(
        path=path, label_column="status", anomaly_values=["attack"], class_column="kind", drop_columns=["id"]
    )
    assert with_class.labels.tolist() == ["normal"] * 3 + ["scan", "flood", "normal"]
    assert with_class.default_normal == ["normal"]
    big = tmp_path / "big.csv"
    import pandas as pd

    pd.concat([df] * 4, ignore_index=True).to_csv(big, index=False)
    src4 = load_table(
        path=big, label_column="status", anomaly_values=["attack"], class_column="kind", drop_columns=["id"]
    )
    split = build_split(
        src4, seed=1, ratio_known_anomaly=0.0, test_size=0.5, scaling="minmax", n_known_anomaly_classes=0
    )
    assert set(split.anomaly_classes) == {"scan", "flood"} and split.normal_classes == ["normal"]


def test_table_errors(tmp_path):
    df = _frame()
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="not found"):
        load_table(path=tmp_path / "nope.csv", label_column="status", anomaly_values=["attack"])
    with pytest.raises(ConfigError, match=r"columns: \['x', 'flag'"):
        load_table(path=path, label_column="label", anomaly_values=["attack"])
    with pytest.raises(ConfigError, match="exactly one"):
        load_table(path=path, label_column="status")
    df2 = df.drop(columns=["kind"])
    df2.loc[[1, 4], "x"] = np.nan
    df2.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"NaN.*x \(2\)"):
        load_table(path=path, label_column="status", normal_values=["ok"])
    df3 = df.drop(columns=["kind"])
    df3["x"] = df3["x"].astype(object)
    df3.loc[2, "x"] = "abc"
    df3.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'x' is numeric but holds non-numeric values \['abc'\]"):
        load_table(
            path=path, label_column="status", normal_values=["ok"], categorical_columns=["color", "proto"]
        )
    # without categorical_columns: a numeric column with one stray string is still an error,
    # not silently one-hot encoded
    with pytest.raises(DataError, match=r"column 'x' is numeric but holds non-numeric values \['abc'\]"):
        load_table(path=path, label_column="status", normal_values=["ok"])



def _noise_sorted_by_label(n: int = 200):
    """Pure-noise features, rows sorted by label: only the row number says which rows are anomalies."""
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"f1": rng.normal(size=n), "f2": rng.normal(size=n), "y": rng.random(n) < 0.2})
    return df.sort_values("y", kind="stable").reset_index(drop=True).astype({"y": int})


def test_table_with_written_index_is_refused(tmp_path):
    path = tmp_path / "indexed.csv"
    _noise_sorted_by_label().to_csv(path)  # pandas' default writes the index as an unnamed first column
    with pytest.raises(DataError, match=r"unnamed columns \['Unnamed: 0'\].*drop_columns=\['Unnamed: 0'\]") as err:
        load_table(path=path, label_column="y", anomaly_values=[1])
    assert "\n" not in str(err.value)
    src = load_table(path=path, label_column="y", anomaly_values=[1], drop_columns=["Unnamed: 0"])
    assert src.X.shape == (200, 2)  # f1, f2: the index is gone
    with pytest.raises(ConfigError, match=r"drop_columns names unknown columns \['id'\].*'Unnamed: 0', 'f1'"):
        load_table(path=path, label_column="y", anomaly_values=[1], drop_columns=["id"])
    with pytest.raises(ConfigError, match=r"drop_columns drops the label column 'y'"):
        load_table(path=path, label_column="y", anomaly_values=[1], drop_columns=["Unnamed: 0", "y"])


def test_table_with_a_second_label_column_is_refused(tmp_path):
    df = _noise_sorted_by_label()
    path = tmp_path / "dup.csv"
    df.assign(y2=df["y"]).to_csv(path, index=False, header=["f1", "f2", "y", "y"])  # header "f1,f2,y,y"
    with pytest.raises(DataError, match=r"duplicate column names \['y'\].*drop_columns=\['y\.1'\]") as err:
        load_table(path=path, label_column="y", anomaly_values=[1])
    assert "\n" not in str(err.value)
    assert load_table(path=path, label_column="y", anomaly_values=[1], drop_columns=["y.1"]).X.shape == (200, 2)
    # a column genuinely named like pandas' renamed copy, with no duplicate, is an ordinary feature
    df.rename(columns={"f2": "y.1"}).to_csv(path, index=False)
    assert load_table(path=path, label_column="y", anomaly_values=[1]).X.shape == (200, 2)


def test_parquet_with_duplicate_column_names_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    df = _noise_sorted_by_label()
    path = tmp_path / "dup.parquet"
    table = pa.table([df["f1"], df["f2"], df["y"], df["y"]], names=["f1", "f2", "y", "y"])
    pq.write_table(table, path)  # pyarrow keeps both names; pandas could not write this
    with pytest.raises(DataError, match=r"duplicate column names \['y'\].*drop_columns=\['y\.1'\]") as err:
        load_table(path=path, label_column="y", anomaly_values=[1])
    assert "\n" not in str(err.value)
    assert load_table(path=path, label_column="y", anomaly_values=[1], drop_columns=["y.1"]).X.shape == (200, 2)


@pytest.mark.parametrize(("value", "shown"), [("inf", "inf"), ("-inf", "-inf"), ("1e39", "1e+39"),
                                              ("-3.5e38", "-3.5e+38")])
def test_table_rejects_inf_and_values_beyond_float32(tmp_path, value, shown):
    df = _frame().drop(columns=["kind"])
    df["x"] = df["x"].astype(object)
    df.loc[[2, 4], "x"] = value
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"column 'x' holds {re.escape(shown)}.*at data row 3 \(1-based, header not "
                                        rf"counted; 2 such values\)") as err:
        load_table(path=path, label_column="status", anomaly_values=["attack"])
    assert "\n" not in str(err.value)
    df.loc[[2, 4], "x"] = "3.4e38"  # large but representable in float32: fine
    df.to_csv(path, index=False)
    assert np.isfinite(load_table(path=path, label_column="status", anomaly_values=["attack"]).X).all()


def test_array_sources_reject_inf_and_values_beyond_float32(tmp_path):
    """The check is shared: an ADBench-style .npz (float64) with 1e39 or inf is refused at load time."""
    X = np.random.default_rng(0).normal(size=(50, 4))
    y = (np.arange(50) < 5).astype(np.int64)
    (tmp_path / "adbench").mkdir()
    X[7, 2] = 1e39
    np.savez(tmp_path / "adbench" / "99_toy.npz", X=X, y=y)
    with pytest.raises(DataError, match=r"adbench/99_toy.npz: column 3 \(1-based\) holds 1e\+39 .*at row 8 "):
        load_adbench(name="toy", root=tmp_path)
    X[7, 2] = -np.inf
    np.savez(tmp_path / "adbench" / "99_toy.npz", X=X, y=y)
    with pytest.raises(DataError, match=r"column 3 \(1-based\) holds -inf at row 8"):
        load_adbench(name="toy", root=tmp_path)
    with pytest.raises(DataError, match=r"toy: column 2 \(1-based\) holds NaN at row 1"):
        Source(name="toy", X=np.array([[0.0, np.nan]], dtype=np.float32), labels=np.array([0]))


# ------------------------------------------------------------------------------ LeNet
@pytest.mark.parametrize("shape,variant,rep", [((1, 28, 28), "mnist", 32), ((3, 32, 32), "cifar10", 128)])
def test_lenet_shapes_and_no_bias(shape, variant, rep):
    spec = LeNetSpec(input_shape=list(shape))
    assert spec.variant == variant and spec.rep_dim == rep
    enc, dec = spec.encoder(), spec.decoder()
    x = torch.rand(5, *shape)
    z = enc(x)
    assert z.shape == (5, rep)
    out = dec(z)
    assert out.shape == (5, *shape) and float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1
    for module in (enc, dec):
        names = [n for n, _ in module.named_parameters()]
        assert names and not any("bias" in n for n in names)
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert not m.affine
    with pytest.raises(ConfigError):
        LeNetSpec(input_shape=[1, 30, 30])
    with pytest.raises(ConfigError):
        LeNetSpec(input_shape=list(shape), rep_dim=20)


@pytest.mark.parametrize("shape,channels", [((1, 28, 28), [8, 4]), ((3, 32, 32), [32, 64, 128])])
def test_lenet_width_multiplies_every_convolution(shape, channels):
    """width=1 is Deep SAD's net (the channel counts of its paper); width=w has w times each."""
    for width in (1, 3):
        spec = LeNetSpec(input_shape=list(shape), width=width)
        enc, dec = spec.encoder(), spec.decoder()
        convs = [m.out_channels for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
        deconvs = [m.out_channels for m in dec.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
        assert convs == [c * width for c in channels]
        assert deconvs == [c * width for c in reversed(channels)] + [shape[0]]
        assert dec(enc(torch.rand(2, *shape))).shape == (2, *shape)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="net.width"):
            LeNetSpec(input_shape=list(shape), width=bad)


@pytest.mark.parametrize("spec_cls,kw", [(LeNetSpec, {"input_shape": [1, 28, 28]}),
                                         (LeNetSpec, {"input_shape": [3, 32, 32]}),
                                         (MLPSpec, {"input_shape": [6], "hidden": [5, 4], "rep_dim": 3})])
def test_batchnorm_affine_gives_every_batchnorm_a_scale_and_shift_and_survives_widening(spec_cls, kw):
    """Off by default (Deep SAD's nets); on, every BatchNorm learns a per-channel scale and shift, still no bias."""
    def batchnorms(spec):
        nets = (spec.encoder(), spec.decoder())
        return [m for net in nets for m in net.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]

    plain, affine = spec_cls(**kw), spec_cls(**kw, batchnorm_affine=True)
    assert batchnorms(plain) and not any(m.affine for m in batchnorms(plain))
    for spec in (affine, affine.widened(2)):
        assert all(m.affine and m.weight is not None for m in batchnorms(spec))
        assert len(batchnorms(spec)) == len(batchnorms(plain))
        layers = [m for net in (spec.encoder(), spec.decoder()) for m in net.modules()
                  if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
        assert layers and all(m.bias is None for m in layers)


# ------------------------------------------------------------------------------ configs
DATASET_CONFIGS = sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml"))


@pytest.mark.parametrize("config", DATASET_CONFIGS)
def test_dataset_config_builds(config, tmp_path):
    """Compose each dataset config, load its source, split it and run its net on a few rows."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from semiad_cli.tasks.common import build

    if config == "cifar10":
        pytest.skip("CIFAR-10 cold load is slow; covered by the slow test")
    overrides = [f"+dataset={config}", "+data_root=null"]
    if config == "adbench":
        overrides.append("dataset.source.name=cardio")
    if config == "csv":
        path = tmp_path / "t.csv"
        _frame().drop(columns=["kind"]).to_csv(path, index=False)
        overrides += [
            f"dataset.source.path={path}",
            "dataset.source.label_column=status",
            "dataset.source.anomaly_values=[attack]",
            "dataset.split.ratio_known_anomaly=0.0",
            "dataset.split.test_size=0.5",
        ]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name=None, overrides=overrides)
    try:
        src = build(cfg.dataset.source, "dataset.source")  # as the train task: unwraps hydra's exception
    except DataError as exc:
        if "file not found" in str(exc):  # no data root on this machine (CI has one): nothing to build
            pytest.skip(str(exc))
        raise
    if config == "csv":  # named after its file: the train task fills dataset.name from the source
        assert src.name == "t" and OmegaConf.is_missing(cfg.dataset, "name")
    else:
        assert src.name == cfg.dataset.name or config == "adbench"
    split = build_split(src, seed=1, **cfg.dataset.split)
    net = instantiate(cfg.dataset.net, input_shape=list(split.sample_shape))
    enc, dec = net.encoder(), net.decoder()
    x = torch.from_numpy(split.train.X[:4])
    assert dec(enc(x)).shape == x.shape
