"""``hydra/launcher=stacked`` as a user runs it: each seed's run folder matches a separate run's.

Issue 17's done-when: for 3 seeds x 3 epochs on an ODDS set (cardio) and on digits, each seed's losses
match a separate run to a relative 1e-4 and its AUROC to 1e-3; ``semiad table`` cannot tell the sweeps
apart; a model that cannot stack (IsolationForest) runs one after another with a log line saying so.

The stacked sweeps run as a user runs them (a subprocess); the basic-launcher sweeps they are compared
with, and the tables, run in-process (``cli_inproc``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = Path(os.environ.get("SEMIAD_DATA_ROOT", SHARED_DATA))
DATA_ENV = {"SEMIAD_DATA_ROOT": str(DATA_ROOT)}
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "SEMIAD_CONFIG_DIR": str(REPO / "configs"), **DATA_ENV}
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (DATA_ROOT / "odds").is_dir(), reason="ODDS data not found (SEMIAD_DATA_ROOT)")]
LOSS_COLUMNS = ("loss", "dist", "error_rate", "val_loss", "rec", "ent", "con")


def semiad(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "semiad_cli", *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"semiad {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.parametrize("dataset", ["cardio", "digits"])  # two tests: pytest-xdist runs them side by side
def test_stacked_sweep_writes_the_run_folders_of_separate_runs(tmp_path, dataset, cli_inproc):
    grid = ("train", "--multirun", "seed=1,2,3", "model=deepsad,classifier,ede,iforest", f"dataset={dataset}",
            "trainer.max_epochs=3", "trainer.num_threads=1")
    # stack_slower: the classifier too (on a CPU it trains one after another by default, see below)
    stacked = semiad(*grid, "hydra/launcher=stacked", "hydra.launcher.stack_slower=true",
                     f"hydra.sweep.dir={tmp_path / 'stacked'}")
    cli_inproc(*grid, f"hydra.sweep.dir={tmp_path / 'basic'}", env=DATA_ENV, check=True)
    log = stacked.stdout + stacked.stderr
    assert log.count("trained seeds 1,2,3 as one stacked model") == 3, log  # the 3 torch models
    assert log.count("IsolationForest is not trained by gradient steps; training them one after another") == 1, log

    a, b = pd.read_csv(tmp_path / "stacked" / "sweep.csv"), pd.read_csv(tmp_path / "basic" / "sweep.csv")
    assert a["status"].tolist() == ["completed"] * 12
    pd.testing.assert_frame_equal(a[["job", "overrides", "status"]], b[["job", "overrides", "status"]])
    for job in range(12):
        ma, mb = (json.loads((tmp_path / s / str(job) / "metrics.json").read_text()) for s in ("stacked", "basic"))
        assert ma["seed"] == mb["seed"] and ma["model"] == mb["model"]
        assert ma["auroc"] == pytest.approx(mb["auroc"], abs=1e-3), (job, ma["model"], ma["dataset"])
        assert ma["train"]["epochs"] == mb["train"]["epochs"]
        if ma["model"] == "IsolationForest":
            assert "fit_stacked" not in ma["wall_time"]
            continue
        # fit_s: the stacked group's training time (shared by its seeds), not the ~0 s of loading its weights
        assert ma["wall_time"]["fit_stacked"] is True and "fit_stacked" not in mb["wall_time"]
        assert "trained with 3 seeds stacked" in (tmp_path / "stacked" / str(job) / "train.log").read_text()
        assert ma["wall_time"]["fit_s"] == pytest.approx(sum(pd.read_csv(tmp_path / "stacked" / str(job) /
                                                                          "history.csv")["seconds"]))
        ha, hb = (pd.read_csv(tmp_path / s / str(job) / "history.csv") for s in ("stacked", "basic"))
        assert list(ha.columns) == list(hb.columns) and len(ha) == len(hb) == 3
        for col in set(LOSS_COLUMNS) & set(hb.columns):
            assert ha[col].tolist() == pytest.approx(hb[col].tolist(), rel=1e-4), (job, col)
        for name in ("scores.csv", "checkpoints/last.pt", "config.yaml", ".hydra/overrides.yaml"):
            assert (tmp_path / "stacked" / str(job) / name).is_file()
        assert (tmp_path / "stacked" / str(job) / "config.yaml").read_text() == (
            tmp_path / "basic" / str(job) / "config.yaml").read_text()

    tables = [cli_inproc("table", str(tmp_path / s), "--no-save", "--format", "csv", check=True).out
              for s in ("stacked", "basic")]
    assert tables[0] == tables[1]


def test_stacked_sweep_resumes_its_unfinished_jobs(tmp_path, cli_inproc):
    sweep = tmp_path / "sweep"
    # Job 1 cannot write its scores (a directory stands where scores.csv goes): it fails after the stacked fit.
    (sweep / "1" / "scores.csv").mkdir(parents=True)
    args = ("train", "--multirun", "seed=1,2,3", "model=deepsad", "dataset=cardio", "trainer.max_epochs=2",
            "trainer.num_threads=1", "hydra/launcher=stacked", f"hydra.sweep.dir={sweep}")
    semiad(*args)
    first = pd.read_csv(sweep / "sweep.csv")
    assert first["status"].tolist() == ["completed", "failed", "completed"]
    (sweep / "1" / "scores.csv").rmdir()
    cli_inproc(*args, "+resume=true", env=DATA_ENV, check=True)
    table = pd.read_csv(sweep / "sweep.csv")
    assert table["status"].tolist() == ["completed"] * 3
    assert table["reused"].tolist() == [True, False, True]
    separate = tmp_path / "separate"
    cli_inproc("train", "seed=2", "model=deepsad", "dataset=cardio", "trainer.max_epochs=2", "trainer.num_threads=1",
               f"hydra.run.dir={separate}", env=DATA_ENV, check=True)
    resumed = json.loads((sweep / "1" / "metrics.json").read_text())
    assert resumed["auroc"] == pytest.approx(json.loads((separate / "metrics.json").read_text())["auroc"], abs=1e-3)


def test_a_terminated_stacked_group_exits_with_one_line_and_resumes(tmp_path, cli_inproc):
    sweep = tmp_path / "sweep"
    args = ["train", "--multirun", "seed=1,2", "model=deepsad", "dataset=cardio", "trainer.num_threads=1",
            "hydra/launcher=stacked", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen([sys.executable, "-m", "semiad_cli", *args, "trainer.max_epochs=100000"], cwd=REPO,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    for line in proc.stdout:  # both seeds prepared: the stacked training has started
        seen += "dataset cardio" in line
        if seen == 2:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out + err
    assert "Traceback" not in out + err
    assert "terminated by SIGTERM while training seeds 1,2 stacked" in err and "+resume=true" in err
    assert not (sweep / "0" / "metrics.json").exists()

    cli_inproc(*args, "trainer.max_epochs=2", "+resume=true", env=DATA_ENV, check=True)  # trains again, stacked
    assert pd.read_csv(sweep / "sweep.csv")["status"].tolist() == ["completed"] * 2


def test_a_killed_stacked_group_resumes_from_its_checkpoint_with_the_same_results(tmp_path, cli_inproc):
    from tests.conftest import KILLER

    grid = ["train", "--multirun", "seed=1,2", "model=ede", "dataset=cardio", "trainer.max_epochs=5",
            "trainer.checkpoint_every=1", "trainer.num_threads=1"]
    sweep = tmp_path / "stacked"
    args = [*grid, "hydra/launcher=stacked", f"hydra.sweep.dir={sweep}"]
    # SIGKILL at the first batch of epoch 4 (the patched batcher is called once per seed and epoch)
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], cwd=REPO, env={**ENV, "KILL_AT_EPOCH": "7"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert (sweep / ".semiad_sweep" / "stacked-0-1.pt").is_file()
    resumed = cli_inproc(*args, "+resume=true", env=DATA_ENV, check=True)
    assert "resumed from" in resumed.stdout + resumed.stderr and "at epoch 3" in resumed.stdout + resumed.stderr
    assert not (sweep / ".semiad_sweep" / "stacked-0-1.pt").exists()
    cli_inproc(*grid, f"hydra.sweep.dir={tmp_path / 'basic'}", env=DATA_ENV, check=True)
    for job in (0, 1):
        ha, hb = (pd.read_csv(tmp_path / s / str(job) / "history.csv") for s in ("stacked", "basic"))
        assert len(ha) == len(hb) == 5
        assert ha["loss"].tolist() == pytest.approx(hb["loss"].tolist(), rel=1e-4)
        ma, mb = (json.loads((tmp_path / s / str(job) / "metrics.json").read_text()) for s in ("stacked", "basic"))
        assert ma["auroc"] == pytest.approx(mb["auroc"], abs=1e-3)


def test_stacked_launcher_runs_from_a_folder_outside_the_checkout(tmp_path):
    """The installed package (``make``'s editable install), started where the checkout's ``hydra_plugins/``
    is not on the path: Hydra's plugin scan does not see an editable install's plugin, so the CLI registers it
    (cli.register_own_plugins); without that this was "Unknown plugin class" and a traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SEMIAD_CONFIG_DIR")}
    proc = subprocess.run([sys.executable, "-m", "semiad_cli", "train", "--multirun", "seed=1,2", "trainer=quick",
                           "model=ede,classifier", "trainer.num_threads=1", "hydra/launcher=stacked",
                           "hydra.sweep.dir=sweep"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert log.count("trained seeds 1,2 as one stacked model") == 1, log  # EDE's MLP
    # the classifier, measured slower stacked on a CPU (benchmarks/README.md), trains one seed after another
    assert log.count("not stacking seeds 1,2: Classifier trains slower stacked than one seed after another on a "
                     "CPU (arithmetic-bound) (hydra.launcher.stack_slower=true stacks it anyway)") == 1, log
    assert pd.read_csv(tmp_path / "sweep" / "sweep.csv")["status"].tolist() == ["completed"] * 4


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "abc"])
def test_a_max_stack_below_one_is_one_line_before_the_sweep_starts(tmp_path, value, cli_inproc):
    sweep = tmp_path / "sweep"
    code, out, err = cli_inproc("train", "--multirun", "seed=1,2", "trainer=quick", "hydra/launcher=stacked",
                                f"hydra.launcher.max_stack={value}", f"hydra.sweep.dir={sweep}")
    assert code == 2 and "Traceback" not in out + err
    assert err.strip().splitlines() == [f"semiad: error: hydra.launcher.max_stack={value} must be a whole number of "
                                        "at least 1 (the most seeds in one stacked model)"], err
    assert not sweep.exists()
