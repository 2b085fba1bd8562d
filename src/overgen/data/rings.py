"""Three uniform 2-D rings (docs/method.md §3, Fig. 2), generated from a seed."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from overgen.data.sampler import TensorBatches, batch_loader

CENTRES = ((-1.0, 1.0), (1.0, 1.0), (1.0, -1.0))


def sample_rings(n_per_ring: int, inner: float = 0.6, thickness: float = 0.1,
                 centres=CENTRES, generator: torch.Generator | None = None):
    """Uniform samples (by area) from each ring: ``x: [R*n, 2]``, ``y: [R*n]`` (ring index).

    Radius ``sqrt(U (r2^2 - r1^2) + r1^2)`` with ``r1 = inner``, ``r2 = inner + thickness``.
    """
    r1, r2 = inner, inner + thickness
    xs, ys = [], []
    for k, (cx, cy) in enumerate(centres):
        u, t = torch.rand(2, n_per_ring, generator=generator, dtype=torch.float64)
        r = torch.sqrt(u * (r2**2 - r1**2) + r1**2)
        phi = 2 * math.pi * t
        xs.append(torch.stack([cx + r * torch.cos(phi), cy + r * torch.sin(phi)], 1))
        ys.append(torch.full((n_per_ring,), k))
    return torch.cat(xs).float(), torch.cat(ys)


class RingsDataModule(pl.LightningDataModule):
    """Train / test points from the three rings; batches ``x: [B, 2]``, ``y: [B]``."""

    def __init__(self, n_train_per_ring: int = 20_000, n_test_per_ring: int = 1_000,
                 batch_size: int = 64, eval_batch_size: int = 1_000, inner: float = 0.6,
                 thickness: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        self.n_train, self.n_test = n_train_per_ring, n_test_per_ring
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.inner, self.thickness, self.seed = inner, thickness, seed
        self.num_classes = len(CENTRES)
        self.train_classes = list(range(self.num_classes))
        self._train = self._test = None

    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            g = torch.Generator().manual_seed(self.seed)
            self._train = TensorBatches(*sample_rings(self.n_train, self.inner, self.thickness,
                                                      generator=g))
            self._test = TensorBatches(*sample_rings(self.n_test, self.inner, self.thickness,
                                                     generator=g))

    def _loader(self, data: TensorBatches, train: bool) -> DataLoader:
        size = self.batch_size if train else self.eval_batch_size
        return batch_loader(data, size, train, self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._train, train=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._test, train=False)
