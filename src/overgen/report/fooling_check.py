"""Why a dAE resists the fooling attack, and what its thresholds cost: ``fooling_check.json``.

For a finished fooling run of a dAE, the attack's final images (``fooling_images.npy``) as
the attacked model sees them: the classifier's ``y_t`` for each trial's target digit (what
the attack maximises), the per-pixel reconstruction MSE ``e/D``, ``gamma``, and the dAE's
score ``y~_t = c(x) y_t`` at each threshold's alpha. Beside them, the MNIST test images:
their per-pixel MSE, the share above ``-ln(t) / alpha``, where no image can reach threshold
``t`` whatever its class (``y~ <= exp(-alpha e/D)``, ``Gamma <= 1``), and the accuracy at
``t`` of the classifier alone (``y``, no ``c(x)``), which splits a thresholded accuracy into
what the classifier's confidence costs and what the reconstruction error adds. Writes
``<run dir>/fooling_check.json`` (flat keys), which ``overgen.report.summary`` reads.

``python -m overgen.report.fooling_check results/runs/fooling/multiruns/<time>/0``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import Tensor
from torchvision.datasets import MNIST

import overgen
from overgen.attacks.fgn import trial_targets
from overgen.errors import OvergenError
from overgen.outputs import (
    FOOLING_CHECK_FILE,
    FOOLING_IMAGES_FILE,
    METRICS_FILE,
    RUN_RESUMED_FROM,
    threshold_key,
)
from overgen.scores import reconstruction_error
from overgen.utils.io import atomic_write_json


def error_bound(threshold: float, alpha: float) -> float:
    """The per-pixel MSE above which no score reaches ``threshold``: ``exp(-alpha m) y <=
    exp(-alpha m) < threshold`` for ``m > -ln(threshold) / alpha``."""
    return -math.log(threshold) / alpha


def mse_and_probs(model, x: Tensor) -> tuple[Tensor, Tensor]:
    """The per-pixel MSE ``e(x) / D`` ``[N]`` and the classifier's ``y(x)`` ``[N, C]`` of
    ``x [N, 1, 28, 28]``, from one encoder pass."""
    with torch.no_grad():
        r, logits, _ = model.reconstruction_and_logits(x)
    return reconstruction_error(x, r) / x[0].numel(), logits.softmax(-1)


def fooling_stats(model, images: Tensor, targets: Tensor, thresholds: Sequence[float],
                  seed: int = 0) -> dict:
    """The final fooling ``images [N, 1, 28, 28]`` of trials aimed at ``targets [N]``:
    medians of ``y_t`` and of the per-pixel MSE, the shares with ``y_t >= t`` (the
    classifier alone fooled) and with ``gamma > 0``, and the largest ``y~_t`` at each
    threshold ``t`` (Hutchinson's probes, if the model uses them, drawn from ``seed``)."""
    index = targets[:, None]
    mse, probs = mse_and_probs(model, images)
    y_t = probs.gather(1, index).squeeze(1)
    with torch.no_grad():
        torch.manual_seed(seed)
        gamma = model.curvature(images)
        scores = [s.gather(1, index)  # one Gamma per image for all thresholds
                  for s in model.class_scores_at(images, thresholds, gate=False)]
    out = {"fooling_images/images": len(images),
           "fooling_images/y_target_median": float(y_t.median()),
           "fooling_images/mse_median": float(mse.median()),
           "fooling_images/mse_min": float(mse.min()),
           "fooling_images/gamma_positive": float((gamma > 0).float().mean())}
    for t, s in zip(thresholds, scores, strict=True):
        out[threshold_key("fooling_images/y_target_share", t)] = float((y_t >= t).float().mean())
        out[threshold_key("fooling_images/score_max", t)] = float(s.max())
    return out


def test_stats(model, images: Tensor, labels: Tensor, thresholds: Sequence[float]) -> dict:
    """Test ``images [N, 1, 28, 28]`` with ``labels [N]``: the median per-pixel MSE and, per
    threshold ``t``, the bound ``error_bound(t, alpha_t)``, the share of images above it,
    and the classifier's own accuracy at ``t`` (argmax right and ``max_k y_k >= t``)."""
    mse, probs = (torch.cat(parts) for parts in zip(
        *(mse_and_probs(model, x) for x in images.split(1000)), strict=True))
    top, right = probs.amax(-1), probs.argmax(-1) == labels
    out = {"test_images/images": len(images), "test_images/mse_median": float(mse.median())}
    for t in thresholds:
        bound = error_bound(t, model.alpha_for(t))
        out[threshold_key("test_images/mse_bound", t)] = bound
        out[threshold_key("test_images/mse_above_bound", t)] = float((mse > bound).float().mean())
        out[threshold_key("test_images/classifier_acc", t)] = float(
            (right & (top >= t)).float().mean())
    return out


def checkpoint_of(run: Path, metrics: dict) -> Path:
    """The run's own ``checkpoints/last.ckpt``, else the one it resumed from (a resumed run
    whose training had finished writes none)."""
    own, resumed_from = run / "checkpoints" / "last.ckpt", metrics.get(RUN_RESUMED_FROM)
    return Path(resumed_from) if resumed_from and not own.is_file() else own


def check(run: Path, test_images: Tensor, test_labels: Tensor) -> dict | None:
    """``fooling_check.json``'s values for a finished fooling run; None for a model without
    a reconstruction (CNN, COOL)."""
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    if not hasattr(get_class(cfg.model._target_), "reconstruct"):
        return None  # read from the config: no checkpoint needed to skip a run
    metrics = json.loads((run / METRICS_FILE).read_text())
    model = overgen.load(str(checkpoint_of(run, metrics)))
    attack = cfg.callbacks.fooling
    images = torch.from_numpy(np.load(run / FOOLING_IMAGES_FILE).astype(np.float32))
    targets = trial_targets(list(attack.digits), attack.trials_per_digit)
    thresholds = [float(t) for t in attack.thresholds]
    return {**fooling_stats(model, images.view(-1, 1, 28, 28), targets, thresholds),
            **test_stats(model, test_images, test_labels, thresholds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overgen.report.fooling_check")
    parser.add_argument("run_dirs", nargs="+", help="finished fooling run dirs")
    parser.add_argument("--data-dir", default=os.environ.get("OVERGEN_DATA_DIR", "data"))
    args = parser.parse_args(argv)
    for d in args.run_dirs:
        run = Path(d)
        if not (run / FOOLING_IMAGES_FILE).is_file() or not (run / METRICS_FILE).is_file():
            print(f"error: run_dirs={d}: no {FOOLING_IMAGES_FILE} and {METRICS_FILE} there (a "
                  "finished fooling run is needed)", file=sys.stderr)
            return 2
    ds = MNIST(args.data_dir, train=False, download=False)
    test_images = ds.data.unsqueeze(1).float() / 255.0
    for d in args.run_dirs:
        try:
            result = check(Path(d), test_images, ds.targets)
        except OvergenError as err:  # e.g. its checkpoint is gone (not committed)
            print(f"error: run_dirs={d}: {err}", file=sys.stderr)
            return 2
        if result is not None:
            atomic_write_json(str(Path(d) / FOOLING_CHECK_FILE), result)
            print(Path(d) / FOOLING_CHECK_FILE, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
