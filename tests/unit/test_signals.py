"""SIGTERM and submitit's preemption signal as ``Terminated``, held until an epoch ends; real signals, in-process."""

from __future__ import annotations

import os
import signal
import time

import pytest

from semiad_cli import signals
from semiad_cli.signals import Terminated


def test_sigterm_raises_terminated_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught, signals.terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the handler
    assert isinstance(caught.value, KeyboardInterrupt)  # takes Ctrl-C's path
    assert caught.value.exit_code == 143 and caught.value.requeue is None and caught.value.checkpoint_epoch is None
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_held_signal_waits_for_take_and_an_unfinished_epoch_is_cut_at_the_grace(monkeypatch) -> None:
    with signals.terminate_as_interrupt(), signals.hold_until_epoch_end() as take:
        assert take() is None
        os.kill(os.getpid(), signal.SIGTERM)
        held = take()  # the "epoch end": the signal is handed over, not raised
        assert isinstance(held, Terminated) and held.name == "SIGTERM" and take() is None
    monkeypatch.setattr(signals, "GRACE_S", 0.2)
    t0 = time.monotonic()
    with pytest.raises(Terminated), signals.terminate_as_interrupt(), signals.hold_until_epoch_end():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # an epoch that outlasts the grace: the alarm raises the held signal
    assert time.monotonic() - t0 < 3
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_second_signal_while_held_stops_at_once() -> None:
    with pytest.raises(Terminated), signals.terminate_as_interrupt(), signals.hold_until_epoch_end():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)


def test_submitit_preemption_signal_is_taken_over_and_hands_back_its_requeue(monkeypatch) -> None:
    """In a submitit SLURM job, SIGUSR2 (checkpoint, requeue) also stops the run; requeue calls submitit's handler."""
    calls = []
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append((signum, frame)))
    try:
        submitit_handler = signal.getsignal(signal.SIGUSR2)
        with pytest.raises(Terminated) as caught, signals.terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(5)
        assert calls == [] and signal.getsignal(signal.SIGUSR2) is submitit_handler
        assert caught.value.name == "SIGUSR2" and caught.value.requeue is not None
        caught.value.requeue()
        assert calls == [(signal.SIGUSR2, None)]
    finally:
        signal.signal(signal.SIGUSR2, previous)
