"""Deep SVDD (Ruff et al., ICML 2018), its one-class objective, as a 1-class baseline
(docs/method.md §2): a bias-free network pulls the training digit's embeddings towards a
fixed centre ``c``; the score is the negative squared distance to ``c``."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from overgen.errors import ConfigError
from overgen.models.base import (
    FittedBuffers,
    NetworkConfig,
    OptimizerFactory,
    ScoringModule,
    training_columns,
)
from overgen.scores import svdd_centre, svdd_distance

log = logging.getLogger(__name__)


class DeepSVDD(FittedBuffers, ScoringModule):
    """One-class Deep SVDD over ``network: x -> phi(x) [B, H]`` without bias terms.

    At the start of training ``c`` is fixed to the mean of ``phi`` over the training images
    under the initial weights, coordinates within ``eps`` of 0 moved to ``+-eps``
    (``scores.svdd_centre``); it is a buffer, so checkpoints carry it. Loss: the batch mean
    of ``||phi(x) - c||^2``; the weight decay is the optimizer's. ``class_scores: [B, C]``:
    ``-||phi(x) - c||^2`` in the training class's column, ``-inf`` elsewhere. Not
    probabilities: ranking callbacks only; thresholds and the fooling attack are refused.
    """

    probabilistic = False

    def __init__(self, network: nn.Module | NetworkConfig,
                 optimizer: OptimizerFactory | None = None, eps: float = 0.1,
                 num_classes: int = 10) -> None:
        super().__init__(network, optimizer)
        biased = [name for name, _ in self.network.named_parameters()
                  if name.rpartition(".")[2] == "bias"]
        if biased:
            raise ConfigError("model.network", type(self.network).__name__,
                              f"a network without bias terms (Deep SVDD); has {biased}")
        if not isinstance(eps, (int, float)) or eps <= 0:
            raise ConfigError("model.eps", eps, "a positive number")
        self.save_hyperparameters(ignore=["network", "optimizer"])
        self.eps, self.num_classes = eps, num_classes
        self.register_buffer("centre", torch.empty(0))
        self.register_buffer("train_classes", torch.empty(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        """The embedding ``phi(x)``, ``[B, H]``."""
        return self.network(x)

    def fit_centre(self, datamodule: pl.LightningDataModule) -> None:
        """``c`` from one pass over the training loader (the current weights, no
        gradients; summed across DDP ranks when a trainer is attached), and the training
        classes."""
        reduce = (self.trainer.strategy.reduce if self._trainer is not None
                  else lambda t, reduce_op: t)
        datamodule.setup("fit")
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in datamodule.train_dataloader():
                x, _ = datamodule.on_after_batch_transfer([t.to(self.device) for t in batch], 0)
                total = total + self(x).double().sum(0)
                count += len(x)
        total = reduce(total, reduce_op="sum")
        count = reduce(torch.tensor(count, dtype=torch.float64, device=self.device),
                       reduce_op="sum")
        mean = total / count
        self.centre = svdd_centre(mean, self.eps).float()
        self.train_classes = torch.tensor(list(datamodule.train_classes), device=self.device)
        log.info("deep_svdd: centre fixed from %d training images, %d of %d coordinates "
                 "moved to +-%g", int(count), int((mean.abs() < self.eps).sum()),
                 len(mean), self.eps)

    def on_train_start(self) -> None:
        """Fix ``c`` once, before the first update (a resumed run keeps its checkpoint's)."""
        super().on_train_start()
        if not len(self.centre):
            self.fit_centre(self.trainer.datamodule)

    def distance(self, x: Tensor) -> Tensor:
        """``||phi(x) - c||^2``, ``[B]``."""
        if not len(self.centre):
            raise RuntimeError("DeepSVDD has no centre: train it (fit_centre) or load a "
                               "checkpoint's state_dict first")
        return svdd_distance(self(x), self.centre)

    def loss(self, x: Tensor) -> Tensor:
        """The one-class objective without its weight decay: ``mean_b ||phi(x_b) - c||^2``."""
        return self.distance(x).mean()

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, _ = batch
        loss = self.loss(x)
        self.log_train({"train/loss": loss})
        return loss

    def class_scores(self, x: Tensor, threshold: float | None = None,
                     gate: bool = True) -> Tensor:
        """``-||phi(x) - c||^2`` in the training class's column, ``-inf`` elsewhere."""
        return training_columns(-self.distance(x), self.train_classes, self.num_classes)
