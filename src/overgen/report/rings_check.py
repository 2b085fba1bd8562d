"""Fig. 2's claim on a trained rings model: the confidence ``c(x)`` is high on the rings and
low at their centres (where ``gamma > 0`` makes ``Gamma`` small) and far away. Writes
``<run dir>/rings_check.json``, which ``overgen.report.summary`` reads.

``python -m overgen.report.rings_check results/runs/rings2d/runs/<time>``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import overgen
from overgen.data.rings import sample_rings
from overgen.outputs import RINGS_CHECK_FILE
from overgen.utils.io import atomic_write_json

CENTRES = ((-1.0, 1.0), (1.0, 1.0), (1.0, -1.0))  # the three rings' centres (data/rings.py)
FAR = ((-1.0, -1.0), (2.5, 2.5), (0.0, 0.0), (-2.0, 2.0))  # points away from every ring


def check(model, samples: int = 1000, seed: int = 0) -> dict:
    """``c(x)`` and ``gamma`` of ``model`` on ``samples`` fresh ring points (``seed``), at
    the centres and at the far points."""
    torch.manual_seed(seed)
    on_rings = sample_rings(samples)[0]
    centres, far = torch.tensor(CENTRES), torch.tensor(FAR)
    with torch.no_grad():
        c, gamma = model.confidence(on_rings), model.curvature(on_rings)
        return {
            "ring_samples": samples,
            "c_rings_median": float(c.median()), "c_rings_p10": float(c.quantile(0.1)),
            "gamma_rings_positive": float((gamma > 0).float().mean()),
            "c_centres": model.confidence(centres).tolist(),
            "gamma_centres": model.curvature(centres).tolist(),
            "c_far": model.confidence(far).tolist(), "far_points": [list(p) for p in FAR]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overgen.report.rings_check")
    parser.add_argument("run_dir", help="a rings2d run dir with checkpoints/last.ckpt")
    args = parser.parse_args(argv)
    run = Path(args.run_dir)
    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        print(f"error: run_dir={args.run_dir}: no checkpoints/last.ckpt there", file=sys.stderr)
        return 2
    result = check(overgen.load(str(ckpt)))
    atomic_write_json(str(run / RINGS_CHECK_FILE), result)
    print(run / RINGS_CHECK_FILE, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
