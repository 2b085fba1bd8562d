"""Where ``resume=true`` continues from: the newest earlier run of this job
(``overgen.runs``) that left a ``checkpoints/last.ckpt``, and the W&B run id it stored."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig

from overgen.checkpoints import CHECKPOINT_KEY, load_checkpoint
from overgen.runs import earlier_runs

log = logging.getLogger(__name__)


def earlier_runs_of(cfg: DictConfig, overrides: list[str]) -> list[Path]:
    """Earlier runs of this job under ``paths.log_dir/task_name``, newest first."""
    return earlier_runs(os.path.join(cfg.paths.log_dir, cfg.task_name), overrides)


def resume_point(cfg: DictConfig, earlier: list[Path]) -> tuple[str | None, str | None]:
    """``(checkpoint, W&B id)`` of the newest earlier run with a ``last.ckpt``."""
    last = next((r / "checkpoints" / "last.ckpt" for r in earlier
                 if (r / "checkpoints" / "last.ckpt").is_file()), None)
    if last is None:
        log.warning("resume: no earlier run of this job with checkpoints/last.ckpt under "
                    "%s; starting from scratch", cfg.paths.log_dir)
        return None, None
    log.info("resuming from %s", last)
    return str(last), load_checkpoint(str(last))[CHECKPOINT_KEY].get("wandb_id")
