"""Stop promptly on SIGTERM / SIGINT without losing or half-writing anything.

The handler only records the signal. Long loops call ``check()`` where their state is
whole (between training and test batches, per sample of the dAE's exact curvature, per
update of the fooling attack): it raises ``Stopped``, which the loop that has something
to save catches, saves and re-raises; the entry turns it into one line and exit code
128 + the signal (143 SIGTERM, 130 SIGINT). A second signal of the same kind ends the
process at once; one within ``SAME_SIGNAL_S`` of the first is the same signal reaching
the process twice (sent to a whole process group, e.g. Ctrl+C, and passed on by a DDP
job's or a sweep's first process) and is ignored.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import threading
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT)
SAME_SIGNAL_S = 1.0
_received: int | None = None
_received_at = 0.0


class Stopped(BaseException):
    """A stop signal arrived; ``saved`` says what was saved for the next run, if anything.
    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` swallows it."""

    def __init__(self, signum: int, saved: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.saved = int(signum), saved


def _record(signum: int, frame) -> None:
    global _received, _received_at
    now = time.monotonic()
    if _received != signum:
        _received, _received_at = signum, now
    elif now - _received_at > SAME_SIGNAL_S:  # a second one: end at once
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def install() -> None:
    """Record SIGTERM and SIGINT instead of dying. Only the main thread sets handlers (a
    job in a launcher's thread keeps the process's)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _record)


def requested() -> bool:
    """A stop signal arrived."""
    return _received is not None


def received() -> int | None:
    """The stop signal that arrived; None when none did."""
    return _received


def check(saved: str | None = None) -> None:
    """Raise ``Stopped(signal, saved)`` if a stop signal arrived."""
    if _received is not None:
        raise Stopped(_received, saved)


def _children() -> list[int]:
    """This process's child processes (Linux's ``/proc``; none where there is no such)."""
    pids: list[int] = []
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        with contextlib.suppress(OSError), open(path) as f:
            pids += [int(pid) for pid in f.read().split()]
    return pids


def _pass_on(signum: int, frame) -> None:
    for pid in _children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    _record(signum, frame)


def pass_on_to_children() -> None:
    """In a sweep's launching process (``overgen.utils.preflight.PassOnToWorkers``):
    SIGTERM / SIGINT go on to its child processes (``hydra/launcher=joblib``'s workers,
    whose jobs then stop as above; the launcher's helper processes ignore them) and are
    recorded, instead of ending the launcher alone and leaving the workers running."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _pass_on)
