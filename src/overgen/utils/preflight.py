"""Checks in the launching process, before Hydra makes a run dir or submits a job."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from overgen.errors import ConfigError
from overgen.utils import stop
from overgen.utils.entry import EXIT_USER_ERROR

# SLURM's nodes, tasks and GPUs per node come from these (conf/hydra/launcher/slurm.yaml)
SLURM_KEYS = ("trainer.devices", "trainer.num_nodes")


def _fail(err: ConfigError) -> None:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def check_log_dir(config: DictConfig) -> None:
    """``paths.log_dir`` (relative: to the launch dir) exists or can be made, and takes
    a new file."""
    value = OmegaConf.select(config, "paths.log_dir")
    if value is None:
        return
    path = os.path.normpath(os.path.join(os.getcwd(), os.path.expanduser(str(value))))
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        _fail(ConfigError("paths.log_dir", path, "a folder this user can write "
                          f"({type(e).__name__}: {e.strerror or e})"))


def sweep_values(config: DictConfig, key: str) -> list[Any]:
    """Every value ``key`` takes in the sweep: its swept values, else the config's."""
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        if override.key_or_group == key and override.is_sweep_override():
            return list(override.sweep_string_iterator())
    return [OmegaConf.select(config, key)]


def check_slurm(config: DictConfig) -> None:
    """With ``hydra/launcher=slurm``: ``trainer.devices`` and ``trainer.num_nodes`` are
    positive whole numbers in every job of the sweep."""
    if not str(OmegaConf.select(config, "hydra.launcher._target_")).endswith(".SlurmLauncher"):
        return
    for key in SLURM_KEYS:
        for value in sweep_values(config, key):
            if not (str(value).isdigit() and int(value) > 0):
                _fail(ConfigError(key, value, "a positive whole number with hydra/launcher="
                                  "slurm (SLURM's nodes, tasks and GPUs per node)"))


class Preflight(Callback):
    """``conf/hydra/default.yaml`` runs it: one line and exit code 2 before any work."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_log_dir(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_slurm(config)
        check_log_dir(config)


class PassOnToWorkers(Callback):
    """With ``hydra/launcher=joblib``, the sweep's launching process passes SIGTERM /
    SIGINT on to its workers (``overgen.utils.stop.pass_on_to_children``) and ends when
    their jobs have stopped. (The basic launcher runs the jobs in its own process; a
    SLURM job stops on its own.)"""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if str(OmegaConf.select(config, "hydra.launcher._target_")).endswith(".JoblibLauncher"):
            stop.pass_on_to_children()
