"""The factored exact trace (through the bottleneck) and ``ConvDAE.jacobian_trace`` (the
linearised layers written out) against the naive one and finite differences, on both dAE
networks and on a smooth autoencoder that is not ReLU-ended."""

from __future__ import annotations

import pytest
import torch
from helpers import small_conv_dae
from torch import nn

from overgen import scores
from overgen.models import DAEClassifier
from overgen.networks import MLPDAE, ConvDAE


def fd_trace(encode, decode, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``sum_i (r(x + eps e_i) - r(x - eps e_i))_i / 2 eps`` for one sample ``x: [1, *shape]``,
    all 2D perturbed inputs in one batch (``decode`` already holds ``x``'s switches)."""
    d = x[0].numel()
    steps = eps * torch.eye(d, dtype=x.dtype).view(d, *x.shape[1:])
    r = decode(encode(torch.cat([x + steps, x - steps]))).flatten(1)
    return (r[:d] - r[d:]).diagonal().sum() / (2 * eps)


def conv_closures(net: ConvDAE, x: torch.Tensor, repeat: int = 1):
    """``encode: x -> h`` and ``decode: h -> r`` with the switches of ``encode(x)`` fixed
    (``repeat``-ed along the batch for the finite-difference batch)."""
    ctx = net.encode(x)[1]
    if ctx is not None:
        ctx = tuple(c.repeat(repeat, 1, 1, 1) for c in ctx)
    return (lambda v: net.encode(v)[0]), (lambda h: net.decode(h, ctx))


# D JVPs and 2D forward passes a variant: the inner loop checks dae_sym's (tied, switches),
# the slow tests the other three, whose batched traces equal these in the inner loop too
@pytest.mark.parametrize("tied,unpool", [
    (True, "switches"), pytest.param(True, "nearest", marks=pytest.mark.reference),
    pytest.param(False, "switches", marks=pytest.mark.reference),
    pytest.param(False, "nearest", marks=pytest.mark.reference)])
def test_factored_trace_conv_dae(tied, unpool):
    torch.manual_seed(3)
    net = small_conv_dae(tied, unpool)
    x = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    encode, decode = conv_closures(net, x)
    assert 0 < (encode(x) == 0).sum() < encode(x).numel()  # some units skipped, some kept

    naive = scores.jacobian_trace(lambda v: decode(encode(v)), x, "exact", chunk_size=98)
    fd = fd_trace(*conv_closures(net, x, 2 * 784), x)[None]
    for skip in (True, False):
        got = scores.jacobian_trace_factored(encode, decode, x, chunk_size=5,
                                             skip_zero_units=skip)
        torch.testing.assert_close(got, naive, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(got, fd, rtol=1e-6, atol=1e-6)


def test_factored_trace_mlp_dae():
    torch.manual_seed(4)
    net = MLPDAE().double()
    x = torch.randn(6, 2, dtype=torch.float64)
    encode = lambda v: net.encode(v)[0]  # noqa: E731
    used = (encode(x) != 0).sum(1)
    assert used.min() < used.max() and used.max() > 64  # uneven packing, several chunks
    got = scores.jacobian_trace_factored(encode, net.decode, x, chunk_size=64,
                                         skip_zero_units=True)
    naive = scores.jacobian_trace(lambda v: net.decode(encode(v)), x, "exact")
    fd = torch.stack([fd_trace(encode, net.decode, xi[None]) for xi in x])
    torch.testing.assert_close(got, naive, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got, fd, rtol=1e-7, atol=1e-8)


def test_factored_trace_any_autoencoder_and_its_gradient():
    """A tanh bottleneck (no zero units to skip), differentiable in ``x`` like the naive one."""
    torch.manual_seed(1)
    encode = nn.Sequential(nn.Linear(6, 4), nn.Tanh()).double()
    decode = nn.Sequential(nn.Linear(4, 6), nn.Sigmoid()).double()
    x = torch.rand(5, 6, dtype=torch.float64, requires_grad=True)
    got = scores.jacobian_trace_factored(encode, decode, x, chunk_size=3)
    naive = scores.jacobian_trace(lambda v: decode(encode(v)), x, "exact", chunk_size=4)
    torch.testing.assert_close(got, naive, rtol=1e-10, atol=1e-12)
    fd = torch.stack([fd_trace(encode, decode, xi[None].detach()) for xi in x])
    torch.testing.assert_close(got.detach(), fd, rtol=1e-7, atol=1e-8)
    (g_got,), (g_naive,) = (torch.autograd.grad(t.sum(), x) for t in (got, naive))
    torch.testing.assert_close(g_got, g_naive, rtol=1e-10, atol=1e-12)


def digit_like(n: int) -> torch.Tensor:
    """``[n, 1, 28, 28]`` float64 images like MNIST digits: black (exactly 0) but for a few
    bright random strokes, so whole pooling windows tie (the switches' chosen indices)."""
    x = torch.zeros(n, 1, 28, 28, dtype=torch.float64)
    for img in x:
        for _ in range(3):
            row, col = torch.randint(4, 20, (2,)).tolist()
            img[0, row:row + 2, col:col + 8] = torch.rand(1, dtype=torch.float64) * 0.5 + 0.5
    return x


def traced_batch(tied: bool, unpool: str) -> tuple[ConvDAE, torch.Tensor, torch.Tensor]:
    """A thin conv dAE, 3 random and 3 digit-like images with different counts of active
    units, and their traces by ``jacobian_trace`` with 2 units per chunk."""
    torch.manual_seed(6)
    net = small_conv_dae(tied, unpool)
    x = torch.cat([torch.rand(3, 1, 28, 28, dtype=torch.float64), digit_like(3)])
    counts = (net.encode(x)[0] > 0).sum(1)
    assert counts.min() < counts.max() and counts.min() > 0  # uneven packing
    return net, x, net.jacobian_trace(x, chunk_size=2 * len(x))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("unpool", ["switches", "nearest"])
def test_conv_dae_jacobian_trace(tied, unpool):
    """Batched samples with different counts of active units, a few units per chunk:
    equal to the factored JVPs (all units, one sample at a time) to 1e-10 relative (which
    ``test_factored_trace_conv_dae`` checks against D JVPs and central differences)."""
    net, x, got = traced_batch(tied, unpool)
    for i, xi in enumerate(x.split(1)):
        factored = scores.jacobian_trace_factored(*conv_closures(net, xi), xi, chunk_size=7)
        torch.testing.assert_close(got[i:i + 1], factored, rtol=1e-10, atol=0)


@pytest.mark.reference  # 784 JVPs and 1,568 forward passes per image, 12 images
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("unpool", ["switches", "nearest"])
def test_conv_dae_jacobian_trace_against_d_jvps_and_differences(tied, unpool):
    """The batched traces of the random images equal D JVPs of ``r`` to 1e-10 relative and
    central differences to 1e-6."""
    net, x, got = traced_batch(tied, unpool)
    for i, xi in enumerate(x[:3].split(1)):
        encode, decode = conv_closures(net, xi)
        naive = scores.jacobian_trace(lambda v, e=encode, d=decode: d(e(v)), xi, "exact",
                                      chunk_size=98)
        torch.testing.assert_close(got[i:i + 1], naive, rtol=1e-10, atol=0)
        fd = fd_trace(*conv_closures(net, xi, 2 * 784), xi)[None]
        torch.testing.assert_close(got[i:i + 1], fd, rtol=1e-6, atol=1e-6)


def test_conv_dae_jacobian_trace_gradient():
    """``d trace / dx`` through the written-out maps equals that of the factored JVPs."""
    torch.manual_seed(7)
    net = small_conv_dae(False, "switches")
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    encode, decode = conv_closures(net, x.detach())
    factored = scores.jacobian_trace_factored(encode, decode, x, chunk_size=16)
    (g_got,), (g_factored,) = (torch.autograd.grad(t.sum(), x)
                               for t in (net.jacobian_trace(x, chunk_size=4), factored))
    torch.testing.assert_close(g_got, g_factored, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("net", ["conv", "mlp"])
def test_model_exact_curvature(net):
    """``DAEClassifier.curvature`` (exact) equals ``gamma`` computed apart: for the conv dAE
    (the network's ``jacobian_trace`` on more samples than one group, put back in order)
    by the factored JVPs (``test_factored_trace_conv_dae``: equal to D JVPs), for the 2-D
    one (200 > 2) by D = 2 JVPs of ``r``."""
    torch.manual_seed(5)
    network = small_conv_dae(True, "switches") if net == "conv" else MLPDAE().double()
    model = DAEClassifier(network, curvature="exact", chunk_size=5)
    if net == "conv":
        x = torch.rand(10, 1, 28, 28, dtype=torch.float64)
        trace = scores.jacobian_trace_factored(*conv_closures(network, x), x, chunk_size=16)
        want = (trace - 784) / 784
    else:
        x = torch.randn(5, 2, dtype=torch.float64)
        want = scores.curvature(model.reconstruct, x, "exact")
    torch.testing.assert_close(model.curvature(x), want, rtol=1e-10, atol=1e-12)
