"""A plain CNN rescaled by a separately trained dAE (docs/method.md §2, "keep the
autoencoder separate"): ``y~(x) = c(x) y_cnn(x)``, ``c`` from the dAE alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from overgen.models.base import NetworkConfig, Scorer, build_network, network_config
from overgen.models.dae import DAEClassifier
from overgen.scores import reconstruction_error


class SeparateDAEClassifier(DAEClassifier):
    """``classifier`` (a ``ConvClassifier``: logits, ``hidden``) beside ``network`` (a dAE
    with ``encode``/``decode``; its own classifier ``head`` is removed). The two share no
    parameter: training on ``CE(classifier(x_in), t) + lambda_rec * rec(dAE)`` in one loop
    is the same as training each alone (each loss's gradient reaches only its network; Adam
    is per parameter). Every score, threshold, alpha pairing and ``Gamma`` is
    ``DAEClassifier``'s, with ``y(x)`` from ``classifier`` and ``c(x)`` from the dAE.
    ``classifier_input``: what the CNN trains on (``clean``, as ``model=cnn``, unless set)."""

    def __init__(self, network: nn.Module | NetworkConfig,
                 classifier: nn.Module | NetworkConfig, classifier_input: str = "clean",
                 **kwargs: Any) -> None:
        super().__init__(network, classifier_input=classifier_input, **kwargs)
        del self.network.head  # the CNN classifies; an unused parameter would stall DDP
        self.classifier = build_network(classifier)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        config = network_config(self.classifier)
        if config is not None:
            checkpoint[self.CHECKPOINT_HYPER_PARAMS_KEY]["classifier"] = config

    def forward(self, x: Tensor) -> Tensor:
        """The CNN's logits ``[B, C]``."""
        return self.classifier(x)

    def hidden_layer(self) -> Callable[[Tensor], Tensor]:
        """The CNN's 400-d hidden layer (post-hoc scores read the classifier)."""
        return self.classifier.hidden

    def reconstruction_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The dAE's ``r(x)``, the CNN's logits and its hidden layer, one pass of each."""
        h = self.classifier.hidden(x)
        return self.reconstruct(x), self.classifier.head(h), h

    def ce_and_rec(self, x: Tensor, noisy: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The CNN's cross-entropy on ``x_in`` and the dAE's denoising loss."""
        rec = reconstruction_error(x, self.reconstruct(noisy)).mean()
        x_in = x if self.classifier_input == "clean" else noisy
        return F.cross_entropy(self.classifier(x_in), y), rec

    def log_probs_with_scorer(self, x: Tensor) -> tuple[Tensor, Scorer]:
        """``log y_cnn(x)`` and a ``Scorer`` that reuses it: scoring adds the dAE's pass
        (and ``Gamma`` where a wanted decision needs it)."""
        log_probs = self.log_probs(x)

        def scorer(index: Tensor, thresholds: Sequence[float],
                   wanted: Tensor | None = None) -> list[Tensor]:
            with torch.no_grad():
                xi = x[index].detach()
                e = reconstruction_error(xi, self.reconstruct(xi))
                return self._scores(xi, e, log_probs[index].detach().exp(), thresholds,
                                    [False] * len(thresholds), wanted)[0]

        return log_probs, scorer
