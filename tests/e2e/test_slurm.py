"""Sweeps submitted to a real SLURM scheduler through ``hydra/launcher=slurm``.

Needs a running cluster: ``sudo bash scripts/slurm-local.sh up`` starts a throwaway
single-node one (``.ci/run`` does this in CI). Without one (``sinfo`` fails) the tests
skip, so a laptop without SLURM still passes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, read_metrics, run_cli


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


def start_sweep(sweep: Path, *args: str, timeout_min: int = 10) -> subprocess.Popen:
    """The submitting process, in the background; its output goes to ``<sweep>.log`` (a pipe could fill up)."""
    launcher = [a for a in SLURM if not a.startswith("hydra.launcher.timeout_min=")]
    with open(f"{sweep}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "semiad_cli", "train", "--multirun", *launcher,
                                 f"hydra.launcher.timeout_min={timeout_min}", *args, f"hydra.sweep.dir={sweep}"],
                                cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log,
                                stderr=subprocess.STDOUT)


def submitted_job(sweep: Path, proc: subprocess.Popen, timeout: float = 120) -> str:
    """The SLURM job id of a one-job sweep: submitit names its folder after it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ids = [p.name for p in (sweep / ".submitit").glob("*") if p.name.isdigit()]
        if ids:
            return ids[0]
        time.sleep(0.5)
    raise AssertionError(f"no SLURM job submitted: {Path(f'{sweep}.log').read_text()[-3000:]}")


def wait_for(proc: subprocess.Popen, sweep: Path, job: str, timeout: float = 600) -> str:
    """The submitting process's output once the sweep ends. A requeued job waits ``cred_expire`` seconds
    before it starts again (10 s on the cluster of scripts/slurm-local.sh, 120 s by default), then waits for
    the next scheduling pass (every 2 s there, 30-60 s by default); releasing it
    earlier with ``scontrol update StartTime=now`` gets it killed ("Job credential revoked")."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        subprocess.run(["scancel", job])
        raise AssertionError(f"the sweep did not finish in time: {Path(f'{sweep}.log').read_text()[-3000:]}") from None
    return Path(f"{sweep}.log").read_text()


def test_scontrol_requeue_mid_run_continues_from_the_checkpoint(tmp_path):
    """A requeue (as at preemption): SIGTERM, a checkpoint at that epoch's end, the job runs again and resumes."""
    sweep, epochs = tmp_path / "sweep", 1500
    train = (f"trainer.max_epochs={epochs}", "trainer.checkpoint_every=100", "trainer.num_threads=1", "seed=1")
    proc = start_sweep(sweep, *train)
    job = submitted_job(sweep, proc)
    ckpt = sweep / "0" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.exists(), "the job wrote no checkpoint"
    subprocess.run(["scontrol", "requeue", job], check=True)
    out = wait_for(proc, sweep, job)
    assert proc.returncode == 0, out[-3000:]

    log = (sweep / "0" / "train.log").read_text()
    stopped = int(re.search(r"SIGTERM: checkpoint of epoch (\d+) written", log).group(1))
    assert stopped >= 100 and "SLURM requeued this job (restart 1)" in log
    assert f"resumed from {ckpt} at epoch {stopped}" in log
    m = read_metrics(sweep / "0")
    assert m["status"] == "completed" and m["train"]["epochs"] == epochs
    assert pd.read_csv(sweep / "sweep.csv")["status"].tolist() == ["completed"]
    # the resumed job ends where an uninterrupted run ends
    reference = tmp_path / "reference"
    run_cli("train", *train, f"hydra.run.dir={reference}", timeout=600)
    assert (sweep / "0" / "scores.csv").read_text() == (reference / "scores.csv").read_text()


def test_a_job_past_its_time_limit_is_requeued_and_continues(tmp_path):
    """1-minute jobs that need longer: SIGUSR2 before the limit, checkpoint, submitit requeues, the job resumes.

    slurmctld checks time limits every 30 s and sends the signal once ``now + signal_delay_s + 30 >= end``:
    with 10 s, 20 to 50 s after the start. (With 30 s it can come at once, before submitit has set its
    handler, and the default action of SIGUSR2 kills the job.)
    """
    # about 105 s of training on an idle core (4.2 ms an epoch): never done in the first slot, which is
    # signalled 20-50 s after its start, even on a core twice as fast; each later slot trains about 44 s
    sweep, epochs = tmp_path / "sweep", 25000
    proc = start_sweep(sweep, "hydra.launcher.signal_delay_s=10", "hydra.launcher.max_num_timeout=20",
                       f"trainer.max_epochs={epochs}", "trainer.checkpoint_every=1000", "trainer.num_threads=1",
                       "seed=1", timeout_min=1)
    job = submitted_job(sweep, proc)
    out = wait_for(proc, sweep, job, timeout=1500)
    assert proc.returncode == 0, out[-3000:]

    log = (sweep / "0" / "train.log").read_text()
    stops = [int(n) for n in re.findall(r"SIGUSR2: checkpoint of epoch (\d+) written", log)]
    resumes = [int(n) for n in re.findall(r"resumed from \S+ at epoch (\d+)", log)]
    # each requeued run went on from the epoch where a run stopped (or from a periodic checkpoint when the
    # signal came before the epoch loop), never from scratch
    assert stops and stops[0] in resumes, (stops, resumes)
    assert all(r in stops or r % 1000 == 0 for r in resumes), (stops, resumes)
    assert "Requeued job" in "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.out"))
    m = read_metrics(sweep / "0")
    assert m["status"] == "completed" and m["train"]["epochs"] == epochs
