"""Sweeps submitted to a real SLURM scheduler through ``hydra/launcher=slurm``.

Needs a running cluster: ``sudo bash scripts/slurm-local.sh up`` starts a throwaway
single-node one (``.ci/run`` does this in CI). Without one (``sinfo`` fails) the tests
skip, so a laptop without SLURM still passes.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pandas as pd
import pytest

from tests.conftest import read_metrics, run_cli


def _cluster_answers() -> str | None:
    if shutil.which("sinfo") is None:
        return "sinfo is not installed (start a cluster with: sudo bash scripts/slurm-local.sh up)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed: {err}"
    if proc.returncode != 0:
        return f"no SLURM cluster answers (sinfo: {proc.stderr.strip()[:200]})"
    if not any(state.strip().startswith(("idle", "mix", "alloc")) for state in proc.stdout.splitlines()):
        return f"the SLURM cluster has no usable node (states: {proc.stdout.split()})"
    return None


pytestmark = [pytest.mark.slurm, pytest.mark.skipif(bool(reason := _cluster_answers()), reason=reason or "")]

# One CPU and 2 GB per job so that both array tasks fit the node at once.
SLURM = ("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
         "hydra.launcher.timeout_min=10", "hydra.launcher.partition=null")


def test_two_job_sweep_on_slurm_then_table(tmp_path):
    sweep = tmp_path / "sweep"
    t0 = time.perf_counter()
    proc = run_cli("train", "--multirun", *SLURM, "seed=1,2", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}",
                   timeout=600)
    wall = time.perf_counter() - t0
    # both jobs really went through the scheduler: submitit wrote SLURM job folders and logs
    submitted = list((sweep / ".submitit").glob("*/*_submission.sh")) or list((sweep / ".submitit").glob("*"))
    assert submitted, proc.stdout + proc.stderr
    for num, seed in ((0, 1), (1, 2)):
        m = read_metrics(sweep / str(num))
        assert m["status"] == "completed" and m["seed"] == seed and 0.5 < m["auroc"] <= 1.0
        assert (sweep / str(num) / "checkpoints" / "last.pt").is_file()
    rows = pd.read_csv(sweep / "sweep.csv")
    assert rows["job"].tolist() == [0, 1] and rows["status"].tolist() == ["completed", "completed"]
    table = run_cli("table", str(sweep), "--no-save", "--digits", "4")
    aurocs = [read_metrics(sweep / str(num))["auroc"] for num in (0, 1)]
    row = next(line for line in table.stdout.splitlines() if line.startswith("| ede"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith(f"{sum(aurocs) / 2:.4f} ± ") and cells[-1] == "2"
    print(f"SLURM 2-job sweep wall time: {wall:.1f} s")


def test_slurm_job_failure_is_recorded_and_sweep_finishes(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli("train", "--multirun", *SLURM, "dataset.split.normal_class=0,99", "trainer.max_epochs=1",
            f"hydra.sweep.dir={sweep}", timeout=600)
    rows = pd.read_csv(sweep / "sweep.csv").set_index("job")
    assert rows.loc[0, "status"] == "completed"
    assert rows.loc[1, "status"] == "failed" and "normal_class=99" in rows.loc[1, "error"]
