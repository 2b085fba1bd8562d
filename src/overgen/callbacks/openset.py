"""Open-set F-measure (docs/method.md §3, Fig. 4) and OOD metrics over the test set."""

from __future__ import annotations

import torch

from overgen.callbacks.thresholded import Thresholded
from overgen.metrics import (
    CatScores,
    ood_metrics,
    openness,
    openset_counts,
    openset_f1,
)
from overgen.models.base import ScoreNeeds, TestOutputs
from overgen.outputs import (
    OOD_NAMES,
    OOD_PREFIX,
    OPENSET_F1,
    OPENSET_KNOWN,
    OPENSET_OPENNESS,
    OPENSET_THRESHOLD,
)


class OpenSet(Thresholded):
    """``openset/*`` from pooled counts at ``threshold`` (known digits: the datamodule's
    ``train_classes``) and ``ood/*``: known vs unknown test samples ranked by the max final
    score, all of it judged with the alpha paired with ``threshold``.

    ``ood: true`` scores every sample in full (for the dAE: the curvature of every test
    image, costly with exact curvature on a CPU); ``false`` gates the curvature to samples
    that can pass the threshold (exact decisions, no ``ood/*``). ``ood/*`` is ``None``
    when every digit is known or when ``ood`` is off. The loggers get the measured values;
    the settings (``openset/known``, ``threshold``, ``openness``) only ``metrics.json``.
    """

    key = "callbacks.openset.threshold"

    def __init__(self, threshold: float = 0.99, ood: bool = True) -> None:
        super().__init__()
        self.threshold, self.ood = float(threshold), bool(ood)
        self.thresholds = [self.threshold]

    def score_needs(self) -> ScoreNeeds:
        return {self.threshold: self.ood}

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.known = list(trainer.datamodule.train_classes)
        self.outputs = CatScores().to(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs: TestOutputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        self.outputs.update(outputs.scores[self.threshold], outputs.labels)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        scores, labels = self.outputs.compute()
        tp, fp, fn = openset_counts(scores, labels, self.known, self.threshold)
        precision, recall, f1 = openset_f1(tp, fp, fn)
        in_dist = torch.isin(labels, torch.as_tensor(self.known, device=labels.device))
        ood = ood_metrics(scores.max(-1).values, in_dist) if self.ood else dict.fromkeys(OOD_NAMES)
        measured = {OPENSET_F1: f1, "openset/precision": precision, "openset/recall": recall,
                    **{OOD_PREFIX + name: v for name, v in ood.items()}}
        # settings reach the loggers with the config (utils.loggers), not as metrics
        settings = {OPENSET_KNOWN: len(self.known), OPENSET_THRESHOLD: self.threshold,
                    OPENSET_OPENNESS: openness(len(self.known), trainer.datamodule.num_classes)}
        pl_module.log_dict({name: float(v) for name, v in measured.items() if v is not None})
        self.results = {**measured, **settings, "openset/known_classes": self.known,
                        "openset/tp": tp, "openset/fp": fp, "openset/fn": fn}
