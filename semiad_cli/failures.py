"""Any exception that ends a run → its ``metrics.json`` record, one console line and an exit code.

``SemiadError``s and config errors (OmegaConf, Hydra instantiation) are the user's to fix: exit 2.
Everything else (a bug, a full disk, a read-only folder) exits 1. OS errors get a message that
names the condition and the path, since the exception's own text often names neither (``torch.save``
on a full disk says "unexpected pos 576 vs 534"; a failed ``write`` names no file).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from semiad_cli.errors import SemiadError

USER_ERROR = 2
OTHER_ERROR = 1
_MAX_MESSAGE = 1000

_WHERE = "free space there or choose another folder (run_root=<dir> or hydra.run.dir=<dir>)"
_OS_MESSAGES = {
    errno.ENOSPC: "disk full: no space left on the device holding {path}; " + _WHERE,
    errno.EDQUOT: "disk quota exceeded on the device holding {path}; " + _WHERE,
    errno.EROFS: "read-only file system: cannot write {path}; choose a writable folder "
                 "(run_root=<dir> or hydra.run.dir=<dir>)",
    errno.EACCES: "permission denied on {path}: it is read-only (or not readable) for this user; "
                  "change its permissions or choose another folder (run_root=<dir> or hydra.run.dir=<dir>)",
    errno.EPERM: "operation not permitted on {path}: it is read-only for this user; "
                 "change its permissions or choose another folder (run_root=<dir> or hydra.run.dir=<dir>)",
}


@dataclass(frozen=True)
class Failure:
    """What a failed run records and prints."""

    error_type: str
    message: str
    exit_code: int
    user_error: bool

    def record(self) -> dict[str, str]:
        """The ``metrics.json`` content of a failed run (and its ``sweep.csv`` row fields)."""
        return {"status": "failed", "error_type": self.error_type, "error": self.message}


def one_line(text: str) -> str:
    """A multi-line exception text on one line, cut to a readable length."""
    line = " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= _MAX_MESSAGE else line[:_MAX_MESSAGE - 1] + "…"


def config_error_line(err: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line errors on one line: OmegaConf's ``full_key`` /
    ``object_type`` lines dropped, the root cause's first line added, a schema's key named."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    cause = err.__cause__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    text = " ".join(ln for ln in lines if not ln.startswith(("full_key", "object_type", "reference_type")))
    if cause is not None and str(cause).strip():
        first = str(cause).strip().splitlines()[0]
        if first not in text:
            text += f" ({first})"
    keys = [ln.partition(":")[2].strip() for ln in lines if ln.startswith("full_key:")]
    if keys and keys[0] and keys[0] not in text:  # a YAML file's value refused by a schema: name its key
        text += f" (at {keys[0]})"
    return one_line(text)


def _os_error(err: BaseException) -> OSError | None:
    """The first OSError with an errno along the exception's cause/context chain."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno is not None:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _is_config_error(err: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, (HydraException, OmegaConfBaseException))


def describe(err: BaseException) -> Failure:
    """Classify ``err``: its type, a one-line message and the exit code."""
    if isinstance(err, SemiadError):
        return Failure(type(err).__name__, str(err), USER_ERROR, True)
    if _is_config_error(err):
        return Failure(type(err).__name__, config_error_line(err) or "config error", USER_ERROR, True)
    os_err = _os_error(err)
    if os_err is not None and os_err.errno in _OS_MESSAGES:
        path = os_err.filename if os_err.filename is not None else "(path not given by the system)"
        return Failure(type(os_err).__name__, _OS_MESSAGES[os_err.errno].format(path=path), OTHER_ERROR, False)
    return Failure(type(err).__name__, one_line(str(err)) or "(no message)", OTHER_ERROR, False)


def folder_problem(folder: Path) -> str | None:
    """Why a run or sweep folder cannot be created or written, or None.

    Walks up to the nearest existing folder: a file in the way, or a folder this user cannot
    write into (read-only mount, permissions), means neither the run nor its ``metrics.json``
    can be written.
    """
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create the run folder {folder}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write the run folder {folder}: {existing} is read-only for this user"
    return None


def unwritable_folder(folder: Path, err: OSError) -> str:
    """The message for a run folder that refused a write (``runlock.claim``): ``folder_problem``'s
    reason when it finds one (checked up front already, so this shows only in a race), else the system's."""
    reason = folder_problem(folder) or f"cannot write into the run folder {folder} ({err.strerror or err})"
    return f"{reason}; choose a writable hydra.run.dir"


def output_folder_problem(config_name: str, overrides: list[str], config_dir: str) -> str | None:
    """One line when the run folder (``--multirun``: the sweep folder) cannot be created, else None.

    Hydra creates that folder and its log before any semiad code runs and reports a failure there
    with a traceback; checked up front, the user gets one line that names the folder. Reads
    ``hydra.run.dir`` / ``hydra.sweep.dir`` from the composed config (sweep values left out), the
    composition ``overrides.check_overrides`` made for a single run.
    """
    from omegaconf import OmegaConf

    from semiad_cli.composing import MULTIRUN_FLAGS, compose_plain, is_multirun

    flags = [a for a in overrides if a.startswith("-")]
    multirun = is_multirun(flags)
    if any(a not in MULTIRUN_FLAGS for a in flags) or not (Path(config_dir) / f"{config_name}.yaml").is_file():
        return None  # --cfg, --help, --info …: Hydra prints and writes nothing
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        # a single run's overrides are check_overrides' own: the composition is shared, not repeated
        folder = OmegaConf.select(compose_plain(config_name, overrides, config_dir), key)
    except Exception:  # noqa: BLE001 - any composition problem is reported by Hydra itself
        return None
    if not folder:
        return None
    problem = folder_problem(Path(str(folder)))
    if problem is None:
        return None
    return f"{problem}; choose another with {key}=<dir> or run_root=<dir> (no metrics.json can be written there)"
