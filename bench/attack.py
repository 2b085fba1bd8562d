"""Fooling attack (``overgen.attacks.fool``): batched trials against one trial at a time."""

from __future__ import annotations

import time

from overgen.attacks import fool, frozen, trial_targets

TRIALS, FULL_STEPS = 200, 10_000


def updates_per_second(model, trials: list[int], steps: int, batched: bool,
                       generator: str = "rank1") -> float:
    """Trial-updates per second over at most ``steps`` updates of ``trials`` (of the
    20 x 10 digit-major set), all in one batch or one call per trial; ``generator`` is
    ``fool``'s (``rank1``: 784-d state; ``linear``: one ``nn.Linear`` + Adam per trial)."""
    targets = trial_targets(range(10), TRIALS // 10)
    groups = [trials] if batched else [[i] for i in trials]
    start, updates = time.perf_counter(), 0
    with frozen(model):
        for group in groups:
            result = fool(model.class_scores, model.log_probs, targets[group], trials=group,
                          max_steps=steps, generator=generator)
            updates += int(result.steps.sum())
    return updates / (time.perf_counter() - start)


def attack_rows(model, steps: int, single: int) -> dict:
    """Updates/s of the 200 trials batched (rank-1 generators) and of ``single`` of them one
    at a time (rank-1 and ``nn.Linear`` generators), each up to ``steps`` updates (fooled
    trials stop early and count their own updates); the full 200-trial, 10,000-update
    attack's wall time extrapolated from the batched rate (the worst case: no trial
    fooled, the batch never shrinks)."""
    batched = updates_per_second(model, list(range(TRIALS)), steps, batched=True)
    some = list(range(0, TRIALS, TRIALS // single))
    alone = {g: updates_per_second(model, some, steps, batched=False, generator=g)
             for g in ("rank1", "linear")}
    return {"batched": batched, "alone": alone, "steps": steps, "single": single,
            "full_attack_s": TRIALS * FULL_STEPS / batched}
