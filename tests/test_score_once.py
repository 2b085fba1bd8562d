"""Each test batch is scored once, by the model's ``test_step``, for every evaluation."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY, compose_cfg

from overgen.callbacks import FarOOD
from overgen.errors import ConfigError
from overgen.models import Classifier, DAEClassifier
from overgen.models.base import batch_seed, merge_needs
from overgen.models.posthoc import FeatureFit
from overgen.networks import MLPDAE, ConvClassifier, ConvDAE
from overgen.outputs import FINAL_SCORE
from overgen.scores import curvature_factor, reconstruction_error
from overgen.tasks import train
from overgen.test_progress import TestProgress

OPENSET = ["data=mnist_openset", "+known=3", "model=dae_sym", "+curvature=hutchinson",
           "model.probes=2", *TINY, "trainer.max_steps=20", "trainer.limit_test_batches=2"]
TEST_IMAGES = 2 * 500  # limit_test_batches=2 of data.eval_batch_size=500

# metrics.json of the OPENSET run at commit 81e58cf, where each callback scored the test
# images itself (TestAccuracy gated, OpenSet in full): the numbers must not change
BEFORE = {
    "ood/aupr_in": 0.5255312746146241, "ood/aupr_out": 0.8040183637210934,
    "ood/auroc": 0.6841167061725539, "ood/fpr@95tpr": 0.8923512747875354,
    "openset/f1": 0.0, "openset/fn": 294, "openset/fp": 0, "openset/known": 3,
    "openset/known_classes": [0, 4, 7], "openset/openness": 0.4522774424948339,
    "openset/precision": 0.0, "openset/recall": 0.0, "openset/threshold": 0.99,
    "openset/tp": 0, "run/alpha": 20.0, "run/alpha@0.90": 20.0, "run/alpha@0.99": 3.0,
    "run/beta": 10.0, "run/curvature": "hutchinson", "run/data": "mnist_openset",
    "run/epochs": 1, "run/lambda_l2": 0.0, "run/model": "dae_sym", "run/probes": 2,
    "run/resumed_from": None, "run/seed": 12345, "run/sigma": 0.2, "run/steps": 20,
    "run/train_classes": [0, 4, 7], "test/acc": 0.17299999296665192,
    "test/acc@0.90": 0.0, "test/acc@0.99": 0.0, "test/loss": 4.545546054840088,
    "test/mse": 0.03177087381482124,
}


@pytest.fixture
def gamma_images(monkeypatch) -> list[int]:
    """The number of images each ``DAEClassifier.curvature`` call is asked for."""
    calls: list[int] = []
    curvature = DAEClassifier.curvature
    monkeypatch.setattr(DAEClassifier, "curvature",
                        lambda self, x: calls.append(len(x)) or curvature(self, x))
    return calls


@pytest.mark.e2e
def test_openset_run_gives_the_same_metrics_with_one_gamma_per_image(tmp_path, mnist_dir,
                                                                     gamma_images):
    train(compose_cfg("train", OPENSET, tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # keys added since (run/seconds, run/git_commit, ...) are new facts, not changed numbers
    assert {k: metrics.get(k) for k in BEFORE} == BEFORE
    assert sum(gamma_images) == TEST_IMAGES  # OpenSet's ood needs every Gamma, once


@pytest.mark.e2e
def test_gated_and_full_needs_share_one_gamma(tmp_path, mnist_dir, gamma_images):
    """At threshold 0.1 with alpha 0 every test image can pass (max y >= 1/10): the gated
    accuracy needs every Gamma too; before, it computed them a second time."""
    cfg = compose_cfg("train", [*OPENSET, "callbacks.test_accuracy.thresholds=[0.1]"], tmp_path)
    cfg.model.alpha_at = {0.1: 0.0, 0.99: 3.0}
    metrics = train(cfg)
    assert metrics["test/acc@0.10"] == metrics["test/acc"]  # every correct image passes
    assert sum(gamma_images) == TEST_IMAGES


def test_merge_needs_is_the_union_in_full_where_any_asks():
    assert merge_needs([{0.9: False, 0.99: False}, {0.99: True}, {}]) == {0.9: False,
                                                                          0.99: True}
    assert merge_needs([{None: False}]) == {None: True}  # nothing to gate on
    assert merge_needs([]) == {}


def test_dae_test_step_against_its_own_functions(monkeypatch):
    torch.manual_seed(0)
    model = DAEClassifier(ConvDAE(), alpha=20.0).eval()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    probs = model(x).softmax(-1).detach()
    t = float(probs.amax(-1).median())  # with alpha 0: three images reach t, one not
    model.alpha_at = {t: 0.0, 0.99: 3.0}
    # a stand-in gamma per image (row sum), fast and the same for any subset of rows
    monkeypatch.setattr(model, "curvature", lambda v: v.flatten(1).sum(1) / 1e4)
    monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)
    model.score_needs = {t: False, 0.99: True, None: True}  # t gated, the others in full
    out = model.test_step((x, y), 0)
    assert torch.equal(out.labels, y)
    torch.testing.assert_close(out.probs, probs)
    torch.testing.assert_close(out.error, reconstruction_error(x, model.reconstruct(x)))
    torch.testing.assert_close(out.gamma, curvature_factor(model.curvature(x), model.beta))
    for key in model.score_needs:  # every Gamma computed (for the full ones): exact scores
        torch.testing.assert_close(out.scores[key], model.class_scores(x, key, gate=False))
    model.score_needs = {t: False}  # gated alone: Gamma only where max y reaches t
    out = model.test_step((x, y), 0)
    assert torch.equal(out.gamma.isnan(), probs.amax(-1) < t) and 0 < out.gamma.isnan().sum() < 4
    gated = model.class_scores(x, t)
    torch.testing.assert_close(out.scores[t], gated)
    assert torch.equal(gated.amax(-1) >= t, model.class_scores(x, t, gate=False).amax(-1) >= t)


def test_dae_test_step_logs_mse_and_loss_from_one_encoder_pass(monkeypatch):
    torch.manual_seed(0)
    model = DAEClassifier(ConvDAE()).eval()
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    logged, encodes = {}, []
    monkeypatch.setattr(model, "log", lambda k, v, **kwargs: logged.update({k: v}))
    encode = model.network.encode
    monkeypatch.setattr(model.network, "encode", lambda v: encodes.append(len(v)) or encode(v))
    model.test_step((x, y), 0)
    assert encodes == [3]
    torch.testing.assert_close(logged["test/mse"], F.mse_loss(model.reconstruct(x), x))
    torch.testing.assert_close(logged["test/loss"], F.cross_entropy(model(x), y))


def test_classifier_test_step_scores_every_threshold_alike(monkeypatch):
    torch.manual_seed(0)
    model = Classifier(ConvClassifier(30), omega=3).eval()
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)
    model.score_needs = {0.9: False, None: True}
    out = model.test_step((x, y), 0)
    assert set(out.scores) == {0.9, None} and out.error is None and out.gamma is None
    for scores in out.scores.values():
        torch.testing.assert_close(scores, model.class_scores(x))
    torch.testing.assert_close(out.probs, model.log_probs(x).exp())


def _fit_by_hand(hidden: torch.Tensor, labels: torch.Tensor) -> FeatureFit:
    """Class means and the pooled class-centred covariance's pseudo-inverse, in numpy."""
    h, y = hidden.double().numpy(), labels.numpy()
    seen = sorted(set(y.tolist()))
    means = np.stack([h[y == c].mean(0) for c in seen])
    centred = h - means[[seen.index(c) for c in y]]
    return FeatureFit(torch.as_tensor(means), torch.as_tensor(np.linalg.pinv(
        centred.T @ centred / len(h), hermitian=True)))


def test_classifier_posthoc_scores_from_its_one_forward_pass(monkeypatch):
    torch.manual_seed(0)
    model = Classifier(ConvClassifier(30), omega=3).eval()
    x, y = torch.rand(6, 1, 28, 28), torch.tensor([1, 2, 3, 1, 2, 3])
    monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)
    with torch.no_grad():
        logits, h = model(x), model.network.encoder(x)
    model.score_needs, model.posthoc_wanted = {None: True}, True
    model.feature_fit = _fit_by_hand(h, y)
    passes = []
    encoder = model.network.encoder.forward
    monkeypatch.setattr(model.network.encoder, "forward", lambda v: passes.append(1) or encoder(v))
    out = model.test_step((x, y), 0)
    assert len(passes) == 1 and set(out.posthoc) == {"msp", "max_logit", "energy", "mahalanobis"}
    # COOL: MSP over the class masses (10 units per class), logit scores over all 30 units
    masses = logits.softmax(-1).view(6, 10, 3).sum(-1)
    torch.testing.assert_close(out.posthoc["msp"], masses.max(-1).values)
    torch.testing.assert_close(out.posthoc["max_logit"], logits.max(-1).values)
    torch.testing.assert_close(out.posthoc["energy"], logits.exp().sum(-1).log())
    f, means, p = h.double(), *model.feature_fit
    closest = torch.tensor([min(float((fi - m) @ p @ (fi - m)) for m in means) for fi in f],
                           dtype=torch.float64)
    torch.testing.assert_close(out.posthoc["mahalanobis"], -closest)


def test_dae_posthoc_scores_from_its_one_encoder_pass(monkeypatch):
    torch.manual_seed(0)
    model = DAEClassifier(ConvDAE(), alpha=20.0).eval()
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)
    monkeypatch.setattr(model, "curvature", lambda v: torch.zeros(len(v)))
    model.score_needs, model.posthoc_wanted = {None: True}, True  # no fit: no Mahalanobis
    encodes = []
    encode = model.network.encode
    monkeypatch.setattr(model.network, "encode", lambda v: encodes.append(len(v)) or encode(v))
    out = model.test_step((x, y), 0)
    assert encodes == [3] and set(out.posthoc) == {"msp", "max_logit", "energy",
                                                   "reconstruction"}
    with torch.no_grad():
        e = (model.reconstruct(x) - x).pow(2).sum((1, 2, 3))
        logits = model(x)
    torch.testing.assert_close(out.posthoc["reconstruction"], torch.exp(-20.0 * e / 784))
    torch.testing.assert_close(out.posthoc["msp"], logits.softmax(-1).max(-1).values)
    torch.testing.assert_close(out.posthoc["energy"], logits.logsumexp(-1))
    model.posthoc_wanted = False  # no evaluation reads them: none computed
    assert model.test_step((x, y), 0).posthoc == {}


def _rings_dae(monkeypatch) -> DAEClassifier:
    """A small 2-D dAE scoring in full, whose curvature is a stand-in that draws from
    torch's generator as Hutchinson's probes do: a Gamma below 1 for about half the rows."""
    torch.manual_seed(0)
    model = DAEClassifier(MLPDAE(hidden=8), num_classes=3, beta=1.0).eval()
    model.score_needs = {None: True}
    monkeypatch.setattr(model, "curvature", lambda v: torch.randn(len(v)))
    monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)
    return model


def test_random_draws_of_a_test_batch_depend_on_its_index_alone(monkeypatch):
    model = _rings_dae(monkeypatch)
    batch = (torch.randn(16, 2), torch.randint(0, 3, (16,)))
    first = model.test_step(batch, 3)
    stream = torch.get_rng_state()
    model.test_step(batch, 2)
    assert torch.equal(torch.get_rng_state(), stream)  # the run's own stream untouched
    torch.randn(5)  # which moves on between batches
    again = model.test_step(batch, 3)
    assert torch.equal(first.gamma, again.gamma) and torch.equal(first.scores[None],
                                                                 again.scores[None])
    assert (first.gamma < 1).any()
    assert not torch.equal(first.gamma, model.test_step(batch, 2).gamma)


def test_saved_test_batches_are_returned_unscored_for_the_same_weights_only(
        monkeypatch, tmp_path, caplog):
    model = _rings_dae(monkeypatch)
    trainer = SimpleNamespace(global_rank=0, world_size=1, num_test_batches=[2])
    batch = (torch.randn(16, 2), torch.randint(0, 3, (16,)))

    def started() -> TestProgress:
        progress = TestProgress(save_every_s=0)
        progress.state_dir = str(tmp_path)
        progress.on_test_epoch_start(trainer, model)
        return progress

    out = model.test_step(batch, 0)
    started().on_test_batch_end(trainer, model, out, batch, 0)
    started()
    assert set(model.scored) == {0}
    monkeypatch.setattr(model, "score_batch", lambda *args: pytest.fail("scored again"))
    replayed = model.test_step(batch, 0)
    for name in ("labels", "probs", "error", "gamma"):
        assert torch.equal(getattr(replayed, name), getattr(out, name)), name
    assert torch.equal(replayed.scores[None], out.scores[None])

    with torch.no_grad():
        model.network.head.bias.add_(1.0)  # other weights: the save is not theirs
    with caplog.at_level(logging.WARNING):
        started()
    assert model.scored == {} and "saved for other weights or test settings" in caplog.text


@pytest.mark.parametrize("value", [-1, "often", True])
def test_test_progress_interval_must_be_seconds(value):
    with pytest.raises(ConfigError, match=r"^test_progress.save_every_s="):
        TestProgress(save_every_s=value)


def test_dae_test_step_scores_in_float32_under_bf16_autocast(monkeypatch):
    """``trainer.precision=bf16-mixed`` runs the test step under bf16 autocast; the error,
    probabilities and scores are still the float32 ones computed outside it."""
    torch.manual_seed(0)
    model = DAEClassifier(ConvDAE(), curvature="hutchinson", probes=2).eval()
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)
    model.score_needs = {None: True}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.test_step((x, y), 0)
    with torch.no_grad():
        probs, e = model(x).softmax(-1), reconstruction_error(x, model.reconstruct(x))
    assert out.error.dtype == out.scores[None].dtype == torch.float32
    torch.testing.assert_close(out.error, e)
    torch.testing.assert_close(out.probs, probs)
    torch.testing.assert_close(out.scores[None], out.gamma[:, None] * torch.exp(
        -model.alpha * e / 784)[:, None] * probs)


def test_far_ood_images_are_scored_like_test_batches_in_their_own_stream(monkeypatch):
    """``FarOOD`` and ``test_step`` score through ``score_seeded``: each batch's draws from
    torch's generator seeded by ``batch_seed(rank, batch, *stream)``, here by hand."""
    model = _rings_dae(monkeypatch)
    images = torch.randn(10, 2)
    trainer = SimpleNamespace(global_rank=0, world_size=1,
                              datamodule=SimpleNamespace(eval_batch_size=4))

    def by_hand(x: torch.Tensor, batch_idx: int, *stream: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(batch_seed(0, batch_idx, *stream))
            return model.score_batch((x, torch.zeros(len(x), dtype=torch.long)), batch_idx)

    stream = torch.get_rng_state()
    far = FarOOD(threshold=None)._scored(images, 2, trainer, model)[FINAL_SCORE]
    assert torch.equal(torch.get_rng_state(), stream)  # the run's own stream untouched
    want = torch.cat([by_hand(x, i, 2).scores[None].amax(-1) for i, x in
                      enumerate(images.split(4))])
    assert torch.equal(far, want.double())
    other_stream = FarOOD(threshold=None)._scored(images, 3, trainer, model)[FINAL_SCORE]
    assert not torch.equal(far, other_stream)  # the draws matter: a test with teeth

    batch = (images[:4], torch.randint(0, 3, (4,)))
    tested = model.test_step(batch, 0)
    assert torch.equal(tested.gamma, by_hand(batch[0], 0).gamma)
    assert torch.equal(tested.scores[None], model.score_seeded(batch, 0).scores[None])
