"""Plain CNN (omega = 1) and COOL (omega > 1) classifiers as one LightningModule."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from overgen.errors import ConfigError
from overgen.models.base import NetworkConfig, OptimizerFactory, ScoringModule, TestOutputs
from overgen.scores import cool_scores


def class_log_probs(logits: Tensor, omega: int) -> Tensor:
    """``log sum_j a_(k, j)``, ``[B, C]``: each class's softmax mass (the log softmax for
    omega = 1)."""
    return logits.log_softmax(-1).unflatten(-1, (-1, omega)).logsumexp(-1)


def cool_loss(logits: Tensor, y: Tensor, omega: int) -> Tensor:
    """Cross-entropy against the COOL target ``1/omega`` on each of the true class's omega
    units: ``-(1/omega) sum_j log a_(y, j)``, batch mean. ``omega = 1`` is plain CE."""
    logp = logits.log_softmax(-1).unflatten(-1, (-1, omega))
    return -logp[torch.arange(len(y)), y].mean(-1).mean()


class Classifier(ScoringModule):
    """``network: x -> logits [B, num_classes * omega]``; scores = COOL aggregation
    (``omega^omega prod_j a_(k,j)``), which for ``omega = 1`` is the softmax. A network
    that states its width (``num_outputs``) must have exactly ``num_classes * omega``."""

    def __init__(self, network: nn.Module | NetworkConfig,
                 optimizer: OptimizerFactory | None = None, omega: int = 1,
                 num_classes: int = 10) -> None:
        super().__init__(network, optimizer)
        if not isinstance(omega, int) or omega < 1:
            raise ConfigError("model.omega", omega, "a positive integer (1 = plain softmax)")
        width = getattr(network, "num_outputs", None)
        if width is not None and width != num_classes * omega:
            raise ConfigError("model.network.num_outputs", width,
                              f"model.num_classes * model.omega = {num_classes * omega} "
                              "(its default follows them)")
        self.save_hyperparameters(ignore=["network", "optimizer"])
        self.omega, self.num_classes = omega, num_classes

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def hidden_layer(self) -> Callable[[Tensor], Tensor] | None:
        """The network's ``hidden`` (``ConvClassifier``: the 400-d layer), if it has one."""
        return getattr(self.network, "hidden", None)

    def _logits_and_hidden(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """The logits and, where the network has one, its hidden layer, from one pass."""
        hidden = self.hidden_layer()
        if hidden is None:
            return self(x), None
        h = hidden(x)
        return self.network.head(h), h

    def class_scores(self, x: Tensor, threshold: float | None = None,
                     gate: bool = True) -> Tensor:
        return cool_scores(self(x), self.omega)

    def log_probs(self, x: Tensor) -> Tensor:
        """``class_log_probs`` of the logits."""
        return class_log_probs(self(x), self.omega)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y = batch
        loss = cool_loss(self(x), y, self.omega)
        self.log_train({"train/loss": loss})
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", cool_loss(self(x), y, self.omega), prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx: int) -> TestOutputs:
        """``test/loss`` and ``score_batch``, one forward pass."""
        x, y = batch
        outputs, logits = self._scored(x, y)
        self.log("test/loss", cool_loss(logits, y, self.omega), sync_dist=True)
        return outputs

    def score_batch(self, x: Tensor, y: Tensor) -> TestOutputs:
        """The batch's scores (alike at every threshold) and its post-hoc scores (MSP on the
        class probabilities, max logit and energy over all output units)."""
        return self._scored(x, y)[0]

    def _scored(self, x: Tensor, y: Tensor) -> tuple[TestOutputs, Tensor]:
        """``score_batch`` and the logits ``[B, U]`` it is computed from."""
        logits, h = self._logits_and_hidden(x)
        scores, probs = cool_scores(logits, self.omega), class_log_probs(logits, self.omega).exp()
        return TestOutputs(y, dict.fromkeys(self.score_needs, scores), probs,
                           posthoc=self.posthoc_for(logits, probs, h)), logits
