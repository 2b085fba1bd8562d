"""Confidence scores as pure functions (docs/method.md §1).

Every function takes batched tensors and returns one value per sample, so any
autoencoder ``reconstruct: [B, *shape] -> [B, *shape]`` can be scored; nothing here
knows about Lightning. ``reconstruct`` must treat samples independently (no batch
statistics), which is what makes one batched JVP a per-sample JVP.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import jvp, vmap

Reconstruct = Callable[[Tensor], Tensor]
CURVATURE_METHODS = ("exact", "hutchinson")


def reconstruction_error(x: Tensor, r: Tensor) -> Tensor:
    """``e(x) = sum_i (r_i - x_i)^2`` over all non-batch dims: ``[B, *shape] -> [B]``."""
    return (r - x).flatten(1).pow(2).sum(1)


def _jvp_batch(reconstruct: Reconstruct, x: Tensor, tangents: Tensor) -> Tensor:
    """``J(x) v`` for each tangent in ``tangents: [K, B, *shape]`` -> ``[K, B, *shape]``."""
    return vmap(lambda v: jvp(reconstruct, (x,), (v,))[1])(tangents)


def jacobian_trace(
    reconstruct: Reconstruct,
    x: Tensor,
    method: str = "exact",
    probes: int = 16,
    chunk_size: int = 64,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``trace(dr/dx)`` per sample, ``[B, *shape] -> [B]``.

    ``exact``: D Jacobian-vector products with the basis vectors ``e_i``, ``chunk_size``
    of them at a time (vmapped); ``trace = sum_i (J e_i)_i``.
    ``hutchinson``: ``mean_k v_k^T J v_k`` with ``probes`` Rademacher vectors ``v_k``
    (unbiased). ``generator`` makes the probes reproducible.
    """
    if method not in CURVATURE_METHODS:
        raise ValueError(f"curvature method {method!r} is not one of {CURVATURE_METHODS}")
    b, d = x.shape[0], x[0].numel()
    with torch.enable_grad() if x.requires_grad else torch.no_grad():
        if method == "hutchinson":
            v = torch.randint(0, 2, (probes, *x.shape), generator=generator, device="cpu")
            v = (2 * v - 1).to(device=x.device, dtype=x.dtype)
            jv = _jvp_batch(reconstruct, x, v)
            return (v * jv).flatten(2).sum(2).mean(0)
        trace = x.new_zeros(b)
        for start in range(0, d, chunk_size):
            idx = torch.arange(start, min(start + chunk_size, d), device=x.device)
            basis = torch.zeros(len(idx), b, d, device=x.device, dtype=x.dtype)
            basis[torch.arange(len(idx)), :, idx] = 1.0
            jv = _jvp_batch(reconstruct, x, basis.view(len(idx), *x.shape)).flatten(2)
            trace = trace + jv[torch.arange(len(idx)), :, idx].sum(0)
        return trace


def jacobian_trace_factored(
    encode: Callable[[Tensor], Tensor],
    decode: Callable[[Tensor], Tensor],
    x: Tensor,
    chunk_size: int = 64,
    skip_zero_units: bool = False,
) -> Tensor:
    """Exact ``trace(dr/dx)`` of ``r = decode(encode(x))`` through the bottleneck: ``[B]``.

    ``encode: [B, *shape] -> h: [B, H]``, ``decode: [B, H] -> [B, *shape]``; whatever else
    the decoder needs from the encoder (e.g. pooling switches) is bound in the closure.
    ``trace(J_dec J_enc) = trace(J_enc J_dec) = sum_j (J_enc (J_dec e_j))_j``: each latent
    basis vector ``e_j`` goes through a JVP of ``decode`` at ``h``, then of ``encode`` at
    ``x``, so H such pairs replace the D JVPs of ``jacobian_trace``; ``chunk_size`` of them
    per sample at a time (vmapped).
    ``skip_zero_units``: units with ``h_j = 0`` are left out, exact when ``h`` ends in a
    ReLU (whose derivative PyTorch takes as 0 at 0, so their rows of ``J_enc`` vanish);
    each sample's remaining units are packed first, so a batch costs its largest count
    (pass one sample at a time when the counts differ much).
    """
    with torch.enable_grad() if x.requires_grad else torch.no_grad():
        h = encode(x)
        b, width = h.shape
        used = h != 0 if skip_zero_units else torch.ones_like(h, dtype=torch.bool)
        counts = used.sum(1)
        top = int(counts.max())
        order = used.to(torch.int8).argsort(dim=1, descending=True, stable=True)  # used first

        def enc_dec(v: Tensor) -> Tensor:
            return jvp(encode, (x,), (jvp(decode, (h,), (v,))[1],))[1]

        trace = x.new_zeros(b)
        for start in range(0, top, chunk_size):
            k = torch.arange(start, min(start + chunk_size, top), device=x.device)
            units, valid = order[:, k].t(), (k[:, None] < counts).to(x.dtype)  # [K, B]
            tangents = torch.zeros(len(k), b, width, device=x.device, dtype=x.dtype)
            tangents.scatter_(2, units[..., None], valid[..., None])
            u = vmap(enc_dec)(tangents)  # [K, B, H]
            trace = trace + (u.gather(2, units[..., None])[..., 0] * valid).sum(0)
        return trace


def curvature(reconstruct: Reconstruct, x: Tensor, method: str = "exact", **kwargs) -> Tensor:
    """``gamma(x) = (trace(dr/dx) - D) / D``, ``[B, *shape] -> [B]``.

    By Alain & Bengio ``dr/dx - I ~ sigma^2 d2 log p / dx2``, so ``gamma`` is (up to
    the positive factor ``sigma^2``) the mean diagonal curvature of the log-density.
    """
    d = x[0].numel()
    return (jacobian_trace(reconstruct, x, method, **kwargs) - d) / d


def curvature_factor(gamma: Tensor, beta: float) -> Tensor:
    """``Gamma = exp(-beta * max(gamma, 0))``: 1 at a maximum of p, < 1 at a minimum/saddle."""
    return torch.exp(-beta * gamma.clamp(min=0))


def error_factor(e: Tensor, alpha: float, d: int) -> Tensor:
    """``exp(-(alpha / D) * e)``, the first factor of ``c(x)``."""
    return torch.exp(-(alpha / d) * e)


def confidence(
    reconstruct: Reconstruct,
    x: Tensor,
    alpha: float,
    beta: float,
    method: str = "exact",
    **kwargs,
) -> Tensor:
    """``c(x) = exp(-(alpha/D) e(x)) * Gamma(x)`` in (0, 1], ``[B, *shape] -> [B]``."""
    d = x[0].numel()
    with torch.no_grad():
        e = reconstruction_error(x, reconstruct(x))
    gamma = curvature(reconstruct, x, method, **kwargs)
    return error_factor(e, alpha, d) * curvature_factor(gamma, beta)


def cool_scores(logits: Tensor, omega: int) -> Tensor:
    """COOL class scores ``omega^omega * prod_j a_(k, j)`` (max 1): ``[B, C*omega] -> [B, C]``.

    ``a`` is one softmax over all ``C * omega`` units, laid out class-major
    (unit ``k * omega + j``); computed in log space for stability.
    """
    logp = logits.log_softmax(-1).unflatten(-1, (-1, omega))
    return torch.exp(omega * math.log(omega) + logp.sum(-1))


SVM_KERNELS = ("rbf", "linear")


def svm_decision(x: Tensor, support: Tensor, dual_coef: Tensor, intercept: Tensor,
                 gamma: Tensor | float, kernel: str = "rbf") -> Tensor:
    """A fitted SVM's decision function ``sum_i a_i K(s_i, x) + b`` (scikit-learn's
    ``decision_function``): ``x: [B, D]``, support vectors ``s: [S, D]``, dual coefficients
    ``a: [S]``, intercept ``b`` -> ``[B]``. ``K(s, x) = exp(-gamma ||s - x||^2)`` (rbf) or
    ``<s, x>`` (linear)."""
    dots = x @ support.T
    if kernel == "rbf":
        sq = (x * x).sum(1, keepdim=True) - 2 * dots + (support * support).sum(1)
        dots = torch.exp(-gamma * sq.clamp_min(0))
    return dots @ dual_coef + intercept


def svdd_centre(mean: Tensor, eps: float) -> Tensor:
    """Deep SVDD's centre from the mean embedding ``[H] -> [H]`` (Ruff et al. 2018): each
    coordinate closer to 0 than ``eps`` moves to ``+-eps`` by its sign (an exact 0 to
    ``+eps``), so that the all-zero network, which maps everything to 0, is not a minimum."""
    near = mean.abs() < eps
    return torch.where(near, torch.where(mean < 0, -eps, eps).to(mean.dtype), mean)


def svdd_distance(embeddings: Tensor, centre: Tensor) -> Tensor:
    """Squared distance to the centre ``||phi(x) - c||^2``: ``[B, H], [H] -> [B]``."""
    return (embeddings - centre).square().sum(-1)


# -- post-hoc baselines (docs/method.md §6): scores any trained classifier has, no retraining --
def max_softmax(probs: Tensor) -> Tensor:
    """Maximum softmax probability ``max_k y_k(x)`` (Hendrycks & Gimpel): ``[B, C] -> [B]``."""
    return probs.amax(-1)


def max_logit(logits: Tensor) -> Tensor:
    """``max_j z_j(x)`` over the output units: ``[B, U] -> [B]``."""
    return logits.amax(-1)


def energy(logits: Tensor) -> Tensor:
    """Negative energy at temperature 1, ``logsumexp_j z_j(x)`` (Liu et al.; higher = more
    known): ``[B, U] -> [B]``."""
    return logits.logsumexp(-1)


def class_moments(features: Tensor, labels: Tensor,
                  num_classes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Additive float64 moments of ``features: [N, H]`` by class ``labels: [N]``: counts
    ``[C]``, feature sums ``[C, H]`` and the Gram matrix ``sum_n f_n f_n^T`` ``[H, H]``;
    batches add up to the moments of their union."""
    f = features.double()
    onehot = torch.nn.functional.one_hot(labels, num_classes).double()  # [N, C]
    return onehot.sum(0), onehot.T @ f, f.T @ f


def mahalanobis_fit(counts: Tensor, sums: Tensor, gram: Tensor) -> tuple[Tensor, Tensor]:
    """Class means of the classes seen (``counts > 0``) ``[K, H]`` and the precision
    ``[H, H]`` (pseudo-inverse) of one covariance shared by the classes, each feature taken
    from its class mean: ``(sum_n f_n f_n^T - sum_c n_c mu_c mu_c^T) / N`` (the maximum
    likelihood estimate, as scikit-learn's ``EmpiricalCovariance``)."""
    seen = counts > 0
    means = sums[seen] / counts[seen, None]
    cov = (gram - (counts[seen, None] * means).T @ means) / counts.sum()
    return means, torch.linalg.pinv(cov, hermitian=True)


def mahalanobis(features: Tensor, means: Tensor, precision: Tensor) -> Tensor:
    """Minus the squared Mahalanobis distance to the closest class mean,
    ``-min_k (f - mu_k)^T P (f - mu_k)`` (Lee et al. 2018): ``features [B, H]``,
    ``means [K, H]``, ``precision [H, H]`` -> ``[B]`` (float64)."""
    diff = features.double()[:, None, :] - means  # [B, K, H]
    return -torch.einsum("bkh,hg,bkg->bk", diff, precision, diff).amin(-1)
