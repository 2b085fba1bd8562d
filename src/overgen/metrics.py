"""Metrics as pure functions of ``(scores, labels)`` plus DDP-safe torchmetrics wrappers.

``scores: [N, C]`` are a model's final class scores; ``labels: [N]`` true digits.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


def thresholded_correct(scores: Tensor, labels: Tensor, threshold: float = 0.0) -> Tensor:
    """``[N] bool``: argmax right **and** its score ``>= threshold`` (SPEC.md §3, Table I)."""
    best, pred = scores.max(-1)
    return (pred == labels) & (best >= threshold)


def thresholded_accuracy(scores: Tensor, labels: Tensor, threshold: float = 0.0) -> float:
    """Fraction of ``thresholded_correct``; ``threshold = 0`` is the plain accuracy."""
    return thresholded_correct(scores, labels, threshold).float().mean().item()


class ThresholdedAccuracy(Metric):
    """Streaming ``thresholded_accuracy``; counts are summed across DDP ranks."""

    full_state_update = False

    def __init__(self, threshold: float = 0.0) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, scores: Tensor, labels: Tensor) -> None:
        self.correct += thresholded_correct(scores, labels, self.threshold).sum()
        self.total += labels.numel()

    def compute(self) -> Tensor:
        return self.correct.float() / self.total.clamp(min=1)
