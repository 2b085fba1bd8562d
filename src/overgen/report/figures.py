"""Report figures from aggregated ``metrics.json`` data: Fig. 4 and Fig. 5 (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from overgen.metrics import FPR_GRID  # noqa: E402


def openset_figure(points: dict[str, list[dict]], threshold: str):
    """Fig. 4: F-measure against openness per setting, std over the subsets as error bars."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, pts in points.items():
        ax.errorbar([p["openness"] for p in pts], [p["mean"] for p in pts],
                    yerr=[p["std"] for p in pts], marker="o", ms=4, capsize=3, label=name)
    ax.set_xlabel("openness = 1 - sqrt(K / 10)")
    ax.set_ylabel("F-measure")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Open set (Fig. 4), threshold {threshold}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_figure(summary: dict[str, dict]):
    """Fig. 5: the vertically averaged ROC per setting, mean AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    for name, s in summary.items():
        if s["tpr"] is None:
            continue
        auc = f"AUC {np.mean(s['auc']):.3f}" if s["auc"] else "AUC ?"
        ax.plot(FPR_GRID, s["tpr"], label=f"{name}: {auc}, {s['curves']} curves")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (vertical average)")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.01), ax.set_aspect("equal")
    ax.set_title("1-class (Fig. 5)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
