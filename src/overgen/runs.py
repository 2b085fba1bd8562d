"""Runs across invocations: find an earlier run of the same job, tell whether it finished,
record why one failed. A job is its task and its command-line overrides (Hydra writes them
to ``<run dir>/.hydra/overrides.yaml``), whatever dir or sweep it ran in."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from overgen.utils.io import atomic_write_json

METRICS_FILE = "metrics.json"
ERROR_FILE = "error.json"
# overrides that say how to run a job, not what it computes
RUN_CONTROL_KEYS = ("resume", "overwrite", "ckpt_path")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def job_overrides(overrides: list[str]) -> list[str]:
    """The overrides that define a job: sorted, without run-control, ``hydra.*`` and
    ``paths.*`` keys."""
    return sorted(o for o in overrides if _key(o) not in RUN_CONTROL_KEYS
                  and not _key(o).startswith(("hydra.", "hydra/", "paths.")))


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
    """The run's ``metrics.json`` if it is complete (readable, with ``required``)."""
    try:
        metrics = json.loads((Path(run_dir) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or (required is not None and required not in metrics):
        return None
    return metrics


def record_failure(run_dir: str | Path, exc: BaseException) -> Path:
    """Write ``error.json`` (type, message, traceback) into the failed run's dir."""
    path = Path(run_dir) / ERROR_FILE
    atomic_write_json(str(path), {
        "error": type(exc).__name__, "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    })
    return path
