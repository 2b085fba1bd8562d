"""Stop promptly on SIGTERM / SIGINT without losing or half-writing anything.

The handler only records the signal. Long loops call ``check()`` where their state is
whole (between training and test batches, per sample of the dAE's exact curvature, per
update of the fooling attack): it raises ``Stopped``, which the loop that has something
to save catches, saves and re-raises; the entry turns it into one line and exit code
128 + the signal (143 SIGTERM, 130 SIGINT). A second signal of the same kind ends the
process at once.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: int | None = None


class Stopped(BaseException):
    """A stop signal arrived; ``saved`` says what was saved for the next run, if anything.
    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` swallows it."""

    def __init__(self, signum: int, saved: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.saved = int(signum), saved


def _record(signum: int, frame) -> None:
    global _received
    _received = signum
    signal.signal(signum, signal.SIG_DFL)


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
