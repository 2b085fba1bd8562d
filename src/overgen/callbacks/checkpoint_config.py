"""Checkpoints: when they are written, and what overgen adds to them: the run's config (so
a checkpoint rebuilds its run) and the random generators' state (so a resume is exact)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

CHECKPOINT_KEY = "overgen"
RNG_KEY = "overgen_rng"


class ConfigInCheckpoint(pl.Callback):
    """Adds ``checkpoint["overgen"] = {"config": yaml, "overrides": [...], "choices": {...},
    "wandb_id": str | None}`` (plain strings, so checkpoints still load with
    ``weights_only=True``); ``choices`` are the config group choices (``model: dae_sym``)."""

    def __init__(self, config_yaml: str, overrides: list[str],
                 choices: dict[str, str | None] | None = None,
                 wandb_id: str | None = None) -> None:
        self.payload = {"config": config_yaml, "overrides": list(overrides),
                        "choices": {str(k): v if v is None else str(v)
                                    for k, v in (choices or {}).items()},
                        "wandb_id": wandb_id}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(self.payload)


class RngStateInCheckpoint(pl.Callback):
    """Saves torch's CPU (and CUDA) generator state in each checkpoint and restores it on
    resume: the dAE's training noise then continues as in an uninterrupted run. (Data
    order has its own seeded generator per epoch; see ``ResumableLoader``.)"""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get(RNG_KEY)
        if state is None:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class PeriodicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that, saving every ``every_n_train_steps``, also writes
    ``last.ckpt`` when training ends between two saves: ``last.ckpt`` always holds the
    final weights."""

    def on_train_end(self, trainer, pl_module) -> None:
        self.save_last_now(trainer)

    def save_last_now(self, trainer) -> str:
        """Write ``last.ckpt`` for the current step (with ``save_last``) unless it holds
        that step already; its path ("" when none is written)."""
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        return self.last_model_path
