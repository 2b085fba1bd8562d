"""What every overgen LightningModule shares: the optimizer and the score interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class ScoringModule(pl.LightningModule):
    """Base LightningModule: ``optimizer`` is a partial (``_partial_: true``) called on the
    parameters; subclasses implement ``class_scores``."""

    num_classes: int

    def __init__(self, optimizer: OptimizerFactory | None = None) -> None:
        super().__init__()
        self.optimizer_factory = optimizer or torch.optim.Adam

    def class_scores(self, x: Tensor, threshold: float | None = None,
                     gate: bool = True) -> Tensor:
        """Final scores ``[B, C]`` that thresholds act on, as judged at ``threshold``.

        A model may pair settings with a threshold (the dAE's alpha) and, with ``gate``,
        skip costly work for samples that cannot reach it (their scores stay below it).
        """
        raise NotImplementedError

    def class_scores_at(self, x: Tensor, thresholds: Sequence[float]) -> list[Tensor]:
        """``[class_scores(x, threshold=t) for t in thresholds]``; models override it to
        share work between thresholds."""
        return [self.class_scores(x, threshold=t) for t in thresholds]

    def log_probs(self, x: Tensor) -> Tensor:
        """Unscaled class log-probabilities ``log y(x)``, ``[B, C]`` (differentiable)."""
        raise NotImplementedError

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
