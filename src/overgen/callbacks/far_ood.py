"""The MNIST test set vs far-OOD sets that need no download (docs/method.md §7)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor

from overgen.callbacks.evaluation import PosthocScores
from overgen.callbacks.thresholded import Thresholded
from overgen.data.far_ood import far_ood_images, load_fooling_images
from overgen.errors import ConfigError
from overgen.metrics import CatScores, ood_metrics
from overgen.models.base import ScoreNeeds, ScoringModule, TestOutputs
from overgen.outputs import FAR_OOD_NAMES, FAR_OOD_SETS, FINAL_SCORE, far_ood_key

log = logging.getLogger(__name__)

KEY = "callbacks.far_ood"


class RankedScores:
    """The max final score at ``threshold`` and the post-hoc scores of ``TestOutputs``,
    gathered over batches and DDP ranks; ``compute() -> ({score: [N]}, labels [N])`` with
    ``outputs.FINAL_SCORE`` first."""

    def __init__(self, threshold: float | None, device: torch.device) -> None:
        self.threshold = threshold
        self.final, self.posthoc = CatScores().to(device), PosthocScores(device)

    def update(self, outputs: TestOutputs) -> None:
        self.final.update(outputs.scores[self.threshold].amax(-1).double(), outputs.labels)
        self.posthoc.update(outputs)

    def compute(self) -> tuple[dict[str, Tensor], Tensor]:
        final, labels = self.final.compute()
        return {FINAL_SCORE: final, **self.posthoc.compute()}, labels


class FarOOD(Thresholded):
    """``ood/<set>/<score>/{auroc,fpr@95tpr}`` (``outputs.far_ood_key``): the test images of
    the training digits (known, positive) against each far-OOD set of ``sets``
    (``data.far_ood``: ``size`` images built from ``seed``; ``fooling``: every image of the
    file ``fooling_images`` a fooling run saved, skipped with a log line when it is null),
    ranked by the max final score at ``threshold`` (null: the model's own settings) and by
    each post-hoc score of the model.

    The far-OOD images are scored at test end through the model's ``score_seeded`` (what
    ``test_step`` returns, without its logging), a batch of ``data.eval_batch_size`` at a
    time, each DDP rank its share; the Mahalanobis fit of the test is reused. Every image is
    scored in full: with the dAE the curvature of every image, as costly as that many test
    images, so the callback is opt-in (``+callbacks/far_ood=default``)."""

    key = f"{KEY}.threshold"
    reads_posthoc = True

    def __init__(self, sets: Sequence[str] = FAR_OOD_SETS, size: int = 2000, seed: int = 0,
                 threshold: float | None = 0.99, fooling_images: str | None = None) -> None:
        unknown = [s for s in sets if s not in FAR_OOD_SETS]
        if not sets or unknown or len(set(sets)) != len(sets):
            raise ConfigError(f"{KEY}.sets", list(sets),
                              f"a non-empty list of distinct names of {list(FAR_OOD_SETS)}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"{KEY}.size", size, "a positive integer")
        if threshold is not None and not 0 < float(threshold) <= 1:
            raise ConfigError(f"{KEY}.threshold", threshold, "a number in (0, 1], or null")
        if fooling_images is not None and not os.path.isfile(fooling_images):
            raise ConfigError(f"{KEY}.fooling_images", fooling_images,
                              "null, or an existing file a fooling run saved "
                              "(fooling_images.npy in its run dir)")
        super().__init__()
        self.sets, self.size, self.seed = list(sets), size, seed
        self.threshold = None if threshold is None else float(threshold)
        self.thresholds = [] if threshold is None else [self.threshold]
        self.fooling_images = fooling_images

    def check(self, model: ScoringModule) -> None:
        if self.thresholds:
            super().check(model)

    def score_needs(self) -> ScoreNeeds:
        return {self.threshold: True}

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.known = RankedScores(self.threshold, pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs: TestOutputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        self.known.update(outputs)

    def _images(self, name: str, trainer: pl.Trainer) -> Tensor | None:
        """The far-OOD set ``name``, None for ``fooling`` without a file."""
        if name != "fooling":
            return far_ood_images(name, self.size, self.seed, trainer.datamodule.test_tensors[0])
        if self.fooling_images is None:
            log.info("far-OOD: skipping the fooling set: no %s.fooling_images given", KEY)
            return None
        return load_fooling_images(self.fooling_images)

    def _scored(self, images: Tensor, stream: int, trainer: pl.Trainer,
                pl_module: ScoringModule) -> dict[str, Tensor]:
        """Every score of this rank's share of ``images``, gathered over the ranks, scored
        like test batches (``ScoringModule.score_seeded``) in a random stream of their own."""
        ranked = RankedScores(self.threshold, pl_module.device)
        batch_size = getattr(trainer.datamodule, "eval_batch_size", 500)
        share = images[trainer.global_rank::trainer.world_size].split(batch_size)
        for i, x in enumerate(share):
            x = x.to(pl_module.device, pl_module.dtype)
            # label 0 stands in: the losses it feeds (``logged``, ~0.1% of the scoring) go unread
            y = torch.zeros(len(x), dtype=torch.long, device=pl_module.device)
            ranked.update(pl_module.score_seeded((x, y), i, stream))
        return ranked.compute()[0]

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        known, labels = self.known.compute()
        train_classes = torch.as_tensor(trainer.datamodule.train_classes, device=labels.device)
        known = {score: s[torch.isin(labels, train_classes)] for score, s in known.items()}
        measured = {}
        for stream, name in enumerate(self.sets, 1):
            images = self._images(name, trainer)
            if images is None:
                continue
            unknown = self._scored(images, stream, trainer, pl_module)
            for score, s in unknown.items():
                in_dist = torch.cat([torch.ones_like(known[score], dtype=torch.bool),
                                     torch.zeros_like(s, dtype=torch.bool)])
                ood = ood_metrics(torch.cat([known[score], s]), in_dist)
                measured.update({far_ood_key(name, score, n): ood[n] for n in FAR_OOD_NAMES})
        pl_module.log_dict({k: float(v) for k, v in measured.items() if v is not None})
        self.results = measured
