"""Callbacks that judge final scores at thresholds, and what they ask of the model first."""

from __future__ import annotations

import pytorch_lightning as pl

from overgen.callbacks.evaluation import Evaluation
from overgen.models.base import ScoringModule


class Thresholded(Evaluation):
    """Judges ``class_scores`` at ``thresholds``, set by the config key ``key``.

    ``check(model)`` refuses a model that cannot be judged there (``ConfigError``):
    ``overgen.tasks`` calls it before any work, ``setup`` again for Trainers built
    elsewhere.
    """

    key: str
    thresholds: list[float]

    def check(self, model: ScoringModule) -> None:
        model.check_thresholds(self.thresholds, self.key)

    def setup(self, trainer: pl.Trainer, pl_module: ScoringModule, stage: str) -> None:
        self.check(pl_module)
