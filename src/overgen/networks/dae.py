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

    def jacobian_trace(self, x: Tensor, chunk_size: int = 64) -> Tensor:
        """Exact ``trace(dr/dx)`` of ``r = decode(encode(x))``, ``[B, 1, 28, 28] -> [B]``,
        with the linearised layers written out (docs/method.md §1, computing the trace).

        At ``x`` the ReLUs are fixed masks and the pooling switches fixed selections, so
        ``dr/dx = J_dec J_enc`` is a product of masked linear maps and
        ``trace = sum_j <g_j, b_j>`` over the latent units with ``h_j > 0`` (the others'
        rows of ``J_enc`` are zero): ``g_j = J_enc^T e_j``, the encoder run backwards
        from unit ``j``, and ``b_j = J_dec e_j``, the decoder run forwards from it. Both
        are a mask, an unpool, a transposed conv2, a mask, an unpool and a transposed
        conv1 (``_rows_to_image``), so a unit costs two convolutions of the C2 -> C1 shape
        (oneDNN's faster direction here) and no dense layer; the old JVP route needed a
        C1 -> C2 one, two one-channel ones (slow on oneDNN) and the dense layers.
        ``chunk_size``: rows (units x samples) at a time; small chunks keep the
        intermediate maps in cache, which matters more than large matrix products here.
        A batch costs its largest count of active units, so ``DAEClassifier.curvature``
        passes samples with similar counts together. Differentiable in ``x`` (the masks
        and switches are piecewise constant) when ``x.requires_grad``.
        """
        with torch.enable_grad() if x.requires_grad else torch.no_grad():
            return self._jacobian_trace(x, chunk_size)

    def _jacobian_trace(self, x: Tensor, chunk_size: int) -> Tensor:
        enc = self.encoder
        w_fc, b_fc, w2, b2, w1, b1 = self._decoder_params()
        h, (idx1, idx2) = enc.encode(x)
        ctx = (idx1, idx2) if self.unpool_mode == "switches" else (None, None)
        p1 = F.max_pool2d(F.relu(enc.conv1(x)), 2)  # [B, C1, 14, 14] (encode returns only h)
        p2 = F.max_pool2d(F.relu(enc.conv2(p1)), 2)  # [B, C2, 7, 7]
        z1 = F.linear(h, w_fc, b_fc).view(p2.shape)
        z2 = conv_transpose(unpool(F.relu(z1), ctx[1]), w2, b2)  # [B, C1, 14, 14]
        r = torch.sigmoid(conv_transpose(unpool(F.relu(z2), ctx[0]), w1, b1))
        enc_masks = ((p2 > 0).to(x.dtype), (p1 > 0).to(x.dtype))  # ReLU'(.) at the maxima
        dec_masks = ((z1 > 0).to(x.dtype), (z2 > 0).to(x.dtype))
        slope = r * (1 - r)  # sigmoid'
        used = h > 0
        counts = used.sum(1)
        order = used.to(torch.int8).argsort(dim=1, descending=True, stable=True)  # used first
        trace, top = x.new_zeros(x.shape[0]), int(counts.max())
        per_chunk = max(1, chunk_size // x.shape[0])
        for start in range(0, top, per_chunk):
            k = torch.arange(start, min(start + per_chunk, top), device=x.device)
            units, valid = order[:, k].t(), (k[:, None] < counts).to(x.dtype)  # [K, B]
            g = _rows_to_image(enc.fc.weight[units] * valid[..., None], enc_masks,  # padding: 0
                               (idx1, idx2), enc.conv2.weight, enc.conv1.weight)
            b = _rows_to_image(w_fc.t()[units], dec_masks, ctx, w2, w1) * slope
            trace = trace + (g * b).flatten(2).sum((0, 2))
        return trace


def _rows_to_image(rows: Tensor, masks: tuple[Tensor, Tensor],
                   switches: tuple[Tensor | None, Tensor | None], w2: Tensor,
                   w1: Tensor) -> Tensor:
    """``rows: [K, B, C2*7*7]`` through ``mask_2``, unpool, transposed conv ``w2``,
    ``mask_1``, unpool, transposed conv ``w1`` (no biases): ``[K, B, 1, 28, 28]``.
    ``masks`` ``([B, C2, 7, 7], [B, C1, 14, 14])`` and ``switches`` (or ``None``: nearest)
    are per sample, shared by the ``K`` rows (broadcast, not copied)."""
    k, b = rows.shape[:2]
    t = rows.view(k, b, *masks[0].shape[1:]) * masks[0]
    t = conv_transpose(_unpool_rows(t, switches[1]).flatten(0, 1), w2, None)
    t = _unpool_rows(t.unflatten(0, (k, b)) * masks[1], switches[0])
    # the transposed conv to few channels as a matmul and a fold (oneDNN is slow there)
    size = t.shape[-2:]
    t = t.flatten(0, 1).flatten(2)  # [K*B, C1, 28*28]
    cols = torch.bmm(w1.flatten(1).t().expand(k * b, -1, -1), t)  # [K*B, C_out*25, 28*28]
    return F.fold(cols, size, w1.shape[-1], padding=2).unflatten(0, (k, b))


def _unpool_rows(t: Tensor, switches: Tensor | None) -> Tensor:
    """``unpool`` of ``t: [K, B, C, H, W]`` with the switches ``[B, C, H, W]`` of each
    sample (or ``None``: nearest): ``[K, B, C, 2H, 2W]``."""
    if switches is None:
        return unpool(t.flatten(0, 1), None).unflatten(0, t.shape[:2])
    k, b, c, h, w = t.shape
    out = t.new_zeros(k, b, c, 4 * h * w)
    out.scatter_(3, switches.flatten(2).expand(k, b, c, h * w), t.flatten(3))
    return out.view(k, b, c, 2 * h, 2 * w)


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
