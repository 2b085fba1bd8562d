"""Classifier + denoising autoencoder trained jointly (docs/method.md §1-2): ``y~ = c(x) y(x)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from overgen.errors import ConfigError
from overgen.models.base import (
    NetworkConfig,
    OptimizerFactory,
    Scorer,
    ScoringModule,
    TestOutputs,
)
from overgen.outputs import TEST_MSE
from overgen.scores import (
    CURVATURE_METHODS,
    curvature,
    curvature_factor,
    error_factor,
    reconstruction_error,
)
from overgen.utils import stop

CLASSIFIER_INPUTS = ("noisy", "clean")
SAMPLES_PER_TRACE = 4  # exact curvature: samples per ``jacobian_trace`` call (and stop check)


def take(ctx, index: Tensor):
    """The rows ``index`` of an encoder context: ``None``, a tensor or a tuple of them."""
    if ctx is None:
        return None
    if isinstance(ctx, Tensor):
        return ctx[index]
    return tuple(take(c, index) for c in ctx)


class DAEClassifier(ScoringModule):
    """Joint dAE + classifier over any network with ``encode``, ``decode``, ``classify``.

    Loss: ``CE(y(x_in), t) + lambda_rec * mean_b sum_i (r_i(x~) - x_i)^2
    + lambda_l2 * sum 0.5 ||W||^2`` (weights only), ``x~ = x + N(0, sigma^2)``, and
    ``x_in = x~`` (``classifier_input: noisy``) or ``x`` (``clean``).
    Scores: ``c(x) softmax(y(x))`` on clean inputs, ``c`` from ``overgen.scores`` with
    the ``alpha`` paired with the threshold in ``alpha_at`` (docs/method.md); ``model.alpha``
    for scores without a threshold (rankings). A threshold without a pair is refused.
    """

    def __init__(
        self,
        network: nn.Module | NetworkConfig,
        optimizer: OptimizerFactory | None = None,
        sigma: float = 0.2,
        alpha: float = 20.0,
        beta: float = 10.0,
        alpha_at: Mapping[float, float] | None = None,
        lambda_rec: float = 1.0,
        lambda_l2: float = 0.0,
        classifier_input: str = "noisy",
        curvature: str = "exact",
        probes: int = 16,
        chunk_size: int = 64,
        num_classes: int = 10,
    ) -> None:
        super().__init__(network, optimizer)
        if curvature not in CURVATURE_METHODS:
            raise ConfigError("model.curvature", curvature, f"one of {list(CURVATURE_METHODS)}")
        if classifier_input not in CLASSIFIER_INPUTS:
            raise ConfigError("model.classifier_input", classifier_input,
                              f"one of {list(CLASSIFIER_INPUTS)}")
        if not isinstance(probes, int) or probes < 1:
            raise ConfigError("model.probes", probes, "a positive integer")
        for key, value in (("model.sigma", sigma), ("model.lambda_rec", lambda_rec),
                           ("model.lambda_l2", lambda_l2), ("model.alpha", alpha),
                           ("model.beta", beta)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(key, value, "a non-negative number")
        alpha_at = {float(t): float(a) for t, a in (alpha_at or {}).items()}
        # networks are stored as configs (on_save_checkpoint); "classifier": a subclass's
        self.save_hyperparameters(ignore=["network", "classifier", "optimizer"])
        self.hparams["alpha_at"] = alpha_at  # plain floats (a subclass's frame has the config's)
        self.num_classes = num_classes
        self.sigma, self.alpha, self.beta, self.alpha_at = sigma, alpha, beta, alpha_at
        self.lambda_rec, self.lambda_l2 = lambda_rec, lambda_l2
        self.classifier_input, self.curvature_method = classifier_input, curvature
        self.probes, self.chunk_size = probes, chunk_size

    # -- the autoencoder and the classifier -------------------------------------------
    def reconstruct(self, x: Tensor) -> Tensor:
        """``r(x) = Dec(Enc(x))``, same shape as ``x``."""
        h, ctx = self.network.encode(x)
        return self.network.decode(h, ctx)

    def forward(self, x: Tensor) -> Tensor:
        """Classifier logits ``[B, C]``."""
        return self.network.classify(self.network.encode(x)[0])

    def log_probs(self, x: Tensor) -> Tensor:
        """``log softmax(y(x))``, the classifier alone, ``[B, C]``."""
        return self(x).log_softmax(-1)

    def hidden_layer(self) -> Callable[[Tensor], Tensor]:
        """The code ``h`` that the decoder and the classifier read."""
        return lambda x: self.network.encode(x)[0]

    def reconstruction_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``r(x)``, the classifier's logits ``[B, C]`` and the hidden layer it reads
        ``[B, H]`` (``hidden_layer``), from one encoder pass."""
        h, ctx = self.network.encode(x)
        return self.network.decode(h, ctx), self.network.classify(h), h

    def _paired(self, threshold: float) -> float | None:
        return next((a for t, a in self.alpha_at.items() if abs(t - threshold) < 1e-9), None)

    def alpha_for(self, threshold: float | None) -> float:
        """The alpha paired with ``threshold`` in ``alpha_at``; ``model.alpha`` for
        ``None`` (no threshold). A threshold without a pair raises ``ConfigError``."""
        if threshold is None:
            return self.alpha
        alpha = self._paired(threshold)
        if alpha is None:
            raise ConfigError("model.alpha_at", self.alpha_at,
                              f"an alpha paired with threshold {threshold:g}")
        return alpha

    def check_thresholds(self, thresholds: Sequence[float], key: str) -> None:
        """Every threshold that ``key`` (a callback's setting) uses needs its alpha in
        ``alpha_at``."""
        super().check_thresholds(thresholds, key)
        unpaired = [t for t in thresholds if self._paired(t) is None]
        if unpaired:
            raise ConfigError("model.alpha_at", self.alpha_at,
                              f"an alpha paired with every threshold of {key}; unpaired: "
                              f"{', '.join(f'{t:g}' for t in unpaired)}")

    def curvature(self, x: Tensor) -> Tensor:
        """``gamma(x) = (trace(dr/dx) - D) / D``, ``[B]`` (method ``model.curvature``).

        ``exact``: the network's own ``jacobian_trace`` where it has one (``ConvDAE``:
        the linearised layers written out, through the active latent units), on groups of
        ``SAMPLES_PER_TRACE`` samples with similar counts of active units, as a group costs
        its largest count; else D JVPs of ``r`` (the 2-D rings: 2 JVPs).
        """
        if self.curvature_method == "hutchinson":
            return curvature(self.reconstruct, x, self.curvature_method, probes=self.probes)
        if not hasattr(self.network, "jacobian_trace"):
            return curvature(self.reconstruct, x, self.curvature_method, chunk_size=self.chunk_size)
        with torch.no_grad():
            order = (self.network.encode(x)[0] > 0).sum(1).argsort()
        traces = []
        for group in order.split(SAMPLES_PER_TRACE):
            stop.check()  # a group takes seconds on a CPU
            traces.append(self.network.jacobian_trace(x[group], self.chunk_size))
        d = x[0].numel()
        return (torch.cat(traces)[order.argsort()] - d) / d

    def confidence(self, x: Tensor, alpha: float | None = None) -> Tensor:
        """``c(x) = exp(-(alpha/D) e(x)) Gamma(x)``, ``[B]``."""
        with torch.no_grad():
            e = reconstruction_error(x, self.reconstruct(x))
        gamma_factor = curvature_factor(self.curvature(x), self.beta)
        return error_factor(e, alpha or self.alpha, x[0].numel()) * gamma_factor

    def class_scores(self, x: Tensor, threshold: float | None = None,
                     gate: bool = True) -> Tensor:
        """``y~ = c(x) softmax(y(x))``, ``[B, C]``, with the alpha paired with ``threshold``.

        With a ``threshold`` and ``gate``, ``Gamma`` (the costly part) is computed only
        where the upper bound ``exp(-alpha e/D) max_k y_k`` reaches it; elsewhere the
        scores returned are that bound (``Gamma`` taken as 1), already below the
        threshold, so every thresholded decision is exact. ``gate=False``: every score in
        full (for rankings such as ROC curves).
        """
        return self.class_scores_at(x, [threshold], gate)[0]

    def class_scores_at(self, x: Tensor, thresholds: Sequence[float | None],
                        gate: bool = True, wanted: Tensor | None = None) -> list[Tensor]:
        """``class_scores(x, t, gate)`` for each ``t``, with one encode/decode and one
        ``Gamma`` for each sample that any threshold needs (``Gamma`` is alpha-free); with
        ``wanted [B, len(thresholds)]``, only the marked decisions count as needs."""
        r, logits, _ = self.reconstruction_and_logits(x)
        e, probs = reconstruction_error(x, r), logits.softmax(-1)
        return self._scores(x, e, probs, thresholds, [not gate] * len(thresholds), wanted)[0]

    def _scores(self, x: Tensor, e: Tensor, probs: Tensor,
                thresholds: Sequence[float | None], full: Sequence[bool],
                wanted: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
        """The scores at each of ``thresholds`` from ``e = e(x)`` and ``probs = y(x)``, and
        ``Gamma [B]`` (NaN where not computed). ``Gamma`` is computed for every sample where
        ``full[k]`` or ``thresholds[k]`` is None, else where the bound reaches
        ``thresholds[k]``; with ``wanted [B, len(thresholds)]``, only where it is marked."""
        factors = [error_factor(e, self.alpha_for(t), x[0].numel()) for t in thresholds]
        need = torch.zeros_like(e, dtype=torch.bool)
        for k, (t, c) in enumerate(zip(thresholds, factors, strict=True)):
            reach = (c * probs.amax(-1) >= t) if (t is not None and not full[k]) else True
            need |= reach if wanted is None else reach & wanted[:, k]
        gamma_factor = torch.ones_like(e)
        if need.any():
            gamma_factor = gamma_factor.masked_scatter(
                need, curvature_factor(self.curvature(x[need]), self.beta))
        scores = [(c * gamma_factor).unsqueeze(-1) * probs for c in factors]
        return scores, gamma_factor.masked_fill(~need, torch.nan)

    def log_probs_with_scorer(self, x: Tensor) -> tuple[Tensor, Scorer]:
        """``log y(x)`` and a ``Scorer`` that reuses this encoder pass: scoring adds only
        the decoder (and ``Gamma`` where a wanted decision needs it)."""
        h, ctx = self.network.encode(x)
        log_probs = self.network.classify(h).log_softmax(-1)

        def scorer(index: Tensor, thresholds: Sequence[float],
                   wanted: Tensor | None = None) -> list[Tensor]:
            with torch.no_grad():
                xi = x[index].detach()
                e = reconstruction_error(xi, self.network.decode(h[index].detach(),
                                                                 take(ctx, index)))
                return self._scores(xi, e, log_probs[index].detach().exp(), thresholds,
                                    [False] * len(thresholds), wanted)[0]

        return log_probs, scorer

    # -- training ---------------------------------------------------------------------
    def l2_penalty(self) -> Tensor:
        """``sum 0.5 ||W||^2`` over weight matrices and kernels (biases excluded)."""
        return sum(0.5 * p.pow(2).sum() for p in self.parameters() if p.dim() > 1)

    def ce_and_rec(self, x: Tensor, noisy: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The classifier's cross-entropy on ``x_in`` and the batch mean of
        ``sum_i (r_i(noisy) - x_i)^2``."""
        h, ctx = self.network.encode(noisy)
        rec = reconstruction_error(x, self.network.decode(h, ctx)).mean()
        if self.classifier_input == "clean":
            h = self.network.encode(x)[0]
        return F.cross_entropy(self.network.classify(h), y), rec

    def _losses(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        ce, rec = self.ce_and_rec(x, x + self.sigma * torch.randn_like(x), y)
        loss = ce + self.lambda_rec * rec
        if self.lambda_l2:
            loss = loss + self.lambda_l2 * self.l2_penalty()
        return {"loss": loss, "ce": ce, "rec": rec}

    def training_step(self, batch, batch_idx: int) -> Tensor:
        losses = self._losses(*batch)
        self.log_train({f"train/{k}": v for k, v in losses.items()})
        return losses["loss"]

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        self.log("val/mse", F.mse_loss(self.reconstruct(x), x), prog_bar=True, sync_dist=True)
        self.log("val/ce", F.cross_entropy(self(x), y), sync_dist=True)

    def score_batch(self, batch, batch_idx: int) -> TestOutputs:
        """The batch scored for every evaluation (``self.score_needs``) with its
        ``test/mse``, ``test/loss`` and post-hoc scores (``exp(-alpha e/D)`` with
        ``model.alpha`` among them), all from one pass of each network."""
        x, y = batch
        r, logits, h = self.reconstruction_and_logits(x)
        logged = {TEST_MSE: F.mse_loss(r, x), "test/loss": F.cross_entropy(logits, y)}
        e, probs = reconstruction_error(x, r), logits.softmax(-1)
        needs = self.score_needs
        scores, gamma = self._scores(x, e, probs, list(needs), list(needs.values()))
        reconstruction = error_factor(e, self.alpha, x[0].numel())
        return TestOutputs(y, dict(zip(needs, scores, strict=True)), probs, e, gamma,
                           self.posthoc_for(logits, probs, h, reconstruction), logged)
