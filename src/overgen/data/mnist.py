"""MNIST as one uint8 tensor in memory; batches are gathered by index, scaled on device."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from overgen.data.sampler import TensorBatches, batch_loader
from overgen.data.subsets import check_digits, openset_classes
from overgen.errors import ConfigError, DataError

# torchvision's raw file names and their exact sizes (16-byte / 8-byte idx headers)
RAW_FILES = {
    "train-images-idx3-ubyte": 16 + 60_000 * 784,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 784,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}


def check_raw_files(root: str) -> None:
    """Raise ``DataError`` naming the file when an MNIST raw file is truncated or padded."""
    raw = os.path.join(root, "MNIST", "raw")
    for name, size in RAW_FILES.items():
        path = os.path.join(raw, name)
        actual = os.path.getsize(path)
        if actual != size:
            raise DataError(
                f"MNIST file {path} is corrupt: {actual} bytes, expected {size}. "
                "Delete it and run again with data.download=true, or point "
                "paths.data_dir (OVERGEN_DATA_DIR) at an intact copy."
            )


def raw_files_present(root: str) -> bool:
    raw = os.path.join(root, "MNIST", "raw")
    return all(os.path.isfile(os.path.join(raw, name)) for name in RAW_FILES)


def resolve_train_classes(
    known: int | None, subset: int, known_classes: Sequence[int] | None, digit: int | None
) -> list[int]:
    """The digits to train on: ``digit`` (1-class), ``known_classes``, or the seeded
    subset ``subset`` of size ``known`` (open set); all ten when none is given."""
    if digit is not None:
        if known is not None or known_classes is not None:
            raise ConfigError("data.digit", digit,
                              "1-class data takes no known / data.known_classes")
        if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
            raise ConfigError("data.digit", digit, "the one training digit, an integer in 0..9")
        return [digit]
    if known_classes is not None:
        classes = check_digits("data.known_classes", known_classes)
        if known is not None and known != len(classes):
            raise ConfigError("known", known, f"len(data.known_classes) = {len(classes)}")
        return classes
    if known is not None:
        return openset_classes(known, subset)
    return list(range(10))


class MNISTDataModule(pl.LightningDataModule):
    """MNIST train/test in memory as uint8; ``on_after_batch_transfer`` scales to [0, 1].

    Training uses the images of ``train_classes`` only (see ``resolve_train_classes``);
    the test set is always all 10,000 test images. ``val_size`` images of the training
    subset (seeded split) form a validation set; 0 (default, as the paper) means none.
    Batches: ``x: float [B, 1, 28, 28]`` in [0, 1], ``y: int64 [B]``.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        eval_batch_size: int = 500,
        val_size: int = 0,
        download: bool = True,
        known: int | None = None,
        subset: int = 0,
        known_classes: Sequence[int] | None = None,
        digit: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        for key, value in (("data.batch_size", batch_size),
                           ("data.eval_batch_size", eval_batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(key, value, "a positive integer")
        if not isinstance(val_size, int) or val_size < 0:
            raise ConfigError("data.val_size", val_size, "a non-negative integer")
        self.train_classes = resolve_train_classes(known, subset, known_classes, digit)
        self.data_dir, self.download = data_dir, download
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.seed, self.num_workers = val_size, seed, num_workers
        self.num_classes = 10
        self._train = self._val = self._test = None
        if val_size:  # Lightning validates only when a data module has a val_dataloader
            self.val_dataloader = self._val_dataloader

    def prepare_data(self) -> None:
        """Check (or download) the raw files before any training starts."""
        if not raw_files_present(self.data_dir):
            if not self.download:
                raise DataError(
                    f"MNIST not found under {os.path.join(self.data_dir, 'MNIST', 'raw')} and "
                    "data.download=false. Set data.download=true, or point paths.data_dir "
                    "(env OVERGEN_DATA_DIR) at a folder holding MNIST/raw."
                )
            from torchvision.datasets import MNIST

            MNIST(self.data_dir, train=True, download=True)
            MNIST(self.data_dir, train=False, download=True)
        check_raw_files(self.data_dir)

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.datasets import MNIST

        ds = MNIST(self.data_dir, train=train, download=False)
        return ds.data.contiguous(), ds.targets.long()

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self._train is None:
            images, labels = self._load(train=True)
            keep = torch.isin(labels, torch.tensor(self.train_classes))
            images, labels = images[keep], labels[keep]
            if self.val_size >= len(labels):
                raise ConfigError("data.val_size", self.val_size,
                                  f"fewer than the {len(labels)} training images")
            g = torch.Generator().manual_seed(self.seed)
            order = torch.randperm(len(labels), generator=g)
            val, train = order[: self.val_size], order[self.val_size :]
            self._train = TensorBatches(images[train], labels[train])
            self._val = TensorBatches(images[val], labels[val]) if self.val_size else None
        if stage in ("test", "predict", None) and self._test is None:
            self._test = TensorBatches(*self._load(train=False))

    def _loader(self, data: TensorBatches, train: bool) -> DataLoader:
        size = self.batch_size if train else self.eval_batch_size
        return batch_loader(data, size, train, self.seed, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._train, train=True)

    def _val_dataloader(self) -> DataLoader:
        return self._loader(self._val, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._test, train=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        return x.unsqueeze(1).float().div_(255.0), y

    @property
    def test_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The full test set as ``(x: float [N, 1, 28, 28], y: [N])`` (for callbacks)."""
        if self._test is None:
            self.setup("test")
        x, y = self._test.tensors
        return x.unsqueeze(1).float() / 255.0, y
