"""DDP under Hydra multiruns.

Lightning's DDP launcher starts each extra rank by re-running ``sys.argv`` with
``hydra.run.dir=<hydra.run.dir>``, and marks the launching process as rank 0 through
environment variables. In a multirun the command would start the whole sweep again in a
dir of its own, and the next job would take the sweep process for an already launched
rank. ``join_this_job`` points the command at this job alone, in this job's dir, and
``isolated_job`` undoes what a job's launch leaves behind before the next one starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict, read_write

from overgen.utils.hydra_run import is_multirun

LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def _sweep_process() -> bool:
    """A multirun job in the sweep's own process (not a rank Lightning launched)."""
    return is_multirun() and "LOCAL_RANK" not in os.environ


def join_this_job() -> None:
    """Before ``trainer.fit`` launches the other ranks: ``sys.argv`` becomes this job's
    overrides and ``hydra.run.dir`` this job's dir. A no-op outside a sweep process."""
    if not _sweep_process():
        return
    hydra = HydraConfig.get()
    sys.argv = [sys.argv[0], *hydra.overrides.task]
    with read_write(hydra.run), open_dict(hydra.run):
        hydra.run.dir = hydra.runtime.output_dir


@contextmanager
def isolated_job() -> Iterator[None]:
    """Around one job of a sweep process: restore ``sys.argv`` and the launch environment,
    and close the process group, so the next job launches ranks of its own."""
    if not _sweep_process():
        yield
        return
    env, argv = {k: os.environ.get(k) for k in LAUNCH_ENV}, list(sys.argv)
    try:
        yield
    finally:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.argv[:] = argv
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
