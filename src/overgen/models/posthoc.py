"""Post-hoc scores of a trained classifier beside its final score (docs/method.md §6): read
from what ``test_step`` computes once per test batch, plus the Mahalanobis fit on the
training set's hidden layer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor

from overgen.scores import (
    class_moments,
    energy,
    mahalanobis,
    mahalanobis_fit,
    max_logit,
    max_softmax,
)


class FeatureFit(NamedTuple):
    """The Mahalanobis score's fit: ``means [K, H]`` of the training classes,
    ``precision [H, H]`` of their shared covariance (float64)."""

    means: Tensor
    precision: Tensor


def fit_features(hidden: Callable[[Tensor], Tensor], batches: Iterable[tuple[Tensor, Tensor]],
                 num_classes: int, reduce: Callable[[Tensor], Tensor] = lambda t: t) -> FeatureFit:
    """``mahalanobis_fit`` of ``hidden(x): [B, H]`` over ``batches`` of ``(x, y)``, without
    gradients; ``reduce`` sums each moment across DDP ranks (each rank has its shard)."""
    moments = None
    with torch.no_grad():
        for x, y in batches:
            batch = class_moments(hidden(x), y, num_classes)
            moments = batch if moments is None else [m + b for m, b in zip(moments, batch,
                                                                          strict=True)]
    return FeatureFit(*mahalanobis_fit(*(reduce(m) for m in moments)))


def posthoc_scores(logits: Tensor, probs: Tensor, hidden: Tensor | None,
                   fit: FeatureFit | None, reconstruction: Tensor | None = None
                   ) -> dict[str, Tensor]:
    """Every post-hoc score (``outputs.POSTHOC_SCORES``) the model has, ``[B]`` each, higher =
    more known: ``logits [B, U]`` (all output units), class probabilities ``probs [B, C]``,
    the hidden layer ``[B, H]`` (Mahalanobis, with its ``fit``) and the dAE's
    ``exp(-alpha e/D)`` ``[B]``; scores whose inputs are None are left out."""
    scores = {"msp": max_softmax(probs), "max_logit": max_logit(logits), "energy": energy(logits)}
    if hidden is not None and fit is not None:
        scores["mahalanobis"] = mahalanobis(hidden, *fit)
    if reconstruction is not None:
        scores["reconstruction"] = reconstruction
    return scores
