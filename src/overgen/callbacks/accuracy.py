"""``test/acc`` and ``test/acc@t``: thresholded accuracy on the final class scores."""

from __future__ import annotations

from collections.abc import Sequence

from overgen.callbacks.thresholded import Thresholded
from overgen.metrics import ThresholdedAccuracy
from overgen.models.base import ScoreNeeds, TestOutputs
from overgen.outputs import TEST_ACC, threshold_key


class TestAccuracy(Thresholded):
    """Plain and thresholded accuracy over the test set, on the scores at every threshold
    (each with its paired alpha; decisions only, no full scores). Plain accuracy reuses
    the last threshold's argmax, which no per-sample confidence factor changes (with no
    threshold: the scores in full)."""

    key = "callbacks.test_accuracy.thresholds"

    def __init__(self, thresholds: Sequence[float] = (0.90, 0.99)) -> None:
        super().__init__()
        self.thresholds = [float(t) for t in thresholds]

    def score_needs(self) -> ScoreNeeds:
        return dict.fromkeys(self.thresholds, False) if self.thresholds else {None: True}

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.plain = ThresholdedAccuracy(0.0).to(pl_module.device)
        self.at = {t: ThresholdedAccuracy(t).to(pl_module.device) for t in self.thresholds}

    def on_test_batch_end(self, trainer, pl_module, outputs: TestOutputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        for t, metric in self.at.items():
            metric.update(outputs.scores[t], outputs.labels)
        plain = outputs.scores[self.thresholds[-1] if self.thresholds else None]
        self.plain.update(plain, outputs.labels)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        values = {TEST_ACC: self.plain.compute()}
        values.update({threshold_key(TEST_ACC, t): m.compute() for t, m in self.at.items()})
        self.results = {k: float(v) for k, v in values.items()}
        pl_module.log_dict(values)
