"""Relative data and log dirs mean relative to where the command was launched, everywhere."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from overgen.utils.hydra_run import launch_dir

# config key -> environment variable that conf/paths/default.yaml reads it from
PATH_KEYS = {"data_dir": "OVERGEN_DATA_DIR", "log_dir": "OVERGEN_LOG_DIR"}


def absolute_paths(cfg: DictConfig) -> None:
    """Make ``paths.data_dir`` and ``paths.log_dir`` absolute against the launch dir, in
    ``cfg`` and in the environment, so that a Hydra job that changes dir, DDP ranks and
    launcher workers started from this process all read the same folders."""
    paths = cfg.get("paths")
    if paths is None:
        return
    for key, env in PATH_KEYS.items():
        value = paths.get(key)
        if value is None:
            continue
        absolute = os.path.normpath(os.path.join(launch_dir(), os.path.expanduser(str(value))))
        paths[key] = absolute
        os.environ[env] = absolute
