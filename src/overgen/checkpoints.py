"""The checkpoint format: when checkpoints are written, what overgen adds to them (the
run's config, so a checkpoint rebuilds its run, and the random generators' state, so a
resume is exact) and how one is read back."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from overgen.errors import CheckpointError
from overgen.utils import rng

CHECKPOINT_KEY = "overgen"
RNG_KEY = "overgen_rng"

log = logging.getLogger(__name__)


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
    """Saves every DDP rank's random generators (``overgen.utils.rng``: torch's CPU and CUDA,
    numpy's, Python's) in each checkpoint, and restores each rank's own on resume: the
    dAE's training noise then continues as in an uninterrupted run. (Data order has its own
    seeded generator per epoch; see ``ResumableLoader``.) Every rank must save together
    (periodic checkpoints do; ``StopOnSignal`` stops all ranks after the same batch). A
    rank the checkpoint has no state of (more ranks now) restores rank 0's, with a
    warning; so do all ranks with checkpoints that kept rank 0's alone."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = {"ranks": rng.every_rank(rng.state())}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        saved = checkpoint.get(RNG_KEY)
        if saved is None:
            return
        ranks = saved.get("ranks", [saved])  # older checkpoints: rank 0's state alone
        rank = trainer.global_rank
        if rank >= len(ranks):
            log.warning("resume: the checkpoint keeps the random state of %d rank(s); rank "
                        "%d continues from rank 0's", len(ranks), rank)
        rng.set_state(ranks[rank] if rank < len(ranks) else ranks[0])


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
