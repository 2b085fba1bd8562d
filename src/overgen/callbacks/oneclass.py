"""1-class ROC (docs/method.md §3, Fig. 5): the trained digit's final score ranks every test
image."""

from __future__ import annotations

import os

from overgen.callbacks.evaluation import Evaluation, PosthocScores
from overgen.errors import ConfigError
from overgen.metrics import CatScores, roc
from overgen.models.base import ScoreNeeds, TestOutputs
from overgen.outputs import (
    ONECLASS_AUROC,
    ONECLASS_DIGIT,
    ONECLASS_PREFIX,
    ONECLASS_ROC_FILE,
    ROC_FILE,
    posthoc_key,
)
from overgen.utils.io import atomic_write_json


class OneClass(Evaluation):
    """Scores every test image by ``class_scores(x)[:, d]`` (``d``: the one training digit;
    positives: test images of ``d``). ``oneclass/auroc``, ``oneclass/digit`` and the ROC
    curve ``{digit, auroc, fpr, tpr}`` in ``{output_dir}/{filename}``;
    ``oneclass/roc_file`` holds that file's name, relative to the run dir. Without positives
    or negatives (a truncated test set) there is no curve: both keys are ``None``.
    ``oneclass/<score>/auroc``: the same ranking by each post-hoc score of the model."""

    reads_posthoc = True

    def __init__(self, output_dir: str, filename: str = ROC_FILE) -> None:
        super().__init__()
        self.output_dir, self.filename = output_dir, filename

    def score_needs(self) -> ScoreNeeds:
        return {None: True}

    def setup(self, trainer, pl_module, stage: str) -> None:
        classes = list(trainer.datamodule.train_classes)
        if len(classes) != 1:
            raise ConfigError("data", f"train_classes={classes}",
                              "one training digit (data=mnist_oneclass data.digit=D)")
        self.digit = classes[0]

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.outputs = CatScores().to(pl_module.device)
        self.posthoc = PosthocScores(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs: TestOutputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        self.outputs.update(outputs.scores[None][:, self.digit], outputs.labels)
        self.posthoc.update(outputs)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        scores, labels = self.outputs.compute()
        positive = labels == self.digit
        self.results = {ONECLASS_AUROC: None, ONECLASS_DIGIT: self.digit,
                        ONECLASS_ROC_FILE: None}
        if positive.all() or not positive.any():  # a truncated test set (tiny runs)
            return
        fpr, tpr, auroc = roc(scores, positive)
        if trainer.is_global_zero:
            atomic_write_json(os.path.join(self.output_dir, self.filename), {
                "digit": self.digit, "auroc": auroc, "fpr": fpr.tolist(), "tpr": tpr.tolist()})
        posthoc = {posthoc_key(ONECLASS_PREFIX, score, "auroc"): roc(ranks, positive)[2]
                   for score, ranks in self.posthoc.compute().items()}
        pl_module.log_dict({ONECLASS_AUROC: auroc, **posthoc})  # the digit: in the loggers' config
        self.results.update({ONECLASS_AUROC: auroc, ONECLASS_ROC_FILE: self.filename, **posthoc})
