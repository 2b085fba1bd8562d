"""The fooling attack's progress bar (``fool(progress=...)``): updates done and the trials
fooled so far at each threshold."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from tqdm import tqdm

from overgen.attacks.fgn import NEVER, FoolingResult


class FoolingProgress:
    """A tqdm bar over ``max_steps`` updates, e.g. ``fooled 3/200 at 0.90, 0/200 at 0.99``.

    ``enabled=False`` (``trainer.enable_progress_bar=false``, DDP ranks other than 0) shows
    nothing; enabled, it shows only when ``file`` (stdout, as Lightning's bars) is a terminal
    (tqdm's ``disable=None``), so redirected logs and CI stay clean. A context manager: the
    bar closes when the attack ends or stops."""

    def __init__(self, thresholds: Sequence[float], max_steps: int, enabled: bool = True,
                 file: IO[str] | None = None) -> None:
        self.thresholds = list(thresholds)
        self.bar = tqdm(total=max_steps, desc="fooling", unit="update", dynamic_ncols=True,
                        file=file or sys.stdout, disable=None if enabled else True)

    def __call__(self, step: int, result: FoolingResult) -> None:
        if self.bar.disable:
            return
        fooled, n = (result.success != NEVER).sum(0).tolist(), len(result.success)
        counts = ", ".join(f"{k}/{n} at {t:.2f}" for t, k in zip(self.thresholds, fooled,
                                                                 strict=True))
        self.bar.set_postfix_str(f"fooled {counts}", refresh=False)
        self.bar.update(step - self.bar.n)

    def __enter__(self) -> FoolingProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
