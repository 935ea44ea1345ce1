"""Sweep support without launching jobs: plugin check, thread budget, sweep.csv, launcher configs."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from semiad_cli import cli, results, sweeps


@pytest.mark.parametrize("override, dist", [
    ("hydra/launcher=joblib", "hydra-joblib-launcher"),
    ("hydra/launcher=slurm", "hydra-submitit-launcher"),
    ("hydra/launcher=submitit_local", "hydra-submitit-launcher"),
    ("hparams_search=ede_optuna", "hydra-optuna-sweeper"),
])
def test_missing_plugin_gives_one_line_naming_the_extra(monkeypatch, capsys, override, dist):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins.") else real(name, *a))
    assert cli.main(["train", "--multirun", override, "seed=1,2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert dist in err and "pip install -e '.[sweeps]'" in err and override in err


def test_installed_plugins_pass_the_check():
    assert sweeps.missing_plugin(["hydra/launcher=joblib", "hydra/launcher=slurm", "hparams_search=ede_optuna"]) is None
    assert sweeps.missing_plugin(["hydra/launcher=basic", "seed=1,2", "hparams_search=null"]) is None


def test_thread_budget_divides_the_cores(monkeypatch):
    monkeypatch.setattr(sweeps, "available_cores", lambda: 8)
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    budget = lambda **kw: sweeps.thread_budget(OmegaConf.create(kw))  # noqa: E731
    assert budget(_target_=joblib, n_jobs=2) == 4
    assert budget(_target_=joblib, n_jobs=3) == 2
    assert budget(_target_=joblib, n_jobs=16) == 1
    assert budget(_target_=joblib, n_jobs=-1) == 1  # one job per core
    assert budget(_target_=joblib, n_jobs=-2) == 1  # 7 jobs on 8 cores
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert budget(_target_=slurm, cpus_per_task=6) == 6
    assert budget(_target_=slurm, cpus_per_task=None) == 1
    assert budget(_target_="hydra._internal.core_plugins.basic_launcher.BasicLauncher") is None


def test_sweep_csv_is_rebuilt_from_job_rows_in_job_order(tmp_path):
    rows = tmp_path / sweeps.STATE_DIR / "jobs"
    for num, status, auroc in [(10, "completed", 0.9), (2, "failed", None), (1, "completed", 0.8)]:
        results.write_json(rows / f"{num}.json", {"job": num, "overrides": f"seed={num}", "status": status,
                                                  "auroc": auroc, "wall_s": 1.5, "error": None})
    (rows / "3.json").write_text("{not json")  # a torn file from a killed writer is skipped
    frame = pd.read_csv(sweeps.write_sweep_csv(tmp_path))
    assert list(frame.columns) == sweeps.COLUMNS
    assert frame["job"].tolist() == [1, 2, 10]
    assert frame["status"].tolist() == ["completed", "failed", "completed"]
    assert frame["auroc"].iloc[0] == 0.8 and pd.isna(frame["auroc"].iloc[1])


def _hydra_cfg(overrides: list[str]):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=cli.CONFIG_DIR, version_base="1.3"):
            return compose(config_name="train", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def test_slurm_config_extends_the_plugin_schema():
    cfg = _hydra_cfg(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.cpus_per_task == 4 and launcher.mem_gb == 16
    assert launcher.signal_delay_s == 120  # a schema field not repeated in slurm.yaml


def test_optuna_search_config_uses_a_validation_split():
    cfg = _hydra_cfg(["hparams_search=ede_optuna"])
    assert cfg.trainer.val_fraction > 0
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.direction == "maximize"
    assert set(cfg.hydra.sweeper.params) >= {"trainer.optimizer.lr", "model.lambda_ent", "model.lambda_con"}


def _job(tmp_path, overrides: list[str], resume: bool) -> sweeps.SweepJob:
    hydra_cfg = OmegaConf.create({
        "sweep": {"dir": str(tmp_path)}, "job": {"num": 0}, "runtime": {"output_dir": str(tmp_path / "0")},
        "overrides": {"task": overrides}, "sweeper": {"_target_": "BasicSweeper"},
        "launcher": {"_target_": "BasicLauncher"},
    })
    job = sweeps.SweepJob(hydra_cfg, resume=resume)
    job.configure(OmegaConf.create({"trainer": {"num_threads": None, "val_fraction": 0.0}}))
    return job


def test_resume_reuses_only_a_completed_job_with_the_same_overrides(tmp_path):
    done = {"status": "completed", "auroc": 0.9, "aupr": 0.8, "objective": 0.7, "wall_time": {"total_s": 3.0}}
    job = _job(tmp_path, ["seed=1"], resume=False)
    results.write_json(tmp_path / "0" / results.METRICS_JSON, done)
    assert job.finish(done, 3.0) == 0.7
    assert job.reusable() is None  # resume not asked for
    again = _job(tmp_path, ["seed=1", "+resume=true"], resume=True)
    assert again.reusable()["auroc"] == 0.9  # the resume override itself does not make it another job
    assert _job(tmp_path, ["seed=2", "+resume=true"], resume=True).reusable() is None  # other overrides: rerun
    results.write_json(tmp_path / "0" / results.METRICS_JSON, {"status": "failed", "error": "x"})
    assert again.reusable() is None  # failed jobs rerun
    table = pd.read_csv(tmp_path / sweeps.SWEEP_CSV)
    assert table.loc[0, "overrides"] == "seed=1" and table.loc[0, "objective"] == 0.7


def test_slurm_config_renders_a_valid_sbatch_script(tmp_path):
    """The plugin's parameters mapped onto submitit's sbatch renderer; needs no cluster and no ``srun``.

    ``submitit.AutoExecutor(cluster="slurm")`` refuses to start without ``srun`` on the PATH, so the
    script is rendered by submitit's ``_make_sbatch_string`` with the plugin's split of the parameters
    (generic ones renamed by ``SlurmExecutor``'s equivalence table, as ``AutoExecutor`` does).
    """
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.slurm.slurm import SlurmExecutor, _convert_mem, _make_sbatch_string

    cfg = _hydra_cfg(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1",
                      f"hydra.sweep.dir={tmp_path}"])
    launcher = instantiate(cfg.hydra.launcher)
    params = {k: v for k, v in launcher.params.items() if v is not None}
    folder = params.pop("submitit_folder")
    assert params.pop("max_num_timeout") > 0  # a job past its time limit is requeued from its checkpoint
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    rename = SlurmExecutor._equivalence_dict()
    sbatch = {rename.get(k, k) if k in generic else k: v for k, v in params.items()}
    sbatch["mem"] = _convert_mem(sbatch["mem"])
    script = _make_sbatch_string(command="python -m semiad_cli", folder=folder, **sbatch)
    for line in ("--partition=gpu", "--cpus-per-task=4", "--mem=16GB", "--time=60", "--gpus-per-node=1",
                 f"--output={tmp_path}/.submitit/", "--signal=USR2@120"):
        assert f"#SBATCH {line}" in script, line


def test_a_requeued_slurm_job_continues_from_its_checkpoint(tmp_path, monkeypatch):
    """SLURM sets SLURM_RESTART_COUNT in a requeued job: it resumes in its run folder, or reuses a finished result."""
    hydra_cfg = OmegaConf.create({
        "sweep": {"dir": str(tmp_path)}, "job": {"num": 0}, "runtime": {"output_dir": str(tmp_path / "0")},
        "overrides": {"task": ["seed=1"]}, "sweeper": {"_target_": "BasicSweeper"},
        "launcher": {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                     "cpus_per_task": 2},
    })

    def start():
        cfg = OmegaConf.create({"trainer": {"num_threads": None, "val_fraction": 0.0, "resume": False}})
        job = sweeps.SweepJob(hydra_cfg)
        job.configure(cfg)
        return cfg, job

    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    cfg, job = start()
    assert cfg.trainer.resume is False and job.reusable() is None  # the first start trains afresh
    done = {"status": "completed", "auroc": 0.9, "wall_time": {"total_s": 3.0}}
    results.write_json(tmp_path / "0" / results.METRICS_JSON, done)
    job.finish(done, 3.0)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    cfg, job = start()
    assert cfg.trainer.resume is True and cfg.trainer.num_threads == 2
    assert job.reusable()["auroc"] == 0.9  # requeued after it had finished: the stored result is returned
    monkeypatch.delenv("SUBMITIT_EXECUTOR")  # not a submitit job: SLURM_RESTART_COUNT of an outer job is ignored
    cfg, job = start()
    assert cfg.trainer.resume is False and job.reusable() is None


def test_cli_and_sweeps_import_without_fcntl():
    """No POSIX-only import: on Windows there is no fcntl (filelock does the locking)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import semiad_cli.cli, semiad_cli.sweeps, semiad_cli.runlock\n"
            "from pathlib import Path; import tempfile\n"
            "with semiad_cli.sweeps._locked(Path(tempfile.mkdtemp())): pass\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_sweep_csv_rows_come_from_the_sweep_book_callback(cli_inproc, tmp_path):
    """``sweep.csv`` is written by ``SweepBook`` (registered in configs/hydra/default.yaml), in-process
    for the basic launcher; without the callback the jobs still run, and say that the books are off."""
    base = ("train", "--multirun", "seed=1,2", "trainer.max_epochs=1", "trainer.num_threads=1")
    booked = tmp_path / "booked"
    result = cli_inproc(*base, f"hydra.sweep.dir={booked}")
    assert result.code == 0, result.err
    table = pd.read_csv(booked / sweeps.SWEEP_CSV)
    assert table["job"].tolist() == [0, 1] and table["status"].tolist() == ["completed", "completed"]
    for num in (0, 1):
        stored = results.read_json(booked / str(num) / results.METRICS_JSON)
        assert table.loc[num, "auroc"] == stored["auroc"] and f"seed={num + 1}" in table.loc[num, "overrides"]
    assert sweeps.current_job() is None  # on_job_end let go of the last job

    bare = tmp_path / "bare"
    result = cli_inproc(*base, f"hydra.sweep.dir={bare}", "~hydra.callbacks.sweep_book")
    assert result.code == 0, result.err
    assert results.read_json(bare / "1" / results.METRICS_JSON)["status"] == "completed"
    assert not (bare / sweeps.SWEEP_CSV).exists()
    assert "SweepBook is not in hydra.callbacks" in result.out + result.err
