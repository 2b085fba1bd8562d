"""LightningModules: losses and scores against hand computations."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from helpers import compose_cfg, small_conv_dae
from hydra.utils import instantiate
from torch.utils.data import DataLoader, TensorDataset

from overgen.errors import CheckpointError, ConfigError
from overgen.models import Classifier, DAEClassifier
from overgen.models.base import build_network, network_config
from overgen.models.classifier import cool_loss
from overgen.networks import MLPDAE, ConvClassifier, ConvDAE
from overgen.scores import (
    confidence,
    curvature,
    curvature_factor,
    error_factor,
    reconstruction_error,
)


def test_cool_loss_is_cross_entropy_against_spread_target():
    torch.manual_seed(0)
    logits, y = torch.randn(4, 30), torch.tensor([0, 2, 1, 2])
    target = torch.zeros(4, 30)
    for i, k in enumerate(y):
        target[i, 10 * k : 10 * k + 10] = 0.1
    expected = -(target * logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(cool_loss(logits, y, 10), expected)
    torch.testing.assert_close(cool_loss(logits[:, :3], y, 1),
                               torch.nn.functional.cross_entropy(logits[:, :3], y))


def test_dae_class_scores_are_confidence_times_softmax():
    torch.manual_seed(0)
    model = DAEClassifier(MLPDAE(), alpha=40.0, beta=5.0, num_classes=3)
    x = torch.randn(6, 2)
    c = confidence(model.reconstruct, x, alpha=40.0, beta=5.0)
    torch.testing.assert_close(model.class_scores(x), c[:, None] * model(x).softmax(-1))
    torch.testing.assert_close(model.confidence(x), c)


def test_dae_threshold_skips_gamma_but_keeps_decisions():
    torch.manual_seed(0)
    model = DAEClassifier(small_conv_dae(True, "switches"), curvature="exact",
                          alpha_at={0.9: 20.0, 0.99: 3.0})
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    gamma = curvature_factor(curvature(model.reconstruct, x), model.beta)  # D JVPs, once
    e = reconstruction_error(x, model.reconstruct(x))
    for t in (0.9, 0.99):
        full = model.class_scores(x, threshold=t, gate=False)
        c = error_factor(e, model.alpha_for(t), 784) * gamma
        torch.testing.assert_close(full, c[:, None] * model(x).softmax(-1))
        gated = model.class_scores(x, threshold=t)
        assert torch.equal(full.amax(-1) >= t, gated.amax(-1) >= t)
        assert (gated >= full - 1e-12).all()  # skipped samples carry the upper bound
    assert model.alpha_for(0.99) == 3.0 and model.alpha_for(0.9) == 20.0


def test_dae_refuses_a_threshold_without_a_paired_alpha():
    model = DAEClassifier(MLPDAE(), alpha=40.0, alpha_at={0.9: 20.0, 0.99: 3.0}, num_classes=3)
    assert model.alpha_for(None) == 40.0  # no threshold (rankings): model.alpha
    with pytest.raises(ConfigError, match=r"^model.alpha_at=\{0.9: 20.0, 0.99: 3.0\} is not "
                                          r"allowed: an alpha paired with threshold 0.5$"):
        model.alpha_for(0.5)
    with pytest.raises(ConfigError, match=r"^model.alpha_at=\{0.9: 20.0, 0.99: 3.0\} is not "
                                          r"allowed: an alpha paired with every threshold of "
                                          r"callbacks.x.thresholds; unpaired: 0.95, 0.5$"):
        model.check_thresholds([0.9, 0.95, 0.99, 0.5], "callbacks.x.thresholds")
    model.check_thresholds([0.99, 0.9], "callbacks.x.thresholds")  # all paired: no error
    with pytest.raises(ConfigError, match="paired with threshold 0.900001$"):
        model.class_scores(torch.randn(2, 2), threshold=0.9 + 1e-6)


def test_rings_model_pairs_its_alpha_with_the_callbacks_thresholds(tmp_path):
    cfg = compose_cfg("train", ["experiment=rings2d"], tmp_path)
    model = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    thresholds = [t for cb in callbacks for t in getattr(cb, "thresholds", [])]
    assert sorted(thresholds) == [0.9, 0.99]
    for cb in callbacks:
        if hasattr(cb, "check"):
            cb.check(model)  # refuses nothing
    assert [model.alpha_for(t) for t in thresholds] == [model.alpha] * 2 == [40.0, 40.0]


def test_dae_l2_penalty_covers_weights_only():
    model = DAEClassifier(MLPDAE(), num_classes=3)
    expected = 0.5 * sum(p.pow(2).sum() for n, p in model.network.named_parameters()
                         if n.endswith("weight"))
    torch.testing.assert_close(model.l2_penalty(), expected)


def test_classifier_log_probs_sum_class_mass():
    model = Classifier(ConvClassifier(100), omega=10)
    x = torch.rand(2, 1, 28, 28)
    lp = model.log_probs(x)
    assert lp.shape == (2, 10)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(2))


@pytest.mark.parametrize("key,kwargs", [
    ("model.curvature", {"curvature": "approx"}),
    ("model.classifier_input", {"classifier_input": "both"}),
    ("model.probes", {"probes": 0}),
    ("model.sigma", {"sigma": -1.0}),
])
def test_dae_bad_options_name_the_key(key, kwargs):
    with pytest.raises(ValueError, match=key):
        DAEClassifier(MLPDAE(), **kwargs)


def test_class_scores_at_shares_gamma_across_thresholds(monkeypatch):
    torch.manual_seed(1)
    model = DAEClassifier(ConvDAE(), curvature="hutchinson", probes=4,
                          alpha_at={0.0: 20.0, 0.5: 20.0}).double()
    x = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    calls = []
    curvature = model.curvature
    monkeypatch.setattr(model, "curvature", lambda v: calls.append(len(v)) or curvature(v))
    torch.manual_seed(2)
    shared = model.class_scores_at(x, [0.0, 0.5])  # thresholds every sample reaches
    assert calls == [6]  # one Gamma per sample, not one per threshold
    for t, got in zip([0.0, 0.5], shared, strict=True):
        torch.manual_seed(2)  # the same Hutchinson probes
        torch.testing.assert_close(got, model.class_scores(x, threshold=t, gate=False))


def test_scorer_reuses_the_forward_pass_and_gates_on_wanted(monkeypatch):
    """``log_probs_with_scorer``: log y from one encoder pass, and scores of any rows of the
    same x equal to ``class_scores_at``; Gamma only for wanted decisions that can pass."""
    torch.manual_seed(1)
    model = DAEClassifier(ConvDAE(), alpha_at={0.0: 20.0, 0.99: 3.0}).double()
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    encodes, calls = [], []
    encode = model.network.encode
    monkeypatch.setattr(model.network, "encode", lambda v: encodes.append(len(v)) or encode(v))
    # a stand-in gamma (0.01 + row sum) that records which rows it was asked for
    monkeypatch.setattr(model, "curvature", lambda v: calls.append(len(v))
                        or 0.01 + v.detach().flatten(1).sum(1) / 1e4)
    log_probs, scorer = model.log_probs_with_scorer(x)
    torch.testing.assert_close(log_probs, model.network.classify(encode(x)[0]).log_softmax(-1))
    assert log_probs.requires_grad and encodes == [5]
    index, thresholds = torch.tensor([4, 1, 2]), [0.0, 0.99]
    wanted = torch.tensor([[True, False], [False, True], [False, False]])
    got = scorer(index, thresholds, wanted)
    assert encodes == [5] and calls == [1]  # no new encoder pass; Gamma for row 4 only
    assert not any(s.requires_grad for s in got)
    full = model.class_scores_at(x[index].detach(), thresholds, gate=False)
    torch.testing.assert_close(got[0][0], full[0][0])  # the one wanted, reachable decision
    assert all((g >= f - 1e-12).all() for g, f in zip(got, full, strict=True))  # bounds
    for a, b in zip(scorer(index, thresholds), model.class_scores_at(x[index].detach(),
                                                                    thresholds), strict=True):
        torch.testing.assert_close(a, b)


def test_default_scorer_is_class_scores_at():
    model = Classifier(ConvClassifier(100), omega=10)
    x = torch.rand(3, 1, 28, 28)
    log_probs, scorer = model.log_probs_with_scorer(x)
    torch.testing.assert_close(log_probs, model.log_probs(x))
    index = torch.tensor([2, 0])
    torch.testing.assert_close(scorer(index, [0.5])[0], model.class_scores(x[index]))


@pytest.mark.parametrize("model,data", [("cnn", "mnist"), ("cool", "mnist"), ("dae_sym", "mnist"),
                                        ("dae_asym", "mnist"), ("dae_mlp", "rings2d"),
                                        ("dae_separate", "mnist")])
def test_lightning_load_from_checkpoint_rebuilds_every_gradient_model(model, data, tmp_path):
    cfg = compose_cfg("train", [f"model={model}", f"data={data}", "+curvature=hutchinson"],
                      tmp_path)
    trained = instantiate(cfg.model)
    shape = (2,) if data == "rings2d" else (1, 28, 28)
    x = torch.rand(4, *shape)
    batches = DataLoader(TensorDataset(x, torch.arange(4) % trained.num_classes), batch_size=4)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(trained, batches)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = type(trained).load_from_checkpoint(tmp_path / "model.ckpt")
    assert loaded.hparams == trained.hparams  # the dAEs' curvature: hutchinson
    scores = []
    for m in (trained.eval(), loaded.eval()):
        torch.manual_seed(0)  # the same Hutchinson probes
        scores.append(m.class_scores(x, gate=False))
    assert torch.equal(*scores)


def test_network_config_from_a_checkpoint_builds_only_overgen_networks():
    net = build_network({"_target_": "overgen.networks.ConvDAE", "tied": False})
    assert net.init_args == {"num_classes": 10, "tied": False, "unpool": "switches"}
    with pytest.raises(CheckpointError, match="os.system is not one of overgen.networks"):
        build_network({"_target_": "os.system", "command": "true"})
    assert network_config(torch.nn.Linear(2, 2)) is None  # a foreign network: not stored
    assert build_network(network_config(net)).init_args == net.init_args


@pytest.mark.parametrize("overrides,width", [(["model=cnn"], 10), (["model=cool"], 100),
                                             (["model=cool", "model.omega=5"], 50)])
def test_cool_head_width_follows_omega(overrides, width, tmp_path):
    model = instantiate(compose_cfg("train", overrides, tmp_path).model)
    assert model.network.head.out_features == width == 10 * model.omega
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 3, 9, 9])
    scores = model.class_scores(x)
    assert scores.shape == (4, 10) and ((scores >= 0) & (scores <= 1)).all()
    logits = model(x).unflatten(-1, (10, model.omega))  # by hand: omega^omega prod_j a_kj
    expected = model.omega ** model.omega * logits.flatten(1).softmax(-1).unflatten(
        -1, (10, model.omega)).prod(-1)
    torch.testing.assert_close(scores, expected)
    assert torch.isfinite(model.training_step((x, y), 0))


def test_classifier_refuses_a_head_of_the_wrong_width():
    with pytest.raises(ConfigError, match=r"^model.network.num_outputs=100 is not allowed: "
                                          r"model.num_classes \* model.omega = 50"):
        Classifier(ConvClassifier(100), omega=5)
