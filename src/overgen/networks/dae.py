"""Joint classifier + denoising autoencoder networks (docs/method.md §2, §3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from overgen.errors import ConfigError
from overgen.networks.cnn import HIDDEN, ConvEncoder

UNPOOL_MODES = ("switches", "nearest")


def unpool(x: Tensor, switches: Tensor | None) -> Tensor:
    """Inverse of 2x2 max-pooling: ``[B, C, H, W] -> [B, C, 2H, 2W]``.

    With ``switches`` (the pooling indices) each value goes back to the position the
    max came from and zeros elsewhere (the exact transpose of max-pooling); without,
    nearest-neighbour x2 upsampling. A scatter, so it has batching and forward-AD rules.
    """
    if switches is None:
        return F.interpolate(x, scale_factor=2, mode="nearest")
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, 4 * h * w)
    return out.scatter(2, switches.flatten(2), x.flatten(2)).view(b, c, 2 * h, 2 * w)


def conv_transpose(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``conv_transpose2d(x, weight, bias, padding=2)`` (stride 1, ``weight [in, out, 5, 5]``)
    as the equal ``conv2d`` with the kernel transposed and flipped, which runs on oneDNN's
    fast convolution path on CPUs (PyTorch's transposed one does not)."""
    return F.conv2d(x, weight.transpose(0, 1).flip(2, 3), bias, padding=2)


class ConvDAE(nn.Module):
    """The CNN plus a decoder from its 400-d hidden layer back to ``[B, 1, 28, 28]``.

    Decoder: fc(400->3136) ReLU, unpool, convT(64->32) ReLU, unpool, convT(32->1), sigmoid.
    ``tied=True`` (``dae_sym``, 1,314,075 parameters) reuses the transposed encoder
    weights with new biases; ``tied=False`` (``dae_asym``, 2,620,475) has its own.
    """

    def __init__(self, num_classes: int = 10, tied: bool = True, unpool: str = "switches"):
        super().__init__()
        if unpool not in UNPOOL_MODES:
            raise ConfigError("model.network.unpool", unpool, f"one of {list(UNPOOL_MODES)}")
        self.init_args = {"num_classes": num_classes, "tied": tied, "unpool": unpool}
        self.tied, self.unpool_mode = tied, unpool
        self.encoder = ConvEncoder()
        self.head = nn.Linear(HIDDEN, num_classes)
        if tied:
            self.dec_fc_bias = nn.Parameter(torch.zeros(64 * 7 * 7))
            self.dec_conv2_bias = nn.Parameter(torch.zeros(32))
            self.dec_conv1_bias = nn.Parameter(torch.zeros(1))
        else:
            self.dec_fc = nn.Linear(HIDDEN, 64 * 7 * 7)
            self.dec_conv2 = nn.ConvTranspose2d(64, 32, 5, padding=2)
            self.dec_conv1 = nn.ConvTranspose2d(32, 1, 5, padding=2)

    def _decoder_params(self) -> tuple[Tensor, ...]:
        if self.tied:
            enc = self.encoder
            return (enc.fc.weight.t(), self.dec_fc_bias, enc.conv2.weight,
                    self.dec_conv2_bias, enc.conv1.weight, self.dec_conv1_bias)
        return (self.dec_fc.weight, self.dec_fc.bias, self.dec_conv2.weight,
                self.dec_conv2.bias, self.dec_conv1.weight, self.dec_conv1.bias)

    def encode(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        if self.unpool_mode == "switches":
            return self.encoder.encode(x)
        return self.encoder(x), None

    def decode(self, h: Tensor, ctx: tuple[Tensor, Tensor] | None) -> Tensor:
        idx1, idx2 = ctx if ctx is not None else (None, None)
        w_fc, b_fc, w2, b2, w1, b1 = self._decoder_params()
        z = F.relu(F.linear(h, w_fc, b_fc)).view(-1, 64, 7, 7)
        z = F.relu(conv_transpose(unpool(z, idx2), w2, b2))
        return torch.sigmoid(conv_transpose(unpool(z, idx1), w1, b1))

    def classify(self, h: Tensor) -> Tensor:
        return self.head(h)


class MLPDAE(nn.Module):
    """2-D dAE for the rings (docs/method.md §3): 2->200->200 ReLU encoder, tied decoder with a
    linear output, and a classifier ``200 -> num_classes`` on the top hidden layer."""

    def __init__(self, in_dim: int = 2, hidden: int = 200, num_classes: int = 3) -> None:
        super().__init__()
        self.init_args = {"in_dim": in_dim, "hidden": hidden, "num_classes": num_classes}
        self.enc1 = nn.Linear(in_dim, hidden)
        self.enc2 = nn.Linear(hidden, hidden)
        self.dec2_bias = nn.Parameter(torch.zeros(hidden))
        self.dec1_bias = nn.Parameter(torch.zeros(in_dim))
        self.head = nn.Linear(hidden, num_classes)

    def encode(self, x: Tensor) -> tuple[Tensor, None]:
        return F.relu(self.enc2(F.relu(self.enc1(x)))), None

    def decode(self, h: Tensor, ctx: None = None) -> Tensor:
        z = F.relu(F.linear(h, self.enc2.weight.t(), self.dec2_bias))
        return F.linear(z, self.enc1.weight.t(), self.dec1_bias)

    def classify(self, h: Tensor) -> Tensor:
        return self.head(h)
