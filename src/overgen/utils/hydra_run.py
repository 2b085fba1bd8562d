"""What Hydra knows about the running job, with plain defaults outside a Hydra app
(tests that only compose a config, library use)."""

from __future__ import annotations

import os
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode


def is_multirun() -> bool:
    """A job of a ``-m`` sweep."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def task_overrides() -> list[str]:
    """The job's command-line overrides (``["model=cnn", "+known=3"]``)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def group_choices() -> dict[str, Any]:
    """The config group choices (``{"model": "dae_sym", ...}``)."""
    return dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}


def launch_dir() -> str:
    """The directory the command was launched from (Hydra's ``runtime.cwd``; a job that
    changes into its run dir with ``hydra.job.chdir=true`` still reports the launch dir)."""
    return HydraConfig.get().runtime.cwd if HydraConfig.initialized() else os.getcwd()
