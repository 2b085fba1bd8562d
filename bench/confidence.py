"""Cost of the curvature ``gamma(x)`` on MNIST test images, per image and in forward passes."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torchvision.datasets import MNIST

from overgen import scores
from overgen.models import DAEClassifier


def load_test(data_dir: str, n: int) -> torch.Tensor:
    """The first ``n`` MNIST test images, ``float [n, 1, 28, 28]`` in [0, 1]."""
    return MNIST(data_dir, train=False, download=False).data[:n].unsqueeze(1).float() / 255.0


def best_time(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
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
    fast = f"exact, bottleneck, active units only (model.curvature; mean {active.mean():.0f})"
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
