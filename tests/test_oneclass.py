"""1-class protocol (Fig. 5): the OC-SVM baseline, the ROC callback, the configs."""

from __future__ import annotations

import io
import json
import logging
import re

import numpy as np
import pytest
import torch
from helpers import TINY, compose_cfg
from sklearn.covariance import EmpiricalCovariance
from sklearn.svm import OneClassSVM

import overgen
from overgen.data import MNISTDataModule
from overgen.errors import ConfigError
from overgen.models import OneClassSVMModel
from overgen.models.ocsvm import svm_gamma
from overgen.scores import svm_decision
from overgen.tasks import evaluate, train

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
    # the fitted state is the state_dict, plain tensors: a fresh model loads it
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = OneClassSVMModel(max_train=100)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.class_scores(x[:2])
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh.class_scores(x[:50]), scores)
    assert fresh.support.shape[1] == 784 and fresh.train_classes.tolist() == [3]


@pytest.mark.parametrize("kernel,gamma", [("rbf", 0.05), ("rbf", "scale"), ("rbf", "auto"),
                                          ("linear", "scale")])
def test_svm_decision_equals_sklearn(kernel, gamma):
    g = torch.Generator().manual_seed(0)
    x, test = torch.rand(300, 20, generator=g).double(), torch.rand(50, 20, generator=g).double()
    test[:10] += 1.0  # outliers too
    ref = OneClassSVM(kernel=kernel, nu=0.2, gamma=gamma).fit(x.numpy())
    assert len(ref.support_vectors_) > 10
    got = svm_decision(test, torch.as_tensor(ref.support_vectors_),
                       torch.as_tensor(ref.dual_coef_[0]), torch.as_tensor(ref.intercept_[0]),
                       svm_gamma(gamma, x), kernel)
    np.testing.assert_allclose(got.numpy(), ref.decision_function(test.numpy()),
                               rtol=1e-9, atol=1e-12)


def test_svm_gamma_by_hand():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)  # var 3/16, D = 2
    assert svm_gamma("scale", x) == pytest.approx(1 / (2 * 3 / 16))
    assert svm_gamma("auto", x) == 0.5 and svm_gamma(0.3, x) == 0.3
    assert svm_gamma("scale", torch.ones(3, 2)) == 1.0


@pytest.mark.parametrize("key,kwargs", [
    ("model.max_train", {"max_train": 0}), ("model.max_train", {"max_train": -3}),
    ("model.max_train", {"max_train": 1.5}), ("model.max_train", {"max_train": "all"}),
    ("model.kernel", {"kernel": "poly"}), ("model.gamma", {"gamma": "big"}),
    ("model.gamma", {"gamma": 0}), ("model.nu", {"nu": 0}),
])
def test_ocsvm_rejects_bad_options(key, kwargs):
    with pytest.raises(ConfigError, match=rf"^{key}="):
        OneClassSVMModel(**kwargs)


@pytest.mark.parametrize("callbacks,key", [
    (["callbacks=default"], "callbacks.test_accuracy.thresholds"),
    (["callbacks=openset", "~callbacks.test_accuracy"], "callbacks.openset.threshold"),
    (["callbacks=[oneclass,fooling]"], "callbacks.fooling.thresholds"),
])
def test_ocsvm_refuses_threshold_callbacks_before_any_work(callbacks, key, tmp_path,
                                                          monkeypatch):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=ocsvm", *callbacks, *SMALL],
                      tmp_path)
    monkeypatch.setattr(OneClassSVMModel, "fit_without_trainer", None)  # never reached
    with pytest.raises(ConfigError, match=rf"^{key}=\[0\.9.* OneClassSVMModel's class "
                                          "scores are not probabilities"):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


@pytest.mark.e2e
def test_oneclass_ocsvm_end_to_end(tmp_path, mnist_dir, caplog):
    cfg = compose_cfg("train", ["experiment=oneclass", "model=ocsvm", "data.digit=7",
                                "model.max_train=200", *SMALL], tmp_path)
    with caplog.at_level(logging.INFO, logger="overgen.models.ocsvm"):
        train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["oneclass/digit"] == 7 and m["run/train_classes"] == [7]
    assert m["run/steps"] == 0
    # the fitted SVM is in a checkpoint: evaluate.py reproduces the run's numbers
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert set(state) == {"support", "dual_coef", "intercept", "gamma_value", "train_classes"}
    # the fit, silent in scikit-learn, is announced with its sample count and timed
    fit = [r.getMessage() for r in caplog.records if r.name == "overgen.models.ocsvm"]
    assert len(fit) == 2 and " on 200 images of 784 pixels" in fit[0]
    assert re.fullmatch(rf"ocsvm: fitted in \d+\.\d s, {len(state['support'])} support vectors",
                        fit[1])
    again = evaluate(compose_cfg("evaluate", [f"ckpt_path={ckpt}", *SMALL], tmp_path / "eval"))
    assert again["oneclass/auroc"] == m["oneclass/auroc"]
    assert again["run/model"] == "ocsvm" and again["run/steps"] == 0
    assert (json.loads((tmp_path / "eval" / "roc.json").read_text())
            == json.loads((tmp_path / "roc.json").read_text()))
    roc = json.loads((tmp_path / m["oneclass/roc_file"]).read_text())
    assert roc["digit"] == 7 and roc["auroc"] == m["oneclass/auroc"]
    fpr, tpr = np.array(roc["fpr"]), np.array(roc["tpr"])
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(m["oneclass/auroc"])
    assert m["oneclass/auroc"] > 0.8  # 200 training 7s already rank 7s well


def brute_auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + P(tie) / 2, over every pair."""
    diff = scores[positive][:, None] - scores[~positive][None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


@pytest.mark.e2e
def test_oneclass_cool_end_to_end(tmp_path, mnist_dir):
    """The post-hoc AUROCs against the trained model's outputs recomputed here: MSP over
    the class masses (brute-force pair counting) and Mahalanobis from scikit-learn's
    ``EmpiricalCovariance`` of the training 1s' class-centred hidden layer."""
    cfg = compose_cfg("train", ["experiment=oneclass", "model=cool", "data.digit=1",
                                "trainer.max_steps=2", *SMALL], tmp_path)
    train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["oneclass/digit"] == 1 and 0.0 <= m["oneclass/auroc"] <= 1.0
    assert (tmp_path / "roc.json").exists()
    assert "oneclass/reconstruction/auroc" not in m  # a classifier has no dAE term
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    # evaluate.py fits the Mahalanobis score again, to the same numbers
    again = evaluate(compose_cfg("evaluate", [f"ckpt_path={ckpt}", *SMALL], tmp_path / "eval"))
    assert {k: again[k] for k in m if k.startswith("oneclass/")} == {
        k: v for k, v in m.items() if k.startswith("oneclass/")}
    model = overgen.load(str(ckpt))
    dm = MNISTDataModule(mnist_dir, digit=1)
    dm.setup("fit")
    x, y = dm.test_tensors
    x, positive = x[:1000], (y[:1000] == 1).numpy()  # limit_test_batches=2 of 500
    train_x = torch.cat([dm.on_after_batch_transfer(b, 0)[0] for b in dm.train_dataloader()])
    with torch.no_grad():
        logits, hidden = model(x).double(), model.network.encoder(x).double().numpy()
        train_hidden = model.network.encoder(train_x).double().numpy()
    # the run scored in float32 (batches of 500), here in float64: a few near-ties may flip
    msp = logits.softmax(-1).view(-1, 10, 10).sum(-1).max(-1).values.numpy()
    assert m["oneclass/msp/auroc"] == pytest.approx(brute_auroc(msp, positive), abs=1e-3)
    mean = train_hidden.mean(0)
    cov = EmpiricalCovariance(assume_centered=True).fit(train_hidden - mean)
    maha = -cov.mahalanobis(hidden - mean)
    assert m["oneclass/mahalanobis/auroc"] == pytest.approx(brute_auroc(maha, positive),
                                                             abs=1e-3)
    energy = logits.logsumexp(-1).numpy()
    assert m["oneclass/energy/auroc"] == pytest.approx(brute_auroc(energy, positive), abs=1e-3)


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


@pytest.mark.e2e
def test_oneclass_without_positives_gives_none(tmp_path, mnist_dir):
    # the first 10 test images hold no 3
    cfg = compose_cfg("train", ["experiment=oneclass", "model=ocsvm", "data.digit=3",
                                "model.max_train=50", "data.eval_batch_size=10", *TINY,
                                "trainer.limit_test_batches=1"], tmp_path)
    train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["oneclass/auroc"] is None and m["oneclass/roc_file"] is None
    assert not (tmp_path / "roc.json").exists()
