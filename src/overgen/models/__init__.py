"""LightningModules. Every model answers ``class_scores(x, threshold=None) -> [B, C]``,
the final scores that thresholds act on; evaluation never asks which model it has."""

from overgen.models.base import ScoringModule
from overgen.models.classifier import Classifier
from overgen.models.dae import DAEClassifier
from overgen.models.deep_svdd import DeepSVDD
from overgen.models.ocsvm import OneClassSVMModel
from overgen.models.separate import SeparateDAEClassifier

__all__ = ["Classifier", "DAEClassifier", "DeepSVDD", "OneClassSVMModel", "ScoringModule",
           "SeparateDAEClassifier"]
