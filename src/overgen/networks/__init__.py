"""Plain ``nn.Module`` networks; nothing here knows about Lightning or evaluation.

A classifier network maps ``x -> logits``. A dAE network implements
``encode(x) -> (h, ctx)``, ``decode(h, ctx) -> r`` and ``classify(h) -> logits``
(``ctx`` carries what the decoder needs from the encoder, e.g. pooling switches).
Each network keeps its constructor arguments in ``init_args``, so a checkpoint can rebuild it.
"""

from overgen.networks.cnn import ConvClassifier, ConvEncoder
from overgen.networks.dae import MLPDAE, ConvDAE

__all__ = ["ConvClassifier", "ConvDAE", "ConvEncoder", "MLPDAE"]
