"""Shared fixtures: compose the shipped configs, run the CLI in-process or in a subprocess.

Most CLI calls run in-process (``cli_inproc``: ``cli.main``, the console script's own entry point): a
subprocess costs about 4 s of CPU before the run starts (Python, torch, torch's optimizer importing
torch._dynamo, scikit-learn, Hydra). A subprocess (``run_cli``) is kept where the process itself is under
test: the console script writing a run folder, signals and SIGKILL, output to a pipe, parallel launchers
(joblib, submitit, SLURM), the MLflow server, the wheel.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from semiad_cli.cli import CONFIG_DIR

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def load_script(name: str):
    """``scripts/<name>.py`` as a module (the scripts are not a package): its functions under test."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def compose_cfg():
    """``compose_cfg("train", ["model=ede"])`` → the composed DictConfig (no Hydra runtime)."""

    def _compose(name: str = "train", overrides: list[str] | None = None):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name=name, overrides=list(overrides or []))

    yield _compose
    GlobalHydra.instance().clear()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m semiad_cli <args>`` as a user would; returns the completed process."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "semiad_cli", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"semiad {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


@pytest.fixture
def cli():
    return run_cli


class CliResult(NamedTuple):
    code: int
    out: str
    err: str

    # subprocess.CompletedProcess's names, so that a test can swap run_cli for cli_inproc unchanged
    @property
    def returncode(self) -> int:
        return self.code

    @property
    def stdout(self) -> str:
        return self.out

    @property
    def stderr(self) -> str:
        return self.err


def _hydra_state_reset() -> None:
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


@pytest.fixture
def cli_inproc(capsys, monkeypatch):
    """``cli_inproc("train", "dataset=x", env={...}, check=False)`` → ``CliResult(code, out, err)`` from
    ``cli.main`` in this process: refusals, and runs that train when the process itself is not what is
    tested. ``check=True`` fails the test on a non-zero exit code, as ``run_cli`` does by default.

    Puts back what a Hydra app changes in the process: Hydra's singletons, the root logger's handlers
    and levels (job logging's dictConfig replaces them), ``sys.argv``, the working folder, signal
    handlers and torch's thread count.
    """
    from semiad_cli import cli

    def _run(*args: str, env: dict | None = None, check: bool = False) -> CliResult:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()  # only this call's output
        import torch  # before the snapshot: torch sets up its own loggers on import; a run sets its thread count

        threads = torch.get_num_threads()
        root = logging.getLogger()
        logging.getLogger("semiad_cli")  # job logging sets its level: snapshot it even before its first use
        loggers = {name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
                   for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
        saved = (list(root.handlers), root.level, list(sys.argv), os.getcwd(),
                 {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)})
        _hydra_state_reset()
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        finally:
            _hydra_state_reset()
            for handler in root.handlers:
                if handler not in saved[0]:
                    handler.close()
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])
            for name, (level, handlers, propagate, disabled) in loggers.items():
                lg = logging.getLogger(name)
                lg.setLevel(level)
                lg.handlers[:] = handlers
                lg.propagate, lg.disabled = propagate, disabled
            sys.argv[:] = saved[2]
            os.chdir(saved[3])
            for sig, handler in saved[4].items():
                signal.signal(sig, handler)
            torch.set_num_threads(threads)
        captured = capsys.readouterr()
        if check and code != 0:
            raise AssertionError(f"semiad {' '.join(args)} failed ({code}):\n{captured.out}\n{captured.err}")
        return CliResult(code, captured.out, captured.err)

    return _run


# Runs the CLI with the loop patched to SIGKILL itself after the first batch of epoch $KILL_AT_EPOCH.
KILLER = """
import os, signal, sys
from semiad_cli.training import loop
original, calls = loop.Trainer._batches, [0]
def batches(self, n, gen, device):
    calls[0] += 1
    chunks = original(self, n, gen, device)
    if calls[0] != int(os.environ["KILL_AT_EPOCH"]):
        return chunks
    def killed():
        yield chunks[0]
        os.kill(os.getpid(), signal.SIGKILL)
    return killed()
loop.Trainer._batches = batches
from semiad_cli.cli import main
sys.exit(main(sys.argv[1:]))
"""


def pytest_collection_modifyitems(config, items):
    """SLURM-marked tests first, then slow-marked ones, then the other end-to-end ones, then the unit tests:
    under pytest-xdist (``make test``) the long tests start at once and the short ones fill the gaps, instead
    of one long test running alone at the end (stable sort: file order is kept within each group).

    The SLURM tests come first because the worker that runs them mostly waits, on the jobs it submitted and on
    the scheduler (a requeued job waits out its credential and the next scheduling pass): about 6 minutes
    run one after another. Collected after the slow tests, they started when the other worker had little left
    to steal, which then sat idle for 3.5 minutes."""
    items.sort(key=lambda item: (item.get_closest_marker("slurm") is None, item.get_closest_marker("slow") is None,
                                 "e2e" not in item.path.parts))
