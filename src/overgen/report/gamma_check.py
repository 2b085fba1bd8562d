"""Does ``gamma > 0`` ever occur on MNIST test images? Exact curvature of trained dAEs.

``Gamma = exp(-beta max(gamma, 0))`` is 1 wherever ``gamma <= 0``; where no test image has
``gamma > 0``, the curvature term changes no score. For each run dir with a dAE checkpoint,
the exact ``gamma`` of the first ``--images`` test images goes to ``<run dir>/gamma.json``.

``python -m overgen.report.gamma_check results/runs/ablation_* --images 100``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torchvision.datasets import MNIST

import overgen
from overgen.outputs import GAMMA_FILE, METRICS_FILE
from overgen.utils.io import atomic_write_json


def gamma_stats(gamma: torch.Tensor) -> dict:
    """``{images, positive, min, max, mean}`` of a ``[N]`` tensor of curvatures."""
    return {"images": int(gamma.numel()), "positive": int((gamma > 0).sum()),
            "min": float(gamma.min()), "max": float(gamma.max()), "mean": float(gamma.mean())}


def check(run_dir: Path, images: torch.Tensor) -> dict | None:
    """Exact ``gamma`` of ``images`` under the run's last checkpoint; None for non-dAEs."""
    model = overgen.load(str(run_dir / "checkpoints" / "last.ckpt"))
    if not hasattr(model, "curvature_method"):
        return None
    model.curvature_method = "exact"
    with torch.no_grad():
        gamma = model.curvature(images)
    return {**gamma_stats(gamma), "method": "exact", "test_images": "first N of MNIST test"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overgen.report.gamma_check")
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--data-dir", default=os.environ.get("OVERGEN_DATA_DIR", "data"))
    parser.add_argument("--redo", action="store_true", help="also runs with a gamma.json")
    args = parser.parse_args(argv)
    ds = MNIST(args.data_dir, train=False, download=False)
    images = ds.data[: args.images].unsqueeze(1).float() / 255.0
    for d in args.dirs:
        for ckpt in sorted(Path(d).rglob("checkpoints/last.ckpt")):
            run = ckpt.parent.parent
            if (run / GAMMA_FILE).exists() and not args.redo:
                continue
            if not (run / METRICS_FILE).exists():
                continue  # an unfinished run
            stats = check(run, images)
            if stats is not None:
                atomic_write_json(str(run / GAMMA_FILE), stats)
                print(run, stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
