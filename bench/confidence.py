"""Cost of the curvature ``gamma(x)`` on MNIST test images, per image and in forward passes;
alone, exact ``gamma`` now (``model.curvature``: ``ConvDAE.jacobian_trace``) against the
factored JVPs one sample at a time (the model's method before issue 12), interleaved.

    OVERGEN_DATA_DIR=/work/shared/data python bench/confidence.py --images 64 --threads 2
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import torch
import training
from torchvision.datasets import MNIST

from overgen import scores
from overgen.models import DAEClassifier
from overgen.models.dae import SAMPLES_PER_TRACE


def load_test(data_dir: str, n: int) -> torch.Tensor:
    """The first ``n`` MNIST test images, ``float [n, 1, 28, 28]`` in [0, 1]."""
    return MNIST(data_dir, train=False, download=False).data[:n].unsqueeze(1).float() / 255.0


def best_time(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if out.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def forward_time(model: DAEClassifier, x: torch.Tensor, repeats: int = 10) -> float:
    """One forward pass: per-image time of a batch-64 no-grad ``reconstruct``."""
    batch = x[:64]
    with torch.no_grad():
        model.reconstruct(batch)
        seconds, _ = best_time(lambda: model.reconstruct(batch), repeats)
    return seconds / len(batch)


def factored_all_units(model: DAEClassifier, x: torch.Tensor) -> torch.Tensor:
    """``gamma`` through the bottleneck with every latent unit (no ReLU skipping)."""
    ctx = model.network.encode(x)[1]
    trace = scores.jacobian_trace_factored(lambda v: model.network.encode(v)[0],
                                           lambda z: model.network.decode(z, ctx), x)
    return (trace - 784) / 784


def factored_one_at_a_time(model: DAEClassifier, x: torch.Tensor) -> torch.Tensor:
    """``gamma`` as ``model.curvature`` computed it before issue 12 (kept only here): JVPs
    through the bottleneck, active units only, one sample at a time."""
    traces = []
    for xi in x.split(1):
        ctx = model.network.encode(xi)[1]
        traces.append(scores.jacobian_trace_factored(
            lambda v: model.network.encode(v)[0], lambda z, ctx=ctx: model.network.decode(z, ctx),
            xi, chunk_size=model.chunk_size, skip_zero_units=True))
    return (torch.cat(traces) - 784) / 784


def exact_pair(model: DAEClassifier, x: torch.Tensor, repeats: int) -> dict:
    """Seconds per image of exact ``gamma`` now and before on the same images ``x``,
    rounds interleaved (the order alternates), best of ``repeats`` each; every round's
    times, and the largest ``|gamma_now - gamma_before|``."""
    model.eval()
    paths = {"now": model.curvature, "before": lambda v: factored_one_at_a_time(model, v)}
    rounds, gammas = [], {}
    with torch.no_grad():
        for r in range(repeats):
            times = {}
            for name in (("now", "before") if r % 2 == 0 else ("before", "now")):
                start = time.perf_counter()
                gammas[name] = paths[name](x).cpu()  # waits for a GPU
                times[name] = (time.perf_counter() - start) / len(x)
            rounds.append(times)
            print(f"  exact gamma, round {r + 1}: now {times['now']:.4f} s/image, before "
                  f"{times['before']:.4f}", flush=True)
    best = {name: min(t[name] for t in rounds) for name in paths}
    return {"images": len(x), "rounds": rounds, **best,
            "max_abs_diff": (gammas["now"] - gammas["before"]).abs().max().item()}


def exact_row(pair: dict) -> str:
    """The RESULTS.md row: exact ``gamma`` per image now and before, and the ratio."""
    return (f"| 3 | exact gamma, written-out linearised maps, {SAMPLES_PER_TRACE} samples "
            f"at a time (`model.curvature` now; {pair['images']} images) | "
            f"{pair['now']:.3g} s/image | factored JVPs one sample at a time (before) "
            f"{pair['before']:.3g} s/image | {pair['before'] / pair['now']:.2f}x | <= 0.05 "
            f"s/image; max abs diff of gamma {pair['max_abs_diff']:.1e} (float32) |")


def in_groups(fn: Callable[[torch.Tensor], torch.Tensor], size: int):
    """``fn`` applied to ``size`` images at a time (the vmapped JVPs of a call are
    ``size`` x chunk or probes; a few hundred is fastest on this CPU)."""
    return lambda x: torch.cat([fn(part) for part in x.split(size)])


def curvature_rows(model: DAEClassifier, test: torch.Tensor, images: int, naive_images: int,
                   probes: tuple[int, ...], repeats: int) -> tuple[list[dict], dict]:
    """Per method: time per image, as a multiple of one forward pass (the best of those
    measured before each method), and for Hutchinson the mean abs error of ``gamma``
    against exact, on the first ``images`` of ``test`` (>= 64 images, for the forward
    pass); the slow variants on the first ``naive_images`` only (per-image time
    extrapolated from them)."""
    model.eval()
    x, small = test[:images], test[:naive_images]
    with torch.no_grad():
        active = (model.network.encode(x)[0] > 0).sum(1).float()
    fast = (f"exact, written-out maps, active units only (model.curvature; mean "
            f"{active.mean():.0f})")
    methods = [
        ("exact, naive: 784 JVPs of r", small, in_groups(
            lambda v: scores.curvature(model.reconstruct, v, "exact", chunk_size=64), 1)),
        ("exact, bottleneck, all 400 units", small,
         in_groups(lambda v: factored_all_units(model, v), 4)),
        (fast, x, model.curvature),
    ] + [(f"Hutchinson, {p} probes", x, in_groups(
        lambda v, p=p: scores.curvature(model.reconstruct, v, "hutchinson", probes=p),
        max(1, 256 // p))) for p in probes]
    rows, gammas, fwd = [], {}, float("inf")
    for name, images, fn in methods:
        fwd = min(fwd, forward_time(model, test))  # interleaved: the best seen is the unit
        seconds, gammas[name] = best_time(lambda f=fn, v=images: f(v), repeats)
        rows.append({"method": name, "images": len(images),
                     "per_image_s": seconds / len(images)})
    fwd = min(fwd, forward_time(model, test))
    for row in rows:
        row["forward_passes"] = row["per_image_s"] / fwd
    exact = gammas[fast]
    for row in rows:
        if row["method"].startswith("Hutchinson"):
            row["mae_gamma"] = (gammas[row["method"]] - exact).abs().mean().item()
    naive = gammas[methods[0][0]]
    facts = {
        "forward_s": fwd,
        "exact_max_abs_diff": max((gammas[m[0]][: len(naive)] - naive).abs().max().item()
                                  for m in methods[1:3]),
        "gamma_mean": exact.mean().item(), "gamma_std": exact.std().item(),
        "active_min": int(active.min()), "active_max": int(active.max()),
        "speedup": rows[0]["per_image_s"] / min(r["per_image_s"] for r in rows[1:3]),
    }
    return rows, facts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--images", type=int, default=64, help="test images")
    p.add_argument("--train-batches", type=int, default=300,
                   help="training batches of the dae_sym scored (framework run)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds, best kept")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = os.environ.get("OVERGEN_DATA_DIR", "data")
    torch.manual_seed(0)
    _, model = training.framework_run("dae_sym", data_dir, args.train_batches)
    load0 = os.getloadavg()[0]
    pair = exact_pair(model, load_test(data_dir, args.images), args.repeats)
    print(f"torch threads {torch.get_num_threads()}; load average (1 min) at start / end: "
          f"{load0:.1f} / {os.getloadavg()[0]:.1f}")
    print(exact_row(pair))


if __name__ == "__main__":
    main()
