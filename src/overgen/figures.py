"""Every matplotlib figure of overgen: Fig. 2 (rings panels, from a model), Fig. 3 (the
fooling grid), Fig. 4 (open set) and Fig. 5 (1-class ROC) from ``metrics.json`` data, and the
per-model colours. Figures are plain ``matplotlib.figure.Figure`` objects: no pyplot and no
backend switch, so importing this module leaves a notebook's backend alone; save them with
``fig.savefig`` (``overgen.utils.io.atomic_savefig``), which renders PNG with Agg."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from overgen.metrics import FPR_GRID
from overgen.paper import MODEL_ORDER, paper_auc, paper_aucs
from overgen.scores import curvature_factor, error_factor, reconstruction_error

if TYPE_CHECKING:
    from overgen.attacks.fgn import FoolingResult

CLASS_COLOURS = np.array([[0.85, 0.15, 0.15], [0.15, 0.55, 0.15], [0.15, 0.25, 0.85]])
# each model keeps one colour in every figure; settings of one model differ by line style;
# tab10 without its grey, which would read as OTHER_COLOUR
MODEL_COLOURS = dict(zip(MODEL_ORDER, [c for c in matplotlib.colormaps["tab10"].colors
                                       if len(set(c)) > 1], strict=False))
OTHER_COLOUR = "0.35"  # models outside MODEL_ORDER
LINE_STYLES = ("-", "--", ":", "-.")


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


def _class_colour_bars(fig: Figure, axes: list, n: int) -> None:
    """One colour bar per class beside ``axes``, titled by the class: white (score 0) to the
    class colour (score 1). Constrained layout puts the last one added nearest ``axes``."""
    for k in reversed(range(n)):
        cmap = LinearSegmentedColormap.from_list(f"class{k}", ["white", CLASS_COLOURS[k]])
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=axes, fraction=0.03,
                           pad=0.01, aspect=40)
        bar.ax.set_title(str(k), fontsize=9)
        if k == n - 1:
            bar.set_label("class score")
        else:
            bar.set_ticks([])


def rings_figure(panels: dict[str, np.ndarray], samples: tuple[np.ndarray, np.ndarray],
                 title: str = "") -> Figure:
    """Fig. 2: (A) samples, (B) ``y~``, (C) ``y`` (a colour bar per class beside them: a
    pixel mixes the class colours by score), (D) error factor (top) and Gamma (bottom),
    each with its colour bar."""
    fig = Figure(figsize=(19, 4.8), layout="constrained")  # narrower clips A's labels
    grid = fig.add_gridspec(2, 4, width_ratios=(1, 1, 1, 0.62))
    ext = panels["extent"]
    ax = fig.add_subplot(grid[:, 0])
    x, y = samples
    for k in range(int(y.max()) + 1):
        ax.scatter(*x[y == k].T, s=1, color=CLASS_COLOURS[k], label=f"class {k}")
    ax.set_xlim(ext[:2]), ax.set_ylim(ext[2:]), ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=6, fontsize=8)
    ax.set_title("A. training samples")
    maps = [("y_tilde", r"B. final score $\tilde{y}(x) = c(x)\,y(x)$"),
            ("y", r"C. softmax $y(x)$")]
    class_axes = []
    for col, (key, name) in enumerate(maps, 1):
        ax = fig.add_subplot(grid[:, col])
        ax.imshow(_class_image(panels[key]), origin="lower", extent=ext)
        ax.tick_params(labelleft=False)  # A's axis labels serve all three panels
        ax.set_title(name)
        class_axes.append(ax)
    _class_colour_bars(fig, class_axes, panels["y"].shape[-1])
    for row, (key, name) in enumerate([("error_factor", r"D. error factor $e^{-\alpha e(x)/D}$"),
                                       ("gamma_factor", r"curvature factor $\Gamma(x)$")]):
        ax = fig.add_subplot(grid[row, 3])
        image = ax.imshow(panels[key], origin="lower", extent=ext, cmap="gray_r", vmin=0,
                          vmax=1)
        fig.colorbar(image, ax=ax, fraction=0.08, pad=0.02)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig


def fooling_shown(result: FoolingResult, digits: Sequence[int]) -> list[int]:
    """Fig. 3's trial per digit: the first of those on that digit that reached the most
    thresholds."""
    from overgen.attacks.fgn import NEVER  # here: the report needs no pytorch_lightning

    passed = (result.success != NEVER).sum(1)
    return [max((result.target == d).nonzero().flatten().tolist(),
                key=lambda j: (int(passed[j]), -j)) for d in digits]


def fooling_figure(result: FoolingResult, digits: Sequence[int], scores: np.ndarray) -> Figure:
    """Fig. 3: the image of each digit's ``fooling_shown`` trial, titled by its target
    digit, the thresholds it reached and ``scores [len(digits), K]``: the image's final score
    for its target as judged at each threshold (with the alpha paired with it)."""
    from overgen.attacks.fgn import NEVER

    fig = Figure(figsize=(1.2 * len(digits), 2.1), layout="constrained")
    k = len(result.thresholds)
    for col, (digit, i) in enumerate(zip(digits, fooling_shown(result, digits), strict=True)):
        ax = fig.add_subplot(1, len(digits), col + 1)
        ax.imshow(result.image[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        reached = int((result.success[i] != NEVER).sum())
        ax.set_title(f"{digit}: {reached}/{k}\n" + " | ".join(f"{v:.3f}" for v in scores[col]),
                     fontsize=9)
        ax.set_axis_off()
    at = " | ".join(f"{t:.2f}" for t in result.thresholds)
    fig.suptitle(f"fooling images; above each: target digit: thresholds reached, then its "
                 f"final score at {at}", fontsize=9)
    return fig


def styles(names: list[str]) -> dict[str, dict]:
    """``{label: {"color", "ls"}}``: the colour of the label's model (its first word), the
    line style counting the labels of that model."""
    used: dict[str, int] = {}
    out = {}
    for name in names:
        model = name.split(" ")[0]
        i = used[model] = used.get(model, -1) + 1
        out[name] = {"color": MODEL_COLOURS.get(model, OTHER_COLOUR),
                     "ls": LINE_STYLES[i % len(LINE_STYLES)]}
    return out


def openset_figure(points: dict[str, list[dict]], threshold: str) -> Figure:
    """Fig. 4: F-measure against openness per setting, std over the subsets as error bars."""
    fig = Figure(figsize=(8.4, 4.2), layout="constrained")  # the legend right of the axes
    ax = fig.add_subplot()
    style = styles(list(points))
    for name, pts in points.items():
        ax.errorbar([p["openness"] for p in pts], [p["mean"] for p in pts],
                    yerr=[p["std"] for p in pts], marker="o", ms=4, capsize=3, label=name,
                    **style[name])
    ax.set_xlabel("openness = 1 - sqrt(K / 10)")
    ax.set_ylabel("F-measure")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Open set (Fig. 4), threshold {threshold}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside right upper")
    return fig


def roc_figure(summary: dict[str, dict]) -> Figure:
    """Fig. 5: the vertically averaged ROC per setting, mean AUC in the legend beside the
    paper's AUC for that model; the paper's three AUCs in the title."""
    fig = Figure(figsize=(5.6, 6.4), layout="constrained")  # the legend below the axes
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    style = styles(list(summary))
    for name, s in summary.items():
        if s["tpr"] is None:
            continue
        auc = f"AUC {np.mean(s['auc']):.3f}" if s["auc"] else "AUC ?"
        paper = "" if paper_auc(name) == "–" else f" (paper {paper_auc(name)})"
        ax.plot(FPR_GRID, s["tpr"], label=f"{name}: {auc}{paper}, {s['curves']} curves",
                **style[name])
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (vertical average)")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.01), ax.set_aspect("equal")
    paper = paper_aucs("\n")
    fig.suptitle(f"1-class (Fig. 5)\npaper's AUCs: {paper}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside lower center")
    return fig
