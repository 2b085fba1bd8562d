"""Evaluation callbacks: thin, they call ``overgen.scores`` / ``metrics`` / ``figures``.

A callback's ``results`` dict (flat keys) is merged into the run's ``metrics.json``.
"""

from overgen.callbacks.accuracy import TestAccuracy
from overgen.callbacks.checkpoint_config import ConfigInCheckpoint, RngStateInCheckpoint
from overgen.callbacks.finite_loss import StopOnNonFiniteLoss
from overgen.callbacks.fooling import FoolingAttack
from overgen.callbacks.oneclass import OneClass
from overgen.callbacks.openset import OpenSet
from overgen.callbacks.rings_figure import RingsFigure

__all__ = ["ConfigInCheckpoint", "FoolingAttack", "OneClass", "OpenSet", "RingsFigure",
           "RngStateInCheckpoint", "StopOnNonFiniteLoss", "TestAccuracy"]
