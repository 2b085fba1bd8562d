"""The fooling attack (Table I) after testing: rates, mean updates and the Fig. 3 grid."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist

from overgen.attacks.fgn import (
    DEFAULT_LR,
    GENERATORS,
    OPTIMIZERS,
    TARGETS,
    FoolingResult,
    fool,
    trial_targets,
)
from overgen.attacks.progress import FoolingProgress
from overgen.callbacks.thresholded import Thresholded
from overgen.errors import ConfigError
from overgen.figures import fooling_figure, fooling_shown
from overgen.models.base import ScoringModule
from overgen.outputs import (
    FOOLING_FIGURE,
    FOOLING_IMAGES,
    FOOLING_IMAGES_FILE,
    FOOLING_MAX_STEPS,
    FOOLING_RATE,
    FOOLING_STEPS,
    FOOLING_TRIALS,
    fooling_state_file,
    threshold_key,
)
from overgen.utils.io import atomic_open, atomic_savefig

log = logging.getLogger(__name__)

KEY = "callbacks.fooling"


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return _number(value) and value > 0


def gather(result: FoolingResult) -> FoolingResult:
    """Every rank's trials merged (all ranks get the same result); identity without DDP."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return result
    parts: list[FoolingResult | None] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, result)
    return FoolingResult.merge(parts)


class FoolingAttack(Thresholded):
    """Runs ``overgen.attacks.fool`` on the tested model in ``on_test_end`` (after
    ``train.py``'s fit + test, or ``evaluate.py`` on a checkpoint). Under DDP rank ``r``
    runs the trials ``i`` with ``i % world == r``; results are gathered and written on
    rank 0: ``results["fooling/rate@0.90"]``, ``["fooling/steps@0.90"]`` (mean updates of
    the successful trials, None when none), per threshold, the settings, and
    ``results["figure/fooling"]``, the path of ``{output_dir}/{filename}``, and
    ``results["fooling/images_file"]``, that of the trials' final images
    (``{output_dir}/fooling_images.npy``, float16 ``[N, 784]``). The loggers
    get the rates and steps (the settings reach them with the config) and the figure.

    ``state_dir`` (set by ``train.py`` to the folder of the checkpoint it tests): each
    rank saves its attack there (``fooling_state.pt``, ``fooling_state.rank1.pt``, ...)
    every ``save_every`` updates and on SIGTERM / SIGINT, and a resumed job continues
    it. ``save_every: null`` saves nothing; the ``linear`` generator needs it."""

    key = f"{KEY}.thresholds"

    def __init__(self, output_dir: str, thresholds: Sequence[float] = (0.90, 0.99),
                 digits: Sequence[int] = tuple(range(10)), trials_per_digit: int = 20,
                 max_steps: int = 10_000, optimizer: str = "adam", lr: float | None = None,
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 target: str = "y", generator: str = "rank1", seed: int = 0,
                 filename: str = "fooling.png", save_every: int | None = 500) -> None:
        for key, value, allowed in (("optimizer", optimizer, OPTIMIZERS),
                                    ("target", target, TARGETS),
                                    ("generator", generator, GENERATORS)):
            if value not in allowed:
                raise ConfigError(f"{KEY}.{key}", value, f"one of {list(allowed)}")
        for key, value in (("trials_per_digit", trials_per_digit), ("max_steps", max_steps)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{KEY}.{key}", value, "a positive integer")
        if not thresholds or not all(0 < float(t) <= 1 for t in thresholds):
            raise ConfigError(f"{KEY}.thresholds", thresholds, "a non-empty list in (0, 1]")
        if not digits:
            raise ConfigError(f"{KEY}.digits", digits, "a non-empty list of class indices")
        if lr is not None and not _positive(lr):
            raise ConfigError(f"{KEY}.lr", lr, "a positive number, or null for the default")
        if not _positive(eps):
            raise ConfigError(f"{KEY}.eps", eps, "a positive number")
        if len(betas) != 2 or not all(_number(b) and 0 <= b < 1 for b in betas):
            raise ConfigError(f"{KEY}.betas", list(betas), "two numbers in [0, 1)")
        if save_every is not None and (not isinstance(save_every, int) or save_every < 1):
            raise ConfigError(f"{KEY}.save_every", save_every, "a positive integer or null")
        if save_every is not None and generator != "rank1":
            raise ConfigError(f"{KEY}.save_every", save_every, f"null with {KEY}.generator="
                              f"{generator} (only the rank1 generator's state is saved)")
        super().__init__()
        self.path = os.path.join(output_dir, filename)
        self.images_path = os.path.join(output_dir, FOOLING_IMAGES_FILE)
        self.thresholds, self.digits = [float(t) for t in thresholds], [int(d) for d in digits]
        self.trials_per_digit, self.max_steps, self.seed = trials_per_digit, max_steps, seed
        self.optimizer, self.betas, self.eps = optimizer, tuple(betas), eps
        self.lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
        self.target, self.generator = target, generator
        self.save_every, self.state_dir = save_every, None

    def check(self, model: ScoringModule) -> None:
        """The model's scores at ``thresholds`` (and its ``log_probs``), and ``digits`` among
        its classes."""
        super().check(model)
        if not all(0 <= d < model.num_classes for d in self.digits):
            raise ConfigError(f"{KEY}.digits", self.digits,
                              f"class indices below the model's {model.num_classes} classes")

    def on_test_end(self, trainer: pl.Trainer, pl_module: ScoringModule) -> None:
        targets = trial_targets(self.digits, self.trials_per_digit)
        mine = torch.arange(trainer.global_rank, len(targets), trainer.world_size)
        dtype = next(pl_module.parameters()).dtype
        saving = {}
        if self.state_dir is not None and self.save_every is not None:
            state = fooling_state_file(trainer.global_rank)
            saving = {"save_to": os.path.join(self.state_dir, state),
                      "save_every": self.save_every}
        if trainer.is_global_zero:
            log.info("fooling: %d trials, at most %d updates each, thresholds %s",
                     len(targets), self.max_steps, ", ".join(f"{t:.2f}" for t in self.thresholds))
        started = time.monotonic()
        shown = trainer.progress_bar_callback is not None and trainer.is_global_zero
        with FoolingProgress(self.thresholds, self.max_steps, enabled=shown) as progress:
            result = fool(pl_module, targets[mine], mine, self.thresholds, self.max_steps,
                          self.optimizer, self.lr, self.betas, self.eps, self.target,
                          self.generator, self.seed, pl_module.device, dtype,
                          progress=progress, **saving)
        result = gather(result)
        if trainer.is_global_zero:
            fooled = ", ".join(f"{result.rate(k):.1%} at {t:.2f}"
                               for k, t in enumerate(self.thresholds))
            log.info("fooling: done in %.1f s; fooled %s", time.monotonic() - started, fooled)
            self._report(trainer, pl_module, result)

    def _shown_scores(self, model: ScoringModule, result: FoolingResult) -> np.ndarray:
        """The final score of each figure image for its target at each threshold ``[S, K]``."""
        shown = fooling_shown(result, self.digits)
        x = result.image[shown].to(model.device, next(model.parameters()).dtype)
        targets = result.target[shown, None].to(model.device)
        with torch.no_grad():
            scores = model.class_scores_at(x, self.thresholds)
        return torch.cat([s.gather(1, targets) for s in scores], 1).cpu().numpy()

    def _report(self, trainer: pl.Trainer, pl_module: ScoringModule,
                result: FoolingResult) -> None:
        measured: dict[str, float | None] = {}
        for k, t in enumerate(self.thresholds):
            measured[threshold_key(FOOLING_RATE, t)] = result.rate(k)
            measured[threshold_key(FOOLING_STEPS, t)] = result.mean_steps(k)
        results: dict[str, object] = {
            **measured,
            FOOLING_TRIALS: len(result.trial),
            "fooling/target": self.target,
            FOOLING_MAX_STEPS: self.max_steps,
            "fooling/lr": self.lr,
            "fooling/optimizer": self.optimizer,
            "fooling/generator": self.generator,
        }
        atomic_savefig(fooling_figure(result, self.digits, self._shown_scores(pl_module, result)),
                       self.path)
        results[FOOLING_FIGURE] = self.path
        with atomic_open(self.images_path, "wb") as f:  # a far-OOD set (callbacks.FarOOD)
            np.save(f, result.image.reshape(len(result.image), -1).numpy().astype(np.float16))
        results[FOOLING_IMAGES] = self.images_path
        self.results = results
        # the settings reach the loggers with the config (utils.loggers), not as metrics
        scalars = {k: v for k, v in measured.items() if v is not None}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=trainer.global_step)
            if hasattr(logger, "log_image"):
                logger.log_image(key=FOOLING_FIGURE, images=[self.path])
