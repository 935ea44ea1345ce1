"""Every failure leaves a status: ``metrics.json`` says failed, one line on stderr, the traceback in train.log.

Failures are planted through the real CLI: a test-only model whose ``fit`` raises ``RuntimeError``
(``tests/helpers/failing.py``), a run folder whose path is a file, and, where this process may mount
file systems, a full and a read-only file system under the run folder. All run in-process through
``cli.main`` (``cli_inproc``), the console script's entry point.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import read_metrics
from tests.helpers.failing import MESSAGE

FAILING = ("model=iforest", "model._target_=tests.helpers.failing.FailingDetector")


def stderr_lines(proc) -> list[str]:
    """The non-blank stderr lines of a subprocess or of an in-process call (``cli_inproc``)."""
    err = proc.stderr if hasattr(proc, "stderr") else proc.err
    return [line for line in err.splitlines() if line.strip()]


def test_unexpected_exception_writes_failed_status_one_line_and_traceback_in_log(tmp_path: Path, cli_inproc) -> None:
    proc = cli_inproc("train", *FAILING, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 1, proc.stderr
    assert stderr_lines(proc) == [f"semiad: error: RuntimeError: {MESSAGE} (traceback in {tmp_path}/train.log)"]
    metrics = read_metrics(tmp_path)
    assert metrics == {"status": "failed", "error_type": "RuntimeError", "error": MESSAGE}
    log = (tmp_path / "train.log").read_text()
    assert "Traceback (most recent call last)" in log and "in fit" in log and MESSAGE in log


def test_config_error_that_is_not_a_semiad_error_exits_2_with_failed_status(tmp_path: Path, cli_inproc) -> None:
    proc = cli_inproc("train", "model=iforest", "model._target_=semiad_cli.models.classical.NoSuchModel",
                      f"hydra.run.dir={tmp_path}")
    assert proc.code == 2, proc.err
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("semiad: error: InstantiationException: ")
    assert "NoSuchModel" in lines[0] and lines[0].endswith(f"(traceback in {tmp_path}/train.log)")
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "failed" and metrics["error_type"] == "InstantiationException"


def test_failed_job_in_a_sweep_is_recorded_and_table_calls_it_failed(tmp_path: Path, cli_inproc) -> None:
    sweep = tmp_path / "sweep"
    cli_inproc("train", "--multirun", "model=iforest", "trainer.num_threads=1",
               "model._target_=semiad_cli.models.classical.IsolationForest,tests.helpers.failing.FailingDetector",
               f"hydra.sweep.dir={sweep}", check=True)  # the sweep goes on and exits 0
    assert read_metrics(sweep / "0")["status"] == "completed"
    assert read_metrics(sweep / "1") == {"status": "failed", "error_type": "RuntimeError", "error": MESSAGE}
    rows = pd.read_csv(sweep / "sweep.csv").set_index("job")
    assert rows.loc[1, "status"] == "failed" and rows.loc[1, "error"] == f"RuntimeError: {MESSAGE}"
    table = cli_inproc("table", str(sweep), "--no-save", check=True)
    problem = next(line for line in table.stdout.splitlines() if str(sweep / "1") in line)
    assert problem.split()[0] == "failed" and MESSAGE in problem


def test_run_folder_path_that_is_a_file_gives_one_line(tmp_path: Path, cli_inproc) -> None:
    """Hydra cannot create the run folder: no metrics.json can be written, and the line says so (works as root)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = cli_inproc("train", "trainer=quick", f"hydra.run.dir={blocker}/run")
    assert proc.code == 2, proc.err
    assert stderr_lines(proc) == [
        f"semiad: error: cannot create the run folder {blocker}/run: {blocker} is a file, not a folder; choose "
        "another with hydra.run.dir=<dir> or run_root=<dir> (no metrics.json can be written there)"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into folders whatever their mode")
def test_read_only_run_folder_by_permissions_gives_one_line(tmp_path: Path, cli_inproc) -> None:
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o555)
    try:
        proc = cli_inproc("train", "trainer=quick", f"hydra.run.dir={run}")
    finally:
        run.chmod(0o755)
    assert proc.code == 2 and stderr_lines(proc) == [
        f"semiad: error: cannot write the run folder {run}: {run} is read-only for this user; choose another "
        "with hydra.run.dir=<dir> or run_root=<dir> (no metrics.json can be written there)"]


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A small tmpfs mounted on ``folder`` (skips the test where this process may not mount)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_full_disk_says_disk_full_and_names_the_file(tmp_path: Path, cli_inproc) -> None:
    """The checkpoint folder is a 4 KiB tmpfs, filled up: torch.save fails; metrics.json (elsewhere) says why."""
    run = tmp_path / "run"
    with tmpfs(run / "checkpoints", "size=4k") as ckpt:
        with contextlib.suppress(OSError):
            (ckpt / "filler").write_bytes(b"x" * 8192)
        proc = cli_inproc("train", "trainer=quick", "trainer.num_threads=1", f"hydra.run.dir={run}")
    assert proc.returncode == 1, proc.stderr
    line = f"disk full: no space left on the device holding {ckpt}/last.pt"
    assert len(stderr_lines(proc)) == 1 and stderr_lines(proc)[0].startswith(f"semiad: error: OSError: {line}")
    metrics = read_metrics(run)
    assert metrics["status"] == "failed" and metrics["error_type"] == "OSError" and metrics["error"].startswith(line)


def test_read_only_file_system_says_so_and_names_the_file(tmp_path: Path, cli_inproc) -> None:
    run = tmp_path / "run"
    with tmpfs(run / "checkpoints", "ro,size=4k") as ckpt:
        proc = cli_inproc("train", "trainer=quick", "trainer.num_threads=1", f"hydra.run.dir={run}")
    assert proc.returncode == 1, proc.stderr
    line = f"read-only file system: cannot write {ckpt}/last.pt"
    assert len(stderr_lines(proc)) == 1 and stderr_lines(proc)[0].startswith(f"semiad: error: OSError: {line}")
    assert read_metrics(run)["error"].startswith(line)


def test_read_only_run_folder_mount_gives_one_line(tmp_path: Path, cli_inproc) -> None:
    run = tmp_path / "run"
    with tmpfs(run, "ro,size=4k"):
        proc = cli_inproc("train", "trainer=quick", f"hydra.run.dir={run}")
    assert proc.code == 2 and stderr_lines(proc) == [
        f"semiad: error: cannot write the run folder {run}: {run} is read-only for this user; choose another "
        "with hydra.run.dir=<dir> or run_root=<dir> (no metrics.json can be written there)"]
    assert not json.dumps(proc.err + proc.out).count("Traceback")
