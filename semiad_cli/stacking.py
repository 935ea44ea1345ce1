"""``hydra/launcher=stacked``: a sweep's seeds trained together as one vectorized model.

Jobs whose overrides differ only in ``seed`` form a group (cut into chunks of ``max_stack``). For a
``semiad train`` group the launcher first prepares every seed exactly as its own run would (seeding,
split, hold-out, synthetic anomalies, model: ``tasks.train.prepare_seed``) and trains them together
(``training/stacked.py``), which writes each seed's final weights, tagged finished, into the seed's
run folder. Then every job runs through Hydra's ``run_job`` as with the basic launcher (same
``.hydra/`` record, log file, callbacks, ``sweep.csv`` row), with the train task told that its
weights are there: it loads them like a finished resume, scores and writes the run folder.

The group checkpoints itself (``.semiad_sweep/stacked-<jobs>.pt`` in the sweep folder, every
``trainer.checkpoint_every`` epochs); with ``+resume=true`` a group cut off by a kill continues from it.
Ctrl-C or SIGTERM during the stacked training exits with one line (130, 143).

Anything that cannot stack (a closed-form model, different split sizes, a loss that draws random
numbers) or fails while stacked is logged in one line and the group's jobs run one after another,
each reporting its own errors. Hydra only accepts launchers from ``hydra_plugins``: the class is
named there by ``hydra_plugins/semiad_stacked_launcher``. No torch import at module level (Hydra
imports every plugin at start-up).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from semiad_cli import results
from semiad_cli.errors import ConfigError
from semiad_cli.sweeps import STATE_DIR

log = logging.getLogger(__name__)

SEED_KEY = "seed"

Job = tuple[int, list[str]]


def _key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def max_stack_problem(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return None
    return (f"hydra.launcher.max_stack={value} must be a whole number of at least 1 (the most seeds in one "
            "stacked model)")


def launcher_problem(config_name: str, overrides: list[str], config_dir: str) -> str | None:
    """One line for a stacked launcher the sweep cannot start with, else None; checked by ``cli.main``
    before Hydra starts (Hydra reports a launcher's own error with a traceback)."""
    from omegaconf import OmegaConf

    from semiad_cli.composing import compose_plain, is_multirun

    if not is_multirun(overrides):
        return None
    try:
        launcher = OmegaConf.select(compose_plain(config_name, overrides, config_dir), "hydra.launcher")
    except Exception:  # noqa: BLE001 - any composition problem is reported by the other checks or Hydra
        return None
    if launcher is None or not str(launcher.get("_target_", "")).endswith(".StackedLauncher"):
        return None
    return max_stack_problem(launcher.get("max_stack"))


def seed_groups(jobs: Sequence[Job], max_stack: int) -> list[list[Job]]:
    """Jobs whose overrides are the same but for ``seed``, in order of first appearance, cut into
    chunks of at most ``max_stack``."""
    groups: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        rest = tuple(sorted(o for o in job[1] if _key(o) != SEED_KEY))
        groups.setdefault(rest, []).append(job)
    return [group[i:i + max_stack] for group in groups.values() for i in range(0, len(group), max_stack)]


def _prefitted_task(cfg: DictConfig):
    """The train app's task, told that the stacked group has left its final weights in the run folder."""
    from semiad_cli import cli
    from semiad_cli.tasks import train

    return cli._run_shown(functools.partial(train.run, prefitted=True), cfg)


class StackedLauncher(Launcher):
    """Runs a sweep's jobs in this process, each seed group of ``semiad train`` as one stacked model.

    Args:
        max_stack: at most this many seeds in one stacked model (memory; larger groups are chunked).
        stack_slower: also stack the models measured slower stacked on this device
            (``training.stacked.slower_stacked``: conv nets and the classifier on a CPU).
    """

    def __init__(self, max_stack: int = 10, stack_slower: bool = False) -> None:
        super().__init__()
        self.stack_slower = bool(stack_slower)
        self.max_stack = max_stack  # checked in launch: an error raised here reaches the user as Hydra's
        # InstantiationException with a stack-trace hint, one raised there as semiad's one line
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self._composed: dict[int, DictConfig] = {}  # job number → its sweep config, composed for the stacked fit

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def _sweep_config(self, idx: int, overrides: list[str]) -> DictConfig:
        """The job's config, composed once: the stacked fit (``_job``) keeps it for ``run_job`` (a composition
        is ~0.1-0.2 s, the fit of a small seed often less)."""
        if idx in self._composed:
            return self._composed.pop(idx)
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        return sweep_config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        problem = max_stack_problem(self.max_stack)
        if problem:  # cli.main reports it before Hydra starts (launcher_problem); this guards other callers
            raise ConfigError(problem)
        setup_globals()
        assert self.hydra_context is not None and self.config is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        groups = seed_groups(jobs, self.max_stack)
        log.info("Launching %d jobs locally in %d seed group(s) (stacked, max_stack=%d)", len(jobs), len(groups),
                 self.max_stack)
        is_train = str(self.config.hydra.job.name) == "train"
        runs: dict[int, JobReturn] = {}
        for group in groups:
            prefitted = self._prefit(group) if is_train and len(group) > 1 else set()
            for idx, overrides in group:
                log.info("\t#%d : %s%s", idx, " ".join(filter_overrides(overrides)),
                         " (stacked)" if idx in prefitted else "")
                runs[idx] = run_job(hydra_context=self.hydra_context,
                                    task_function=_prefitted_task if idx in prefitted else self.task_function,
                                    config=self._sweep_config(idx, overrides), job_dir_key="hydra.sweep.dir",
                                    job_subdir_key="hydra.sweep.subdir")
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [runs[idx] for idx, _ in jobs]

    def _job(self, idx: int, overrides: list[str]) -> tuple[DictConfig, Path]:
        """The task config and run folder ``run_job`` will give this job (HydraConfig set to it)."""
        config = self._sweep_config(idx, overrides)
        HydraConfig.instance().set_config(config)
        out_dir = Path(os.path.abspath(os.path.join(str(OmegaConf.select(config, "hydra.sweep.dir")),
                                                    str(OmegaConf.select(config, "hydra.sweep.subdir")))))
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(out_dir)
        HydraConfig.instance().set_config(config)
        self._composed[idx] = copy.deepcopy(config)  # what run_job gets for this job (as composed, output_dir set)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        return task_cfg, out_dir

    def _prefit(self, group: list[Job]) -> set[int]:
        """Train the group's seeds as one stacked model; the job numbers whose weights it wrote."""
        from semiad_cli import signals
        from semiad_cli.training import stacked

        saved = HydraConfig.instance().cfg
        nums, prepared, out_dirs, seeds, rng_states = [], [], [], [], []
        try:
            with signals.terminate_as_interrupt():
                finished = self._fit_group(group, nums, prepared, out_dirs, seeds, rng_states)
        except stacked.Unstackable as err:
            log.info("stacked launcher: not stacking seeds %s: %s; training them one after another",
                     ",".join(str(s) for s in seeds) or "-", err)
            return set()
        except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM: no job of the group has started, none has a status
            what, exit_code = signals.interruption(err)
            print(f"semiad: {what} while training seeds {','.join(str(s) for s in seeds)} stacked (jobs "
                  f"{','.join(str(n) for n, _ in group)}); their training is lost, the finished jobs are kept; "
                  f"continue the sweep with its command plus hydra.sweep.dir={self.config.hydra.sweep.dir} "
                  f"+resume=true", file=sys.stderr)
            sys.exit(exit_code)
        except Exception as err:  # noqa: BLE001 - each job then runs on its own and records its own failure
            log.warning("stacked launcher: stacked training failed (%s: %s); training the %d jobs one after "
                        "another", type(err).__name__, str(err).splitlines()[0] if str(err) else "", len(group))
            return set()
        finally:
            HydraConfig.instance().cfg = saved
        if finished is None:
            return set()
        log.info("stacked launcher: trained seeds %s as one stacked model", ",".join(str(s) for s in seeds))
        return {n for n, ok in zip(nums, finished, strict=True) if ok}

    def _fit_group(self, group: list[Job], nums: list, prepared: list, out_dirs: list, seeds: list,
                   rng_states: list) -> list[bool] | None:
        """Prepare the group's seeds (filling the lists) and fit them stacked; None: fewer than two to fit."""
        import torch

        from semiad_cli.tasks import train
        from semiad_cli.training import stacked

        resume = False
        for idx, overrides in group:
            cfg, out_dir = self._job(idx, overrides)
            if cfg.get("resume") and results.task_completed(out_dir):
                continue  # +resume=true: this job reuses its result (sweeps.SweepJob.reusable)
            prepared.append(train.prepare_seed(cfg))
            rng_states.append(torch.get_rng_state())
            nums.append(idx)
            out_dirs.append(out_dir)
            seeds.append(int(cfg.seed))
            resume = resume or bool(cfg.get("resume"))
        if len(prepared) < 2:
            return None
        # the group's own checkpoint, in the sweep's state folder (sweeps.STATE_DIR): +resume=true continues it
        state_path = Path(str(self.config.hydra.sweep.dir)) / STATE_DIR / f"stacked-{'-'.join(map(str, nums))}.pt"
        state_path.parent.mkdir(parents=True, exist_ok=True)
        return stacked.fit_stacked([p.trainer for p in prepared], [p.model for p in prepared],
                                   [p.train for p in prepared], [p.val for p in prepared],
                                   [d / results.CHECKPOINT_DIR for d in out_dirs], seeds, rng_states,
                                   state_path=state_path, resume=resume, stack_slower=self.stack_slower)
