"""Runs from ``metrics.json`` files -> flat dicts, grouped numbers and their provenance.

A run is its ``metrics.json`` as a dict plus ``"dir"``, the folder it lies in. Every key may
be missing or null; helpers here skip those values and say how many runs remain.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from overgen.metrics import average_roc
from overgen.outputs import (
    METRICS_FILE,
    ONECLASS_AUROC,
    ONECLASS_DIGIT,
    ONECLASS_ROC_FILE,
    OPENSET_F1,
    OPENSET_KNOWN,
    OPENSET_OPENNESS,
    ROC_FILE,
    RUN_EPOCHS,
    RUN_MODEL,
    SIZE_LIMITS,
)

MODEL_ORDER = ("cnn", "cool", "dae_sym", "dae_asym", "dae_mlp", "dae_oneclass", "ocsvm",
               "deep_svdd")


def _size_limits(folder: Path) -> dict:
    """``run/<limit>`` from the run's ``.hydra/config.yaml`` (for runs written before
    ``metrics.json`` recorded them)."""
    path = folder / ".hydra" / "config.yaml"
    try:
        trainer = OmegaConf.to_container(OmegaConf.load(path)).get("trainer") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {f"run/{k}": trainer[k] for k in SIZE_LIMITS if k in trainer}


def missing_dirs(prog: str, dirs: Iterable[str]) -> bool:
    """Say on stderr which of ``dirs`` do not exist (``<prog>: no such directory: ...``);
    True when any is missing (the command line then exits 2)."""
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        print(f"{prog}: no such directory: {', '.join(missing)}", file=sys.stderr)
    return bool(missing)


def find_runs(dirs: Iterable[str]) -> list[dict]:
    """Every ``metrics.json`` under ``dirs`` (recursive, each file once); files that are
    not a readable JSON object are skipped with a warning on stderr. Size limits missing
    from a ``metrics.json`` are read from the run's ``.hydra/config.yaml``."""
    runs = []
    for path in sorted({p.resolve() for d in dirs for p in Path(d).rglob(METRICS_FILE)}):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            metrics = e
        if not isinstance(metrics, dict):
            print(f"overgen.report: skipping {path}: not a JSON object ({metrics})",
                  file=sys.stderr)
            continue
        runs.append({**_size_limits(path.parent), **metrics, "dir": str(path.parent)})
    return runs


def number(value) -> float | None:
    """``value`` as a finite float; None when missing, null, NaN or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def values(runs: list[dict], key: str) -> list[float]:
    """The finite numbers under ``key`` in ``runs``."""
    return [v for v in (number(r.get(key)) for r in runs) if v is not None]


def listed(runs: list[dict], key: str) -> str:
    """The distinct numbers under ``key``, e.g. ``"0.9/0.99"``; ``"?"`` when none."""
    return "/".join(f"{v:g}" for v in sorted(set(values(runs, key)))) or "?"


def has_prefix(run: dict, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in run)


def label(run: dict) -> str:
    """The setting a run belongs to: its model, the dAE's curvature method, an attack on y~."""
    name = str(run.get(RUN_MODEL) or "?")
    if name.startswith("dae"):
        name += f" ({run.get('run/curvature') or 'unknown'} curvature)"
    if run.get("fooling/target") == "y_tilde":
        name += ", attack y~"
    return name


def _order(run: dict) -> tuple:
    model = str(run.get(RUN_MODEL) or "?")
    rank = MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)
    return rank, model, label(run), run["dir"]


def group(runs: list[dict], key: Callable[[dict], object] = label) -> dict[object, list[dict]]:
    """``runs`` grouped by ``key`` (default: ``label``), models in the paper's order."""
    out: dict[object, list[dict]] = {}
    for run in sorted(runs, key=_order):
        out.setdefault(key(run), []).append(run)
    return out


def _distinct(runs: list[dict], key: str) -> str:
    """The distinct integers under ``key``, ``"/"``-joined, ``?`` for runs without one."""
    found = {r.get(key) for r in runs}
    known = sorted(int(v) for v in found if number(v) is not None)
    return "/".join([str(v) for v in known] + (["?"] if len(known) < len(found) else []))


def _partial(limit) -> bool:
    """A ``limit_*_batches`` that leaves batches out: an int (batches) or a fraction < 1."""
    return limit is not None and not (isinstance(limit, float) and limit >= 1.0)


def shrunk_by(run: dict) -> list[str]:
    """What cut the run short of its protocol: ``limit_train_batches=5``,
    ``limit_test_batches=2``, ``fast_dev_run``, ``max_steps=20`` (a step cap that ended an
    epoch-based training; the rings' step-based training is not shrunk by it)."""
    notes = [f"{k}={run[f'run/{k}']}" for k in ("limit_train_batches", "limit_test_batches")
             if _partial(run.get(f"run/{k}"))]
    if run.get("run/fast_dev_run"):
        notes.append("fast_dev_run")
    cap, epochs, steps = (number(run.get(f"run/{k}")) for k in ("max_steps", "max_epochs",
                                                                "steps"))
    if cap is not None and cap > 0 and (epochs or 0) > 0 and steps is not None and steps >= cap:
        notes.append(f"max_steps={int(cap)}")
    return notes


def provenance(runs: list[dict]) -> str:
    """``"n=10, epochs=3, steps=5625, test images=10000"``; mixed values are listed
    (``epochs=3/20``, ``?`` for unrecorded); runs cut short add ``SHRUNK (k of n):`` and
    what cut them."""
    text = (f"n={len(runs)}, epochs={_distinct(runs, RUN_EPOCHS)}, "
            f"steps={_distinct(runs, 'run/steps')}, "
            f"test images={_distinct(runs, 'run/test_images')}")
    shrunk = [notes for r in runs if (notes := shrunk_by(r))]
    if shrunk:
        notes = ", ".join(dict.fromkeys(n for ns in shrunk for n in ns))
        text += f", SHRUNK ({len(shrunk)} of {len(runs)}): {notes}"
    return text


def run_file(run: dict, key: str, default: str | None = None) -> str | None:
    """The existing file named by ``run[key]`` (relative paths against the run dir; a moved
    run dir is found by the file's name), else ``default`` in the run dir, else None."""
    value, folder = run.get(key), run["dir"]
    candidates = []
    if isinstance(value, str) and value:
        candidates += [os.path.join(folder, value), os.path.join(folder, os.path.basename(value))]
    if default:
        candidates.append(os.path.join(folder, default))
    return next((p for p in candidates if os.path.isfile(p)), None)


def load_roc(run: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """``(fpr, tpr)`` from the run's ROC file (``oneclass/roc_file`` or ``roc.json``)."""
    path = run_file(run, ONECLASS_ROC_FILE, ROC_FILE)
    try:
        data = json.loads(Path(path).read_text())
        fpr, tpr = np.asarray(data["fpr"], float), np.asarray(data["tpr"], float)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (fpr, tpr) if fpr.ndim == 1 and fpr.shape == tpr.shape and fpr.size else None


def known_count(run: dict) -> int | None:
    """K, the number of known digits of an open-set run."""
    known = run.get(OPENSET_KNOWN)
    return int(known) if number(known) is not None else None


def openset_points(runs: list[dict]) -> dict[str, list[dict]]:
    """Per label, per K (ascending): openness, mean and std (ddof 0) of ``openset/f1``
    over the runs (subsets) with that K, and their count ``n``."""
    out: dict[str, list[dict]] = {}
    for name, g in group([r for r in runs if known_count(r) is not None]).items():
        for k, kruns in sorted(group(g, known_count).items()):
            f1 = values(kruns, OPENSET_F1)
            if not f1:
                continue
            openness = values(kruns, OPENSET_OPENNESS)
            out.setdefault(name, []).append({
                "known": k, "openness": float(np.mean(openness)), "mean": float(np.mean(f1)),
                "std": float(np.std(f1)), "n": len(f1)})
    return out


def oneclass_summary(runs: list[dict]) -> dict[str, dict]:
    """Per label: the averaged ROC (``tpr`` on ``FPR_GRID``, None without ROC files), AUC
    values, digits, runs and the number of ROC curves found."""
    out = {}
    for name, g in group(runs).items():
        curves = [c for c in map(load_roc, g) if c is not None]
        out[name] = {"tpr": average_roc(curves) if curves else None, "curves": len(curves),
                     "auc": values(g, ONECLASS_AUROC), "runs": g,
                     "digits": sorted({int(d) for d in values(g, ONECLASS_DIGIT)})}
    return out
