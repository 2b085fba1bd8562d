"""Every formula of docs/method.md §1 against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import small_conv_dae
from torch import nn

from overgen import scores
from overgen.networks import MLPDAE


@torch.no_grad()  # a column that kept its autograd graph held ~5 GB per conv-dAE image
def fd_jacobian(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central finite-difference Jacobian of a single-sample map, ``[D_out, D_in]``."""
    x = x.detach().flatten()
    cols = []
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e[i] = eps
        cols.append((f(x + e) - f(x - e)).flatten() / (2 * eps))
    return torch.stack(cols, 1)


def smooth_ae(d: int = 6, h: int = 4) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, d), nn.Sigmoid()).double()


def test_exact_trace_matches_finite_differences_smooth():
    ae = smooth_ae()
    x = torch.rand(5, 6, dtype=torch.float64)
    expected = torch.stack([fd_jacobian(lambda v: ae(v[None])[0], xi).trace() for xi in x])
    got = scores.jacobian_trace(ae, x, "exact", chunk_size=4)
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("tied,unpool", [
    (True, "switches"),
    pytest.param(False, "nearest", marks=pytest.mark.reference)])  # 1,568 forward passes an image
def test_exact_curvature_matches_finite_differences_conv_dae(tied, unpool):
    torch.manual_seed(2)
    net = small_conv_dae(tied, unpool)
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)

    def reconstruct(v):
        h, ctx = net.encode(v)
        return net.decode(h, ctx)

    d = 784
    expected = []
    for xi in x:
        # switches are piecewise constant in x: fix them at xi, as the JVP does
        h0, ctx0 = net.encode(xi[None])
        def f(v, c=ctx0):
            return (net.decode(net.encode(v.view(1, 1, 28, 28))[0], c))
        expected.append((fd_jacobian(f, xi, eps=1e-6).trace() - d) / d)
    got = scores.curvature(reconstruct, x, "exact", chunk_size=49)
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-6, atol=1e-8)


def test_hutchinson_is_unbiased_within_its_standard_error():
    ae = smooth_ae(d=8, h=8)
    x = torch.rand(3, 8, dtype=torch.float64)
    exact = scores.jacobian_trace(ae, x, "exact")
    g = torch.Generator().manual_seed(0)
    n = 4000
    est = torch.stack([scores.jacobian_trace(ae, x, "hutchinson", probes=1, generator=g)
                       for _ in range(n)])
    se = est.std(0) / math.sqrt(n)
    assert ((est.mean(0) - exact).abs() < 4 * se + 1e-12).all()
    # and a single many-probe estimate is close
    many = scores.jacobian_trace(ae, x, "hutchinson", probes=2000, generator=g)
    assert ((many - exact).abs() < 6 * est.std(0) / math.sqrt(2000)).all()


def test_hutchinson_exact_for_diagonal_jacobian():
    """v^T diag(a) v = sum a for any Rademacher v: the estimate has zero variance."""
    a = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    got = scores.jacobian_trace(lambda x: x * a, torch.rand(4, 3, dtype=torch.float64),
                                "hutchinson", probes=3)
    torch.testing.assert_close(got, torch.full((4,), a.sum().item(), dtype=torch.float64))


def test_linear_map_trace_and_curvature_hand_worked():
    w = torch.tensor([[2.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    x = torch.zeros(1, 2, dtype=torch.float64)
    trace = scores.jacobian_trace(lambda v: v @ w.T, x, "exact")
    assert trace.item() == pytest.approx(1.0)
    gamma = scores.curvature(lambda v: v @ w.T, x, "exact")
    assert gamma.item() == pytest.approx((1.0 - 2) / 2)


def test_curvature_factor_hand_values():
    gamma = torch.tensor([-0.5, 0.0, 0.2])
    got = scores.curvature_factor(gamma, beta=10.0)
    torch.testing.assert_close(got, torch.tensor([1.0, 1.0, math.exp(-2.0)]))


def test_confidence_hand_worked():
    """r(x) = 0.5 x + 0.1 in D = 4: e = sum (0.1 - 0.5 x)^2, trace = 2, gamma = -0.5."""
    x = torch.tensor([[0.2, 0.4, 0.6, 0.8]], dtype=torch.float64)
    e = ((0.5 * x + 0.1 - x) ** 2).sum().item()
    c = scores.confidence(lambda v: 0.5 * v + 0.1, x, alpha=20.0, beta=10.0)
    assert c.item() == pytest.approx(math.exp(-20.0 / 4 * e))
    # expanding map: J = 3 I, gamma = 2 > 0, Gamma = exp(-beta * 2)
    c2 = scores.confidence(lambda v: 3 * v, x, alpha=0.0, beta=0.5)
    assert c2.item() == pytest.approx(math.exp(-1.0))


def test_reconstruction_error_sums_over_inputs():
    x = torch.zeros(2, 1, 2, 2)
    r = torch.tensor([[[[1.0, 2.0], [0.0, 0.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    torch.testing.assert_close(scores.reconstruction_error(x, r), torch.tensor([5.0, 1.0]))


def test_cool_scores_product_and_softmax_special_case():
    torch.manual_seed(0)
    logits = torch.randn(3, 20)
    a = logits.softmax(-1)
    expected = torch.stack([2**2 * a[:, 2 * k] * a[:, 2 * k + 1] for k in range(10)], 1)
    torch.testing.assert_close(scores.cool_scores(logits, omega=2), expected)
    torch.testing.assert_close(scores.cool_scores(logits[:, :10], 1), logits[:, :10].softmax(-1))
    # the maximum 1 is reached when a class's omega units share all the mass equally
    peaked = torch.full((1, 20), -1e4)
    peaked[0, 4:6] = 0.0
    assert scores.cool_scores(peaked, 2)[0, 2].item() == pytest.approx(1.0)


def test_mlp_dae_exact_curvature_against_finite_differences():
    net = MLPDAE().double()
    x = torch.randn(4, 2, dtype=torch.float64)

    def reconstruct(v):
        return net.decode(*net.encode(v))

    expected = torch.stack([(fd_jacobian(lambda v: reconstruct(v[None])[0], xi).trace() - 2) / 2
                            for xi in x])
    torch.testing.assert_close(scores.curvature(reconstruct, x), expected, rtol=1e-6, atol=1e-9)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="hutchinson"):
        scores.jacobian_trace(lambda v: v, torch.zeros(1, 2), "bogus")


def test_msp_max_logit_energy_hand_worked():
    logits = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])  # softmax [1/4, 3/4], [1/2, 1/2]
    torch.testing.assert_close(scores.max_softmax(logits.softmax(-1)), torch.tensor([0.75, 0.5]))
    torch.testing.assert_close(scores.max_logit(logits), torch.tensor([math.log(3.0), 1.0]))
    # logsumexp: log(1 + 3) = log 4; log(2e) = 1 + log 2
    torch.testing.assert_close(scores.energy(logits), torch.tensor([math.log(4.0),
                                                                    1 + math.log(2.0)]))


def test_mahalanobis_against_sklearn():
    """Moments summed over two batches, class means and the shared covariance as
    scikit-learn's ``EmpiricalCovariance`` of the class-centred features, distances from its
    ``mahalanobis``; one feature is always 0 (a dead ReLU unit: a singular covariance) and
    class 3 of 4 has no sample (an unknown digit)."""
    from sklearn.covariance import EmpiricalCovariance

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (300,), generator=g)
    centres = torch.randn(3, 6, generator=g).double() * 3
    mixing = torch.randn(6, 6, generator=g).double()  # correlated features
    feats = centres[labels] + torch.randn(300, 6, generator=g).double() @ mixing
    feats[:, 2] = 0.0
    first, second = (scores.class_moments(f, y, 4) for f, y in ((feats[:100], labels[:100]),
                                                                (feats[100:], labels[100:])))
    means, precision = scores.mahalanobis_fit(*(a + b for a, b in zip(first, second, strict=True)))
    x, y = feats.numpy(), labels.numpy()
    ref_means = np.stack([x[y == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(means.numpy(), ref_means, atol=1e-10)
    cov = EmpiricalCovariance(assume_centered=True).fit(x - ref_means[y])
    test = torch.randn(50, 6, generator=g).double() * 4
    test[:, 2] = 0.0
    ref = np.stack([cov.mahalanobis(test.numpy() - m) for m in ref_means]).min(0)
    np.testing.assert_allclose(scores.mahalanobis(test, means, precision).numpy(), -ref,
                               rtol=1e-8)
