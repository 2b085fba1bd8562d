"""The number of test images a run was judged on (``limit_test_batches`` shrinks it)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


class CountTestImages(pl.Callback):
    """``count``: the test samples seen, summed over the processes of a DDP run."""

    def __init__(self) -> None:
        self.count = 0
        self._local = 0

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._local = 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        self._local += len(batch[0])

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        total = trainer.strategy.reduce(torch.tensor(self._local, device=pl_module.device),
                                        reduce_op="sum")
        self.count = int(total)
