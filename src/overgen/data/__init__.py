"""LightningDataModules: MNIST (all digits, open-set subsets, one class) and 2-D rings."""

from overgen.data.mnist import MNISTDataModule
from overgen.data.rings import RingsDataModule
from overgen.data.subsets import openset_classes

__all__ = ["MNISTDataModule", "RingsDataModule", "openset_classes"]
