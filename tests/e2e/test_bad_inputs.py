"""Bad input through the CLI: each gives one clear line on stderr, exit code 2 and no traceback.

Refusals that stop before anything is trained run in-process (``cli_inproc``: ``cli.main`` with the
output captured), and so does the CSV run that loads; the finished run that the checkpoint tests share is
a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semiad_cli.data.source import Source
from semiad_cli.data.split import build_split
from semiad_cli.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["trainer=quick", "trainer.max_epochs=1", "trainer.num_threads=1", "trainer.progress=false"]


def cache_env(tmp: Path) -> dict[str, str]:
    return {"SEMIAD_CACHE_DIR": str(tmp / "cache")}


def semiad(*args: str, tmp: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEMIAD_CONFIG_DIR": str(ROOT / "configs")}
    if tmp is not None:
        env["SEMIAD_CACHE_DIR"] = str(tmp / "cache")
    return subprocess.run([sys.executable, "-m", "semiad_cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def one_line_error(proc) -> str:
    """The error line of a subprocess or an in-process call (``cli_inproc``); asserts exit code 2, no
    traceback and exactly one 'semiad: error' line."""
    code, out, err = (proc.returncode, proc.stdout, proc.stderr) if hasattr(proc, "returncode") else proc
    assert code == 2, (code, err[-2000:])
    assert "Traceback" not in err + out
    errors = [ln for ln in err.splitlines() if ln.startswith("semiad: error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    proc = semiad("train", *QUICK, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.parametrize(("override", "expected"), [
    ("trainer.foo=1", "Could not override 'trainer.foo'"),
    ("trainer.max_epochs=abc", "trainer.max_epochs='abc' has the wrong type: expected an integer"),
    ("trainer.optimizer.lr=fast", "trainer.optimizer.lr='fast' has the wrong type: expected a number"),
    ("trainer.amp=3", "trainer.amp=3 has the wrong type: expected true or false"),
    ("dataset=nosuchset", "unknown dataset 'nosuchset'"),
])
def test_bad_override(override: str, expected: str, tmp_path: Path, cli_inproc) -> None:
    line = one_line_error(cli_inproc("train", *QUICK, override, f"hydra.run.dir={tmp_path}"))
    assert expected in line
    assert not (tmp_path / "metrics.json").exists()  # rejected before any run started


def test_corrupt_checkpoint_on_evaluate(finished_run: Path, tmp_path: Path, cli_inproc) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoints" / "last.pt").write_bytes(b"\x80\x02garbage")
    line = one_line_error(cli_inproc("evaluate", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'eval'}"))
    assert "is corrupt or not a semiad checkpoint" in line


def test_checkpoint_of_other_shape_on_evaluate(finished_run: Path, tmp_path: Path, cli_inproc) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    config = (run / "config.yaml").read_text()
    assert "rep_dim: 8" in config
    (run / "config.yaml").write_text(config.replace("rep_dim: 8", "rep_dim: 5"))  # another model shape
    line = one_line_error(cli_inproc("evaluate", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'eval'}"))
    assert "checkpoint does not fit this EDE" in line


def test_resume_from_a_folder_that_is_no_run(tmp_path: Path, cli_inproc) -> None:
    line = one_line_error(cli_inproc("train", f"resume_from={tmp_path}"))
    assert "not a semiad run folder" in line


def test_data_file_with_wrong_checksum(tmp_path: Path, cli_inproc) -> None:
    root = tmp_path / "data"
    (root / "odds").mkdir(parents=True)
    (root / "odds" / "cardio.mat").write_bytes(b"not the ODDS file" * 100)
    line = one_line_error(cli_inproc("train", *QUICK, "dataset=cardio", f"data_root={root}",
                                     f"hydra.run.dir={tmp_path / 'run'}", env=cache_env(tmp_path)))
    assert "checksum mismatch" in line
    assert '"status": "failed"' in (tmp_path / "run" / "metrics.json").read_text()


def _csv(path: Path, labels: list[str], a: list) -> Path:
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": a, "b": rng.normal(size=len(labels)), "label": labels}).to_csv(path, index=False)
    return path


def _train_csv(cli_inproc, path: Path, tmp_path: Path):
    """A CSV run in-process: each caller's CSV is refused while loading, before any training."""
    return cli_inproc("train", *QUICK, "dataset=csv", f"dataset.source.path={path}",
                      "dataset.source.label_column=label", "dataset.source.anomaly_values=[attack]",
                      f"hydra.run.dir={tmp_path / 'run'}", env=cache_env(tmp_path))


def test_csv_with_nan_in_feature_column(tmp_path: Path, cli_inproc) -> None:
    a = list(np.linspace(0, 1, 40))
    a[3] = np.nan
    path = _csv(tmp_path / "nan.csv", ["normal"] * 30 + ["attack"] * 10, a)
    assert "missing values (NaN) in feature columns a" in one_line_error(_train_csv(cli_inproc, path, tmp_path))


def test_zero_anomalies_in_test(tmp_path: Path, cli_inproc) -> None:
    path = _csv(tmp_path / "one.csv", ["attack"] + ["normal"] * 39, list(np.linspace(0, 1, 40)))
    line = one_line_error(_train_csv(cli_inproc, path, tmp_path))
    assert "the test part needs both normal and anomalous rows (it has 0 anomalies" in line


def test_empty_normal_class_after_split() -> None:
    """Normal rows only in the official test part: nothing normal to train on."""
    labels = np.array([0] * 5 + [1] * 20)
    is_test = np.zeros(25, bool)
    is_test[:5] = True
    is_test[20:] = True
    source = Source(name="toy", X=np.random.default_rng(0).normal(size=(25, 2)).astype(np.float32), labels=labels,
                    is_test=is_test)
    with pytest.raises(DataError, match="the normal class \\[0\\] has no training rows"):
        build_split(source, seed=0, normal_class=0, n_known_anomaly_classes=1, ratio_known_anomaly=0.05,
                    scaling="none")


# ---------------------------------------------------------------------------- tables that would leak or overflow
def _noise_sorted_by_label(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = ["normal"] * (n - n // 4) + ["attack"] * (n // 4)  # sorted: the row number gives the label away
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": labels})


def test_csv_with_written_index_is_refused_then_loads_with_drop_columns(tmp_path: Path, cli_inproc) -> None:
    path = tmp_path / "indexed.csv"
    _noise_sorted_by_label().to_csv(path)  # index written as an unnamed first column
    line = one_line_error(_train_csv(cli_inproc, path, tmp_path))
    assert "unnamed columns ['Unnamed: 0']" in line and "dataset.source.drop_columns=['Unnamed: 0']" in line
    assert '"status": "failed"' in (tmp_path / "run" / "metrics.json").read_text()
    ok = cli_inproc("train", *QUICK, "model=iforest", "dataset=csv", f"dataset.source.path={path}",
                    "dataset.source.label_column=label", "dataset.source.anomaly_values=[attack]",
                    "dataset.source.drop_columns=['Unnamed: 0']", f"hydra.run.dir={tmp_path / 'ok'}",
                    env=cache_env(tmp_path))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "loaded" in ok.stdout and '"status": "completed"' in (tmp_path / "ok" / "metrics.json").read_text()


def test_csv_with_a_second_label_column_is_refused(tmp_path: Path, cli_inproc) -> None:
    df = _noise_sorted_by_label()
    path = tmp_path / "dup.csv"
    df.assign(copy=df["label"]).to_csv(path, index=False, header=["a", "b", "label", "label"])
    line = one_line_error(_train_csv(cli_inproc, path, tmp_path))
    assert "duplicate column names ['label']" in line and "dataset.source.drop_columns=['label.1']" in line


@pytest.mark.parametrize(("value", "shown"), [("inf", "holds inf"), ("1e39", "holds 1e+39 (beyond float32 range)")])
def test_csv_with_inf_or_beyond_float32_is_refused_before_training(tmp_path: Path, value: str, shown: str,
                                                                     cli_inproc) -> None:
    a = [str(v) for v in np.linspace(0, 1, 40)]
    a[5] = value
    path = _csv(tmp_path / "big.csv", ["normal"] * 30 + ["attack"] * 10, a)
    proc = cli_inproc("train", *QUICK, "model=iforest", "dataset=csv", f"dataset.source.path={path}",
                      "dataset.source.label_column=label", "dataset.source.anomaly_values=[attack]",
                      f"hydra.run.dir={tmp_path / 'run'}", env=cache_env(tmp_path))
    line = one_line_error(proc)
    assert f"big.csv: column 'a' {shown} at data row 6 (1-based, header not counted)" in line
    assert '"status": "failed"' in (tmp_path / "run" / "metrics.json").read_text()
