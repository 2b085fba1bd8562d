"""The one place user errors turn into a clear message and a non-zero exit."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from hydra.errors import InstantiationException
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from overgen.errors import ConfigError, OvergenError
from overgen.runs import JobRunning, first_process, job_lock, record_failure
from overgen.utils import stop
from overgen.utils.console import quiet_known_noise
from overgen.utils.cpu import set_sweep_threads
from overgen.utils.ddp import isolated_job
from overgen.utils.hydra_run import is_multirun, task_overrides
from overgen.utils.paths import absolute_paths
from overgen.utils.provenance import headline

log = logging.getLogger("overgen")
EXIT_USER_ERROR = 2


def _user_error(exc: BaseException) -> OvergenError | None:
    """The ``OvergenError`` behind ``exc`` (Hydra wraps errors raised while instantiating)."""
    while exc is not None:
        if isinstance(exc, OvergenError):
            return exc
        exc = exc.__cause__ if isinstance(exc, InstantiationException) else None
    return None


def _finish_wandb(failed: bool) -> None:
    """Close the W&B run of this job, so sweeps never leak one run into the next."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)


def _record(cfg: DictConfig, exc: BaseException) -> None:
    """``error.json`` in the run dir, so a sweep keeps each failed job's reason."""
    try:
        record_failure(cfg.paths.output_dir, exc)
    except Exception as e:  # noqa: BLE001 - never hide the original error
        log.warning("could not write error.json: %s", e)


def _stopped(cfg: DictConfig, exc: BaseException) -> NoReturn:
    """One line (what was saved, the command that continues; from the first process of a
    DDP job alone) and exit 128 + signal. Lightning's own ``SIGTERMException`` counts as
    SIGTERM."""
    signum = getattr(exc, "signum", signal.SIGTERM)
    trains = "checkpoint" in cfg  # train.py; evaluate.py saves test batches alone
    saved = getattr(exc, "saved", None) or ("nothing new since the last checkpoint" if trains
                                            else "nothing yet")
    args = [a for a in sys.argv[1:] if a.split("=", 1)[0] != "resume"]
    again = shlex.join(["python", sys.argv[0], *args, "resume=true"])
    if first_process():
        _say(f"stopped by {signal.Signals(signum).name}: saved {saved}; continue with: {again}")
    sys.exit(128 + signum)


def _say(line: str) -> None:
    """One line for the user: on stderr, or in the job's log inside a sweep."""
    if is_multirun():
        log.warning(line)
    else:
        print(line, file=sys.stderr)


def run_task(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig,
             job_also: Callable[[DictConfig], tuple[str, ...]] = lambda cfg: ()) -> float | None:
    """Run ``task(cfg)``; return ``cfg.optimized_metric`` for sweepers. ``job_also(cfg)``:
    what names the job beside its overrides (evaluate.py: its checkpoint).

    A user error prints one line and exits with code 2 (single run); inside a multirun it
    is logged and re-raised so the sweep records the failed job. SIGTERM / SIGINT stop
    the process (a whole sweep) at the next safe point: one line, exit code 143 / 130.
    A job that another live process runs is skipped with one line. The run dir is logged
    first, the headline numbers and the elapsed time last.
    """
    quiet_known_noise()
    failed = True
    stop.install()
    try:
        absolute_paths(cfg)
        log.info("run dir: %s", cfg.paths.output_dir)
        set_sweep_threads()
        lock = job_lock(os.path.join(cfg.paths.log_dir, cfg.task_name), task_overrides(),
                        *job_also(cfg))
        with isolated_job(), lock:
            metrics = task(cfg)
        log.info("done: %s", headline(metrics))
        failed = False
        stop.check("everything: this job finished")
    except (stop.Stopped, SIGTERMException) as exc:
        _stopped(cfg, exc)
    except JobRunning as busy:
        _say(f"skipped: {busy}")
        return None
    except Exception as exc:
        _record(cfg, exc)
        err = _user_error(exc)
        if err is None:
            raise
        if is_multirun():
            log.error("error: %s", err)
            raise err from None
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    finally:
        _finish_wandb(failed)
    name = cfg.get("optimized_metric")
    if name is None:
        return None
    if name not in metrics:
        raise ConfigError("optimized_metric", name, f"one of {sorted(metrics)}")
    value = metrics[name]
    return float(value) if isinstance(value, (int, float)) else None
