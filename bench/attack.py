"""Fooling attack (``overgen.attacks.fool``): 200 trials batched against the same trials one
at a time, timed in the steady state, where every update also scores every trial."""

from __future__ import annotations

import time

import torch

from overgen.attacks import AttackSettings, fool, trial_targets

TRIALS, FULL_STEPS = 200, 10_000


def timed_attack(model, trials: list[int], steps: int, parametrization: str,
                 device: str = "cpu") -> dict:
    """Attack ``trials`` (of the 20 x 10 digit-major set) together for ``steps`` updates.
    Returns the time stamp of every update (taken as ``fool`` asks the model for
    ``log_probs_with_scorer``, once per update), the rows scored after each update, the
    trials alive at each update, and the whole call's seconds."""
    targets = trial_targets(range(10), TRIALS // 10)
    stamps, scored = [], []
    inner = model.log_probs_with_scorer

    def stamped(x):
        if x.is_cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        scored.append(0)
        log_probs, scorer = inner(x)

        def counted(index, thresholds, wanted=None):
            scored[-1] += len(index)
            return scorer(index, thresholds, wanted)

        return log_probs, counted

    model.log_probs_with_scorer = stamped
    start = time.perf_counter()
    try:
        result = fool(model, targets[trials], trials=trials,
                      settings=AttackSettings(max_steps=steps, parametrization=parametrization),
                      device=device)
    finally:
        del model.log_probs_with_scorer
    alive = [(result.steps >= i).sum().item() for i in range(1, steps + 1)]
    return {"stamps": stamps, "scored": scored, "alive": alive,
            "seconds": time.perf_counter() - start}


def window_rate(runs: list[dict], window: int) -> tuple[float, float]:
    """Trial-updates per second over the last ``window`` updates of each run (summed), and
    the mean rows scored per update there."""
    updates = seconds = scored = 0.0
    for run in runs:
        stamps = run["stamps"]
        seconds += stamps[-1] - stamps[-1 - window]
        updates += sum(run["alive"][-window:])
        scored += sum(run["scored"][-window:]) / window
    return updates / seconds, scored / len(runs)


def attack_rows(model, steps: int, single: int, device: str = "cpu") -> dict:
    """The 200 trials batched (rank-1 generators) and ``single`` of them one at a time
    (rank-1 and ``nn.Linear`` generators), ``steps`` updates each, rates over the last
    fifth of the updates (the steady state: on a model that is not fooled, every trial's
    ``y_t`` has passed the thresholds by then and it is scored after every update). The full
    200-trial, 10,000-update attack's wall time: the measured ``steps`` updates plus the
    rest at the steady-state rate (the worst case: no trial fooled, the batch never
    shrinks)."""
    window = max(1, steps // 5)
    torch.manual_seed(0)
    batched = timed_attack(model, list(range(TRIALS)), steps, "rank1", device)
    some = list(range(0, TRIALS, TRIALS // single))
    alone = {g: [timed_attack(model, [i], steps, g, device) for i in some]
             for g in ("rank1", "linear")}
    rate, scored = window_rate([batched], window)
    per_update = (batched["stamps"][-1] - batched["stamps"][-1 - window]) / window
    return {"batched": rate, "scored": scored, "steps": steps, "window": window,
            "alone": {g: window_rate(runs, window)[0] for g, runs in alone.items()},
            "single": single,
            "full_attack_s": batched["seconds"] + (FULL_STEPS - steps) * per_update}
