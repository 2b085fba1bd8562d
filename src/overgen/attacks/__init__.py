"""Attacks on trained models: plain functions over a model's score methods."""

from overgen.attacks.fgn import FoolingResult, fool, frozen, init_trial, trial_targets

__all__ = ["FoolingResult", "fool", "frozen", "init_trial", "trial_targets"]
