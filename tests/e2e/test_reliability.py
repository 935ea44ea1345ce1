"""End to end: resume after SIGKILL, Ctrl-C, SIGTERM, NaN loss and determinism, through the real CLI.

What is killed, interrupted or compared across processes runs in a subprocess; the resumes that follow
and the NaN-loss run go through ``cli.main`` in-process (``cli_inproc``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semiad_cli.training.checkpoint import load_checkpoint
from tests.conftest import KILLER

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
# 4 epochs on digits with a checkpoint every epoch; a validation part and patience exercise the
# best-weights state that a resume must carry too.
RUN = ["trainer=quick", "trainer.max_epochs=4", "trainer.checkpoint_every=1", "trainer.num_threads=1",
       "trainer.val_fraction=0.2", "trainer.patience=10", "trainer.progress=false", "seed=7"]
TIMING = ("wall_time", "mean_epoch_seconds")


# Runs the CLI with the loop patched to send itself SIGTERM after the first batch of epoch $TERM_AT_EPOCH;
# with $SLOW_S the batches after the signal take that long each (an epoch that outlasts the grace time).
TERMINATOR = """
import importlib.util, os, signal, sys, time
from semiad_cli.training import loop
if "GRACE_S" in os.environ and importlib.util.find_spec("semiad_cli.signals"):
    from semiad_cli import signals
    signals.GRACE_S = float(os.environ["GRACE_S"])
original, calls = loop.Trainer._batches, [0]
def batches(self, n, gen, device):
    calls[0] += 1
    chunks = original(self, n, gen, device)
    if calls[0] != int(os.environ["TERM_AT_EPOCH"]):
        return chunks
    def terminated():
        yield chunks[0]
        os.kill(os.getpid(), signal.SIGTERM)
        for chunk in chunks[1:]:
            time.sleep(float(os.environ.get("SLOW_S", 0)))
            yield chunk
    return terminated()
loop.Trainer._batches = batches
from semiad_cli.cli import main
sys.exit(main(sys.argv[1:]))
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SEMIAD_CONFIG_DIR": str(ROOT / "configs")}


def semiad(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, "-m", "semiad_cli", *args], capture_output=True, text=True, env=env(), timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def comparable(run_dir: Path) -> dict:
    """metrics.json without wall-clock timings."""
    def strip(d):
        return {k: strip(v) if isinstance(v, dict) else v for k, v in d.items() if k not in TIMING}
    return strip(json.loads((run_dir / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    semiad("train", *RUN, f"hydra.run.dir={out}")
    return out


def test_same_seed_gives_identical_metrics(reference_run: Path, tmp_path: Path) -> None:
    semiad("train", *RUN, f"hydra.run.dir={tmp_path}")
    assert comparable(tmp_path) == comparable(reference_run)
    assert (tmp_path / "scores.csv").read_text() == (reference_run / "scores.csv").read_text()


def test_sigkill_mid_epoch_leaves_checkpoint_and_resume_matches(reference_run: Path, tmp_path: Path,
                                                                cli_inproc) -> None:
    killed = subprocess.run([PY, "-c", KILLER, "train", *RUN, f"hydra.run.dir={tmp_path}"], capture_output=True,
                            text=True, env={**env(), "KILL_AT_EPOCH": "3"}, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ckpt["trainer"]["epoch"] == 2 and not ckpt["trainer"].get("finished")
    assert not (tmp_path / "metrics.json").exists()
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))

    cli_inproc("train", f"resume_from={tmp_path}", check=True)  # no overrides repeated: from the run folder
    assert comparable(tmp_path) == comparable(reference_run)
    assert (tmp_path / "scores.csv").read_text() == (reference_run / "scores.csv").read_text()
    # the finished run cannot be resumed again
    again = cli_inproc("train", f"resume_from={tmp_path}")  # refused before Hydra starts: in-process
    assert again.code == 2 and "already completed" in again.err


# The CLI with Ctrl-C as in a terminal: SIGINT handled by Python's default handler and not blocked. A
# child inherits an ignored or blocked SIGINT from the test process (a shell's background job `cmd &`
# ignores it); in two clean-clone runs started in the background the run never saw the SIGINT.
INTERRUPTIBLE = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
from semiad_cli.cli import main
sys.exit(main(sys.argv[1:]))
"""


def signal_after_first_checkpoint(cmd: list[str], run_dir: Path, sig: int) -> tuple[int, str]:
    """Start ``cmd`` (a run into ``run_dir`` that does not end on its own: patience=null), send ``sig`` once
    its first checkpoint exists; its exit code and stderr. A failed test leaves no run training behind."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        ckpt = run_dir / "checkpoints" / "last.pt"
        deadline = time.monotonic() + 120
        while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the signal could be sent"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def test_ctrl_c_marks_run_interrupted_and_keeps_checkpoint(tmp_path: Path) -> None:
    # patience=null: with RUN's early stopping the run could end on its own before the signal came.
    code, err = signal_after_first_checkpoint(
        [PY, "-c", INTERRUPTIBLE, "train", *RUN, "trainer.max_epochs=100000", "trainer.patience=null",
         f"hydra.run.dir={tmp_path}"], tmp_path, signal.SIGINT)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    assert code == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    status = json.loads((tmp_path / "metrics.json").read_text())
    assert status["status"] == "interrupted"
    assert load_checkpoint(ckpt)["trainer"]["epoch"] >= 1


def test_nan_loss_fails_with_one_line_and_failed_status(tmp_path: Path, cli_inproc) -> None:
    proc = cli_inproc("train", "trainer=quick", "trainer.optimizer.lr=1e30", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("semiad: error: loss became nan at epoch 1 (non-finite term:")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "epoch 1" in metrics["error"]
    assert "auroc" not in metrics


def terminate_at(epoch: int, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-c", TERMINATOR, "train", *args], capture_output=True, text=True, timeout=300,
                          env={**env(), "TERM_AT_EPOCH": str(epoch), **extra_env})


def test_sigterm_is_handled_like_ctrl_c_and_the_run_resumes(tmp_path: Path, cli_inproc) -> None:
    """A real SIGTERM from outside, as SLURM sends it: exit 143, one line, status interrupted, then resume."""
    epochs = 300
    code, err = signal_after_first_checkpoint(
        [PY, "-m", "semiad_cli", "train", *RUN, f"trainer.max_epochs={epochs}", "trainer.patience=null",
         f"hydra.run.dir={tmp_path}"], tmp_path, signal.SIGTERM)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    assert code == 143, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("semiad: terminated by SIGTERM; checkpoint of epoch ")
    assert lines[0].endswith(f" written in {tmp_path}; continue with: semiad train resume_from={tmp_path}")
    status = json.loads((tmp_path / "metrics.json").read_text())
    assert status == {"status": "interrupted", "error": "terminated by SIGTERM"}
    stopped_at = load_checkpoint(ckpt)["trainer"]["epoch"]
    assert 1 <= stopped_at < epochs and f"checkpoint of epoch {stopped_at} " in lines[0]

    cli_inproc("train", f"resume_from={tmp_path}", check=True)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["train"]["epochs"] == epochs
    assert f"resumed from {ckpt} at epoch {stopped_at}" in (tmp_path / "train.log").read_text()


def test_sigterm_mid_epoch_checkpoints_at_the_epoch_end_and_resume_matches(reference_run: Path, tmp_path: Path,
                                                                          cli_inproc) -> None:
    """checkpoint_every=1000 writes none in 4 epochs; the SIGTERM in epoch 3 writes the end of epoch 3."""
    proc = terminate_at(3, *RUN, "trainer.checkpoint_every=1000", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"semiad: terminated by SIGTERM; checkpoint of epoch 3 written in {tmp_path}; "
        f"continue with: semiad train resume_from={tmp_path}"]
    trainer = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["trainer"]
    assert trainer["epoch"] == 3 and len(trainer["history"]) == 3 and not trainer.get("finished")
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"

    cli_inproc("train", f"resume_from={tmp_path}", check=True)
    assert comparable(tmp_path) == comparable(reference_run)  # the epoch-3 state was an exact epoch boundary
    assert (tmp_path / "scores.csv").read_text() == (reference_run / "scores.csv").read_text()


def test_sigterm_in_an_epoch_longer_than_the_grace_keeps_the_last_periodic_checkpoint(reference_run: Path,
                                                                                     tmp_path: Path,
                                                                                     cli_inproc) -> None:
    """The epoch does not end within the grace: no mid-epoch state is saved as if it were an epoch end."""
    proc = terminate_at(3, *RUN, f"hydra.run.dir={tmp_path}", GRACE_S="0.3", SLOW_S="2")
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"semiad: terminated by SIGTERM; partial run left in {tmp_path}; "
        f"continue with: semiad train resume_from={tmp_path}"]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["trainer"]["epoch"] == 2
    cli_inproc("train", f"resume_from={tmp_path}", check=True)
    assert comparable(tmp_path) == comparable(reference_run)


def test_sigterm_in_a_sweep_writes_its_sweep_csv_row(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = terminate_at(3, "--multirun", *RUN, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == f"semiad: terminated by SIGTERM; checkpoint of epoch 3 written " \
                                                   f"in {sweep / '0'}"
    assert json.loads((sweep / "0" / "metrics.json").read_text())["status"] == "interrupted"
    rows = (sweep / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("job,overrides,status") and len(rows) == 2
    assert rows[1].startswith("0,") and ",interrupted," in rows[1] and rows[1].endswith(",terminated by SIGTERM")
