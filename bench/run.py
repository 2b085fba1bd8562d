"""overgen benchmark suite: one process, side-by-side ratios, one markdown table.

    OVERGEN_DATA_DIR=/work/shared/data python bench/run.py            # writes bench/RESULTS.md
    OVERGEN_DATA_DIR=/work/shared/data python bench/run.py --quick    # smoke run, no write
    ... --epoch (full training epochs) --e2e (also time the train.py runs, ~10+ min)
    ... --eval-images N (open-set test phase, row 6; default 1000)
    ... --sweep (also time a 4-job sweep, joblib against one after another, row 8; minutes)
    ... --device cuda (every row with a GPU meaning on the GPU: 1-4, 6, 7, 9)
    ... --exact-eval-images N (row 6 with exact curvature; default 100)
    ... --eval-ckpt PATH (row 6 on a trained dae_sym checkpoint instead of row 1's model)
    ... --precision-steps N, --precision-test-images N (row 9: bf16-mixed against 32-true)
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import attack
import confidence
import e2e
import openset_eval
import precision
import small_model
import sweep
import torch
import training

import overgen

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
MODELS = ("cnn", "dae_sym")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 20 batches, 1 repeat, 8 images; RESULTS.md untouched")
    p.add_argument("--batches", type=int, default=300, help="training batches per measurement")
    p.add_argument("--epoch", action="store_true", help="full training epochs (938 batches)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats, best kept")
    p.add_argument("--images", type=int, default=64, help="test images for fast scores")
    p.add_argument("--naive-images", type=int, default=8, help="test images for slow scores")
    p.add_argument("--attack-steps", type=int, default=1000,
                   help="fooling updates per trial (batched and one at a time); the last "
                        "fifth is the timed steady state")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads here and OMP_NUM_THREADS for --e2e runs "
                        "(default: torch's own choice)")
    p.add_argument("--eval-images", type=int, default=1000,
                   help="test images of the open-set test phase (row 6; batches of 500)")
    p.add_argument("--small-steps", type=int, default=3000,
                   help="training steps per measurement of the small model (row 7)")
    p.add_argument("--exact-eval-images", type=int, default=100,
                   help="test images of the open-set test phase with exact curvature (row 6)")
    p.add_argument("--eval-ckpt", help="row 6 scores this trained dae_sym checkpoint (e.g. "
                   "a Table I run's last.ckpt) instead of row 1's model")
    p.add_argument("--precision-steps", type=int, default=938,
                   help="training steps of the train.py runs at each precision (row 9)")
    p.add_argument("--precision-test-images", type=int, default=10_000,
                   help="test images of those runs (row 9; a multiple of 500)")
    p.add_argument("--e2e", action="store_true", help="also time the end-to-end train.py runs")
    p.add_argument("--sweep", action="store_true",
                   help="also time a 4-job rings2d sweep, joblib against one after another")
    p.add_argument("--sweep-steps", type=int, default=2000, help="training steps per sweep job")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the rows with a GPU meaning run (training, small model, "
                        "scores, fooling, open-set test phase)")
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device='cuda' is not allowed: no CUDA device on this machine (torch "
              f"{torch.__version__}); use --device cpu", file=sys.stderr)
        sys.exit(2)
    openset_eval.require_checkpoint("--eval-ckpt", args.eval_ckpt)
    if args.quick:
        args.batches, args.repeats, args.images, args.naive_images = 20, 1, 8, 2
        args.attack_steps, args.eval_images, args.small_steps = 10, 100, 100
        args.exact_eval_images, args.precision_steps, args.precision_test_images = 8, 20, 500
        args.no_write = True
    return args


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def device_name(device: str) -> str:
    return f"{device} ({torch.cuda.get_device_name()})" if device == "cuda" else device


def bench_training(data_dir: str, batches: int | None, repeats: int, device: str):
    """Best samples/s of each side over ``repeats`` interleaved rounds (order alternates)."""
    data = tuple(t.to(device) for t in training.load_train(data_dir))
    for model in MODELS:  # warm-up: kernels, allocator
        training.plain_run(model, data, 3)
    best = {(m, side, clock): 0.0 for m in MODELS for side in ("framework", "plain")
            for clock in ("wall", "cpu")}
    trained = None
    for r in range(repeats):
        for model in MODELS:
            for side in (("plain", "framework") if r % 2 == 0 else ("framework", "plain")):
                if side == "plain":
                    sps = training.plain_run(model, data, batches)
                else:
                    sps, module = training.framework_run(model, data_dir, batches, device)
                    trained = module if model == "dae_sym" else trained
                for clock, rate in sps.items():
                    best[model, side, clock] = max(best[model, side, clock], rate)
                print(f"  round {r + 1} {model:8s} {side:9s} {sps['wall']:7.1f} samples/s "
                      f"({sps['cpu']:.1f} per CPU-s)", flush=True)
    return best, trained


def fmt(x: float, unit: str = "") -> str:
    return f"{x:,.3g}{unit}" if abs(x) < 100 else f"{x:,.0f}{unit}"


def table(args, best, peak, flops, curv_rows, facts, pair, fooling, e2e_rows,
          evaluation, small, sweep_timing, bf16) -> str:
    span = "full epoch (938 batches)" if args.epoch else f"{args.batches} batches of 64"
    lines = ["| # | benchmark | measured | reference (same run) | ratio | floor / target |",
             "|---|---|---|---|---|---|"]
    for m in MODELS:
        fw, pl_ = best[m, "framework", "wall"], best[m, "plain", "wall"]
        cpu = best[m, "framework", "cpu"] / best[m, "plain", "cpu"]
        ok = "met" if fw / pl_ >= 0.90 else "**not met**"
        lines.append(f"| 1 | `{m}` training, framework, {span} | {fmt(fw)} samples/s | "
                     f"plain loop {fmt(pl_)} samples/s | {fw / pl_:.2f} (per CPU-second "
                     f"{cpu:.2f}) | >= 0.90 ({ok}) |")
    for m in MODELS:
        fwd, step = flops[m]
        achieved = step * best[m, "plain", "wall"]
        lines.append(f"| 2 | `{m}` plain loop compute ({fmt(step / 1e6)} MFLOP/sample per "
                     f"step, {step / fwd:.2f}x fwd) | {fmt(achieved / 1e9)} GFLOP/s | "
                     f"fp32 mm {fmt(peak / 1e9)} GFLOP/s | {achieved / peak:.3f} | report |")
    fwd_s = facts["forward_s"]
    lines.append(f"| 3 | one forward pass (batch-64 no-grad `reconstruct`, per image) | "
                 f"{fmt(fwd_s * 1e3)} ms | | 1 | |")
    for row in curv_rows:
        extra = "<= 500 fwd" if "active" in row["method"] else ""
        if "mae_gamma" in row:
            extra = f"MAE(gamma) vs exact {row['mae_gamma']:.2g}"
        lines.append(f"| 3 | {row['method']} ({row['images']} images) | "
                     f"{fmt(row['per_image_s'], ' s')}/image | forward passes | "
                     f"{row['forward_passes']:,.0f}x | {extra} |")
    lines.append(f"| 3 | speedup, fastest exact over naive | {facts['speedup']:.1f}x | | | |")
    lines.append(confidence.exact_row(pair))
    b, alone, n, w = fooling["batched"], fooling["alone"], fooling["steps"], fooling["window"]
    ok = "met" if b / alone["linear"] >= 20 else "**not met**"
    target = f">= 20x ({ok})" if args.device == "cuda" else "report (>= 20x: the GPU target)"
    lines.append(f"| 4 | fooling on `dae_sym`, 200 trials batched (rank-1 generators), "
                 f"updates {n - w + 1}-{n} ({fooling['scored']:.0f} trials scored per "
                 f"update) | {fmt(b)} trial-updates/s | {fooling['single']} trials one at a "
                 f"time, same updates: `nn.Linear` + Adam {fmt(alone['linear'])}, rank-1 "
                 f"{fmt(alone['rank1'])} | {b / alone['linear']:.1f}x, "
                 f"{b / alone['rank1']:.1f}x | {target} |")
    lines.append(attack.efficiency_row(fooling["efficiency"]))
    if "per_cpu_second" in fooling:
        lines.append(attack.efficiency_row(fooling["per_cpu_second"], attack.PER_CPU))
    full = fooling["full_attack_s"] / 60
    lines.append(f"| 4 | full 200-trial, 10,000-update attack on `dae_sym` ({n} measured, "
                 f"the rest at the steady rate) | "
                 f"{full:.0f} min | | | <= 30 min ({'met' if full <= 30 else '**not met**'}) |")
    for name, row in e2e_rows.items():
        status = "" if row["returncode"] == 0 else f" (exit {row['returncode']})"
        lines.append(f"| 5 | end-to-end {name}: `{row['command']}` | "
                     f"{row['seconds'] / 60:.1f} min{status} | | | report |")
    lines.extend(openset_eval.row(timing) for timing in evaluation)
    lines.append(small_model.row(small, args.small_steps))
    if sweep_timing:
        lines.append(sweep.row(sweep_timing, args.sweep_steps))
    lines.append(precision.rows(*bf16, args.precision_steps, args.precision_test_images))
    return "\n".join(lines)


def write_results(text: str) -> None:
    """Replace the generated block of bench/RESULTS.md, keeping the notes around it."""
    path = HERE / "RESULTS.md"
    old = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    head, rest = old.split(BEGIN, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = os.environ.get("OVERGEN_DATA_DIR", "data")
    if not os.path.isfile(os.path.join(data_dir, "MNIST", "raw", "t10k-images-idx3-ubyte")):
        sys.exit(f"MNIST not found under {data_dir}/MNIST/raw: set OVERGEN_DATA_DIR")
    load0, start = os.getloadavg(), time.time()
    print(f"machine: {machine()}; load average {load0[0]:.1f}", flush=True)

    best, trained = bench_training(data_dir, None if args.epoch else args.batches,
                                   args.repeats, args.device)
    trained = trained.to(args.device)
    flops = {m: training.step_flops(m) for m in MODELS}
    peak = training.matmul_flops(device=args.device)
    print(f"  fp32 mm {peak / 1e9:.1f} GFLOP/s", flush=True)
    test = confidence.load_test(data_dir, max(64, args.images)).to(args.device)
    curv_rows, facts = confidence.curvature_rows(trained, test, args.images, args.naive_images,
                                                 (4, 16, 64), repeats=1 if args.quick else 2)
    pair = confidence.exact_pair(trained, test[:args.images], repeats=args.repeats)
    fooling = attack.attack_rows(trained, args.attack_steps, single=5, device=args.device)
    fooling["efficiency"] = attack.efficiency(fooling, attack.update_flops(trained), peak)
    if args.device == "cpu":  # CPU seconds of the update against those of torch.mm
        fooling["per_cpu_second"] = attack.cpu_side_by_side(trained)
    print(f"  fooling: {fooling}", flush=True)
    repeats = 1 if args.quick else 2
    scored = (overgen.load(args.eval_ckpt).to(args.device) if args.eval_ckpt else trained)
    evaluation = [openset_eval.time_paths(scored, data_dir, args.eval_images,
                                          repeats=repeats, device=args.device),
                  openset_eval.time_paths_exact(scored, data_dir, args.exact_eval_images,
                                                repeats=repeats, device=args.device)]
    small = small_model.best_rates(args.small_steps, args.repeats, args.device)
    rates, fp32_model = precision.throughput(data_dir, args.batches, args.repeats, args.device)
    images = confidence.load_test(data_dir, args.eval_images).to(args.device)
    autocast = precision.scoring_under_autocast(fp32_model.to(args.device), images)
    bf16 = (rates, autocast, precision.quality(args.precision_steps, args.precision_test_images,
                                               args.device))
    sweep_timing = sweep.sweep_rows(args.sweep_steps) if args.sweep else {}
    for name, row in sweep_timing.items():
        print(f"  sweep, {name}: {row['seconds']:.0f} s, exit {row['returncode']}", flush=True)
    e2e_rows = {}
    if args.e2e:
        for name, overrides in e2e.runs().items():
            e2e_rows[name] = row = e2e.time_run(overrides, args.threads)
            print(f"  {name}: {row['seconds']:.0f} s, exit {row['returncode']}", flush=True)

    load1 = os.getloadavg()
    steps = 938 if args.epoch else args.batches
    command = shlex.join(["python", "bench/run.py", *(argv or sys.argv[1:])])
    text = "\n".join([
        f"Command: `OVERGEN_DATA_DIR=... {command}` ({(time.time() - start) / 60:.0f} min)  ",
        f"Machine: {machine()}  ",
        f"Device of rows 1-4, 6, 7 and 9: {device_name(args.device)}  ",
        f"Load average (1 min) at start / end: {load0[0]:.1f} / {load1[0]:.1f}"
        f"{' (shared with other jobs)' if max(load0[0], load1[0]) > 1.5 else ''}  ",
        f"Scores: `dae_sym` from the last framework run ({steps} steps of batch 64), "
        f"gamma = {facts['gamma_mean']:.3f} +/- {facts['gamma_std']:.3f}, active latent "
        f"units {facts['active_min']}-{facts['active_max']} of 400; the three exact variants "
        f"give the same gamma to {facts['exact_max_abs_diff']:.1e} (max abs diff, float32; "
        "tests/test_curvature_fast.py checks the traces in float64)"
        + (f"; row 6 scores `{args.eval_ckpt}`" if args.eval_ckpt else ""),
        "", table(args, best, peak, flops, curv_rows, facts, pair, fooling, e2e_rows,
                  evaluation, small, sweep_timing, bf16)])
    print("\n" + text)
    if not args.no_write:
        write_results(text)


if __name__ == "__main__":
    main()
