"""The process's settings for work on CPU cores: torch threads per job of a sweep run side
by side (``hydra/launcher=joblib``), and no CUDA probe per optimizer step in runs on a CPU."""

from __future__ import annotations

import logging
import os

from overgen.utils.hydra_run import is_multirun

log = logging.getLogger(__name__)

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def jobs_at_once(n_jobs: int, cores: int) -> int:
    """The jobs joblib runs at once for its ``n_jobs`` on ``cores``: ``n_jobs`` itself when
    positive, ``cores + 1 + n_jobs`` when negative (-1: one per core, -2: all but one),
    at least 1."""
    return max(1, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)


def threads_per_job(n_jobs: int, cores: int) -> int:
    """Torch threads for each of ``jobs_at_once(n_jobs, cores)`` jobs so that jobs x
    threads <= cores (one thread when there are more jobs than cores)."""
    return max(1, cores // jobs_at_once(n_jobs, cores))


def set_sweep_threads() -> int | None:
    """In a job of a joblib sweep with ``OMP_NUM_THREADS`` unset, set torch's threads to
    ``threads_per_job(hydra.launcher.n_jobs, cores)`` and return them; else (one run,
    another launcher, ``OMP_NUM_THREADS`` set by the user: torch follows it) None.
    Oversubscribed cores make a small model's steps many times slower."""
    from hydra.core.hydra_config import HydraConfig

    if not is_multirun() or os.environ.get("OMP_NUM_THREADS"):
        return None
    launcher = HydraConfig.get().launcher
    if launcher.get("_target_") != JOBLIB_LAUNCHER:
        return None
    import joblib
    import torch

    threads = threads_per_job(int(launcher.n_jobs), joblib.cpu_count())
    torch.set_num_threads(threads)
    log.info("torch threads: %d (%s jobs at once on %d cores)", threads, launcher.n_jobs,
             joblib.cpu_count())
    return threads


def no_cuda_probe_per_step() -> None:
    """Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported (a fork-safe CUDA
    check); with it ``torch.cuda.is_available()`` loads NVML at every call until CUDA is
    initialised, and Adam calls it at every step (its CUDA-graph capture check): 0.06-0.3
    ms per call on the 2-core test machine, up to a quarter of a rings2d step. For a run
    on the CPU, drop the setting: the plain check is answered from the CUDA runtime's
    cache (under a microsecond)."""
    os.environ.pop(NVML_CHECK, None)
