"""Test phase of the open-set experiment (accuracy at 0.90 / 0.99 + open set with ``ood``)
on one ``dae_sym``: each batch scored once by the model's ``test_step`` (the framework
now) against each callback scoring it itself (before issue 10: two more encoder passes in
``test_step``, ``Gamma`` of the gated images twice), side by side on the same images,
with Hutchinson and with exact curvature.

    OVERGEN_DATA_DIR=/work/shared/data python bench/openset_eval.py --images 500 \
        --exact-images 100
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import time
import warnings
from types import MethodType

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import training
from hydra.utils import instantiate

import overgen
from overgen.callbacks import OpenSet, TestAccuracy
from overgen.models import DAEClassifier


class ScoresItself:
    """The path before issue 10 (kept only in this benchmark): the callback asks the
    model for nothing and calls it on each test batch itself."""

    def score_needs(self) -> dict:
        return {}


class AccuracyScoringItself(ScoresItself, TestAccuracy):
    @torch.no_grad()
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        x, y = batch
        all_scores = pl_module.class_scores_at(x, self.thresholds)
        for scores, metric in zip(all_scores, self.at.values(), strict=True):
            metric.update(scores, y)
        self.plain.update(all_scores[-1], y)


class OpenSetScoringItself(ScoresItself, OpenSet):
    @torch.no_grad()
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        x, y = batch
        self.outputs.update(pl_module.class_scores(x, threshold=self.threshold,
                                                   gate=not self.ood), y)


def test_step_before(self: DAEClassifier, batch, batch_idx: int) -> None:
    """``DAEClassifier.test_step`` before issue 10: two encoder passes, no scores."""
    x, y = batch
    self.log("test/mse", F.mse_loss(self.reconstruct(x), x), sync_dist=True)
    self.log("test/loss", F.cross_entropy(self(x), y), sync_dist=True)


def openset_data(data_dir: str, images: int):
    """``data=mnist_openset +known=3`` with test batches of up to 500 images."""
    cfg = training.compose_train(["data=mnist_openset", "+known=3", "data.download=false",
                                  f"paths.data_dir={data_dir}",
                                  f"data.eval_batch_size={min(images, 500)}"])
    return instantiate(cfg.data)


def record_gamma(model: DAEClassifier) -> list[tuple[int, float]]:
    """Wraps ``model.curvature``: the returned list gets the image count and the CPU
    seconds (of this process, steadier than wall time on a shared machine) of each call."""
    calls: list[tuple[int, float]] = []
    curvature = model.curvature

    def recorded(x):
        start = time.process_time()
        gamma = curvature(x)
        calls.append((len(x), time.process_time() - start))
        return gamma

    model.curvature = recorded
    return calls


def timed_test(model: DAEClassifier, callbacks: list, data, batches: int,
               device: str = "cpu") -> dict:
    """Wall and CPU seconds of one ``trainer.test`` on ``device``, and the callbacks'
    results."""
    trainer = pl.Trainer(accelerator=device, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_test_batches=batches, callbacks=callbacks)
    torch.manual_seed(0)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.test(model, datamodule=data, verbose=False)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "results": {k: v for cb in callbacks for k, v in cb.results.items()}}


def time_paths(model: DAEClassifier, data_dir: str, images: int, probes: int = 4,
               repeats: int = 2, device: str = "cpu") -> dict:
    """Best wall / CPU seconds of the test phase on ``images`` test images (a multiple of
    the batch, 500 at most) with Hutchinson ``probes``, once-per-batch (``now``) against
    each-callback-scores (``before``), ``repeats`` interleaved rounds."""
    now = copy.deepcopy(model).eval()
    now.curvature_method, now.probes = "hutchinson", probes
    timing = interleaved(now, data_dir, images, repeats, device)
    return {**timing, "curvature": f"Hutchinson {probes} probes"}


def time_paths_exact(model: DAEClassifier, data_dir: str, images: int,
                     repeats: int = 2, device: str = "cpu") -> dict:
    """``time_paths`` with exact curvature (``model.curvature=exact``; about 0.15-0.3 s
    per image on 2 CPU cores, so few ``images``)."""
    now = copy.deepcopy(model).eval()
    now.curvature_method = "exact"
    return {**interleaved(now, data_dir, images, repeats, device), "curvature": "exact"}


def interleaved(now: DAEClassifier, data_dir: str, images: int, repeats: int,
                device: str = "cpu") -> dict:
    """Best wall / CPU seconds of the test phase of ``now`` (the framework) and of a copy
    with the code before (``test_step_before`` and callbacks that score themselves) on
    the first ``images`` open-set test images (a multiple of the batch, 500 at most),
    rounds interleaved (the order alternates); per side the callbacks' results, the
    images ``Gamma`` was computed for and its seconds."""
    data = openset_data(data_dir, images)
    batches = -(-images // data.eval_batch_size)
    before = copy.deepcopy(now)
    before.test_step = MethodType(test_step_before, before)
    gamma_calls = {"now": record_gamma(now), "before": record_gamma(before)}
    best = {side: {"wall": float("inf"), "cpu": float("inf"), "gamma_cpu": float("inf")}
            for side in ("now", "before")}
    for r in range(repeats):
        for side in (("before", "now") if r % 2 == 0 else ("now", "before")):
            callbacks = ([TestAccuracy(), OpenSet()] if side == "now"
                         else [AccuracyScoringItself(), OpenSetScoringItself()])
            callbacks[1].reads_posthoc = False  # post-hoc scores came after; not compared
            gamma_calls[side].clear()
            run = timed_test(now if side == "now" else before, callbacks, data, batches, device)
            run["gamma_cpu"] = sum(s for _, s in gamma_calls[side])
            for clock in ("wall", "cpu", "gamma_cpu"):
                best[side][clock] = min(best[side][clock], run[clock])
            best[side].update(results=run["results"],
                              gamma_images=sum(n for n, _ in gamma_calls[side]))
            print(f"  round {r + 1} {side:6s} {run['wall']:.2f} s ({run['cpu']:.2f} CPU-s, "
                  f"Gamma {run['gamma_cpu']:.2f} CPU-s)", flush=True)
    return {"images": batches * data.eval_batch_size, **best}


def row(timing: dict) -> str:
    """The RESULTS.md row: before / now wall time and the ratio (CPU seconds alike), the
    images ``Gamma`` was computed for on each side, its CPU seconds, and the share of the
    CPU time before that went to the ``Gamma`` computed a second time."""
    now, before = timing["now"], timing["before"]
    same = {k: v for k, v in now["results"].items() if before["results"].get(k) == v}
    ratio = before["wall"] / now["wall"]
    again = (before["gamma_cpu"] - now["gamma_cpu"]) / before["cpu"]
    return (f"| 6 | open-set test phase (`TestAccuracy` + `OpenSet` ood), `dae_sym`, "
            f"{timing['curvature']}, {timing['images']} test images (Gamma of "
            f"{now['gamma_images']} images now, {before['gamma_images']} before; "
            f"{now['gamma_cpu']:.2f} / {before['gamma_cpu']:.2f} CPU-s) | "
            f"{now['wall']:.2f} s (each batch scored once) | {before['wall']:.2f} s (each "
            f"callback scores itself) | {ratio:.2f}x (per CPU-second "
            f"{before['cpu'] / now['cpu']:.2f}x) | >= 1.8x "
            f"({'met' if ratio >= 1.8 else '**not met**'}); Gamma again: {again:.0%} of "
            f"the CPU time before; {len(same)}/{len(now['results'])} results equal |")


def require_checkpoint(flag: str, path: str | None) -> None:
    """One error line and exit 2 when ``path`` is given and is not a file."""
    if path and not os.path.isfile(path):
        print(f"error: {flag}={path!r} is not allowed: no such file (a dae_sym checkpoint "
              "written by train.py)", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1000, help="test images (batches of 500)")
    p.add_argument("--probes", type=int, default=4, help="Hutchinson probes")
    p.add_argument("--exact-images", type=int, default=100,
                   help="test images with exact curvature (0: none)")
    p.add_argument("--train-batches", type=int, default=300,
                   help="training batches of the dae_sym scored (framework run)")
    p.add_argument("--ckpt", help="score this trained dae_sym checkpoint instead (e.g. a "
                   "Table I run's checkpoints/last.ckpt)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds, best kept")
    args = p.parse_args()
    require_checkpoint("--ckpt", args.ckpt)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    data_dir = os.environ.get("OVERGEN_DATA_DIR", "data")
    torch.manual_seed(0)
    if args.ckpt:
        model = overgen.load(args.ckpt)
    else:
        _, model = training.framework_run("dae_sym", data_dir, args.train_batches)
    load0 = os.getloadavg()[0]
    timings = [time_paths(model, data_dir, args.images, args.probes, args.repeats)]
    if args.exact_images:
        timings.append(time_paths_exact(model, data_dir, args.exact_images, args.repeats))
    print(f"load average (1 min) at start / end: {load0:.1f} / {os.getloadavg()[0]:.1f}")
    print("\n".join(row(t) for t in timings))


if __name__ == "__main__":
    main()
