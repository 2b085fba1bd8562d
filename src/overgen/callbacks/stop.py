"""Stop at the first batch boundary after SIGTERM / SIGINT (``overgen.utils.stop``)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from overgen.callbacks.checkpoint_config import PeriodicCheckpoint
from overgen.utils import stop


def any_rank_signal(trainer: pl.Trainer) -> int | None:
    """The stop signal this process or any other DDP rank received, the same answer on
    every rank (an all-reduce under DDP); None when none did."""
    signum = stop.received() or 0
    if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
        agreed = torch.tensor([signum], device=trainer.strategy.root_device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
        signum = int(agreed.item())
    return signum or None


class StopOnSignal(pl.Callback):
    """After a training batch: when any rank received a stop signal (``any_rank_signal``:
    all ranks stop after the same batch, so their checkpoint is saved together), writes
    ``last.ckpt`` for this step (through the run's ``PeriodicCheckpoint``, so
    ``resume=true`` continues from exactly here) and raises ``Stopped``. After a test
    batch: raises ``Stopped`` (``TestProgress`` saves the scored batches for the resumed
    evaluation; ranks may hold different numbers of test batches, so each stops on its
    own signal). Costly scoring inside one batch checks on its own."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        signum = any_rank_signal(trainer)
        if signum is None:
            return
        ckpt = trainer.checkpoint_callback
        path = ckpt.save_last_now(trainer) if isinstance(ckpt, PeriodicCheckpoint) else ""
        raise stop.Stopped(signum, f"{path} at training step {trainer.global_step}"
                           if path else None)

    def on_test_batch_end(self, *args, **kwargs) -> None:
        stop.check()
