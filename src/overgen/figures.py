"""Matplotlib figures built from models or from ``metrics.json`` data (no training here)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from overgen.scores import curvature_factor, error_factor, reconstruction_error  # noqa: E402

CLASS_COLOURS = np.array([[0.85, 0.15, 0.15], [0.15, 0.55, 0.15], [0.15, 0.25, 0.85]])


@torch.no_grad()
def rings_panels(model, lim: float = 2.5, resolution: int = 200) -> dict[str, np.ndarray]:
    """Grid maps for Fig. 2 from a 2-D dAE model: ``y~``, ``y`` ``[R, R, C]``; error factor
    ``exp(-alpha e/D)`` and ``Gamma`` ``[R, R]``; ``extent`` of the grid."""
    axis = torch.linspace(-lim, lim, resolution)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    x = torch.stack([gx.flatten(), gy.flatten()], 1).to(model.device)
    probs = model(x).softmax(-1)
    ef = error_factor(reconstruction_error(x, model.reconstruct(x)), model.alpha, x.shape[1])
    gamma = curvature_factor(model.curvature(x), model.beta)
    shape = (resolution, resolution)
    return {
        "y_tilde": ((ef * gamma).unsqueeze(-1) * probs).cpu().numpy().reshape(*shape, -1),
        "y": probs.cpu().numpy().reshape(*shape, -1),
        "error_factor": ef.cpu().numpy().reshape(shape),
        "gamma_factor": gamma.cpu().numpy().reshape(shape),
        "extent": np.array([-lim, lim, -lim, lim]),
    }


def _class_image(scores: np.ndarray) -> np.ndarray:
    """White where every score is low, the class colour where its score is high."""
    colours = CLASS_COLOURS[: scores.shape[-1]]
    return np.clip(1.0 - scores @ (1.0 - colours), 0.0, 1.0)


def rings_figure(panels: dict[str, np.ndarray], samples: tuple[np.ndarray, np.ndarray],
                 title: str = ""):
    """Fig. 2: (A) samples, (B) ``y~``, (C) ``y``, (D) error factor (top) and Gamma (bottom)."""
    fig = plt.figure(figsize=(16, 4.4))
    grid = fig.add_gridspec(2, 4)
    ext = panels["extent"]
    ax = fig.add_subplot(grid[:, 0])
    x, y = samples
    for k in range(int(y.max()) + 1):
        ax.scatter(*x[y == k].T, s=1, color=CLASS_COLOURS[k])
    ax.set_xlim(ext[:2]), ax.set_ylim(ext[2:]), ax.set_aspect("equal")
    ax.set_title("A. samples")
    for col, (key, name) in enumerate([("y_tilde", "B. y~ = c(x) y(x)"), ("y", "C. y(x)")], 1):
        ax = fig.add_subplot(grid[:, col])
        ax.imshow(_class_image(panels[key]), origin="lower", extent=ext)
        ax.set_title(name)
    for row, (key, name) in enumerate([("error_factor", "D. exp(-alpha e/D)"),
                                       ("gamma_factor", "Gamma(x)")]):
        ax = fig.add_subplot(grid[row, 3])
        ax.imshow(panels[key], origin="lower", extent=ext, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
