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
    own signal). Costly scoring inside one batch checks on its own. Under DDP it takes the
    signals back from Lightning when training and testing start (``_take_signals_back``)."""

    @staticmethod
    def _take_signals_back(trainer: pl.Trainer) -> None:
        """Under DDP, once the Trainer has set its handlers: SIGTERM / SIGINT recorded and
        passed on to this process's children (``stop.pass_on_to_children``), in place of
        Lightning's SIGTERM handler. That one broadcasts to the other ranks from inside the
        handler: a signal arriving while the main thread is in a collective (Lightning's
        own per-step broadcast) starts a second one and deadlocks the job (seen: rank 0 in
        the handler's broadcast, rank 1 in the gradients' all-reduce). The ranks agree on
        stopping after the batch instead (``any_rank_signal``)."""
        if trainer.world_size > 1:
            stop.pass_on_to_children()

    def on_train_start(self, trainer, pl_module) -> None:
        self._take_signals_back(trainer)

    def on_test_start(self, trainer, pl_module) -> None:
        self._take_signals_back(trainer)

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
    """Raises ``NonFiniteLossError`` naming the first step whose loss is not finite.

    The step's loss is kept (detached, on its device) in ``on_before_backward``, and the
    kept losses are checked together (one host sync) every ``check_every`` steps, before
    any checkpoint is written and when training ends: no sync per step (on a GPU each one
    stalls the queue of kernels; on a CPU the check's small ops cost a few percent of a
    small model's step). A non-finite loss is found at most ``check_every - 1`` steps late
    but always before a checkpoint after it is written, so the last checkpoint holds the
    last good weights; nothing is saved after it.
    """

    def __init__(self, checkpoint_dir: str | None = None, check_every: int = 50) -> None:
        self.checkpoint_dir, self.check_every = checkpoint_dir, check_every
        self.kept: list[tuple[int, int, int, torch.Tensor]] = []  # step, epoch, batch, loss

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self.kept.append((trainer.global_step, trainer.current_epoch,
                          trainer.fit_loop.epoch_loop.batch_idx, loss.detach()))
        if len(self.kept) >= self.check_every:
            self.check()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.check()

    def on_train_end(self, trainer, pl_module) -> None:
        self.check()

    def check(self) -> None:
        """Raise for the first non-finite loss kept since the last check."""
        kept, self.kept = self.kept, []
        if not kept:
            return
        finite = torch.isfinite(torch.stack([loss.reshape(()) for *_, loss in kept]))
        if bool(finite.all()):
            return
        step, epoch, batch, loss = kept[int((~finite).nonzero()[0])]
        last = os.path.join(self.checkpoint_dir or "", "last.ckpt")
        saved = (f"the last good checkpoint is {last}" if self.checkpoint_dir and
                 os.path.isfile(last) else "no checkpoint was written before it")
        raise NonFiniteLossError(
            f"training stopped: loss is {loss.item()} at step {step} (epoch {epoch}, batch "
            f"{batch}); {saved}. Lower model.optimizer.lr or check the data.")
