"""The base of evaluation callbacks: what they ask of each test batch, what they report."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor

from overgen.metrics import CatScores
from overgen.models.base import ScoreNeeds, TestOutputs
from overgen.outputs import POSTHOC_SCORES


class Evaluation(pl.Callback):
    """Reads the ``TestOutputs`` that the model's ``test_step`` returns (``outputs`` in
    ``on_test_batch_end``): the model scores each batch once, at the union of every
    callback's ``score_needs()``, and computes the post-hoc scores where any callback
    ``reads_posthoc``. ``results``: the flat entries it adds to ``metrics.json``."""

    reads_posthoc = False

    def __init__(self) -> None:
        self.results: dict = {}
        # the training steps behind the model under test: ``trainer.global_step`` after a
        # fit; evaluate.py sets the checkpoint's (its test-only trainer has counted none)
        self.trained_steps: int | None = None

    def steps(self, trainer: pl.Trainer) -> int:
        """The training steps behind the tested model."""
        return trainer.global_step if self.trained_steps is None else self.trained_steps

    def score_needs(self) -> ScoreNeeds:
        """The scores this callback reads from each test batch: none by default."""
        return {}


class PosthocScores:
    """``TestOutputs.posthoc`` gathered over batches and DDP ranks, in the rank order of a
    ``CatScores`` fed the same batches; ``compute() -> {name: [N]}`` (float64), ``{}``
    for a model without post-hoc scores."""

    def __init__(self, device: torch.device) -> None:
        self.names: list[str] = []
        self.scores = CatScores().to(device)

    def update(self, outputs: TestOutputs) -> None:
        if outputs.posthoc:
            self.names = [n for n in POSTHOC_SCORES if n in outputs.posthoc]
            stacked = torch.stack([outputs.posthoc[n].double() for n in self.names], -1)
            self.scores.update(stacked, outputs.labels)

    def compute(self) -> dict[str, Tensor]:
        if not self.names:
            return {}
        return dict(zip(self.names, self.scores.compute()[0].unbind(-1), strict=True))
