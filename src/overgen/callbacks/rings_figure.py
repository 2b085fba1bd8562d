"""Writes the Fig. 2 reproduction (PNG) after testing a 2-D dAE, and logs it to W&B."""

from __future__ import annotations

import os

from overgen.callbacks.evaluation import Evaluation
from overgen.data.rings import sample_rings
from overgen.figures import rings_figure, rings_panels
from overgen.outputs import RINGS_FIGURE
from overgen.utils.io import atomic_savefig


class RingsFigure(Evaluation):
    """``{output_dir}/rings2d.png``; ``results["figure/rings2d"]`` holds its path."""

    def __init__(self, output_dir: str, filename: str = "rings2d.png", resolution: int = 200,
                 samples_per_ring: int = 1000) -> None:
        super().__init__()
        self.path = os.path.join(output_dir, filename)
        self.resolution, self.samples_per_ring = resolution, samples_per_ring

    def on_test_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        x, y = sample_rings(self.samples_per_ring)
        title = (rf"{self.steps(trainer)} training steps, $\sigma$ = {pl_module.sigma}, "
                 rf"$\alpha$ = {pl_module.alpha}, $\beta$ = {pl_module.beta}, "
                 f"curvature: {pl_module.curvature_method}")
        fig = rings_figure(rings_panels(pl_module, resolution=self.resolution),
                           (x.numpy(), y.numpy()), title)
        atomic_savefig(fig, self.path)
        self.results = {RINGS_FIGURE: self.path}
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key=RINGS_FIGURE, images=[self.path])
