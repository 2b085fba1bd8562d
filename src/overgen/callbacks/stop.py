"""Stop at the first batch boundary after SIGTERM / SIGINT (``overgen.utils.stop``)."""

from __future__ import annotations

import pytorch_lightning as pl

from overgen.callbacks.checkpoint_config import PeriodicCheckpoint
from overgen.utils import stop


class StopOnSignal(pl.Callback):
    """After a training batch: writes ``last.ckpt`` for this step (through the run's
    ``PeriodicCheckpoint``, so ``resume=true`` continues from exactly here) and raises
    ``Stopped``. After a test batch: raises ``Stopped`` (``TestProgress`` saves the scored
    batches for the resumed evaluation). Costly scoring inside one batch checks on its
    own."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not stop.requested():
            return
        ckpt = trainer.checkpoint_callback
        path = ckpt.save_last_now(trainer) if isinstance(ckpt, PeriodicCheckpoint) else ""
        stop.check(f"{path} at training step {trainer.global_step}" if path else None)

    def on_test_batch_end(self, *args, **kwargs) -> None:
        stop.check()
