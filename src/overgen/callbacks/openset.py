"""Open-set F-measure (docs/method.md §3, Fig. 4) and OOD metrics over the test set."""

from __future__ import annotations

import torch

from overgen.callbacks.evaluation import PosthocScores
from overgen.callbacks.thresholded import Thresholded
from overgen.metrics import (
    CatScores,
    ood_metrics,
    openness,
    openset_counts,
    openset_f1,
    openset_f1_perclass,
    oscr,
)
from overgen.models.base import ScoreNeeds, TestOutputs
from overgen.outputs import (
    OOD_NAMES,
    OOD_PREFIX,
    OPENSET_F1,
    OPENSET_F1_PERCLASS,
    OPENSET_KNOWN,
    OPENSET_OPENNESS,
    OPENSET_OSCR,
    OPENSET_PRECISION,
    OPENSET_RECALL,
    OPENSET_THRESHOLD,
    posthoc_key,
)


class OpenSet(Thresholded):
    """``openset/*`` from pooled counts at ``threshold`` (known digits: the datamodule's
    ``train_classes``; ``openset/f1_perclass`` with a misassigned known sample also an FN),
    ``openset/oscr`` (the area under the OSCR curve) and ``ood/*``: known vs unknown test
    samples ranked by the max final score, all of it judged with the alpha paired with
    ``threshold``; ``ood/<score>/*`` ranks them by each post-hoc score of the model.

    ``ood: true`` scores every sample in full (for the dAE: the curvature of every test
    image, costly with exact curvature on a CPU); ``false`` gates the curvature to samples
    that can pass the threshold (exact decisions, no ``ood/*``, no OSCR). ``ood/*`` and
    ``openset/oscr`` are ``None`` when every digit is known or when ``ood`` is off. The
    loggers get the measured values; the settings (``openset/known``, ``threshold``,
    ``openness``) only ``metrics.json``.
    """

    key = "callbacks.openset.threshold"

    def __init__(self, threshold: float = 0.99, ood: bool = True) -> None:
        super().__init__()
        self.threshold, self.ood = float(threshold), bool(ood)
        self.thresholds = [self.threshold]
        self.reads_posthoc = self.ood

    def score_needs(self) -> ScoreNeeds:
        return {self.threshold: self.ood}

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.known = list(trainer.datamodule.train_classes)
        self.outputs = CatScores().to(pl_module.device)
        self.posthoc = PosthocScores(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs: TestOutputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        self.outputs.update(outputs.scores[self.threshold], outputs.labels)
        self.posthoc.update(outputs)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        scores, labels = self.outputs.compute()
        tp, fp, fn = openset_counts(scores, labels, self.known, self.threshold)
        precision, recall, f1 = openset_f1(tp, fp, fn)
        k = len(self.known)
        in_dist = torch.isin(labels, torch.as_tensor(self.known, device=labels.device))
        ranked = self.ood and bool(in_dist.any()) and not bool(in_dist.all())
        measured = {
            OPENSET_F1: f1, OPENSET_PRECISION: precision, OPENSET_RECALL: recall,
            OPENSET_F1_PERCLASS: openset_f1_perclass(scores, labels, self.known, self.threshold),
            OPENSET_OSCR: oscr(scores, labels, self.known)[2] if ranked else None,
        }
        ood = ood_metrics(scores.max(-1).values, in_dist) if self.ood else dict.fromkeys(OOD_NAMES)
        measured.update({OOD_PREFIX + name: v for name, v in ood.items()})
        for score, ranks in self.posthoc.compute().items():
            measured.update({posthoc_key(OOD_PREFIX, score, name): v
                             for name, v in ood_metrics(ranks, in_dist).items()})
        # settings reach the loggers with the config (utils.loggers), not as metrics
        settings = {OPENSET_KNOWN: k, OPENSET_THRESHOLD: self.threshold,
                    OPENSET_OPENNESS: openness(k, trainer.datamodule.num_classes)}
        pl_module.log_dict({name: float(v) for name, v in measured.items() if v is not None})
        self.results = {**measured, **settings, "openset/known_classes": self.known,
                        "openset/tp": tp, "openset/fp": fp, "openset/fn": fn}
