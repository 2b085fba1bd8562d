"""Evaluation callbacks: thin, they call ``overgen.metrics`` / ``figures`` on the model's scores.

Each ``Evaluation`` reads the ``TestOutputs`` that the model's ``test_step`` returns (every
test batch is scored once, for what all of them ask in ``score_needs``); its ``results``
dict (flat keys, ``overgen.outputs``) is merged into the run's ``metrics.json``.
"""

from overgen.callbacks.accuracy import TestAccuracy
from overgen.callbacks.evaluation import Evaluation
from overgen.callbacks.far_ood import FarOOD
from overgen.callbacks.fooling import FoolingAttack
from overgen.callbacks.oneclass import OneClass
from overgen.callbacks.openset import OpenSet
from overgen.callbacks.rings_figure import RingsFigure

__all__ = ["Evaluation", "FarOOD", "FoolingAttack", "OneClass", "OpenSet", "RingsFigure",
           "TestAccuracy"]
