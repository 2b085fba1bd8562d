"""Stores the run's resolved config in every checkpoint, so a checkpoint rebuilds its run."""

from __future__ import annotations

import pytorch_lightning as pl

CHECKPOINT_KEY = "overgen"


class ConfigInCheckpoint(pl.Callback):
    """Adds ``checkpoint["overgen"] = {"config": yaml, "overrides": [...]}`` (plain strings,
    so checkpoints still load with ``weights_only=True``)."""

    def __init__(self, config_yaml: str, overrides: list[str]) -> None:
        self.payload = {"config": config_yaml, "overrides": list(overrides)}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(self.payload)
