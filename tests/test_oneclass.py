"""1-class protocol (Fig. 5): the OC-SVM baseline, the ROC callback, the configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY, compose_cfg
from sklearn.svm import OneClassSVM

from overgen.data import MNISTDataModule
from overgen.errors import ConfigError
from overgen.models import OneClassSVMModel
from overgen.tasks import train

SMALL = [*TINY, "trainer.limit_test_batches=2"]


def test_ocsvm_scores_are_sklearn_decision_function(mnist_dir):
    dm = MNISTDataModule(mnist_dir, digit=3)
    model = OneClassSVMModel(max_train=100)
    model.fit_without_trainer(dm)
    batches = [dm.on_after_batch_transfer(b, 0)[0] for b in dm.train_dataloader()]
    train_x = torch.cat(batches)[:100].flatten(1).double().numpy()  # the same 100 images
    ref = OneClassSVM(kernel="rbf", nu=0.1, gamma=0.1).fit(train_x)
    x, _ = dm.test_tensors
    scores = model.class_scores(x[:50])
    assert scores.shape == (50, 10)
    assert torch.isinf(scores[:, [0, 1, 2, 4, 5, 6, 7, 8, 9]]).all()
    np.testing.assert_allclose(scores[:, 3].numpy(),
                               ref.decision_function(x[:50].flatten(1).double().numpy()),
                               rtol=1e-5, atol=1e-6)
    assert (scores.argmax(1) == 3).all()


@pytest.mark.parametrize("bad", [0, -3, 1.5, "all"])
def test_ocsvm_rejects_bad_max_train(bad):
    with pytest.raises(ConfigError, match="model.max_train"):
        OneClassSVMModel(max_train=bad)


def test_oneclass_ocsvm_end_to_end(tmp_path, mnist_dir):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=ocsvm", "data.digit=7",
                                "model.max_train=200", *SMALL], tmp_path)
    train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["oneclass/digit"] == 7 and m["run/train_classes"] == [7]
    assert m["run/steps"] == 0 and not (tmp_path / "checkpoints").exists()
    roc = json.loads((tmp_path / m["oneclass/roc_file"]).read_text())
    assert roc["digit"] == 7 and roc["auroc"] == m["oneclass/auroc"]
    fpr, tpr = np.array(roc["fpr"]), np.array(roc["tpr"])
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(m["oneclass/auroc"])
    assert m["oneclass/auroc"] > 0.8  # 200 training 7s already rank 7s well


def test_oneclass_cool_end_to_end(tmp_path, mnist_dir):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=cool", "data.digit=1",
                                "trainer.max_steps=2", *SMALL], tmp_path)
    train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["oneclass/digit"] == 1 and 0.0 <= m["oneclass/auroc"] <= 1.0
    assert (tmp_path / "roc.json").exists()


def test_oneclass_callback_refuses_several_digits(tmp_path, mnist_dir):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=cnn", "data=mnist",
                                "trainer.max_steps=1", *SMALL], tmp_path)
    with pytest.raises(ConfigError, match="one training digit"):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()  # refused before training


def test_dae_oneclass_config_has_paper_settings(tmp_path):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=dae_oneclass"], tmp_path)
    assert cfg.model.sigma == 0.3 and cfg.model.lambda_l2 == 10.0
    assert cfg.model.network.tied and cfg.data.digit == 0
    assert cfg.optimized_metric == "oneclass/auroc"


def test_oneclass_without_positives_gives_none(tmp_path, mnist_dir):
    # the first 10 test images hold no 3
    cfg = compose_cfg("train", ["experiment=oneclass", "model=ocsvm", "data.digit=3",
                                "model.max_train=50", "data.eval_batch_size=10", *TINY,
                                "trainer.limit_test_batches=1"], tmp_path)
    train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["oneclass/auroc"] is None and m["oneclass/roc_file"] is None
    assert not (tmp_path / "roc.json").exists()
