"""Architectures of docs/method.md §2: parameter counts, shapes, tied weights, unpooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from overgen.networks import MLPDAE, ConvClassifier, ConvDAE
from overgen.networks.dae import conv_transpose, unpool


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("net,count", [
    (lambda: ConvClassifier(10), 1_310_906),
    (lambda: ConvClassifier(100), 1_346_996),
    (lambda: ConvDAE(tied=True), 1_314_075),
    (lambda: ConvDAE(tied=False), 2_620_475),
])
def test_parameter_counts_match_spec(net, count):
    assert n_params(net()) == count


@pytest.mark.parametrize("mode", ["switches", "nearest"])
def test_conv_dae_shapes_and_range(mode):
    net = ConvDAE(unpool=mode)
    x = torch.rand(3, 1, 28, 28)
    h, ctx = net.encode(x)
    r = net.decode(h, ctx)
    assert h.shape == (3, 400) and r.shape == x.shape
    assert ((r > 0) & (r < 1)).all()
    assert net.classify(h).shape == (3, 10)


def test_tied_decoder_shares_encoder_weights():
    net = ConvDAE(tied=True)
    x = torch.rand(2, 1, 28, 28)
    net.decode(*net.encode(x)).sum().backward()
    # the decoder's gradient reaches the encoder's kernels through the transposed use
    assert net.encoder.conv1.weight.grad.abs().sum() > 0
    names = {n for n, _ in net.named_parameters()}
    assert not any(n.startswith("dec_") and n.endswith("weight") for n in names)


def test_switch_unpooling_is_the_transpose_of_max_pooling():
    """<pool_S(a), y> = <a, unpool_S(y)> with the switches S fixed (adjoint identity)."""
    a = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    pooled, idx = F.max_pool2d(a, 2, return_indices=True)
    y = torch.randn_like(pooled)
    lhs = (pooled * y).sum()
    rhs = (a * unpool(y, idx)).sum()
    torch.testing.assert_close(lhs, rhs)
    assert unpool(y, None).shape == a.shape


def test_mlp_dae_is_tied_and_linear_output():
    net = MLPDAE()
    assert n_params(net) == 2 * 200 + 200 + 200 * 200 + 200 + 200 + 2 + 200 * 3 + 3
    x = torch.randn(5, 2) * 10
    r = net.decode(*net.encode(x))
    assert r.shape == (5, 2) and (r.abs() > 1).any()  # unbounded (linear) output


def test_unknown_unpool_mode_is_rejected():
    with pytest.raises(ValueError, match="switches"):
        ConvDAE(unpool="bilinear")


@pytest.mark.parametrize("c_in,c_out,side", [(64, 32, 14), (32, 1, 28)])
def test_decoder_convolution_is_the_transposed_convolution(c_in, c_out, side):
    """The flipped-kernel ``conv2d`` equals ``conv_transpose2d``, values and gradients."""
    torch.manual_seed(0)
    x = torch.randn(3, c_in, side, side, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_in, c_out, 5, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, dtype=torch.float64, requires_grad=True)
    ours, ref = conv_transpose(x, w, b), F.conv_transpose2d(x, w, b, padding=2)
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ref)
    for a, r in zip(torch.autograd.grad(ours, (x, w, b), g),
                    torch.autograd.grad(ref, (x, w, b), g), strict=True):
        torch.testing.assert_close(a, r)
