"""Classifying the exceptions that end a run: type, one-line message naming condition and path, exit code."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hydra.errors import InstantiationException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError

from semiad_cli import failures
from semiad_cli.atomic import atomic_write
from semiad_cli.errors import ConfigError, TrainingError


def _write_to_dev_full(tmp: Path) -> None:
    """A real ENOSPC: /dev/full accepts the open and fails the write, naming no file."""
    with open("/dev/full", "w") as handle:
        handle.write("x")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_real_enospc_says_disk_full_and_names_the_file_being_written(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(OSError) as caught:
        atomic_write(target, _write_to_dev_full)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert not list(target.parent.iterdir())  # the temp file is gone
    failure = failures.describe(caught.value)
    assert failure.exit_code == 1 and not failure.user_error and failure.error_type == "OSError"
    assert failure.message.startswith(f"disk full: no space left on the device holding {target}; ")


def test_os_errors_name_condition_and_path() -> None:
    cases = {
        errno.EROFS: "read-only file system: cannot write /out/run/metrics.json;",
        errno.EACCES: "permission denied on /out/run/metrics.json: it is read-only",
        errno.ENOSPC: "disk full: no space left on the device holding /out/run/metrics.json;",
    }
    for code, start in cases.items():
        failure = failures.describe(OSError(code, os.strerror(code), "/out/run/metrics.json"))
        assert failure.message.startswith(start) and failure.exit_code == 1, failure


def test_an_os_error_behind_another_exception_is_found() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/out/x.npy")
        except OSError as inner:
            raise RuntimeError("could not write the cache") from inner
    except RuntimeError as outer:
        failure = failures.describe(outer)
    assert failure.error_type == "OSError" and failure.message.startswith("disk full")
    assert "/out/x.npy" in failure.message


def test_user_errors_exit_2_and_the_rest_1() -> None:
    assert failures.describe(ConfigError("seed=-1 must be …")).exit_code == 2
    assert failures.describe(TrainingError("loss became nan")).error_type == "TrainingError"
    with pytest.raises(ConfigAttributeError) as caught:
        OmegaConf.create({"a": 1}, flags={"struct": True}).b  # noqa: B018 - the access raises
    assert failures.describe(caught.value).exit_code == 2
    assert failures.describe(InstantiationException("Error locating target 'x.Y'")).exit_code == 2
    bug = failures.describe(RuntimeError("shape mismatch\n  at layer 3"))
    assert (bug.error_type, bug.message, bug.exit_code, bug.user_error) == (
        "RuntimeError", "shape mismatch | at layer 3", 1, False)
    assert failures.describe(ZeroDivisionError()).message == "(no message)"
    assert failures.describe(RuntimeError("x")).record() == {"status": "failed", "error_type": "RuntimeError",
                                                             "error": "x"}


def test_folder_problem_finds_a_file_in_the_way(tmp_path: Path) -> None:
    blocker = tmp_path / "f"
    blocker.write_text("")
    assert failures.folder_problem(blocker / "a" / "b") == f"cannot create the run folder {blocker}/a/b: " \
                                                            f"{blocker} is a file, not a folder"
    assert failures.folder_problem(tmp_path / "new" / "run") is None
    assert failures.folder_problem(tmp_path) is None


def test_a_run_folder_that_refuses_the_lock_gets_folder_problems_words(tmp_path: Path) -> None:
    """``runlock.claim`` and the up-front check name an unusable folder the same way (one wording)."""
    from semiad_cli import runlock
    from semiad_cli.errors import RunFolderError

    blocker = tmp_path / "f"
    blocker.write_text("")
    with pytest.raises(RunFolderError) as caught:
        runlock.claim(blocker / "run")
    assert str(caught.value) == f"cannot create the run folder {blocker}/run: {blocker} is a file, not a folder; " \
                                "choose a writable hydra.run.dir"
    odd = OSError(errno.EIO, "Input/output error")
    assert failures.unwritable_folder(tmp_path, odd) == f"cannot write into the run folder {tmp_path} " \
                                                        "(Input/output error); choose a writable hydra.run.dir"
