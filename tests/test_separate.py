"""model=dae_separate: a plain CNN rescaled by c(x) of a dAE trained beside it, apart
(its train/evaluate/load run: tests/test_train_e2e.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import small_conv_dae

from overgen.models import SeparateDAEClassifier
from overgen.networks import ConvClassifier
from overgen.scores import curvature_factor, error_factor, reconstruction_error


def separate_model() -> SeparateDAEClassifier:
    torch.manual_seed(0)
    return SeparateDAEClassifier(small_conv_dae(True, "switches"), ConvClassifier(),
                                 alpha=20.0, beta=10.0,
                                 alpha_at={0.9: 20.0, 0.99: 3.0}).double()


def brute_force_parts(model: SeparateDAEClassifier, x):
    """The dAE's ``e(x)``, ``Gamma(x)`` from the full Jacobian of its ``r`` (autograd, one
    sample at a time) and the softmax of the CNN called on its own."""
    dae, d = model.network, x[0].numel()

    def r(v):
        h, ctx = dae.encode(v)
        return dae.decode(h, ctx)

    traces = torch.stack([torch.autograd.functional.jacobian(r, xi[None]).reshape(d, d).trace()
                          for xi in x])
    gamma = curvature_factor((traces - d) / d, model.beta)
    return reconstruction_error(x, r(x)), gamma, model.classifier(x).softmax(-1)


def test_scores_are_the_separate_dae_confidence_times_the_cnn_softmax():
    model = separate_model()
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    e, gamma, probs = brute_force_parts(model, x)
    for t, alpha in ((0.9, 20.0), (0.99, 3.0), (None, 20.0)):
        expected = (error_factor(e, alpha, 784) * gamma)[:, None] * probs
        torch.testing.assert_close(model.class_scores(x, threshold=t, gate=False), expected)
    log_probs, scorer = model.log_probs_with_scorer(x)
    torch.testing.assert_close(log_probs, probs.log())
    full = model.class_scores_at(x, [0.9, 0.99], gate=False)
    for a, b in zip(scorer(torch.arange(2), [0.9, 0.99], torch.ones(2, 2, dtype=torch.bool)),
                    full, strict=True):
        torch.testing.assert_close(a, b)


def test_networks_share_no_parameter_and_each_loss_reaches_only_its_network():
    model = separate_model()
    dae, cnn = set(map(id, model.network.parameters())), set(map(id, model.classifier.parameters()))
    assert not dae & cnn
    assert dae | cnn == set(map(id, model.parameters()))
    x, y = torch.rand(4, 1, 28, 28, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    noisy = x + 0.2 * torch.randn_like(x)
    ce, rec = model.ce_and_rec(x, noisy, y)
    torch.testing.assert_close(ce, F.cross_entropy(model.classifier(x), y))  # clean input
    torch.testing.assert_close(rec, (model.reconstruct(noisy) - x).pow(2).sum((1, 2, 3)).mean())
    for loss, reached, untouched in ((ce, model.classifier, model.network),
                                     (rec, model.network, model.classifier)):
        grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True,
                                    retain_graph=True)
        by_id = {id(p): g for p, g in zip(model.parameters(), grads, strict=True)}
        assert all(by_id[id(p)] is None for p in untouched.parameters())
        assert any(by_id[id(p)] is not None and by_id[id(p)].abs().sum() > 0
                   for p in reached.parameters())
    assert not hasattr(model.network, "head")  # the CNN alone classifies


def test_posthoc_hidden_layer_is_the_cnns():
    model = separate_model()
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(model.hidden_layer()(x), model.classifier.encoder(x))
    torch.testing.assert_close(model(x), model.classifier(x))


def test_input_gradient_of_the_scores_runs_through_both_networks():
    """What the fooling attack on ``y~`` follows: ``grad log y~_k = grad log y_cnn_k +
    grad log c``, each part from its own network and neither zero."""
    model = separate_model()
    model.curvature_method, model.probes = "hutchinson", 2
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(3)
    scores = model.class_scores(x, threshold=0.9, gate=False)
    (total,) = torch.autograd.grad(scores[:, 4].log().sum(), x)
    (cnn,) = torch.autograd.grad(model.classifier(x).log_softmax(-1)[:, 4].sum(), x)
    torch.manual_seed(3)  # the same Hutchinson probes
    e = reconstruction_error(x, model.reconstruct(x))
    c = error_factor(e, 20.0, 784) * curvature_factor(model.curvature(x), model.beta)
    (dae,) = torch.autograd.grad(c.log().sum(), x)
    torch.testing.assert_close(total, cnn + dae)
    assert cnn.abs().sum() > 0 and dae.abs().sum() > 0
