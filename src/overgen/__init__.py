"""overgen: denoising-autoencoder confidence scores against overgeneralization."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

if TYPE_CHECKING:
    from overgen.models import ScoringModule

__version__ = "0.1.0"

# ``${overgen.mul:a,b}``: the product, for config values derived from others (the
# classifier head's width ``num_classes * omega``, conf/model/cnn.yaml). Registered on
# import: train.py, evaluate.py and ``overgen.load`` import overgen before any config is
# resolved.
OmegaConf.register_new_resolver("overgen.mul", lambda *xs: math.prod(xs), replace=True)


def load(path: str) -> ScoringModule:
    """The trained model in a checkpoint written by ``train.py``, rebuilt from the run's own
    config (``+curvature`` and all), in eval mode, ready to score: ``class_scores(x)``, and
    ``confidence(x)`` for a dAE. ``ckpt_path`` errors as ``evaluate.py`` reports them.

    ``model = overgen.load("logs/train/runs/<time>/checkpoints/last.ckpt")``
    """
    # imported here: ``import overgen`` loads neither torch nor Lightning
    from hydra.utils import instantiate

    from overgen.checkpoints import CHECKPOINT_KEY, load_checkpoint

    ckpt = load_checkpoint(path)
    model = instantiate(OmegaConf.create(ckpt[CHECKPOINT_KEY]["config"]).model)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
