"""The in-process CLI fixture puts back what a Hydra run changes, so later tests see a clean process."""

from __future__ import annotations

import logging
import os
import sys

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig


def test_a_failed_hydra_run_leaves_no_hydra_state_logging_or_argv_behind(cli_inproc, tmp_path) -> None:
    root = logging.getLogger()
    handlers, level, argv, cwd = list(root.handlers), root.level, list(sys.argv), os.getcwd()
    package_level = logging.getLogger("semiad_cli").level  # job logging sets it to DEBUG
    code, out, err = cli_inproc("train", "trainer=quick", "trainer.num_threads=1", "dataset.split.normal_class=99",
                                f"hydra.run.dir={tmp_path}")
    assert code == 2 and err.startswith("semiad: error:") and "normal_class=99" in err
    assert (tmp_path / "train.log").is_file()  # Hydra's job logging did run, with its file handler
    assert root.handlers == handlers and root.level == level and sys.argv == argv and os.getcwd() == cwd
    assert not GlobalHydra.instance().is_initialized() and not HydraConfig.initialized()
    assert logging.getLogger("semiad_cli").level == package_level != logging.DEBUG
