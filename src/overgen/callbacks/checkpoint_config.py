"""Stores the run's resolved config in every checkpoint, so a checkpoint rebuilds its run."""

from __future__ import annotations

import pytorch_lightning as pl

CHECKPOINT_KEY = "overgen"


class ConfigInCheckpoint(pl.Callback):
    """Adds ``checkpoint["overgen"] = {"config": yaml, "overrides": [...], "choices": {...}}``
    (plain strings, so checkpoints still load with ``weights_only=True``); ``choices`` are
    the config group choices (``model: dae_sym``, ...)."""

    def __init__(self, config_yaml: str, overrides: list[str],
                 choices: dict[str, str | None] | None = None) -> None:
        self.payload = {"config": config_yaml, "overrides": list(overrides),
                        "choices": {str(k): v if v is None else str(v)
                                    for k, v in (choices or {}).items()}}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(self.payload)
