"""A 4-job sweep on one machine: ``hydra/launcher=joblib`` (jobs side by side, each with its
share of the cores: ``overgen.utils.cpu.set_sweep_threads``) against Hydra's basic launcher
(the same jobs one after another), both as ``python train.py -m``, ``OMP_NUM_THREADS``
unset.

    OVERGEN_DATA_DIR=/work/shared/data python bench/sweep.py --steps 2000
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = "1,2,3,4"


def job_overrides(steps: int) -> list[str]:
    """Four rings2d jobs (seeds 1-4) of ``steps`` training steps, CPU, no figure."""
    return ["experiment=rings2d", "debug=cpu", "callbacks=none", "optimized_metric=null",
            f"trainer.max_steps={steps}", f"seed={SEEDS}"]


def time_sweep(launcher: list[str], steps: int) -> dict:
    """Wall seconds and exit code of ``python train.py -m <launcher> <job_overrides>``."""
    with tempfile.TemporaryDirectory() as logs:
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        env.update(OVERGEN_LOG_DIR=logs, WANDB_MODE="offline", WANDB_SILENT="true")
        cmd = [sys.executable, "train.py", "-m", *launcher, *job_overrides(steps)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    return {"command": shlex.join(["python", "train.py", "-m", *launcher,
                                   *job_overrides(steps)]),
            "seconds": seconds, "returncode": proc.returncode,
            "error": proc.stderr.strip().splitlines()[-1:] if proc.returncode else []}


def sweep_rows(steps: int) -> dict:
    """The sweep timed with each launcher (joblib first, then one after another)."""
    return {"joblib": time_sweep(["hydra/launcher=joblib"], steps),
            "sequential": time_sweep([], steps)}


def row(timing: dict, steps: int) -> str:
    """The RESULTS.md row: the joblib sweep's wall time against the jobs one at a time."""
    side, alone = timing["joblib"], timing["sequential"]
    failed = [f"{name} exit {t['returncode']}" for name, t in timing.items() if t["returncode"]]
    status = f" ({', '.join(failed)})" if failed else ""
    return (f"| 8 | 4-job sweep (`experiment=rings2d`, {steps:,} steps each, seeds "
            f"{SEEDS}), `hydra/launcher=joblib` (n_jobs -1: one job per core, torch threads "
            f"cores // jobs) | {side['seconds']:.0f} s{status} | the same jobs one after "
            f"another (basic launcher) {alone['seconds']:.0f} s | "
            f"{alone['seconds'] / side['seconds']:.2f}x | report |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="training steps per job")
    args = p.parse_args()
    timing = sweep_rows(args.steps)
    for name, t in timing.items():
        print(f"  {name}: {t['seconds']:.1f} s, exit {t['returncode']} {t['error']}")
    print(row(timing, args.steps))


if __name__ == "__main__":
    main()
