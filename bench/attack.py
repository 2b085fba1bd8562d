"""Fooling attack (``overgen.attacks.fool``): 200 trials batched against the same trials one
at a time, timed in the steady state, where every update also scores every trial; the
batched attack's FLOP/s against the machine's fp32 matrix-multiply rate, and where its
time goes (``torch.profiler``).

    python bench/attack.py --profile  # steady-state update vs torch.mm, per CPU-second
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from overgen.attacks import AttackSettings, fool, trial_targets
from overgen.attacks.fgn import frozen
from overgen.models import DAEClassifier
from overgen.networks import ConvDAE

ALPHA_AT = {0.9: 20.0, 0.99: 3.0}  # conf/model/dae_sym.yaml
PER_CPU = "steady-state update (200 random images), per CPU-second"

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


def steady_update(model, x: torch.Tensor) -> None:
    """One steady-state update's model work on the images ``x [N, 1, 28, 28]``: what
    ``fool`` runs per update once every trial is scored, the classifier's forward and
    input gradient (``log_probs_with_scorer``) and the scorer's decoder pass, for every
    trial at both default thresholds (``Gamma`` only where a decision needs it: none on
    random images, nor on the steady state of the trained models measured here, whose
    ``exp(-alpha e/D)`` keeps every trial below the thresholds)."""
    x = x.detach().requires_grad_(True)
    log_probs, scorer = model.log_probs_with_scorer(x)
    log_probs[:, 0].sum().backward()  # FlopCounterMode's hooks refuse autograd.grad here
    scorer(torch.arange(len(x)), AttackSettings().thresholds)


def update_flops(model, trials: int = TRIALS) -> float:
    """Convolution and matrix-product FLOPs per trial-update in the steady state
    (``steady_update`` of ``trials`` random images under PyTorch's ``FlopCounterMode``,
    forward and the input-gradient backward; element-wise work, pooling and the
    generators' update are not counted, as in bench/training.py's row 2)."""
    x = torch.rand(trials, 1, 28, 28, device=next(model.parameters()).device)
    with frozen(model), FlopCounterMode(display=False) as counter:
        steady_update(model, x)
    return counter.get_total_flops() / trials


def efficiency(fooling: dict, flops_per_update: float, peak: float) -> dict:
    """The batched attack's achieved FLOP/s (its steady-state trial-updates/s times
    ``flops_per_update``) and that as a fraction of ``peak`` (fp32 ``torch.mm`` FLOP/s)."""
    achieved = fooling["batched"] * flops_per_update
    return {"flops_per_update": flops_per_update, "achieved": achieved, "peak": peak,
            "fraction": achieved / peak}


def efficiency_row(eff: dict, measured: str = "batched, steady state") -> str:
    """The RESULTS.md row of ``efficiency`` (or ``cpu_side_by_side``: ``PER_CPU``)."""
    ok = "met" if eff["fraction"] >= 0.5 else "**not met**"
    return (f"| 4 | fooling on `dae_sym`, {measured}: achieved compute "
            f"({eff['flops_per_update'] / 1e6:.1f} MFLOP per trial-update: classifier "
            f"forward + input gradient, decoder) | {eff['achieved'] / 1e9:.1f} GFLOP/s | "
            f"fp32 mm {eff['peak'] / 1e9:.0f} GFLOP/s | {eff['fraction']:.2f} | >= 0.5 "
            f"({ok}) |")


def profile(model, trials: int = TRIALS, updates: int = 20) -> str:
    """``torch.profiler``'s per-op CPU time over ``updates`` ``steady_update`` calls of
    ``trials`` random images (the share of each op in the steady state)."""
    x = torch.rand(trials, 1, 28, 28)
    with frozen(model):
        steady_update(model, x)  # warm-up
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(updates):
                steady_update(model, x)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)


def cpu_side_by_side(model, rounds: int = 5, n: int = 4096) -> dict:
    """The steady-state update's rate against ``torch.mm``'s, both per CPU-second of this
    process (steadier than wall time on a shared machine), rounds interleaved, best of
    each: ``steady_update`` of ``TRIALS`` random images (the work does not depend on the
    weights or images while no ``Gamma`` is computed) and an n x n fp32 product."""
    x, a, b = torch.rand(TRIALS, 1, 28, 28), torch.randn(n, n), torch.randn(n, n)
    best = {"update_s": float("inf"), "mm_s": float("inf")}
    with frozen(model):
        steady_update(model, x)
        torch.mm(a, b)
        for _ in range(rounds):
            start = time.process_time()
            steady_update(model, x)
            best["update_s"] = min(best["update_s"], (time.process_time() - start) / TRIALS)
            start = time.process_time()
            torch.mm(a, b)
            best["mm_s"] = min(best["mm_s"], time.process_time() - start)
    flops = update_flops(model)
    return {**best, "flops_per_update": flops, "achieved": flops / best["update_s"],
            "peak": 2 * n**3 / best["mm_s"], "fraction": flops / best["update_s"] / (
                2 * n**3 / best["mm_s"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds, best kept")
    p.add_argument("--profile", action="store_true",
                   help="also print torch.profiler's per-op table of steady-state updates")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    model = DAEClassifier(ConvDAE(), alpha_at=ALPHA_AT)
    load0 = os.getloadavg()[0]
    side = cpu_side_by_side(model, args.rounds)
    print(f"torch threads {torch.get_num_threads()}; load average (1 min) at start / end: "
          f"{load0:.1f} / {os.getloadavg()[0]:.1f}; {side['update_s'] * 1e3:.3f} ms CPU "
          f"per trial-update")
    print(efficiency_row(side, PER_CPU))
    if args.profile:
        print(profile(model))


if __name__ == "__main__":
    main()
