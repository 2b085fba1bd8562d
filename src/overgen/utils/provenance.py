"""Where a run's numbers came from: the source tree's commit, package versions, hardware;
and the headline numbers a run prints when it ends."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

import overgen

SOURCE_DIR = Path(overgen.__file__).resolve().parent
# metrics.json keys printed at the end of a run, when present (test/acc@t: every threshold)
HEADLINE_KEYS = ("test/acc", "test/acc@", "openset/f1", "oneclass/auroc", "fooling/rate@")


def _git(source: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(source), *args], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(source: Path = SOURCE_DIR) -> str | None:
    """``git rev-parse HEAD`` of the checkout holding ``source``, ``+dirty`` when tracked
    files have uncommitted changes; None outside a git checkout."""
    commit = _git(source, "rev-parse", "HEAD")
    if commit is None:
        return None
    dirty = _git(source, "status", "--porcelain", "--untracked-files=no")
    return commit + ("+dirty" if dirty else "")


# The commit of the code this process imported, read once: a checkout moved while a long
# sweep runs must not rename the code that its later jobs still run.
LOADED_COMMIT = git_commit()


def versions() -> dict[str, str]:
    import hydra
    import pytorch_lightning

    return {"torch": torch.__version__, "pytorch_lightning": pytorch_lightning.__version__,
            "hydra": hydra.__version__, "overgen": overgen.__version__,
            "python": platform.python_version()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """The CPU model, the GPU name (None without CUDA), CUDA device count, torch threads."""
    cuda = torch.cuda.is_available()
    return {"cpu": _cpu_model(), "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "gpu_count": torch.cuda.device_count() if cuda else 0,
            "torch_threads": torch.get_num_threads()}


def run_provenance() -> dict[str, Any]:
    """A run's ``run/git_commit`` (the code it ran: ``LOADED_COMMIT``), ``run/versions``
    and ``run/hardware``."""
    return {"run/git_commit": LOADED_COMMIT, "run/versions": versions(),
            "run/hardware": hardware()}


def headline(metrics: dict[str, Any]) -> str:
    """``test/acc=0.9850 openset/f1=0.7000 ... in 12.3 s``: the run's headline numbers."""
    shown = [f"{k}={v:.4f}" for k, v in metrics.items()
             if isinstance(v, float) and any(k == h or (h.endswith("@") and k.startswith(h))
                                             for h in HEADLINE_KEYS)]
    seconds = metrics.get("run/seconds")
    elapsed = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    return " ".join(shown or ["no headline numbers"]) + elapsed
