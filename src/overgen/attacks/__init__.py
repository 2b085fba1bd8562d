"""Attacks on trained models; plain functions over ``class_scores`` / ``log_probs``."""

from overgen.attacks.fgn import FoolingResult, fool, frozen, init_trial, trial_targets

__all__ = ["FoolingResult", "fool", "frozen", "init_trial", "trial_targets"]
