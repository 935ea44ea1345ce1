"""The CLI as a user runs it: train on digits, read the files back, evaluate, bad input.

The first run (the console script writing a run folder) and the run that prints to a pipe go through a
subprocess (``run_cli``); the rest runs in-process (``cli_inproc``, see tests/conftest.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, read_metrics, run_cli


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run") / "r"
    run_cli("train", "dataset=digits", "model=ede", "trainer.max_epochs=2", "seed=1", f"hydra.run.dir={run_dir}")
    return run_dir


def test_train_writes_a_complete_run_folder(trained_run):
    m = read_metrics(trained_run)
    assert m["status"] == "completed" and m["model"] == "EDE" and m["dataset"] == "digits" and m["seed"] == 1
    assert 0.5 < m["auroc"] <= 1.0 and 0.0 < m["aupr"] <= 1.0
    assert set(m["parts"]) == {"rec", "rec_rel", "znorm"}
    assert m["train"]["epochs"] == 2 and m["wall_time"]["total_s"] > 0
    assert m["split"]["n_train_known_anomaly"] == int(0.05 * m["split"]["n_train_normal_unlabeled"] / 0.95)
    scores = pd.read_csv(trained_run / "scores.csv")
    assert list(scores.columns[:4]) == ["index", "label", "class", "score"]
    assert len(scores) == m["split"]["n_test"] and scores["label"].sum() == m["split"]["n_test_anomaly"]
    csv = pd.read_csv(trained_run / "metrics.csv")
    assert csv.loc[0, "auroc"] == pytest.approx(m["auroc"])
    for name in ("config.yaml", "checkpoints/last.pt", "train.log", ".hydra/config.yaml", "history.csv"):
        assert (trained_run / name).is_file(), name
    assert "test AUROC" in (trained_run / "train.log").read_text()


def test_evaluate_reproduces_train_metrics_exactly(trained_run, tmp_path, cli_inproc):
    out = tmp_path / "eval"
    proc = cli_inproc("evaluate", f"run_dir={trained_run}", f"hydra.run.dir={out}", check=True)
    # it said "run failed" after a good evaluation once: its metrics.json had no status to read
    assert f"semiad: run completed: {out}" in proc.stdout.splitlines(), proc.stdout
    before, after = read_metrics(trained_run), read_metrics(out)
    assert after["auroc"] == before["auroc"] and after["aupr"] == before["aupr"]
    assert after["per_class"] == before["per_class"]
    assert pd.read_csv(out / "scores.csv")["score"].equals(pd.read_csv(trained_run / "scores.csv")["score"])


def test_default_run_dir_is_dated_and_unique(tmp_path, cli_inproc):
    for _ in range(2):
        cli_inproc("train", "trainer=quick", f"run_root={tmp_path}", check=True)
    runs = sorted(tmp_path.glob("*/*"))
    assert len(runs) == 2 and runs[0] != runs[1]
    day = runs[0].parent.name
    assert len(day) == 10 and day[4] == "-"  # YYYY-MM-DD


def test_multirun_over_seeds(tmp_path, cli_inproc):
    proc = cli_inproc("train", "--multirun", "seed=1,2", "trainer=quick", f"hydra.sweep.dir={tmp_path}", check=True)
    seeds = sorted(read_metrics(tmp_path / str(i))["seed"] for i in (0, 1))
    assert seeds == [1, 2]
    # the sweep folder once at the start and once at the end; its jobs print no folder lines of their own
    shown = [ln for ln in proc.stdout.splitlines() if ln.startswith("semiad: ")]
    assert shown == [f"semiad: sweep folder {tmp_path}", f"semiad: sweep done: {tmp_path}  (results: semiad table "
                                                          f"{tmp_path})"], proc.stdout


def test_train_shows_its_run_folder_and_progress_without_a_terminal(tmp_path):
    """From a user's folder: the run folder (relative, as `semiad table` takes it) at the start and the
    end, and with no terminal for a progress bar, one INFO line every trainer.log_every epochs."""
    proc = run_cli("train", "trainer=quick", "trainer.max_epochs=4", "trainer.log_every=2", "trainer.num_threads=1",
                   cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    shown = [ln for ln in proc.stdout.splitlines() if ln.startswith("semiad: ")]
    start = re.fullmatch(r"semiad: run folder (outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d_[0-9a-f]{6})", shown[0])
    assert start and shown == [shown[0], f"semiad: run completed: {start[1]}"], proc.stdout
    run_dir = tmp_path / start[1]
    assert read_metrics(run_dir)["status"] == "completed"
    progress = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in progress] == ["2/4", "4/4"], proc.stdout
    assert all(" loss " in ln and " rec " in ln and ln.endswith(" s/epoch)") for ln in progress)
    logged = [ln for ln in (run_dir / "train.log").read_text().splitlines() if "[INFO] - epoch " in ln]
    assert [ln.split(" - ")[1] for ln in logged] == progress


def test_csv_runs_are_named_after_their_files_in_metrics_and_tables(tmp_path, cli_inproc):
    rng = np.random.default_rng(0)
    for stem in ("flows", "sensors"):
        pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60),
                      "label": ["normal"] * 45 + ["attack"] * 15}).to_csv(tmp_path / f"{stem}.csv", index=False)
    sweep = tmp_path / "sweep"
    cli_inproc("train", "--multirun", "model=iforest", "dataset=csv", "dataset.source.label_column=label",
               f"dataset.source.path={tmp_path / 'flows.csv'},{tmp_path / 'sensors.csv'}",
               "dataset.source.anomaly_values=[attack]", f"hydra.sweep.dir={sweep}", check=True)
    assert [read_metrics(sweep / str(j))["dataset"] for j in (0, 1)] == ["flows", "sensors"]
    rows = [ln for ln in cli_inproc("table", str(sweep), "--metric", "auroc", check=True).out.splitlines()
            if ln.startswith("| ")]
    assert len(rows) == 3 and "flows" in rows[1] and "sensors" in rows[2], rows


@pytest.mark.parametrize("args, message", [
    (["train", "dataset=nosuchset"], "unknown dataset 'nosuchset'; choose one of:"),
    (["train", "model=nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["train", "trainer=quick", "dataset.split.ratio_known_anomaly=-0.5"], "ratio_known_anomaly=-0.5 is out of range"),
    (["evaluate", "run_dir=."], "has no config.yaml"),
    (["frobnicate"], "unknown command 'frobnicate'"),
])
def test_bad_input_gives_one_line_error(tmp_path, args, message, cli_inproc):
    code, out, err = cli_inproc(*args, f"hydra.run.dir={tmp_path}/r" if args[0] in ("train", "evaluate") else "--x")
    assert code == 2
    err_lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(err_lines) == 1 and err_lines[0].startswith("semiad: error:") and message in err_lines[0]
    assert "Traceback" not in err + out


def test_evaluate_on_folder_without_checkpoint(trained_run, tmp_path, cli_inproc):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    code, out, err = cli_inproc("evaluate", f"run_dir={broken}", f"hydra.run.dir={tmp_path}/e")
    assert code == 2 and "no checkpoint" in err and "Traceback" not in err + out


def test_failed_run_records_status(tmp_path, cli_inproc):
    code, _, err = cli_inproc("train", "trainer=quick", "dataset.split.normal_class=99", f"hydra.run.dir={tmp_path}")
    assert code == 2 and "normal_class=99" in err
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["status"] == "failed" and "normal_class=99" in m["error"]


def test_help_outputs(cli_inproc):
    top = cli_inproc("--help")
    assert top.code == 0 and "train" in top.out and "evaluate" in top.out
    sub = cli_inproc("train", "--help")
    assert sub.code == 0 and "== Configuration groups ==" in sub.out and "dataset:" in sub.out
    assert sub.out.startswith("semiad train: ") and "semiad semiad" not in sub.out
    assert "resume_from=<run folder>" in sub.out
    job = cli_inproc("train", "--cfg", "job")
    assert job.code == 0 and "_target_: semiad_cli.models.ede.EDE" in job.out
