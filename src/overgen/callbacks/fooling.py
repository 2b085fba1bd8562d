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

from overgen.attacks.fgn import FoolingResult, fool, trial_targets
from overgen.attacks.progress import FoolingProgress
from overgen.attacks.settings import KEY, AttackSettings
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
    ``results["fooling/images_file"]``, the name of the trials' final images in the run dir
    (``fooling_images.npy``, float16 ``[N, 784]``). The loggers
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
        # the config keys ``target`` and ``generator`` are the attack's objective and
        # parametrization (overgen.attacks.settings)
        self.settings = AttackSettings(
            thresholds=thresholds, max_steps=max_steps, optimizer=optimizer, lr=lr,
            betas=betas, eps=eps, objective=target, parametrization=generator, seed=seed,
            save_every=save_every)
        if not isinstance(trials_per_digit, int) or trials_per_digit < 1:
            raise ConfigError(f"{KEY}.trials_per_digit", trials_per_digit, "a positive integer")
        if not digits:
            raise ConfigError(f"{KEY}.digits", digits, "a non-empty list of class indices")
        super().__init__()
        self.path = os.path.join(output_dir, filename)
        self.thresholds = list(self.settings.thresholds)
        self.digits, self.trials_per_digit = [int(d) for d in digits], trials_per_digit
        self.state_dir = None
        self.images_path = os.path.join(output_dir, FOOLING_IMAGES_FILE)

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
        save_to = (None if self.state_dir is None else
                   os.path.join(self.state_dir, fooling_state_file(trainer.global_rank)))
        if trainer.is_global_zero:
            log.info("fooling: %d trials, at most %d updates each, thresholds %s",
                     len(targets), self.settings.max_steps,
                     ", ".join(f"{t:.2f}" for t in self.thresholds))
        started = time.monotonic()
        shown = trainer.progress_bar_callback is not None and trainer.is_global_zero
        with FoolingProgress(self.thresholds, self.settings.max_steps, enabled=shown) as progress:
            result = fool(pl_module, targets[mine], mine, self.settings, pl_module.device, dtype,
                          save_to, progress=progress)
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
            "fooling/target": self.settings.objective,
            FOOLING_MAX_STEPS: self.settings.max_steps,
            "fooling/lr": self.settings.lr,
            "fooling/optimizer": self.settings.optimizer,
            "fooling/generator": self.settings.parametrization,
        }
        atomic_savefig(fooling_figure(result, self.digits, self._shown_scores(pl_module, result)),
                       self.path)
        results[FOOLING_FIGURE] = self.path
        with atomic_open(self.images_path, "wb") as f:  # a far-OOD set (callbacks.FarOOD)
            np.save(f, result.image.reshape(len(result.image), -1).numpy().astype(np.float16))
        results[FOOLING_IMAGES] = FOOLING_IMAGES_FILE  # in the run dir, like roc.json
        self.results = results
        # the settings reach the loggers with the config (utils.loggers), not as metrics
        scalars = {k: v for k, v in measured.items() if v is not None}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=trainer.global_step)
            if hasattr(logger, "log_image"):
                logger.log_image(key=FOOLING_FIGURE, images=[self.path])
