"""The confidence score on anyone's models: ``y~(x) = c(x) y(x)`` from any classifier ``y``
and any denoising autoencoder ``r`` (docs/method.md §1), with ``overgen.scores.confidence``.

    python examples/score_any_model.py accuracy.png                  # generated images, seconds
    python examples/score_any_model.py accuracy.png --mnist data/MNIST/raw --steps 300

It trains a tiny CNN classifier and a small convolutional dAE for a few Adam steps (stand-ins
for your own models: nothing after ``train`` looks inside them), scores held-out images and
uniform-noise images, and plots against the threshold t (a plain matplotlib ``Figure``):

- thresholded accuracy: the share of held-out images whose argmax is right and whose score
  is ``>= t``, for the softmax ``y`` alone and for ``y~``;
- the share of noise images whose top score is ``>= t`` (accepted as some class).

With your own models, only the last step matters::

    from overgen import scores
    c = scores.confidence(my_dae, x, alpha=20.0, beta=10.0)    # [B], exact trace
    c = scores.confidence(my_dae, x, 20.0, 10.0, method="hutchinson", probes=16)  # cheaper
    y_tilde = c[:, None] * my_classifier(x).softmax(-1)         # [B, C]

``my_dae`` must treat samples independently (eval mode: no batch statistics). ``alpha``
scales the per-pixel reconstruction error, ``beta`` the curvature penalty (§1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from overgen.metrics import thresholded_correct
from overgen.scores import CURVATURE_METHODS, confidence


def generated(n: int, prototypes: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` images ``[n, 1, S, S]`` in [0, 1] and their classes ``[n]``: a class's prototype
    ``[C, S, S]`` shifted by up to one pixel each way, plus Gaussian noise (std 0.05)."""
    y = torch.randint(len(prototypes), (n,), generator=generator)
    shifts = torch.randint(-1, 2, (n, 2), generator=generator)
    x = torch.stack([prototypes[k].roll(tuple(s.tolist()), (0, 1))
                     for k, s in zip(y, shifts, strict=True)])
    x = x + 0.05 * torch.randn(x.shape, generator=generator)
    return x.clamp(0, 1).unsqueeze(1), y


def blob_prototypes(classes: int, size: int, generator: torch.Generator) -> Tensor:
    """One image ``[S, S]`` per class: three Gaussian blobs (width S/8) at random places."""
    grid = torch.arange(size, dtype=torch.float32)
    centres = torch.rand(classes, 3, 2, generator=generator) * (size - 1)
    dy = grid[None, None, :, None] - centres[..., 0, None, None]  # [C, 3, S, 1]
    dx = grid[None, None, None, :] - centres[..., 1, None, None]  # [C, 3, 1, S]
    return torch.exp(-(dy**2 + dx**2) / (2 * (size / 8) ** 2)).sum(1).clamp(max=1)


def mnist(raw: Path, n_train: int, n_test: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The first ``n_train`` training and ``n_test`` test images of torchvision's raw MNIST
    files in ``raw``, as ``x: [n, 1, 28, 28]`` in [0, 1] and ``y: [n]``."""

    def read(kind: str, n: int) -> tuple[Tensor, Tensor]:
        images = np.fromfile(raw / f"{kind}-images-idx3-ubyte", np.uint8, 784 * n, offset=16)
        labels = np.fromfile(raw / f"{kind}-labels-idx1-ubyte", np.uint8, n, offset=8)
        x = torch.from_numpy(images.reshape(n, 1, 28, 28) / 255.0).float()
        return x, torch.from_numpy(labels).long()

    return (*read("train", n_train), *read("t10k", n_test))


def tiny_cnn(classes: int, size: int) -> nn.Module:
    """A torchvision-style classifier: ``[B, 1, S, S] -> logits [B, classes]``."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * (size // 4) ** 2, classes))


def small_dae() -> nn.Module:
    """A convolutional autoencoder ``[B, 1, S, S] -> [B, 1, S, S]`` (S divisible by 4)."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Sigmoid())


def train(classifier: nn.Module, dae: nn.Module, x: Tensor, y: Tensor, steps: int,
          sigma: float, generator: torch.Generator, batch_size: int = 64) -> None:
    """``steps`` Adam updates (lr 1e-3) of each model on random batches: cross-entropy for
    the classifier; for the dAE the squared error of ``r(x + sigma N(0, I))`` against ``x``."""
    opt_c, opt_r = torch.optim.Adam(classifier.parameters()), torch.optim.Adam(dae.parameters())
    for _ in range(steps):
        i = torch.randint(len(x), (batch_size,), generator=generator)
        noisy = x[i] + sigma * torch.randn(x[i].shape, generator=generator)
        for opt, loss in ((opt_c, nn.functional.cross_entropy(classifier(x[i]), y[i])),
                          (opt_r, (dae(noisy) - x[i]).square().flatten(1).sum(1).mean())):
            opt.zero_grad()
            loss.backward()
            opt.step()


def accepted_share(scores: Tensor, labels: Tensor | None, thresholds: np.ndarray) -> np.ndarray:
    """Per threshold t, the share of rows whose argmax is ``labels`` (any class for ``None``)
    and whose top score is ``>= t``: thresholded accuracy, or the share of noise accepted."""
    labels = scores.argmax(-1) if labels is None else labels
    return np.array([float(thresholded_correct(scores, labels, t).float().mean())
                     for t in thresholds])


def accuracy_figure(thresholds: np.ndarray, curves: dict[str, np.ndarray]) -> Figure:
    """One line per curve against the threshold: colour by score (``y~`` in the name or
    not), dashed for the noise images."""
    fig = Figure(figsize=(5.5, 4.0))
    ax = fig.add_subplot()
    for name, share in curves.items():
        ax.plot(thresholds, share, label=name, color="C1" if "y~" in name else "C0",
                ls="--" if "noise" in name else "-")
    ax.set_xlabel("threshold t")
    ax.set_ylabel("share of images")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="where to save the figure (e.g. accuracy.png)")
    p.add_argument("--mnist", type=Path, help="torchvision's MNIST raw folder; default: "
                                              "generated images")
    p.add_argument("--classes", type=int, default=3, help="classes of generated images")
    p.add_argument("--size", type=int, default=28, help="side of generated images, a "
                                                        "multiple of 4")
    p.add_argument("--train", type=int, default=2000, help="training images")
    p.add_argument("--test", type=int, default=500, help="held-out and noise images, each")
    p.add_argument("--steps", type=int, default=200, help="Adam steps of each model")
    p.add_argument("--sigma", type=float, default=0.2, help="the dAE's training noise")
    p.add_argument("--alpha", type=float, default=20.0)
    p.add_argument("--beta", type=float, default=10.0)
    p.add_argument("--curvature", choices=CURVATURE_METHODS, default="hutchinson",
                   help="exact: D Jacobian-vector products per image (a minute or more on "
                        "a CPU for 500 MNIST images); hutchinson: 16 random probes")
    p.add_argument("--points", type=int, default=101, help="thresholds on [0, 1]")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.mnist is None and (args.size < 4 or args.size % 4):
        p.error(f"--size={args.size}: a positive multiple of 4")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Train, score, plot to ``args.out``; returns the curves, the models and the data."""
    args = parse(argv)
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)  # the models' initial weights
    if args.mnist is not None:
        x, y, x_test, y_test = mnist(args.mnist, args.train, args.test)
        classes = 10
    else:
        prototypes = blob_prototypes(args.classes, args.size, g)
        (x, y), (x_test, y_test) = (generated(n, prototypes, g) for n in (args.train, args.test))
        classes = args.classes
    classifier, dae = tiny_cnn(classes, x.shape[-1]), small_dae()
    train(classifier, dae, x, y, args.steps, args.sigma, g)
    classifier.eval(), dae.eval()
    noise = torch.rand(x_test.shape, generator=g)
    thresholds = np.linspace(0, 1, args.points)
    curves = {}
    for name, images, labels in (("held-out", x_test, y_test), ("noise", noise, None)):
        with torch.no_grad():
            y_prob = classifier(images).softmax(-1)  # [B, C]
        c = confidence(dae, images, args.alpha, args.beta, args.curvature)  # [B]
        what = "accuracy" if labels is not None else "accepted"
        curves[f"{name} {what}, y"] = accepted_share(y_prob, labels, thresholds)
        curves[f"{name} {what}, y~ = c y"] = accepted_share(c[:, None] * y_prob, labels,
                                                           thresholds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    accuracy_figure(thresholds, curves).savefig(args.out, dpi=120)
    print(f"saved {args.out}; at t = 0.9: " + ", ".join(
        f"{name} {share[np.searchsorted(thresholds, 0.9)]:.3f}" for name, share in curves.items()))
    return {"thresholds": thresholds, "curves": curves, "classifier": classifier, "dae": dae,
            "x_test": x_test, "y_test": y_test}


if __name__ == "__main__":
    main()
