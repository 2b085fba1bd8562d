"""Reduced precision on the CPU: ``trainer.precision=bf16-mixed`` against ``32-true`` for
``dae_sym``: training throughput side by side (same batches), what bf16 autocast would do
to the scores if scoring ran under it, and the test metrics of short ``train.py`` runs.

    OVERGEN_DATA_DIR=/work/shared/data python bench/precision.py --batches 300

Row 9 of ``bench/run.py`` (``--precision-steps``, ``--precision-test-images`` there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import training
from confidence import load_test

from overgen.outputs import METRICS_FILE, ONECLASS_AUROC, TEST_MSE, threshold_key

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("32-true", "bf16-mixed")
THRESHOLD = 0.99  # acc@0.99: alpha 3 (conf/model/dae_sym.yaml's alpha_at)


def throughput(data_dir: str, batches: int, repeats: int,
               device: str = "cpu") -> tuple[dict, dict]:
    """Best samples/s (wall and CPU) of ``dae_sym`` framework training on ``device`` at each
    precision, ``repeats`` interleaved rounds (the order alternates), every run on the same
    ``batches`` (seed 0); and the last fp32-trained model."""
    best = {p: {"wall": 0.0, "cpu": 0.0} for p in PRECISIONS}
    model = None
    for r in range(repeats):
        for precision in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
            torch.manual_seed(0)
            rates, module = training.framework_run(
                "dae_sym", data_dir, batches, device,
                overrides=(f"trainer.precision={precision}",))
            model = module if precision == "32-true" else model
            for clock, rate in rates.items():
                best[precision][clock] = max(best[precision][clock], rate)
            print(f"  round {r + 1} {precision:10s} {rates['wall']:.1f} samples/s "
                  f"({rates['cpu']:.1f} per CPU-s)", flush=True)
    return best, model


def scoring_under_autocast(model, x: torch.Tensor) -> dict:
    """The same model's scores on ``x`` in float32 and under bf16 autocast (what the test
    step would compute without its guard): per-pixel error ``e/D`` (mean of the fp32 one,
    largest absolute change), ``gamma`` (largest absolute change; Hutchinson, same probes)
    and the decisions at ``THRESHOLD`` that flip."""
    model.eval()
    model.curvature_method, model.probes = "hutchinson", 4
    out = {}
    for name, enabled in (("fp32", False), ("bf16", True)):
        torch.manual_seed(0)
        with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16,
                                             enabled=enabled):
            r = model.reconstruct(x)
            e = (r.float() - x).flatten(1).pow(2).mean(1)
            gamma = model.curvature(x).float()
            scores = model.class_scores_at(x, [THRESHOLD], gate=False)[0].float()
        out[name] = (e, gamma, scores.amax(-1) >= THRESHOLD)
    (e32, g32, d32), (e16, g16, d16) = out["fp32"], out["bf16"]
    return {"images": len(x), "mse": e32.mean().item(),
            "mse_change": (e16 - e32).abs().max().item(),
            "gamma_change": (g16 - g32).abs().max().item(),
            "flips": int((d16 != d32).sum()), "accepted": int(d32.sum())}


def train_metrics(overrides: list[str]) -> dict:
    """``metrics.json`` of ``python train.py <overrides>`` (CSV logger, run dirs in a temp
    dir; the process's ``OMP_NUM_THREADS``)."""
    with tempfile.TemporaryDirectory() as logs:
        env = {**os.environ, "OVERGEN_LOG_DIR": logs}
        proc = subprocess.run([sys.executable, "train.py", *overrides], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"train.py {' '.join(overrides)}: {proc.stderr[-2000:]}")
        (path,) = Path(logs).rglob(METRICS_FILE)
        return json.loads(path.read_text())


def quality(steps: int, test_images: int, device: str = "cpu") -> dict:
    """Test MSE and acc@0.99 of ``dae_sym`` on MNIST, and the 1-class AUROC of
    ``dae_oneclass`` on digit 0, after ``steps`` training steps on ``device`` at each
    precision (same seed and data; Hutchinson curvature, 4 probes), on the first
    ``test_images`` test images (a multiple of 500)."""
    accelerator = "gpu" if device == "cuda" else "cpu"
    short = ["debug=cpu", f"trainer.accelerator={accelerator}", f"trainer.max_steps={steps}",
             "model.curvature=hutchinson", "model.probes=4", "seed=12345",
             "data.eval_batch_size=500", f"trainer.limit_test_batches={test_images // 500}"]
    keys = {"mnist": (TEST_MSE, threshold_key("test/acc", THRESHOLD)),
            "oneclass": (ONECLASS_AUROC,)}
    runs = {"mnist": ["model=dae_sym"],
            "oneclass": ["experiment=oneclass", "data.digit=0", "model=dae_oneclass"]}
    out = {}
    for precision in PRECISIONS:
        for name, overrides in runs.items():
            metrics = train_metrics([*overrides, *short, f"trainer.precision={precision}"])
            out.update({(precision, k): metrics[k] for k in keys[name]})
            print(f"  {precision} {name}: {[metrics[k] for k in keys[name]]}", flush=True)
    return out


def rows(best: dict, autocast: dict, metrics: dict, steps: int, test_images: int) -> str:
    """The RESULTS.md rows (9): throughput ratio, scoring under autocast, test metrics."""
    fp32, bf16 = best["32-true"], best["bf16-mixed"]
    lines = [
        f"| 9 | `dae_sym` training, framework, `trainer.precision=bf16-mixed` | "
        f"{bf16['wall']:,.0f} samples/s | 32-true {fp32['wall']:,.0f} "
        f"samples/s | {bf16['wall'] / fp32['wall']:.2f} (per CPU-second "
        f"{bf16['cpu'] / fp32['cpu']:.2f}) | report |",
        f"| 9 | scores of one fp32-trained `dae_sym` under bf16 autocast, "
        f"{autocast['images']} test images (fp32 per-pixel MSE {autocast['mse']:.4f}) | "
        f"per-pixel MSE changes by up to {autocast['mse_change']:.1e}, gamma by up to "
        f"{autocast['gamma_change']:.1e} | fp32 | {autocast['flips']} of "
        f"{autocast['accepted']} accepted decisions at {THRESHOLD} flip | scoring stays "
        f"fp32 |",
    ]
    for key in sorted({k for _, k in metrics}):
        lines.append(f"| 9 | {key} after {steps} steps, bf16-mixed ({test_images} test "
                     f"images) | "
                     f"{metrics['bf16-mixed', key]:.4f} | 32-true "
                     f"{metrics['32-true', key]:.4f} | "
                     f"{metrics['bf16-mixed', key] - metrics['32-true', key]:+.4f} | report |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=300, help="training batches per round")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds, best kept")
    p.add_argument("--images", type=int, default=1000, help="test images scored")
    p.add_argument("--steps", type=int, default=938, help="training steps of the train.py runs")
    p.add_argument("--test-images", type=int, default=10_000,
                   help="test images of the train.py runs (a multiple of 500)")
    args = p.parse_args()
    data_dir = os.environ.get("OVERGEN_DATA_DIR", "data")
    load0 = os.getloadavg()[0]
    best, model = throughput(data_dir, args.batches, args.repeats)
    autocast = scoring_under_autocast(model, load_test(data_dir, args.images))
    print(f"  scores under bf16 autocast: {autocast}", flush=True)
    metrics = quality(args.steps, args.test_images)
    print(f"torch threads {torch.get_num_threads()}; load average (1 min) at start / end: "
          f"{load0:.1f} / {os.getloadavg()[0]:.1f}")
    print(rows(best, autocast, metrics, args.steps, args.test_images))


if __name__ == "__main__":
    main()
