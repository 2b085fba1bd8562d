"""Runs across invocations: find an earlier run of the same job, tell whether it finished,
record why one failed, keep two launches of one job from running at once, name a job. A
job is its task and its command-line overrides (Hydra writes them to
``<run dir>/.hydra/overrides.yaml``), whatever dir or sweep it ran in."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from overgen.outputs import ERROR_FILE, METRICS_FILE
from overgen.utils.io import atomic_write_json

log = logging.getLogger(__name__)

# overrides that say how to run a job, not what it computes
RUN_CONTROL_KEYS = ("resume", "overwrite", "ckpt_path")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def job_overrides(overrides: list[str]) -> list[str]:
    """The overrides that define a job: sorted, without run-control, ``hydra.*`` and
    ``paths.*`` keys."""
    return sorted(o for o in overrides if _key(o) not in RUN_CONTROL_KEYS
                  and not _key(o).startswith(("hydra.", "hydra/", "paths.")))


def job_digest(overrides: list[str], *also: str) -> str:
    """16 hex digits naming the job of ``overrides`` (its ``job_overrides``) and ``also``."""
    job = " ".join([*job_overrides(overrides), *also])
    return hashlib.sha256(job.encode()).hexdigest()[:16]


def earlier_runs(search_dir: str | Path, overrides: list[str]) -> list[Path]:
    """Run dirs under ``search_dir`` (any depth) of the same job as ``overrides``, newest
    first. This run's own dir is among them: a requeued job (SLURM) runs in it again."""
    want = job_overrides(overrides)
    found = []
    for file in Path(search_dir).glob("**/.hydra/overrides.yaml"):
        run = file.parent.parent
        try:
            theirs = OmegaConf.to_container(OmegaConf.load(file))
        except Exception:  # noqa: BLE001 - an unreadable file is not our job
            continue
        if isinstance(theirs, list) and job_overrides([str(o) for o in theirs]) == want:
            found.append((file.stat().st_mtime, run))
    return [run for _, run in sorted(found, key=lambda t: t[0], reverse=True)]


def completed_metrics(run_dir: str | Path, required: str | None) -> dict[str, Any] | None:
    """The run's ``metrics.json`` if it is complete (readable, with ``required``); a file
    that exists but does not parse (cut short) is warned about."""
    path = Path(run_dir) / METRICS_FILE
    try:
        metrics = json.loads(path.read_text())
    except OSError:
        return None
    except ValueError as e:
        log.warning("%s is unreadable (%s): that run counts as unfinished", path, e)
        return None
    if not isinstance(metrics, dict) or (required is not None and required not in metrics):
        return None
    return metrics


class JobRunning(Exception):
    """Another live process runs this job."""


def first_process() -> bool:
    """Not one of the extra ranks of a DDP job (started by Lightning or by SLURM)."""
    return all(os.environ.get(k, "0") == "0" for k in ("LOCAL_RANK", "NODE_RANK",
                                                       "SLURM_PROCID"))


@contextmanager
def job_lock(search_dir: str | Path, overrides: list[str], *also: str) -> Iterator[None]:
    """Hold the job's lock file ``<search_dir>/.locks/<job_digest(overrides, *also)>.lock``
    (``flock``) while the block runs; ``JobRunning`` when another live process holds it.
    The kernel drops the lock when its process ends, however it ends. Extra DDP ranks
    run under their first rank's lock."""
    if not first_process():
        yield
        return
    job = " ".join([*job_overrides(overrides), *also])
    path = Path(search_dir) / ".locks" / f"{job_digest(overrides, *also)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().split(" ", 1)[0] or "?"  # host:pid
            raise JobRunning(f"this job runs in process {holder} already (it holds {path}); "
                             "not started twice") from None
        f.seek(0)
        f.truncate()
        f.write(f"{socket.gethostname()}:{os.getpid()} {job}\n")
        f.flush()
        yield


def record_failure(run_dir: str | Path, exc: BaseException) -> Path:
    """Write ``error.json`` (type, message, traceback) into the failed run's dir."""
    path = Path(run_dir) / ERROR_FILE
    atomic_write_json(str(path), {
        "error": type(exc).__name__, "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    })
    return path
