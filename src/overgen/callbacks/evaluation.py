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

    def score_needs(self) -> ScoreNeeds:
        """The scores this callback reads from each test batch: none by default."""
        return {}
