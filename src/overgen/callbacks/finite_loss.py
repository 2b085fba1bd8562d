"""Stops training at the first NaN or infinite loss, before it reaches the weights."""

from __future__ import annotations

import os

import pytorch_lightning as pl
import torch

from overgen.errors import NonFiniteLossError


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
