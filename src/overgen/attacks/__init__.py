"""Attacks on trained models: plain functions over a model's score methods."""

from overgen.attacks.fgn import FoolingResult, fool, frozen, init_trial, trial_targets
from overgen.attacks.settings import AttackSettings

__all__ = ["AttackSettings", "FoolingResult", "fool", "frozen", "init_trial", "trial_targets"]
