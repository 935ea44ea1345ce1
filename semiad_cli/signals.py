"""SIGTERM ends a run the way Ctrl-C does: checkpoint, ``status: interrupted``, one line.

SLURM sends SIGTERM when it preempts a job, when it requeues or cancels one and at the time
limit, then SIGKILL ``KillWait`` seconds later; submitit's jobs also get SIGUSR2
``signal_delay_s`` before the limit, its cue to checkpoint and requeue. Python's default for
SIGTERM ends the process on the spot: no ``finally``, no status, no ``sweep.csv`` row.

Inside :func:`terminate_as_interrupt` these signals raise :class:`Terminated`, a
``KeyboardInterrupt``, in the main thread, so they take Ctrl-C's path. The training loop may
hold the signal until its epoch ends (:func:`hold_until_epoch_end`): the model and optimizer
state at an epoch boundary is what a checkpoint stores and a resume expects, so the loop writes
one there and then stops. An epoch that does not end within ``GRACE_S`` seconds is cut short
(an alarm raises the held signal), and the last periodic checkpoint stays the one to resume.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

#: how long a held signal waits for the epoch to end; well inside SLURM's default KillWait (30 s)
GRACE_S = 5.0


class Terminated(KeyboardInterrupt):
    """SIGTERM (or submitit's preemption signal) raised as an interruption in the main thread.

    ``requeue``: submitit's own handler, set for its preemption signal; calling it writes submitit's
    checkpoint of the job, requeues it with ``scontrol requeue`` and exits.
    """

    def __init__(self, signum: int, requeue: Callable[[], object] | None = None) -> None:
        self.signum = int(signum)
        self.name = signal.Signals(self.signum).name
        self.requeue = requeue
        self.checkpoint_epoch: int | None = None  # set by the training loop when it wrote one at an epoch end
        super().__init__(f"terminated by {self.name}")

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process killed by it (143 for SIGTERM)."""
        return 128 + self.signum


def interruption(err: KeyboardInterrupt) -> tuple[str, int]:
    """What stopped the run, in words, and the exit code it ends with: 128 + the signal number for
    ``Terminated``, 130 for Ctrl-C (the CLI's run and the stacked launcher's group say it the same way)."""
    if isinstance(err, Terminated):
        return f"terminated by {err.name}", err.exit_code
    return "interrupted by the user (Ctrl-C)", 130


class _Hold:
    """State shared by the handlers and the training loop (main thread only)."""

    active = False  # a loop asked to finish its epoch first
    pending: Terminated | None = None


_hold = _Hold()


def _submitit_signal() -> tuple[int, Callable] | None:
    """submitit's preemption signal and its handler, when this process is a submitit SLURM job."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    try:
        from submitit import JobEnvironment

        signum = JobEnvironment._usr_sig()
    except (ImportError, RuntimeError, AttributeError):
        return None
    previous = signal.getsignal(signum)
    return (signum, previous) if callable(previous) else None


def _on_signal(requeue_for: dict[int, Callable[[], object]]) -> Callable:
    def handler(signum: int, frame) -> None:
        requeue = requeue_for.get(signum)
        if _hold.pending is not None:  # a second signal, or the first while held: stop now
            if requeue is not None and _hold.pending.requeue is None:
                _hold.pending.requeue = requeue
            err, _hold.pending = _hold.pending, None
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise err
        err = Terminated(signum, requeue)
        if _hold.active:
            _hold.pending = err
            signal.setitimer(signal.ITIMER_REAL, GRACE_S)
            log.debug("%s received: stopping at the end of this epoch (at most %.0f s)", err.name, GRACE_S)
            return
        raise err

    return handler


def _on_alarm(signum: int, frame) -> None:
    """The held signal's grace is over: stop mid-epoch."""
    if _hold.pending is not None:
        err, _hold.pending = _hold.pending, None
        log.debug("the epoch did not end within %.0f s of %s; stopping mid-epoch", GRACE_S, err.name)
        raise err


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within: SIGTERM (and submitit's preemption signal in a submitit job) raises ``Terminated``.

    The previous handlers come back on exit. Outside the main thread (where Python cannot set
    handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    requeue_for: dict[int, Callable[[], object]] = {}
    submitit = _submitit_signal()
    if submitit is not None:
        usr_sig, submitit_handler = submitit
        requeue_for[usr_sig] = functools.partial(submitit_handler, usr_sig, None)
    handler = _on_signal(requeue_for)
    signums = [signal.SIGTERM, *requeue_for, signal.SIGALRM]
    saved = {s: signal.getsignal(s) for s in signums}
    for s in signums:
        signal.signal(s, _on_alarm if s == signal.SIGALRM else handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _hold.active, _hold.pending = False, None
        for s, before in saved.items():
            signal.signal(s, before if before is not None else signal.SIG_DFL)


@contextmanager
def hold_until_epoch_end() -> Iterator[Callable[[], Terminated | None]]:
    """Within: a termination signal waits (``GRACE_S`` at most) until the loop asks for it.

    Yields ``take()``: the held ``Terminated`` (and the alarm stopped) or None. The loop calls it
    at each epoch end, writes a checkpoint when it gets one, and raises it. Without
    :func:`terminate_as_interrupt` around it, nothing is ever held.
    """

    def take() -> Terminated | None:
        err, _hold.pending = _hold.pending, None
        if err is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return err

    outer = _hold.active
    _hold.active = True
    try:
        yield take
        if (err := take()) is not None:  # arrived after the last epoch's check
            raise err
    finally:
        _hold.active = outer
        take()
