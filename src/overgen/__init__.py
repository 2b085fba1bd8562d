"""overgen: denoising-autoencoder confidence scores against overgeneralization."""

import math

from omegaconf import OmegaConf

__version__ = "0.1.0"

# ``${overgen.mul:a,b}``: the product, for config values derived from others (the
# classifier head's width ``num_classes * omega``, conf/model/cnn.yaml). Registered on
# import: train.py, evaluate.py and ``overgen.tasks.load_model`` import overgen before
# any config is resolved.
OmegaConf.register_new_resolver("overgen.mul", lambda *xs: math.prod(xs), replace=True)
