"""One run per folder: an exclusive lock on the run folder for as long as the run lasts, and no
silent reuse of a folder that holds a completed run.

Two runs writing into one ``hydra.run.dir`` at once both finished "fine" and one result was
lost; a new run in a finished run's folder overwrote it without a word. A run now holds
``<run>/.semiad.lock`` (``filelock``: ``flock`` on Unix, released by the OS when the process
dies, so a killed run leaves no stale lock) and records who holds it in ``.semiad.owner``, so a
second run can name the running one. A folder whose ``metrics.json`` says ``completed`` is
refused unless the run says ``overwrite=true``. ``resume_from`` only continues unfinished runs,
and a ``+resume=true`` sweep reuses its completed jobs without writing, so neither needs it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from semiad_cli import results
from semiad_cli.atomic import write_text_atomic
from semiad_cli.errors import CompletedRunError, RunFolderError
from semiad_cli.failures import unwritable_folder

LOCK_FILE = ".semiad.lock"
OWNER_FILE = ".semiad.owner"

_held: dict[Path, FileLock] = {}  # folders this process holds: a second FileLock on one file would block itself


def _key(run_dir: Path | str) -> Path:
    return Path(run_dir).expanduser().resolve()


def _refuse_completed(run_dir: Path, overwrite: bool) -> None:
    if not overwrite and results.task_completed(run_dir):
        raise CompletedRunError(f"{run_dir} holds a completed run; a new run would overwrite it: choose another "
                             f"hydra.run.dir, or pass overwrite=true to replace it")


def _owner(run_dir: Path) -> str:
    """Who holds the folder, from its owner record ("an unknown process" when there is none yet)."""
    try:
        owner = json.loads((run_dir / OWNER_FILE).read_text())
        return f"pid {owner['pid']} on {owner['host']}, started {owner['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"


def claim(run_dir: Path | str, overwrite: bool = False) -> None:
    """Hold ``run_dir`` for this process until ``release`` (or exit); raise ``RunFolderError`` when
    another process holds it, or when it holds a completed run and ``overwrite`` is false.

    Nothing is written into the folder before both checks pass. Claiming a folder this
    process already holds does nothing.
    """
    run_dir = _key(run_dir)
    if run_dir in _held:
        return
    _refuse_completed(run_dir, overwrite)
    lock = FileLock(str(run_dir / LOCK_FILE), timeout=0)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise RunFolderError(f"{run_dir} is in use by another semiad run ({_owner(run_dir)}); wait for it to end, "
                             f"or give this run another hydra.run.dir") from None
    except OSError as err:
        raise RunFolderError(unwritable_folder(run_dir, err)) from None
    try:
        _refuse_completed(run_dir, overwrite)  # a run that completed there while we checked
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "argv": sys.argv}
        write_text_atomic(run_dir / OWNER_FILE, json.dumps(owner) + "\n")
    except OSError as err:
        lock.release()
        raise RunFolderError(unwritable_folder(run_dir, err)) from None
    except BaseException:
        lock.release()
        raise
    _held[run_dir] = lock


def release(run_dir: Path | str) -> None:
    """Give ``run_dir`` back (its owner record goes; the empty lock file stays for the next run)."""
    lock = _held.pop(_key(run_dir), None)
    if lock is None:
        return
    try:
        (_key(run_dir) / OWNER_FILE).unlink(missing_ok=True)
    except OSError:
        pass
    lock.release()


def release_all() -> None:
    for run_dir in list(_held):
        release(run_dir)


def claim_named_run_dir(overrides: list[str]) -> None:
    """Claim the folder a single run names with ``hydra.run.dir=…`` before Hydra writes ``.hydra/`` there.

    Multiruns (their job folders are claimed by each job), Hydra flags (``--cfg``, ``--help``
    write no run folder) and a run dir with an interpolation are left to the task's own claim.
    """
    if any(a.startswith("-") for a in overrides):
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    run_dir, overwrite = None, False
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group == "hydra.run.dir":
            run_dir = override.value()
        elif override.key_or_group == "overwrite":
            overwrite = override.value() is True
    if isinstance(run_dir, str) and "${" not in run_dir:
        claim(run_dir, overwrite=overwrite)
