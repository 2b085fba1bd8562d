"""Evaluation callbacks: thin, they call ``overgen.scores`` / ``metrics`` / ``figures``.

A callback's ``results`` dict (flat keys) is merged into the run's ``metrics.json``.
"""

from overgen.callbacks.accuracy import TestAccuracy
from overgen.callbacks.checkpoint_config import ConfigInCheckpoint
from overgen.callbacks.rings_figure import RingsFigure

__all__ = ["ConfigInCheckpoint", "RingsFigure", "TestAccuracy"]
