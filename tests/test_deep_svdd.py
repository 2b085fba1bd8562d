"""Deep SVDD, the fourth 1-class model: its centre, its network, its loss, a tiny run of the
1-class protocol and its refusal of threshold callbacks."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from helpers import TINY, compose_cfg
from sklearn.metrics import roc_auc_score
from torch import nn

import overgen
from overgen.data import MNISTDataModule
from overgen.errors import ConfigError
from overgen.models import DeepSVDD
from overgen.networks import ConvEncoder
from overgen.scores import svdd_centre, svdd_distance
from overgen.tasks import evaluate, train

SMALL = [*TINY, "trainer.limit_test_batches=2"]


def test_centre_nudges_coordinates_near_zero_by_hand():
    mean = torch.tensor([0.05, -0.02, 0.0, 0.3, -0.5, 0.1, -0.1])
    assert svdd_centre(mean, 0.1).tolist() == pytest.approx(
        [0.1, -0.1, 0.1, 0.3, -0.5, 0.1, -0.1])


def test_centre_is_the_mean_embedding_of_the_training_digit(mnist_dir):
    encoder = ConvEncoder(bias=False)  # thinned (1 and 4 channels, 64 units): ~100x cheaper
    encoder.conv1 = nn.Conv2d(1, 1, 5, padding=2, bias=False)
    encoder.conv2 = nn.Conv2d(1, 4, 5, padding=2, bias=False)
    encoder.fc = nn.Linear(4 * 7 * 7, 64, bias=False)
    model = DeepSVDD(encoder, eps=0.01)
    dm = MNISTDataModule(mnist_dir, digit=4, batch_size=1000)
    model.fit_centre(dm)
    # independently: every training 4 of the raw files, embedded in float64, mean in numpy
    raw = f"{mnist_dir}/MNIST/raw"
    labels = np.fromfile(f"{raw}/train-labels-idx1-ubyte", np.uint8, offset=8)
    images = np.fromfile(f"{raw}/train-images-idx3-ubyte", np.uint8, offset=16)
    fours = images.reshape(-1, 1, 28, 28)[labels == 4] / 255.0
    assert len(fours) == 5842
    net = copy.deepcopy(model.network).double()
    with torch.no_grad():
        mean = np.concatenate([net(torch.from_numpy(b)).numpy()
                               for b in np.array_split(fours, 6)]).mean(0)
    near = np.abs(mean) < 0.01
    assert 0 < near.sum() < len(mean)  # both kinds of coordinate are checked
    expected = np.where(near, 0.01, mean)  # a ReLU layer: every coordinate >= 0
    np.testing.assert_allclose(model.centre.numpy(), expected, rtol=1e-5, atol=1e-7)
    assert model.train_classes.tolist() == [4]


def test_no_parameter_has_a_bias():
    model = DeepSVDD(ConvEncoder(bias=False))
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 3 and all(m.bias is None for m in layers)
    assert [n for n, _ in model.named_parameters()] == [
        "network.conv1.weight", "network.conv2.weight", "network.fc.weight"]
    assert sum(p.numel() for p in model.parameters()) == 25 * 32 + 25 * 32 * 64 + 3136 * 400
    with pytest.raises(ConfigError, match=r"^model.network='ConvEncoder' is not allowed: a "
                                          r"network without bias terms \(Deep SVDD\); has "
                                          r"\['conv1.bias', 'conv2.bias', 'fc.bias'\]$"):
        DeepSVDD(ConvEncoder())


def test_loss_by_hand():
    net = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0]]))
    model = DeepSVDD(net)
    model.centre = torch.tensor([1.0, 1.0])
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # phi = [1, 0] and [3, -1]; squared distances to (1, 1): 0 + 1 = 1 and 4 + 4 = 8
    assert model.loss(x).item() == pytest.approx((1 + 8) / 2)
    assert svdd_distance(net(x), model.centre).tolist() == pytest.approx([1.0, 8.0])
    model.train_classes = torch.tensor([3])
    scores = model.class_scores(x)
    assert scores[:, 3].tolist() == pytest.approx([-1.0, -8.0])
    assert torch.isinf(scores[:, [0, 1, 2, 4, 5, 6, 7, 8, 9]]).all()


@pytest.mark.parametrize("key,eps", [("model.eps", 0), ("model.eps", -0.1)])
def test_rejects_bad_eps(key, eps):
    with pytest.raises(ConfigError, match=rf"^{key}="):
        DeepSVDD(ConvEncoder(bias=False), eps=eps)


@pytest.mark.parametrize("callbacks,message", [
    (["callbacks=default"], "callbacks.test_accuracy.thresholds=[0.9, 0.99] is not allowed: "
     "DeepSVDD's class scores are not probabilities: no thresholds, no log_probs to attack "
     "(ranking callbacks only, e.g. callbacks=oneclass)"),
    (["callbacks=[oneclass,fooling]"], "callbacks.fooling.thresholds=[0.9, 0.99] is not "
     "allowed: DeepSVDD's class scores are not probabilities: no thresholds, no log_probs to "
     "attack (ranking callbacks only, e.g. callbacks=oneclass)"),
])
def test_refuses_threshold_callbacks_before_any_work(callbacks, message, tmp_path,
                                                     monkeypatch):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=deep_svdd", *callbacks, *SMALL],
                      tmp_path)
    monkeypatch.setattr(DeepSVDD, "fit_centre", None)  # never reached
    with pytest.raises(ConfigError) as refused:
        train(cfg)
    assert str(refused.value) == message
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


@pytest.mark.e2e
def test_oneclass_deep_svdd_end_to_end(tmp_path, mnist_dir):
    """AUROC of a 3-step run against scikit-learn's on the scores recomputed from the
    checkpoint alone; evaluate.py agrees."""
    cfg = compose_cfg("train", ["experiment=oneclass", "model=deep_svdd", "data.digit=7",
                                "trainer.max_steps=3", *SMALL], tmp_path)
    m = train(cfg)
    assert m["oneclass/digit"] == 7 and m["run/steps"] == 3
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert state["centre"].shape == (400,) and state["train_classes"].tolist() == [7]
    assert (state["centre"].abs() >= 0.1 - 1e-7).all()
    model = overgen.load(str(ckpt))
    x, y = MNISTDataModule(mnist_dir, digit=7).test_tensors
    x, positive = x[:1000], (y[:1000] == 7).numpy()  # limit_test_batches=2 of 500
    with torch.no_grad():
        phi = model.network(x).double()
    distance = ((phi - state["centre"].double()) ** 2).sum(1).numpy()
    assert m["oneclass/auroc"] == pytest.approx(roc_auc_score(positive, -distance), abs=1e-3)
    again = evaluate(compose_cfg("evaluate", [f"ckpt_path={ckpt}", *SMALL], tmp_path / "eval"))
    assert again["oneclass/auroc"] == m["oneclass/auroc"]
    assert again["run/model"] == "deep_svdd" and again["run/steps"] == 3
    assert (json.loads((tmp_path / "eval" / "roc.json").read_text())
            == json.loads((tmp_path / "roc.json").read_text()))
