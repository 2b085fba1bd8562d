"""The checkpoint format: when checkpoints are written, what overgen adds to them (the
run's config, so a checkpoint rebuilds its run, and the random generators' state, so a
resume is exact) and how one is read back."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from overgen.errors import CheckpointError

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


def load_checkpoint(path: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with clear errors for missing or foreign files."""
    if not os.path.isfile(path):
        raise CheckpointError(f"ckpt_path={path!r} does not exist (expected a .ckpt file "
                              "written by train.py, e.g. <run dir>/checkpoints/last.ckpt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise CheckpointError(f"ckpt_path={path!r} is not a readable checkpoint: "
                              f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or CHECKPOINT_KEY not in ckpt:
        raise CheckpointError(f"ckpt_path={path!r} is not an overgen checkpoint "
                              "(no state_dict or saved run config)")
    return ckpt
