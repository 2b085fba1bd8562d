"""``test/acc`` and ``test/acc@t``: thresholded accuracy on the final class scores."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from overgen.callbacks.thresholded import Thresholded
from overgen.metrics import ThresholdedAccuracy


def threshold_key(prefix: str, threshold: float) -> str:
    """``test/acc@0.90``-style metric names (two decimals)."""
    return f"{prefix}@{threshold:.2f}"


class TestAccuracy(Thresholded):
    """Plain and thresholded accuracy over the test set: ``class_scores_at`` gives the
    scores at every threshold (each with its paired alpha) in one pass. Plain accuracy
    reuses the argmax, which no per-sample confidence factor changes."""

    key = "callbacks.test_accuracy.thresholds"

    def __init__(self, thresholds: Sequence[float] = (0.90, 0.99)) -> None:
        self.thresholds = [float(t) for t in thresholds]
        self.results: dict[str, float] = {}

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.plain = ThresholdedAccuracy(0.0).to(pl_module.device)
        self.at = {t: ThresholdedAccuracy(t).to(pl_module.device) for t in self.thresholds}

    @torch.no_grad()
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        x, y = batch
        all_scores = pl_module.class_scores_at(x, self.thresholds)
        for scores, metric in zip(all_scores, self.at.values(), strict=True):
            metric.update(scores, y)
        self.plain.update(all_scores[-1] if all_scores else pl_module.class_scores(x), y)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        values = {"test/acc": self.plain.compute()}
        values.update({threshold_key("test/acc", t): m.compute() for t, m in self.at.items()})
        self.results = {k: float(v) for k, v in values.items()}
        pl_module.log_dict(values)
