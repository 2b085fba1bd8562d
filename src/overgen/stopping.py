"""Callbacks that end a run early and leave it resumable: at a stop signal (SIGTERM /
SIGINT, ``overgen.utils.stop``) and at a non-finite training loss."""

from __future__ import annotations

import os

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from overgen.checkpoints import PeriodicCheckpoint
from overgen.errors import NonFiniteLossError
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


class StopOnNonFiniteLoss(pl.Callback):
    """Raises ``NonFiniteLossError`` naming the step when the loss is not finite.

    Checked in ``on_before_backward``: the optimizer has not stepped, so the weights (and
    any checkpoint written so far) are the last good ones; nothing is saved after it.
    """

    def __init__(self, checkpoint_dir: str | None = None) -> None:
        self.checkpoint_dir = checkpoint_dir

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if torch.isfinite(loss).all():
            return
        last = os.path.join(self.checkpoint_dir or "", "last.ckpt")
        kept = (f"the last good checkpoint is {last}" if self.checkpoint_dir and
                os.path.isfile(last) else "no checkpoint was written before it")
        raise NonFiniteLossError(
            f"training stopped: loss is {loss.item()} at step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {trainer.fit_loop.epoch_loop.batch_idx}); "
            f"{kept}. Lower model.optimizer.lr or check the data.")
