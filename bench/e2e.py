"""End-to-end wall time of ``python train.py ...`` runs (the reduced CPU grids), one each."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def runs() -> dict[str, list[str]]:
    """The three runs timed: rings2d default, one open-set run, one 1-class run (the
    latter two with ``dae_sym``, 1 epoch, Hutchinson curvature)."""
    short = ["model=dae_sym", "trainer.max_epochs=1", "model.curvature=hutchinson",
             "logger=csv"]
    return {
        "rings2d (50,000 steps)": ["experiment=rings2d"],
        "open set (K=3, 1 epoch)": ["experiment=openset", "+known=3",
                                    *short],
        "1-class (digit 0, 1 epoch)": ["experiment=oneclass",
                                       "data.digit=0", *short],
    }


def time_run(overrides: list[str], threads: int | None = None) -> dict:
    """Wall seconds and exit code of ``python train.py <overrides>``, run dirs in a temp dir,
    ``OMP_NUM_THREADS=threads`` when given."""
    with tempfile.TemporaryDirectory() as logs:
        env = {**os.environ, "OVERGEN_LOG_DIR": logs, "WANDB_MODE": "offline",
               "WANDB_SILENT": "true"}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, "train.py", *overrides]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:] if proc.returncode else []
    return {"command": shlex.join(["python", "train.py", *overrides]), "seconds": seconds,
            "returncode": proc.returncode, "error": "\n".join(tail)}
