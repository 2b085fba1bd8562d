"""The Fooling Generator Network attack (docs/method.md §3, Table I), batched over trials.

Trial ``i`` draws ``z ~ U(0, 1)^784`` and ``W [784, 784]``, ``b [784]`` like ``nn.Linear``'s
default init (``U(-1/28, 1/28)``) from its own ``torch.Generator``, seeded by
``(seed, i)``: a trial's numbers never depend on which other trials run beside it (or on
which DDP rank). The generator ``x_f = sigmoid(W z + b)`` is trained by Adam (or SGD)
on ``-log y_t(x_f)`` (``objective="y"``) or ``-log y~_t(x_f)`` (``"y_tilde"``). A trial
succeeds at threshold ``tau`` at the first update after which
``class_scores(x_f, threshold=tau)[t] >= tau``; it stops once it succeeded at every
threshold, or after ``max_steps`` updates.

All trials run as one batch through the model (samples never interact, so the gradient
of the summed loss is each trial's own gradient); finished trials leave the batch.
Nothing here needs a Trainer: a model is anything with the ``ScoringModule`` methods
``log_probs_with_scorer``, ``class_scores`` and ``class_scores_at``.

With ``save_to``, the rank-1 attack saves its whole state there every ``save_every``
updates (``AttackSettings``) and when a stop signal arrives (``overgen.utils.stop``), and
a later call with the same settings and model continues from it: the result equals an
uninterrupted attack's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from overgen.attacks.settings import AttackSettings
from overgen.attacks.state import SavedAttack, attack_identity, rng_state, set_rng_state
from overgen.models.base import Scorer, ScoringModule, fresh_scorer
from overgen.utils import stop

log = logging.getLogger(__name__)

SIDE = 28
D = SIDE * SIDE
NEVER = -1
# the final score never exceeds y_t (c <= 1; COOL by AM-GM); this slack absorbs rounding
BOUND_SLACK = 1e-5


def init_trial(seed: int, trial: int) -> tuple[Tensor, Tensor, Tensor]:
    """``z [784] ~ U(0,1)``, ``W [784,784]`` and ``b [784] ~ U(-1/28, 1/28)`` (float32, CPU)
    from a ``torch.Generator`` seeded by ``(seed, trial)`` alone."""
    state = np.random.SeedSequence([int(seed), int(trial)]).generate_state(2, dtype=np.uint32)
    gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    bound = 1 / math.sqrt(D)
    z = torch.rand(D, generator=gen)
    w = (2 * torch.rand(D, D, generator=gen) - 1) * bound
    b = (2 * torch.rand(D, generator=gen) - 1) * bound
    return z, w, b


def trial_targets(digits: Sequence[int], trials_per_digit: int) -> Tensor:
    """Target digit of every trial, digit-major: trial ``i`` attacks
    ``digits[i // trials_per_digit]``. ``[len(digits) * trials_per_digit]``."""
    return torch.tensor(list(digits)).repeat_interleave(trials_per_digit)


class Rank1Generators:
    """``N`` generators held as the pre-activations ``a = W z + b`` (``[N, 784]``).

    With ``z`` fixed, ``dL/dW = g z^T`` (``g = dL/da``), so Adam's moments of ``W`` are
    ``m z^T`` and ``v (z^2)^T`` with ``m, v`` those of ``g`` (also ``b``'s), and
    ``W z`` moves in closed form: SGD ``da = -lr g (|z|^2 + 1)`` (exact); Adam
    ``da = -(lr / bc1) m (|z|_1 / (s + eps D / |z|_1) + 1 / (s + eps))``,
    ``s = sqrt(v / bc2)``. That is Adam on ``b`` exactly and on ``W`` with ``eps`` taken
    as ``eps |z_j| / mean|z|`` for column ``j`` (``W_ij`` moves by
    ``lr m_i sign(z_j) / (s_i + eps / mean|z|)``): equal to ``nn.Linear`` + Adam to first
    order in ``eps``. Memory and work per update: ``O(N * 784)``.
    """

    def __init__(self, trials: Iterable[tuple[Tensor, Tensor, Tensor]], optimizer: str,
                 lr: float, betas: tuple[float, float], eps: float, device, dtype) -> None:
        a, zs = [], []
        for z, w, b in trials:  # one W at a time: only W z + b is kept
            z, w, b = (v.to(device=device, dtype=dtype) for v in (z, w, b))
            a.append(F.linear(z, w, b))
            zs.append(z)
        self.a, z = torch.stack(a), torch.stack(zs)
        self.z_l1, self.z_sq = z.abs().sum(1, keepdim=True), z.pow(2).sum(1, keepdim=True)
        self.optimizer, self.lr, self.betas, self.eps = optimizer, lr, betas, eps
        self.m, self.v, self.t = torch.zeros_like(self.a), torch.zeros_like(self.a), 0

    def images(self) -> Tensor:
        """``x_f = sigmoid(a)``, ``[N, 1, 28, 28]``, differentiable w.r.t. ``a``."""
        self.a.requires_grad_(True)
        return torch.sigmoid(self.a).view(-1, 1, SIDE, SIDE)

    @torch.no_grad()
    def _update(self, g: Tensor) -> Tensor:
        """The change of ``a`` for the gradient ``g = dL/da``."""
        if self.optimizer == "sgd":
            return -self.lr * g * (self.z_sq + 1)
        (b1, b2), self.t = self.betas, self.t + 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        s = self.v.sqrt() / math.sqrt(1 - b2**self.t)
        gain = self.z_l1 / (s + self.eps * D / self.z_l1) + 1 / (s + self.eps)
        return -(self.lr / (1 - b1**self.t)) * self.m * gain

    def step(self, loss: Tensor) -> None:
        """One update of every generator on ``loss`` (a sum of per-trial losses)."""
        (g,) = torch.autograd.grad(loss, self.a)
        self.a = (self.a.detach() + self._update(g)).detach()

    def keep(self, mask: Tensor) -> None:
        """Drop the generators where ``mask`` is False."""
        self.a, self.m, self.v = self.a[mask].detach(), self.m[mask], self.v[mask]
        self.z_l1, self.z_sq = self.z_l1[mask], self.z_sq[mask]

    STATE = ("a", "m", "v", "z_l1", "z_sq")

    def state(self) -> dict[str, Any]:
        """Everything the next updates depend on (CPU tensors, the Adam step ``t``)."""
        return {**{k: getattr(self, k).detach().cpu() for k in self.STATE}, "t": self.t}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` (the generators still running then, in order)."""
        device = self.a.device
        for k in self.STATE:
            setattr(self, k, state[k].to(device))
        self.t = state["t"]


class LinearGenerators:
    """Reference: one ``nn.Linear(784, 784)`` and one ``torch.optim`` optimizer per trial
    (123M weights for 200 trials). Exact Adam; slow; for tests and checks."""

    def __init__(self, trials: Iterable[tuple[Tensor, Tensor, Tensor]], optimizer: str,
                 lr: float, betas: tuple[float, float], eps: float, device, dtype) -> None:
        self.z, self.layers, self.optims = [], [], []
        for z, w, b in trials:
            layer = nn.Linear(D, D).to(device=device, dtype=dtype)
            with torch.no_grad():
                layer.weight.copy_(w)
                layer.bias.copy_(b)
            opt = (torch.optim.Adam(layer.parameters(), lr=lr, betas=betas, eps=eps)
                   if optimizer == "adam" else torch.optim.SGD(layer.parameters(), lr=lr))
            self.z.append(z.to(device=device, dtype=dtype))
            self.layers.append(layer)
            self.optims.append(opt)

    def images(self) -> Tensor:
        pairs = zip(self.layers, self.z, strict=True)
        return torch.stack([torch.sigmoid(layer(z)) for layer, z in pairs]).view(-1, 1, SIDE, SIDE)

    def step(self, loss: Tensor) -> None:
        for opt in self.optims:
            opt.zero_grad()
        loss.backward()
        for opt in self.optims:
            opt.step()

    def keep(self, mask: Tensor) -> None:
        idx = mask.nonzero().flatten().tolist()
        self.z, self.layers, self.optims = ([seq[i] for i in idx]
                                            for seq in (self.z, self.layers, self.optims))


@dataclass
class FoolingResult:
    """Per trial: ``trial`` id, ``target`` digit, ``success [N, K]`` (the update at which
    threshold ``k`` was first reached, ``NEVER`` = -1 if not), ``steps`` (updates run)
    and the last generated ``image [N, 1, 28, 28]``. Tensors on the CPU."""

    thresholds: tuple[float, ...]
    trial: Tensor
    target: Tensor
    success: Tensor
    steps: Tensor
    image: Tensor

    def rate(self, k: int) -> float:
        """Fraction of trials that reached threshold ``k``."""
        return float((self.success[:, k] != NEVER).float().mean())

    def mean_steps(self, k: int) -> float | None:
        """Mean updates of the trials that reached threshold ``k``; None when none did."""
        hits = self.success[:, k][self.success[:, k] != NEVER]
        return float(hits.double().mean()) if len(hits) else None

    @staticmethod
    def merge(parts: Sequence[FoolingResult]) -> FoolingResult:
        """Concatenate results of disjoint trial sets (e.g. DDP ranks), sorted by trial."""
        cat = {k: torch.cat([getattr(p, k) for p in parts])
               for k in ("trial", "target", "success", "steps", "image")}
        order = cat["trial"].argsort()
        return FoolingResult(parts[0].thresholds, **{k: v[order] for k, v in cat.items()})


# called with (updates done, the result so far) after each update (fool's progress)
Progress = Callable[[int, FoolingResult], None]


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode with ``requires_grad=False`` parameters; both restored after."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.train(mode)
        for p, flag in flags:
            p.requires_grad_(flag)


def fool(
    model: ScoringModule,
    targets: Tensor,
    trials: Tensor | None = None,
    settings: AttackSettings | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    save_to: str | None = None,
    progress: Progress | None = None,
) -> FoolingResult:
    """Attack ``model`` on ``targets [N]`` (digits) with one generator per trial id in
    ``trials [N]`` (default ``0..N-1``), as ``settings`` say (default
    ``AttackSettings()``); see the module docstring.
    ``model`` is frozen (eval mode, no parameter gradients) while the attack runs.

    Success at ``tau`` is judged on ``model.class_scores_at`` (the final score with the
    settings paired with ``tau``). With ``objective="y"`` the loss is ``-log y_t`` from
    ``model.log_probs_with_scorer``, whose scorer reuses that forward pass, and a trial
    is scored only where ``y_t``, an upper bound of its final score, already reaches
    ``tau``; ``"y_tilde"`` minimises ``-log class_scores(x)_t`` (the model's own alpha)
    and scores every update.

    ``save_to`` (a file): with ``settings.save_every`` (else nothing is saved), save the
    state there every ``save_every`` updates and on a stop signal, and continue from it
    when it holds this attack (same settings, trials and model weights).

    ``progress(step, result)`` is called after each update is judged (``step`` updates
    done, ``result.success`` filled up to it).
    """
    settings = settings or AttackSettings()
    build = Rank1Generators if settings.parametrization == "rank1" else LinearGenerators
    # normal tensors even when called under inference mode (e.g. a Lightning test hook)
    with torch.inference_mode(False), torch.enable_grad(), frozen(model):
        targets = torch.tensor(torch.as_tensor(targets).tolist(), dtype=torch.long)
        trials = torch.arange(len(targets)) if trials is None else torch.tensor(
            torch.as_tensor(trials).tolist(), dtype=torch.long)
        result = FoolingResult(
            settings.thresholds, trials, targets,
            success=torch.full((len(targets), len(settings.thresholds)), NEVER,
                               dtype=torch.long),
            steps=torch.full((len(targets),), settings.max_steps, dtype=torch.long),
            image=torch.zeros(len(targets), 1, SIDE, SIDE, dtype=dtype))
        saved = None if save_to is None or settings.save_every is None else SavedAttack(
            save_to, settings.save_every, attack_identity(settings, trials, targets, dtype,
                                                          model))
        if len(targets):
            gen = build((init_trial(settings.seed, int(i)) for i in trials),
                        settings.optimizer, settings.lr, settings.betas, settings.eps, device,
                        dtype)
            _run(gen, model, result, settings.max_steps, settings.objective, device, saved,
                 progress)
    return result


def _run(gen, model: ScoringModule, result: FoolingResult, max_steps: int, objective: str,
         device, saved: SavedAttack | None = None,
         progress: Progress | None = None) -> None:
    """The attack loop; fills ``result.success``, ``.steps`` and ``.image`` in place.
    At the top of iteration ``step`` the state is whole (``step`` updates done); a stop
    signal raised anywhere in the iteration saves that state."""
    alive, start = torch.arange(len(result.target)), 0
    state = saved.load() if saved is not None else None
    if state is not None:
        alive, start = state["alive"], state["step"]
        gen.load(state["generators"])
        for k in ("success", "steps", "image"):
            getattr(result, k).copy_(state[k])
        set_rng_state(state["rng"], device)
        log.info("fooling: continuing from %s at update %d", saved.path, start)
    x = gen.images()
    for step in range(start, max_steps + 1):
        if saved is not None:
            rng = rng_state(device)
            if step > start and step % saved.every == 0:
                saved.save(step, gen, alive, result, rng)
        try:
            stop.check()
            t = result.target[alive].to(device)
            with torch.set_grad_enabled(step < max_steps):
                if objective == "y":
                    log_probs, scorer = model.log_probs_with_scorer(x)
                    logp = log_probs.gather(1, t[:, None]).squeeze(1)
                    bound = logp.detach().exp()
                else:
                    score = model.class_scores(x).gather(1, t[:, None]).squeeze(1)
                    logp, bound = score.clamp_min(torch.finfo(x.dtype).tiny).log(), None
                    scorer = fresh_scorer(model, x)
            if step > 0:
                _check(scorer, t, bound, result, alive, step)
        except stop.Stopped as stopped:  # nothing above changed the state
            if saved is not None:
                saved.save(step, gen, alive, result, rng)
                stopped.saved = f"the fooling attack at update {step} in {saved.path}"
            raise
        keep = torch.ones(len(alive), dtype=torch.bool)
        if step > 0:
            keep = (result.success[alive] == NEVER).any(1)
            result.image[alive[~keep]] = x.detach()[~keep.to(x.device)].cpu()
            result.steps[alive[~keep]] = step
        if progress is not None:
            progress(step, result)
        if step == max_steps or not keep.any():
            result.image[alive[keep]] = x.detach()[keep.to(x.device)].cpu()
            return
        gen.step(-logp[keep.to(logp.device)].sum())
        if not keep.all():
            gen.keep(keep.to(device))
            alive = alive[keep]
        x = gen.images()


@torch.no_grad()
def _check(scorer: Scorer, t: Tensor, bound: Tensor | None, result: FoolingResult,
           alive: Tensor, step: int) -> None:
    """Set ``result.success[alive[i], k] = step`` where trial ``i`` first reaches threshold
    ``k``: one ``scorer`` call for the trials with a decision still open (given ``bound``,
    only those whose bound reaches the threshold), every threshold at once."""
    wanted = (result.success[alive] == NEVER).to(t.device)
    if bound is not None:
        wanted &= bound[:, None] >= torch.tensor(result.thresholds, device=t.device,
                                                 dtype=bound.dtype) - BOUND_SLACK
    index = wanted.any(1).nonzero().flatten()
    if not len(index):
        return
    scores = scorer(index, result.thresholds, wanted[index])
    for k, tau in enumerate(result.thresholds):
        hit = wanted[index, k] & (scores[k].gather(1, t[index, None]).squeeze(1) >= tau)
        result.success[alive[index[hit].cpu()], k] = step
