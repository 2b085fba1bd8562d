"""The factored exact trace (through the bottleneck) and ``ConvDAE.jacobian_trace`` (the
linearised layers written out) against the naive one and finite differences, on both dAE
networks and on a smooth autoencoder that is not ReLU-ended."""

from __future__ import annotations

import pytest
import torch
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


def small_conv_dae(tied: bool, unpool: str) -> ConvDAE:
    """``ConvDAE`` with thinner layers (conv1 1->1 channel, 16 latent units; conv2 keeps
    its 64 outputs, which the decoder's reshape needs): the same code paths, ~15x cheaper."""
    net = ConvDAE(tied=tied, unpool=unpool)
    enc, hidden = net.encoder, 16
    enc.conv1, enc.conv2 = nn.Conv2d(1, 1, 5, padding=2), nn.Conv2d(1, 64, 5, padding=2)
    enc.fc, net.head = nn.Linear(64 * 7 * 7, hidden), nn.Linear(hidden, 10)
    if tied:
        net.dec_conv2_bias = nn.Parameter(0.1 * torch.randn(1))
        net.dec_fc_bias = nn.Parameter(0.1 * torch.randn(64 * 7 * 7))
    else:
        net.dec_fc = nn.Linear(hidden, 64 * 7 * 7)
        net.dec_conv2 = nn.ConvTranspose2d(64, 1, 5, padding=2)
        net.dec_conv1 = nn.ConvTranspose2d(1, 1, 5, padding=2)
    return net.double()


def conv_closures(net: ConvDAE, x: torch.Tensor, repeat: int = 1):
    """``encode: x -> h`` and ``decode: h -> r`` with the switches of ``encode(x)`` fixed
    (``repeat``-ed along the batch for the finite-difference batch)."""
    ctx = net.encode(x)[1]
    if ctx is not None:
        ctx = tuple(c.repeat(repeat, 1, 1, 1) for c in ctx)
    return (lambda v: net.encode(v)[0]), (lambda h: net.decode(h, ctx))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("unpool", ["switches", "nearest"])
def test_factored_trace_conv_dae(tied, unpool):
    torch.manual_seed(3)
    net = small_conv_dae(tied, unpool)
    x = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    encode, decode = conv_closures(net, x)
    assert 0 < (encode(x) == 0).sum() < encode(x).numel()  # some units skipped, some kept

    naive = scores.jacobian_trace(lambda v: decode(encode(v)), x, "exact", chunk_size=784)
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


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("unpool", ["switches", "nearest"])
def test_conv_dae_jacobian_trace(tied, unpool):
    """Batched samples with different counts of active units, a few units per chunk:
    equal to the factored JVPs (all units, one sample at a time) to 1e-10 relative, and
    to D JVPs of ``r`` and central differences on the random inputs."""
    torch.manual_seed(6)
    net = small_conv_dae(tied, unpool)
    x = torch.cat([torch.rand(3, 1, 28, 28, dtype=torch.float64), digit_like(3)])
    counts = (net.encode(x)[0] > 0).sum(1)
    assert counts.min() < counts.max() and counts.min() > 0  # uneven packing
    got = net.jacobian_trace(x, chunk_size=2 * len(x))  # 2 units per chunk
    for i, xi in enumerate(x.split(1)):
        encode, decode = conv_closures(net, xi)
        factored = scores.jacobian_trace_factored(encode, decode, xi, chunk_size=7)
        torch.testing.assert_close(got[i:i + 1], factored, rtol=1e-10, atol=0)
        if i < 3:
            naive = scores.jacobian_trace(lambda v, e=encode, d=decode: d(e(v)), xi, "exact",
                                          chunk_size=784)
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
    """``DAEClassifier.curvature`` (exact) equals the naive ``gamma``: the network's
    ``jacobian_trace`` for the conv dAE (more samples than one group, put back in order),
    by D = 2 JVPs for the 2-D one (200 > 2)."""
    torch.manual_seed(5)
    network = small_conv_dae(True, "switches") if net == "conv" else MLPDAE().double()
    model = DAEClassifier(network, curvature="exact", chunk_size=5)
    x = (torch.rand(10, 1, 28, 28) if net == "conv" else torch.randn(5, 2)).double()
    naive = scores.curvature(model.reconstruct, x, "exact", chunk_size=784)
    torch.testing.assert_close(model.curvature(x), naive, rtol=1e-10, atol=1e-12)
