"""Data modules: subsets, sharded sampling, MNIST checks."""

from __future__ import annotations

import os

import pytest
import torch

from overgen.data import MNISTDataModule, RingsDataModule, openset_classes
from overgen.data.mnist import RAW_FILES
from overgen.data.sampler import BatchIndexSampler
from overgen.errors import ConfigError, DataError


def test_openset_subsets_are_fixed_distinct_and_sized():
    for k in range(1, 10):
        table = [openset_classes(k, s) for s in range(10)]
        assert all(len(t) == k and t == sorted(t) for t in table)
        assert len({tuple(t) for t in table}) == 10
    assert openset_classes(10, 0) == list(range(10))
    assert openset_classes(3, 4) == openset_classes(3, 4)


@pytest.mark.parametrize("known,subset,key", [(0, 0, "known"), (11, 0, "known"),
                                               (3, 10, "data.subset"), (10, 1, "data.subset")])
def test_openset_bad_values(known, subset, key):
    with pytest.raises(ConfigError, match=key):
        openset_classes(known, subset)


@pytest.mark.parametrize("kwargs,key", [
    ({"known_classes": [3, 3]}, "data.known_classes"),
    ({"known_classes": [12]}, "data.known_classes"),
    ({"digit": 10}, "data.digit"),
    ({"digit": 1, "known": 2}, "data.digit"),
    ({"known": 2, "known_classes": [1, 2, 3]}, "known"),
])
def test_datamodule_rejects_bad_classes(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        MNISTDataModule(**kwargs)


def test_sampler_train_and_eval_sharding(monkeypatch):
    s = BatchIndexSampler(10, 4, shuffle=False)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(s) == 3
    shards = []
    for rank in range(3):
        monkeypatch.setattr("overgen.data.sampler._rank_world", lambda r=rank: (r, 3))
        shards.append(sum(BatchIndexSampler(10, 4, shuffle=False), []))
    assert sorted(sum(shards, [])) == list(range(10))  # every sample once, no padding
    monkeypatch.setattr("overgen.data.sampler._rank_world", lambda: (0, 1))
    t = BatchIndexSampler(10, 4, shuffle=True, seed=1)
    e0 = sum(list(t), [])
    t.set_epoch(1)
    assert sorted(e0) == list(range(10)) and e0 != sum(list(t), [])


def test_mnist_subset_and_scaling(mnist_dir):
    dm = MNISTDataModule(mnist_dir, known_classes=[0, 3], batch_size=32)
    dm.prepare_data()
    dm.setup("fit")
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and set(y.tolist()) <= {0, 3}
    dm.setup("test")
    assert len(dm.test_dataloader().sampler) == 20  # 10,000 test images / 500


def test_missing_mnist_without_download(tmp_path):
    with pytest.raises(DataError, match="data.download=false"):
        MNISTDataModule(str(tmp_path), download=False).prepare_data()


def test_truncated_mnist_file_is_named(tmp_path, mnist_dir):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        os.symlink(os.path.join(mnist_dir, "MNIST", "raw", name), raw / name)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is corrupt"):
        MNISTDataModule(str(tmp_path), download=False).prepare_data()


def test_rings_samples_lie_on_the_rings():
    dm = RingsDataModule(n_train_per_ring=500, n_test_per_ring=10)
    dm.setup()
    x, y = dm._train.tensors
    centres = torch.tensor([(-1.0, 1.0), (1.0, 1.0), (1.0, -1.0)])
    r = (x - centres[y]).norm(dim=1)
    assert r.min() >= 0.6 - 1e-6 and r.max() <= 0.7 + 1e-6


@pytest.mark.parametrize("val_size", [0, 64])
def test_validation_runs_only_with_a_validation_set(val_size, mnist_dir):
    import pytorch_lightning as pl

    from overgen.models import Classifier
    from overgen.networks import ConvClassifier

    dm = MNISTDataModule(mnist_dir, batch_size=32, eval_batch_size=32, val_size=val_size,
                         download=False)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(Classifier(ConvClassifier()), datamodule=dm)  # validates at the epoch's end
    assert ("val/loss" in trainer.callback_metrics) == bool(val_size)
