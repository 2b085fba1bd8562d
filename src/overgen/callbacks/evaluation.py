"""The base of evaluation callbacks: what they ask of each test batch, what they report."""

from __future__ import annotations

import pytorch_lightning as pl

from overgen.models.base import ScoreNeeds


class Evaluation(pl.Callback):
    """Reads the ``TestOutputs`` that the model's ``test_step`` returns (``outputs`` in
    ``on_test_batch_end``): the model scores each batch once, at the union of every
    callback's ``score_needs()``. ``results``: the flat entries it adds to
    ``metrics.json``."""

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
