"""Fig. 2's claim on the trained rings model: confidence high on the rings, low at their
centres (where gamma > 0 makes Gamma small) and far away.

    python results/rings_check.py results/runs/rings2d/runs/<time>
"""

import sys

import torch

import overgen
from overgen.data.rings import sample_rings

torch.manual_seed(0)
model = overgen.load(f"{sys.argv[1]}/checkpoints/last.ckpt")
on_rings = sample_rings(1000)[0]
centres = torch.tensor([[-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
far = torch.tensor([[-1.0, -1.0], [2.5, 2.5], [0.0, 0.0], [-2.0, 2.0]])
c = model.confidence(on_rings)
print(f"c(x) on 1,000 ring samples: median {c.median():.3f}, 10th percentile {c.quantile(0.1):.3f}")
print("c(x) at the centres:", [round(v, 3) for v in model.confidence(centres).tolist()])
print("gamma at the centres:", [round(v, 3) for v in model.curvature(centres).tolist()])
print("c(x) far away (-1,-1) (2.5,2.5) (0,0) (-2,2):",
      [round(v, 3) for v in model.confidence(far).tolist()])
positive = (model.curvature(on_rings[:200]) > 0).float().mean()
print(f"share of 200 ring samples with gamma > 0: {positive:.3f}")
