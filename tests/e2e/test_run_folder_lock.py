"""One run per folder: a busy run folder and a completed one are refused, through the real CLI.

The busy folder is held by this test process, so the run it refuses must be another process (a
subprocess); the completed folder's runs and refusals run in-process (``cli_inproc``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pandas as pd

from semiad_cli import runlock
from tests.e2e.test_bad_inputs import QUICK, one_line_error, semiad


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_on_a_busy_folder_fails_at_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    runlock.claim(run_dir)  # this test process holds the folder, as a run in progress does
    try:
        t0 = time.monotonic()
        line = one_line_error(semiad("train", *QUICK, f"hydra.run.dir={run_dir}"))
        assert time.monotonic() - t0 < 60  # refused, not queued behind the running one
        assert f"{run_dir.resolve()} is in use by another semiad run" in line
        assert f"pid {os.getpid()} on {socket.gethostname()}" in line
        assert not (run_dir / ".hydra").exists() and not (run_dir / "metrics.json").exists()
    finally:
        runlock.release(run_dir)


def test_a_completed_run_folder_is_reused_only_with_overwrite(tmp_path: Path, cli_inproc) -> None:
    run_dir = tmp_path / "sweep" / "0"
    first = cli_inproc("train", *QUICK, f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, first.stderr[-2000:]
    assert not (run_dir / runlock.OWNER_FILE).exists()  # the claim ends with the run
    before = snapshot(run_dir)

    line = one_line_error(cli_inproc("train", *QUICK, "seed=2", f"hydra.run.dir={run_dir}"))  # refused in-process
    assert f"{run_dir.resolve()} holds a completed run" in line and "overwrite=true" in line
    assert snapshot(run_dir) == before  # nothing written: not even Hydra's .hydra/ record

    # a sweep whose job 0 would run in that folder is refused before Hydra writes into it
    line = one_line_error(cli_inproc("train", "--multirun", *QUICK, "seed=3", f"hydra.sweep.dir={run_dir.parent}"))
    assert f"hydra.sweep.dir={run_dir.parent} holds a sweep with completed jobs (0)" in line
    assert "+resume=true" in line
    assert snapshot(run_dir) == before and not (run_dir.parent / "sweep.csv").exists()

    again = cli_inproc("train", *QUICK, "seed=2", "overwrite=true", f"hydra.run.dir={run_dir}")
    assert again.returncode == 0, again.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["seed"] == 2


def test_a_sweep_started_again_without_resume_is_one_line_and_writes_nothing(tmp_path: Path, cli_inproc) -> None:
    """The same sweep command a second time (without +resume=true): refused up front, nothing written,
    not even Hydra's .hydra/ record or a log line in the completed runs' folders."""
    sweep_dir = tmp_path / "sweep"
    args = ("train", "--multirun", *QUICK, "seed=1,2", f"hydra.sweep.dir={sweep_dir}")
    assert cli_inproc(*args).returncode == 0
    before = snapshot(sweep_dir)
    line = one_line_error(cli_inproc(*args))
    assert "holds a sweep with completed jobs (0, 1): add +resume=true" in line
    assert snapshot(sweep_dir) == before
    assert cli_inproc(*args, "+resume=true").returncode == 0  # what the line says to do
    assert pd.read_csv(sweep_dir / "sweep.csv")["reused"].tolist() == [True, True]


def test_a_sweep_whose_first_job_failed_is_refused_up_front_too(tmp_path: Path, cli_inproc) -> None:
    """Job 0 failed, job 1 completed: the sweep again without +resume=true is one line naming job 1, before
    Hydra writes anything (it would rewrite job 1's .hydra/ record); with +resume=true job 0 runs again and
    job 1 is kept."""
    sweep_dir = tmp_path / "sweep"
    args = ("train", "--multirun", *QUICK, "dataset.split.normal_class=99,0", f"hydra.sweep.dir={sweep_dir}")
    assert cli_inproc(*args).returncode == 0
    assert pd.read_csv(sweep_dir / "sweep.csv")["status"].tolist() == ["failed", "completed"]
    before = snapshot(sweep_dir)
    line = one_line_error(cli_inproc(*args))
    assert "holds a sweep with completed jobs (1): add +resume=true" in line
    assert snapshot(sweep_dir) == before
    assert cli_inproc(*args, "+resume=true").returncode == 0
    rows = pd.read_csv(sweep_dir / "sweep.csv")
    assert rows["status"].tolist() == ["failed", "completed"] and rows["reused"].tolist() == [False, True]


def test_a_refused_job_of_a_sweep_keeps_its_row(tmp_path: Path, cli_inproc) -> None:
    """With job folders other than the numbered ones (no up-front check): job 0 failed, job 1 completed; the
    sweep again without +resume=true runs job 0, refuses job 1 over its completed run, and keeps job 1's row
    (it was rewritten as failed) with a line naming +resume=true."""
    sweep_dir = tmp_path / "sweep"
    args = ("train", "--multirun", *QUICK, "dataset.split.normal_class=99,0", f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweep.subdir=job_${hydra.job.num}")
    assert cli_inproc(*args).returncode == 0
    rows = pd.read_csv(sweep_dir / "sweep.csv")
    assert rows["status"].tolist() == ["failed", "completed"]
    assert (sweep_dir / "job_1" / "metrics.json").is_file()
    again = cli_inproc(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "job 1: " in again.out + again.err and "add +resume=true to continue the sweep" in again.out + again.err
    assert pd.read_csv(sweep_dir / "sweep.csv")["status"].tolist() == ["failed", "completed"]


def test_an_unusable_run_folder_is_one_line_before_hydra_starts(tmp_path: Path, capsys) -> None:
    from semiad_cli.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "trainer=quick", f"hydra.run.dir={blocker / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("semiad: error: cannot create the run folder "), err
    assert f"{blocker} is a file" in err[0] and "hydra.run.dir" in err[0]
