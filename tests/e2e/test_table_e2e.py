"""A tiny real multirun (digits, 2 settings × 2 seeds, 1 epoch), then ``semiad table`` and ``semiad plot``.

The sweep runs as a user runs it (a subprocess); table, plot and the refusal of a foreign folder run
in-process (``cli_inproc``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def semiad(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "semiad_cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"semiad {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    # model.shared_encoder stands in for the model axis until a second model config exists
    folder = tmp_path_factory.mktemp("sweep") / "multirun"
    semiad("train", "--multirun", "dataset=digits", "trainer=quick", "trainer.max_epochs=1", "trainer.num_threads=1",
           "seed=1,2", "model.shared_encoder=false,true", f"hydra.sweep.dir={folder}")
    return folder


def test_table_of_a_real_sweep_has_two_rows(sweep: Path, cli_inproc) -> None:
    proc = cli_inproc("table", str(sweep), "--metric", "auroc,aupr", check=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]
    assert lines[0].split("|")[1].strip() == "shared_encoder"
    assert len(lines) == 1 + 2  # header + one row per setting
    table = pd.read_csv(sweep / "table.csv")
    assert table["n"].tolist() == [2, 2] and table["seeds"].tolist() == ["1 2", "1 2"]
    jobs = [(yaml.safe_load((sweep / str(j) / "config.yaml").read_text())["model"]["shared_encoder"],
             json.loads((sweep / str(j) / "metrics.json").read_text())["auroc"]) for j in range(4)]
    for setting, row in zip((False, True), table.itertuples(), strict=True):
        aurocs = [auroc for shared, auroc in jobs if shared is setting]
        assert len(aurocs) == 2
        assert row.auroc_mean == pytest.approx(sum(aurocs) / 2, abs=1e-12)
        assert row.auroc_std == pytest.approx(abs(aurocs[0] - aurocs[1]) / 2**0.5, abs=1e-12)  # ddof=1
    assert (sweep / "table.md").is_file() and (sweep / "table.tex").is_file()
    assert pd.read_csv(sweep / "failed.csv").empty


def test_plot_of_a_run_and_of_the_sweep(sweep: Path, cli_inproc) -> None:
    proc = cli_inproc("plot", str(sweep / "0"), check=True)
    assert [Path(p).name for p in proc.stdout.split()] == ["roc_pr.png", "scores_hist.png"]
    proc = cli_inproc("plot", str(sweep), "--metric", "auroc", check=True)
    assert [Path(p).name for p in proc.stdout.split()] == ["auroc_vs_shared_encoder.png"]
    assert (sweep / "plots" / "auroc_vs_shared_encoder.png").stat().st_size > 5000


def test_table_on_a_foreign_folder_is_one_line(tmp_path: Path, cli_inproc) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "metrics.json").write_text('{"accuracy": 1}')
    proc = cli_inproc("table", str(tmp_path))  # nothing to run: in-process
    assert proc.code == 2
    assert proc.err.startswith("semiad: error: no semiad training runs under") and proc.err.count("\n") == 1
