"""Far-OOD sets (docs/method.md §7): built from a seed, scored through the model's
``score_batch``, ranked against the MNIST test set."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from helpers import TINY, compose_cfg

import overgen
from overgen.callbacks import FarOOD
from overgen.data.far_ood import far_ood_images, load_fooling_images
from overgen.errors import ConfigError
from overgen.outputs import FAR_OOD_NAMES, FAR_OOD_SETS, POSTHOC_SCORES, far_ood_key
from overgen.tasks import _instantiate_all, train

DIGITS = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(0))
GENERATED = ("gaussian", "uniform", "constant", "inverted")


@pytest.mark.parametrize("name", GENERATED)
def test_sets_are_seeded_and_shaped(name):
    images = far_ood_images(name, 7, 3, DIGITS)
    assert images.shape == (7, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    torch.testing.assert_close(far_ood_images(name, 7, 3, DIGITS), images)
    assert not torch.equal(far_ood_images(name, 7, 4, DIGITS), images)


def test_sets_by_hand():
    constant = far_ood_images("constant", 5, 0, DIGITS).flatten(1)
    assert (constant == constant[:, :1]).all() and len(constant[:, 0].unique()) == 5
    inverted = far_ood_images("inverted", 10, 0, DIGITS)
    # each inverted image is 1 - x of a distinct digit image
    match = [[torch.equal(img, 1 - d) for d in DIGITS] for img in inverted]
    assert all(sum(row) == 1 for row in match)
    assert len({row.index(True) for row in match}) == 10
    uniform = far_ood_images("uniform", 200, 0, DIGITS)
    assert abs(float(uniform.mean()) - 0.5) < 0.01  # 156,800 draws of U[0, 1)
    gaussian = far_ood_images("gaussian", 200, 0, DIGITS)
    inside = gaussian[(gaussian > 0) & (gaussian < 1)]  # clipping moves 4.6% of the draws
    assert abs(float((gaussian == 0).float().mean()) - 0.02275) < 0.002  # P(N < -2)
    assert abs(float(inside.mean()) - 0.5) < 0.01


def test_fooling_file_round_trip(tmp_path):
    images = torch.rand(4, 784)
    np.save(tmp_path / "f.npy", images.numpy().astype(np.float16))
    loaded = load_fooling_images(str(tmp_path / "f.npy"))
    assert loaded.shape == (4, 1, 28, 28)
    torch.testing.assert_close(loaded.flatten(1), images, atol=5e-4, rtol=0)  # float16


@pytest.mark.parametrize("kwargs,key", [
    ({"sets": []}, "sets"), ({"sets": ["noise"]}, "sets"), ({"sets": ["uniform"] * 2}, "sets"),
    ({"size": 0}, "size"), ({"threshold": 1.5}, "threshold"),
    ({"fooling_images": "/nonexistent.npy"}, "fooling_images")])
def test_bad_settings(kwargs, key):
    with pytest.raises(ConfigError, match=f"callbacks.far_ood.{key}"):
        FarOOD(**kwargs)


def test_config_adds_the_callback_beside_any_evaluation(tmp_path):
    cfg = compose_cfg("train", ["experiment=openset", "+callbacks/far_ood=default"], tmp_path)
    built = _instantiate_all(cfg.callbacks, "callbacks")
    far = [cb for cb in built if isinstance(cb, FarOOD)]
    assert len(far) == 1 and len(built) == 3  # test_accuracy, openset, far_ood
    assert far[0].seed == cfg.seed and far[0].sets == list(FAR_OOD_SETS)


def test_fooling_set_without_a_file_is_skipped_with_a_log_line(caplog):
    caplog.set_level(logging.INFO)
    assert FarOOD()._images("fooling", trainer=None) is None
    assert "skipping the fooling set" in caplog.text


def _auroc(known: torch.Tensor, unknown: torch.Tensor) -> float:
    """Brute force: the share of (known, unknown) pairs ranked right, ties counting half."""
    diff = known[:, None] - unknown[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


@pytest.mark.e2e
def test_far_ood_run_writes_every_key(tmp_path, mnist_dir):
    fooling = torch.rand(6, 784, generator=torch.Generator().manual_seed(1))
    np.save(tmp_path / "fooling.npy", fooling.numpy().astype(np.float16))
    overrides = ["model=cnn", *TINY, "trainer.max_steps=5", "trainer.limit_test_batches=1",
                 "+callbacks/far_ood=default", "callbacks.far_ood.size=40",
                 f"callbacks.far_ood.fooling_images={tmp_path / 'fooling.npy'}"]
    train(compose_cfg("train", overrides, tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in FAR_OOD_SETS:
        for score in ("final", *(s for s in POSTHOC_SCORES if s != "reconstruction")):
            for n in FAR_OOD_NAMES:
                assert metrics[far_ood_key(name, score, n)] is not None
    # max logit recomputed from the checkpoint: the first 500 test images (one test batch)
    # vs the uniform set drawn here again, AUROC by pair counting
    model = overgen.load(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    known = torch.as_tensor(np.fromfile(f"{mnist_dir}/MNIST/raw/t10k-images-idx3-ubyte",
                                        np.uint8, offset=16)[:500 * 784]).reshape(500, 1, 28, 28)
    uniform = np.random.default_rng([12345, 1]).random((40, 1, 28, 28))  # seed, stream 1
    with torch.no_grad():
        scores = [model(x).amax(-1).double() for x in
                  (known.float() / 255, torch.as_tensor(uniform, dtype=torch.float32))]
    assert metrics[far_ood_key("uniform", "max_logit", "auroc")] == pytest.approx(
        _auroc(*scores), abs=1e-9)

