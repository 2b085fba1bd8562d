"""Far-OOD test sets that need no download (docs/method.md §7): noise, constant images and
inverted digits, built from a seed; the fooling attack's images are read from its file."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# each generated set draws from its own stream: np.random.default_rng([seed, STREAMS[name]])
STREAMS = {"gaussian": 0, "uniform": 1, "constant": 2, "inverted": 3}
GAUSSIAN_MEAN, GAUSSIAN_STD = 0.5, 0.25  # per pixel, then clipped to [0, 1]


def far_ood_images(name: str, size: int, seed: int, digits: Tensor) -> Tensor:
    """``size`` images ``[size, 1, 28, 28]`` (float32, in [0, 1]) of the generated set
    ``name`` (a key of ``STREAMS``), the same for the same ``seed``: ``gaussian``
    N(0.5, 0.25^2) per pixel clipped to [0, 1]; ``uniform`` U[0, 1) per pixel; ``constant``
    one U[0, 1) value per image; ``inverted`` ``1 - x`` of ``size`` of the MNIST test
    images ``digits [N, 1, 28, 28]`` in [0, 1], drawn without replacement (all of them,
    in a seeded order, when ``size >= N``)."""
    rng = np.random.default_rng([seed, STREAMS[name]])
    shape = (size, 1, 28, 28)
    if name == "gaussian":
        images = np.clip(rng.normal(GAUSSIAN_MEAN, GAUSSIAN_STD, shape), 0.0, 1.0)
    elif name == "uniform":
        images = rng.random(shape)
    elif name == "constant":
        images = np.broadcast_to(rng.random((size, 1, 1, 1)), shape)
    else:
        chosen = torch.as_tensor(rng.permutation(len(digits))[:size])
        return 1.0 - digits[chosen].float()
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))


def load_fooling_images(path: str) -> Tensor:
    """The fooling attack's images (``outputs.FOOLING_IMAGES_FILE``: float16 ``[N, 784]``)
    as float32 ``[N, 1, 28, 28]``."""
    return torch.from_numpy(np.load(path).astype(np.float32)).reshape(-1, 1, 28, 28)
